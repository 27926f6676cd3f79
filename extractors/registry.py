"""The extractor registry: one entry per pose / face extractor, used by the pipeline, the Beam
handlers (:mod:`extractors.handlers`) and ``zoo.predict``.

Each :class:`Entry` names the extractor, its role (``"pose"`` or ``"face"``), its aliases, the
weights files it loads (names in :data:`extractors.weights.REGISTRY`), the keypoint layout of
its output (a :data:`schemas.keypoints.LAYOUTS` name; ``None`` for face detectors), the
autocast dtype used on CUDA, and three calls::

    from extractors import registry
    entry = registry.resolve("posenet", role="pose")         # alias -> posenet-mobilenet-v1-075
    registry.prepare_device("cuda", torch_threads=0)          # explicit, once per process
    model = entry.load("cuda")
    entry.warmup(model, "cuda", size=(480, 640), batch=64)    # once, before timed work
    results = entry.infer(model, chunk, device="cuda")        # chunk: uint8 [N, H, W, 3] or list
    coco = [registry.to_coco17(k, entry.keypoint_layout) for _, k in results]

Results of ``infer`` (per frame, in input order; source-frame pixels, origin at the top-left
pixel, x right, y down):

- pose: ``(scores float32 [P], keypoints float32 [P, V, 3])``, rows (x, y, score) in
  ``keypoint_layout`` order (V = 17 for ``coco17``, 18 for ``openpose18``; OpenPose marks a
  missing part with NaN x, y, score). ``blazepose33`` (V = 33) has 8 channels: x, y,
  visibility as the score, then presence, z and the metric world x, y, z
  (:data:`schemas.keypoints.BLAZEPOSE_CHANNELS`); :func:`to_coco17` keeps the first three.
- face: ``float32 [D, 5 + 2L]``: ``x1, y1, x2, y2, score``, then L landmarks (x, y); L = 6 for
  BlazeFace, 5 for DBFace.

Precision on CUDA (``preferred_dtype``; CPU always runs float32). Measured with CPU autocast on
the shipped clips against float32 (same detections, max box / keypoint difference):

- ``blazeface-*``: float16, boxes within 0.05 px (bfloat16: 0.4 px).
- ``dbface-*``: float16, boxes within 0.1 px (bfloat16 moved one box by 32 px).
- ``posenet-*``: float32. Its keypoints snap to 16-px heatmap cells along the pose chain, so
  float16 / bfloat16 moved confident keypoints by up to 10 px; with TF32 convolutions the
  same happens, hence :func:`prepare_device` turns TF32 off by default.
- ``openpose-body``: bfloat16 for the network (maps are cast to float32 before the decoder);
  the network dominates its cost. Not checked against real weights here (they cannot ship);
  ``python -m bench.gpu_extractors`` reports the CPU-vs-CUDA keypoint difference.

Every ``infer`` call returns one result per input frame or raises
:class:`ExtractorOutputError` naming the extractor and both counts (a short result would shift
poses onto the wrong samples).

Errors: :class:`UnknownExtractorError` (a ``ValueError``) for unknown names, with close
matches; weights errors from :mod:`extractors.weights` when loading.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from extractors import _device as _dev

__all__ = [
    "Entry",
    "UnknownExtractorError",
    "ExtractorOutputError",
    "EXTRACTORS",
    "ROLES",
    "resolve",
    "names",
    "entries",
    "to_coco17",
    "prepare_device",
]

ROLES = ("pose", "face")


class UnknownExtractorError(ValueError):
    """An extractor name or alias that the registry lacks (or one of the other role)."""


class ExtractorOutputError(RuntimeError):
    """An extractor returned another number of results than it was given frames."""


@dataclass(frozen=True)
class Entry:
    """One extractor.

    Attributes:
        name: canonical name (also the main weights file's name in the weights registry).
        role: ``"pose"`` or ``"face"``.
        aliases: other names accepted by :func:`resolve` (command-line flags, card values).
        weight_files: names in :data:`extractors.weights.REGISTRY` that :meth:`load` reads.
        keypoint_layout: :data:`schemas.keypoints.LAYOUTS` name of the pose output, or None.
        preferred_dtype: autocast dtype on CUDA (``torch.float32`` = none).
        landmarks: face detectors: landmarks per detection (row width ``5 + 2 * landmarks``).
        description: one line.
        default_options: the options :meth:`infer` passes unless overridden.
        display_name: short name for people (``PoseNet``), e.g. in a contact sheet's caption.
        config_options: infer option -> :class:`pipelines.config.ExtractConfig` field that sets
            it (:meth:`options_from`); PoseNet's ``scale_factor`` is ``pose_scale_factor``.
        suited_to: face detectors: the pictures they suit (``close-up crops``).
        counterpart: face detectors: the extractor to try when this one finds no face.
        close_ups: face detectors made for head-sized crops rather than whole scenes.
        device_preprocessing: :meth:`infer` takes ``device_preprocess=`` (a device-side resize /
            letterbox beside the host path); False: one path on every device (BlazePose).
    """

    name: str
    role: str
    aliases: tuple[str, ...]
    weight_files: tuple[str, ...]
    keypoint_layout: Optional[str]
    preferred_dtype: torch.dtype
    description: str
    _load: Callable[..., torch.nn.Module] = field(repr=False)
    _infer: Callable[..., list] = field(repr=False)
    landmarks: int = 0
    default_options: dict = field(default_factory=dict)
    display_name: str = ""
    config_options: dict = field(default_factory=dict)
    suited_to: str = ""
    counterpart: Optional[str] = None
    close_ups: bool = False
    device_preprocessing: bool = True
    _network_input: Optional[Callable[..., torch.Tensor]] = field(default=None, repr=False)
    _untrained: Optional[Callable[[], torch.nn.Module]] = field(default=None, repr=False)

    def load(self, device="cpu") -> torch.nn.Module:
        """The model on ``device`` in eval mode (channels-last weights on CUDA).

        Raises:
            extractors.weights.WeightsNotFoundError / WeightsChecksumError: a weights file is
            missing or differs from its registered sha256; RuntimeError on a key mismatch.
        """
        return self._load(device)

    def dtype_for(self, device, dtype=None) -> torch.dtype:
        """The autocast dtype ``infer`` uses: ``dtype`` if given, else :attr:`preferred_dtype`
        on CUDA; always float32 off CUDA."""
        return _dev.resolve_dtype(self.preferred_dtype if dtype is None else dtype, device)

    def options_from(self, cfg: Any) -> dict:
        """The :meth:`infer` options a run's config sets (:attr:`config_options`), e.g.
        ``{"scale_factor": cfg.pose_scale_factor}`` for PoseNet; {} for most extractors."""
        return {option: getattr(cfg, name) for option, name in self.config_options.items()}

    def infer(self, model: torch.nn.Module, frames, device="cpu", dtype=None,
              **options) -> list:
        """Run the extractor on frames.

        Args:
            model: from :meth:`load` on ``device``.
            frames: RGB uint8 [H, W, 3] arrays (a list; sizes may differ) or one uint8
                [N, H, W, 3] array (a per-sample chunk).
            device: torch device of the model.
            dtype: autocast dtype on CUDA; default :attr:`preferred_dtype`.
            **options: extractor options over :attr:`default_options` (PoseNet:
                ``scale_factor``, ``min_pose_score``, ``score_threshold``, ``nms_radius``,
                ``max_pose_detections``; OpenPose: ``scale_search``, ``mode``; BlazeFace:
                ``score_threshold``; DBFace: ``threshold``, ``nms_iou``).
        Returns:
            One result per frame, in input order (see the module docstring).
        Raises:
            ValueError: a bad frame; TypeError: an unknown option.
            ExtractorOutputError: the extractor returned another number of results than frames.
        """
        results = self._infer(model, frames, device, self.dtype_for(device, dtype),
                              **{**self.default_options, **options})
        if len(results) != len(frames):
            raise ExtractorOutputError(f"extractor {self.name} returned {len(results)} results for {len(frames)} "
                                       "input frames; expected one per frame")
        return results

    def network_input(self, frames, device="cpu") -> torch.Tensor:
        """The batch :meth:`infer` feeds the network for ``frames`` (its resize / letterbox and
        scaling, on ``device``): float32 [N, 3, H_in, W_in] for uint8 [N, H, W, 3] RGB frames
        of one size. Used to time the network alone (``bench.gpu_extractors``).

        Raises:
            NotImplementedError: the extractor builds no single batch (OpenPose's scales,
            BlazePose's two stages).
        """
        if self._network_input is None:
            raise NotImplementedError(f"extractor {self.name} feeds its network no single batch")
        return self._network_input(frames, device)

    def untrained(self) -> torch.nn.Module:
        """The extractor's network with random weights (seed 0), on CPU in eval mode: for
        timing where the weights file is absent. Detection heatmaps are biased so that no
        untrained peak passes the threshold (decoding costs what it costs on footage).

        Raises:
            NotImplementedError: the extractor offers no untrained network.
        """
        if self._untrained is None:
            raise NotImplementedError(f"extractor {self.name} offers no untrained network")
        torch.manual_seed(0)
        return self._untrained().eval()

    def warmup(self, model: torch.nn.Module, device="cpu", size: tuple[int, int] = (480, 640),
               batch: int = 1, dtype=None, **options) -> None:
        """Run :meth:`infer` once on ``batch`` black frames of ``size`` = (H, W) so CUDA
        kernels, cuDNN autotuning and allocator pools are ready; synchronises CUDA."""
        self.infer(model, np.zeros((batch, size[0], size[1], 3), np.uint8), device, dtype,
                   **options)
        if _dev.is_cuda(device):
            torch.cuda.synchronize(torch.device(device))


# --------------------------------------------------------------------------- per-extractor calls

def _load_posenet(device):
    from extractors.posenet import load_posenet

    return load_posenet(device=device)


def _infer_posenet(model, frames, device, dtype, **options):
    from extractors.posenet import estimate_poses

    return estimate_poses(model, frames, device=device, dtype=dtype, **options)


def _posenet_input(frames, device):
    from extractors.posenet import preprocess_batch

    return preprocess_batch(frames, 1.0, device)[0]


def _load_openpose(device):
    from extractors.openpose import load_openpose

    return load_openpose(device=device)


def _infer_openpose(model, frames, device, dtype, scale_search=(0.5,), mode="fast", **options):
    from extractors.openpose import estimate_poses

    poses = estimate_poses(model, frames, scale_search=scale_search, device=device, mode=mode,
                           dtype=dtype, **options)
    return [(p.scores, p.keypoints) for p in poses]


def _untrained_openpose():
    from extractors.openpose import BodyPoseModel

    return BodyPoseModel()


def _load_blazepose(device):
    from extractors.blazepose import load_blazepose

    return load_blazepose(device=device)


def _infer_blazepose(model, frames, device, dtype, **options):
    from extractors.blazepose import estimate_poses

    return estimate_poses(model, frames, device=device, dtype=dtype, **options)


def _face_detector(module: str, loader: str, variant: str):
    """``(load, infer)`` of a face detector module (``detect_faces``), imported when first used."""
    def load(device):
        return getattr(importlib.import_module(f"extractors.{module}"), loader)(variant=variant, device=device)

    def infer(model, frames, device, dtype, **options):
        detect = importlib.import_module(f"extractors.{module}").detect_faces
        return detect(model, frames, device=device, dtype=dtype, **options)

    return load, infer


def _blazeface(variant: str):
    return _face_detector("blazeface", "load_blazeface", variant)


def _blazeface_input(variant: str):
    """The network batch of the BlazeFace ``variant`` (128 px front, 256 px back)."""
    def network_input(frames, device):
        from extractors import blazeface

        side = blazeface.FRONT_SIZE if variant == "front" else blazeface.BACK_SIZE
        return blazeface.preprocess(frames, side, device)[0]

    return network_input


def _dbface_input(frames, device):
    from extractors.dbface import preprocess

    return preprocess(frames, device)


def _untrained_dbface(variant: str):
    """An untrained DBFace ``variant`` whose heatmap logits sit at -4 (sigmoid 0.018), below
    the 0.3 threshold: an untrained heatmap is ~0.49 everywhere and would send every cell to
    the NMS."""
    def untrained():
        from extractors.dbface import DBFace

        model = DBFace(variant)
        with torch.no_grad():
            model.heatmap_head.bias.fill_(-4.0)
        return model

    return untrained


def _dbface(variant: str):
    return _face_detector("dbface", "load_dbface", variant)


def _entries() -> list[Entry]:
    bf_front, bf_back = _blazeface("front"), _blazeface("back")
    db_small, db_large = _dbface("small"), _dbface("large")
    return [
        Entry("posenet-mobilenet-v1-075", "pose", ("posenet", "posenet-mobilenet"),
              ("posenet-mobilenet-v1-075",), "coco17", torch.float32,
              "PoseNet MobileNetV1 0.75 multi-person 2-D keypoints (COCO-17)",
              _load_posenet, _infer_posenet,
              default_options={"scale_factor": 1.0, "min_pose_score": 0.25}, display_name="PoseNet",
              config_options={"scale_factor": "pose_scale_factor"}, _network_input=_posenet_input),
        Entry("openpose-body", "pose", ("openpose", "openpose-coco18"), ("openpose-body",),
              "openpose18", torch.bfloat16,
              "OpenPose COCO-18 body model (pytorch-openpose), fast batched decoder",
              _load_openpose, _infer_openpose,
              default_options={"scale_search": (0.5,), "mode": "fast"}, display_name="OpenPose",
              _untrained=_untrained_openpose),
        Entry("blazepose-ghum", "pose", ("blazepose", "blazepose-full", "mediapipe-pose"),
              ("blazepose-ghum", "blazepose-detector"), "blazepose33", torch.float32,
              "MediaPipe BlazePose GHUM full: multi-person 33 landmarks, image xy + visibility + "
              "metric 3-D world xyz (TFLite graphs run in torch)",
              _load_blazepose, _infer_blazepose,
              default_options={"score_threshold": 0.5, "max_persons": 4}, device_preprocessing=False),
        Entry("blazeface-front", "face", ("blazeface", "blazeface-front-camera"),
              ("blazeface-front", "blazeface-anchors"), None, torch.float16,
              "MediaPipe BlazeFace front-camera model (128 px input; close-ups, head crops)",
              *bf_front, landmarks=6, display_name="BlazeFace", suited_to="close-up crops", close_ups=True,
              _network_input=_blazeface_input("front"),
              counterpart="blazeface-back"),
        Entry("blazeface-back", "face", ("blazeface-back-camera",),
              ("blazeface-back", "blazeface-anchors"), None, torch.float16,
              "MediaPipe BlazeFace back-camera model (256 px input; whole frames)",
              *bf_back, landmarks=6, display_name="BlazeFace", suited_to="small faces in whole scenes",
              _network_input=_blazeface_input("back"),
              counterpart="blazeface-front"),
        Entry("dbface-small", "face", ("dbface", "dbface-small-h"), ("dbface-small",), None,
              torch.float16, "DBFace Small-H (dlunion/DBFace), CenterNet-style, 5 landmarks",
              *db_small, landmarks=5, display_name="DBFace", counterpart="blazeface-back",
              _network_input=_dbface_input, _untrained=_untrained_dbface("small")),
        Entry("dbface-large", "face", ("dbface-mobilenetv3",), ("dbface-large",), None,
              torch.float16, "DBFace large MobileNetV3 model (dlunion/DBFace), 5 landmarks",
              *db_large, landmarks=5, display_name="DBFace", counterpart="blazeface-back",
              _network_input=_dbface_input, _untrained=_untrained_dbface("large")),
    ]


#: Canonical name -> :class:`Entry` (the weights files are :data:`extractors.weights.REGISTRY`).
EXTRACTORS: dict[str, Entry] = {e.name: e for e in _entries()}
_LOOKUP: dict[str, str] = {}
for _e in EXTRACTORS.values():
    for _key in (_e.name,) + _e.aliases:
        if _key.lower() in _LOOKUP:
            raise RuntimeError(f"extractor name {_key!r} is registered twice")
        _LOOKUP[_key.lower()] = _e.name


def names(role: Optional[str] = None) -> tuple[str, ...]:
    """Canonical extractor names, all or of one role (``"pose"`` / ``"face"``).

    Raises:
        ValueError: an unknown role.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return tuple(n for n, e in EXTRACTORS.items() if role is None or e.role == role)


def entries(role: Optional[str] = None) -> tuple[Entry, ...]:
    """The entries, all or of one role."""
    return tuple(EXTRACTORS[n] for n in names(role))


def resolve(name_or_alias: str, role: Optional[str] = None) -> Entry:
    """The entry of a canonical name or alias (case-insensitive).

    Args:
        name_or_alias: e.g. ``"posenet"``, ``"blazeface"`` (= blazeface-front), ``"dbface"``
            (= dbface-small), ``"openpose-body"``.
        role: when given, the entry must have this role.
    Raises:
        UnknownExtractorError: unknown name (message: "did you mean ..." from the names and
            aliases of that role, and the valid names), or an extractor of the other role.
        ValueError: an unknown role.
    """
    valid = names(role)
    key = str(name_or_alias).strip().lower()
    if key in _LOOKUP:
        entry = EXTRACTORS[_LOOKUP[key]]
        if role is None or entry.role == role:
            return entry
        raise UnknownExtractorError(
            f"{name_or_alias!r} is a {entry.role} extractor, not a {role} extractor; "
            f"{role} extractors: {', '.join(valid)}")
    pool = [k for k, n in _LOOKUP.items() if n in valid]
    close = difflib.get_close_matches(key, pool, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    kind = f"{role} " if role else ""
    raise UnknownExtractorError(f"unknown {kind}extractor {name_or_alias!r}{hint} "
                                f"(known: {', '.join(valid)}; aliases: "
                                f"{', '.join(sorted(k for k in pool if k not in valid))})")


def to_coco17(keypoints: np.ndarray, layout: Optional[str]) -> np.ndarray:
    """Pose keypoints of an extractor's layout as COCO-17 (the layout the assembly uses).

    ``coco17`` passes through (same array); another layout goes through its registered mapping
    :data:`schemas.keypoints.MAPPINGS` ``[(layout, "coco17")]`` (``openpose18``: the 17 joints
    COCO names, by name, the neck dropped).

    Args:
        keypoints: float [P, V, C] in ``layout`` order (C = 3: x, y, score; any C works).
        layout: an entry's :attr:`Entry.keypoint_layout` (``coco17``, ``openpose18``, or any
            layout with a mapping to ``coco17``).
    Returns:
        float32 [P, 17, C] (the input itself for ``coco17`` float32 input).
    Raises:
        ValueError: a layout without a mapping to COCO-17, or V not that layout's joint count.
    """
    from schemas.keypoints import LAYOUTS, MAPPINGS, map_keypoints

    if layout != "coco17" and (layout, "coco17") not in MAPPINGS:
        known = ", ".join(["coco17"] + [src for src, dst in MAPPINGS if dst == "coco17"])
        raise ValueError(f"to_coco17: no conversion from layout {layout!r} ({known})")
    arr = np.asarray(keypoints, dtype=np.float32)
    joints = LAYOUTS[layout].joints
    if arr.ndim != 3 or arr.shape[1] != len(joints):
        raise ValueError(f"to_coco17: expected [P, {len(joints)}, C] {layout} keypoints, got "
                         f"shape {arr.shape}")
    if layout == "coco17":
        return arr
    if layout == "blazepose33":  # x, y, visibility: the (x, y, score) of the 2-D layouts
        arr = arr[..., :3]
    return map_keypoints(arr, layout, "coco17", has_score=arr.shape[-1] >= 2)


def prepare_device(device="cpu", torch_threads: int = 0, cudnn_benchmark: bool = True,
                   allow_tf32: bool = False) -> torch.device:
    """Process-wide torch settings for the extractors, set explicitly by the caller once.

    Args:
        device: the device the models will run on.
        torch_threads: ``torch.set_num_threads`` when > 0 (CPU intra-op threads); 0 leaves
            torch's default.
        cudnn_benchmark: CUDA: let cuDNN pick the fastest kernels per input shape (shapes
            repeat: one per frame size and batch size).
        allow_tf32: CUDA: TF32 convolutions and matmuls. Off by default: PoseNet's keypoints
            move by up to a heatmap cell with TF32 (see the module docstring); autocast
            float16 / bfloat16 models are unaffected.
    Returns:
        ``torch.device(device)``.
    Raises:
        RuntimeError: a CUDA device asked for but torch sees none.
    """
    dev = torch.device(device)
    if torch_threads > 0:
        torch.set_num_threads(int(torch_threads))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device} asked for, but torch sees no CUDA device")
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        torch.backends.cudnn.allow_tf32 = bool(allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(allow_tf32)
    return dev


def describe(entry: Any = None) -> str:
    """Human-readable table of the registry (or of one entry)."""
    rows = [entry] if isinstance(entry, Entry) else list(EXTRACTORS.values())
    return "\n".join(f"{e.name:26s} {e.role:4s} layout={e.keypoint_layout or '-':10s} "
                     f"dtype={str(e.preferred_dtype).replace('torch.', ''):8s} "
                     f"aliases={','.join(e.aliases)} weights={','.join(e.weight_files)}"
                     for e in rows)
