"""OpenPose body network (COCO-18) and its post-processing, in PyTorch.

Method: Z. Cao, T. Simon, S.-E. Wei, Y. Sheikh, "Realtime Multi-Person 2D Pose Estimation using
Part Affinity Fields", CVPR 2017 (CMU OpenPose COCO body model, 18 parts + background, 19 limbs
as 38 PAF channels). Network layout, state-dict names, preprocessing and the post-processing
follow Hzzone/pytorch-openpose @5ee71dc (``src/model.py bodypose_model``, ``src/body.py
Body.__call__``, ``src/util.py padRightDownCorner`` / ``transfer``); facts from seed_specs §7 and
the shared reference README §3. Independent implementation.

Pipeline (per frame, per entry of ``scale_search``):

1. ``scale = scale_search[i] * 368 / H``; ``cv2.resize(fx=fy=scale, INTER_CUBIC)``; pad
   right/bottom to a multiple of 8 with the value 128 (:func:`scale_geometries`, :func:`preprocess`).
2. Network (:class:`BodyPoseModel`): ``PAF [N, 38, h, w]``, ``heatmap [N, 19, h, w]``, h = H_pad/8.
3. Maps back to image pixels: x8 cubic upsampling, crop of the padding, cubic resize to the image
   size, combined over scales (``average``: ``"body.py"`` reproduces the reference's heatmap
   accumulation ``avg += avg + h/S``, i.e. weight 2^(S-1-s)/S for scale s, PAF weight 1/S;
   ``"mean"`` weights every scale 1/S; the two agree for one scale).
4. Peaks of each of the 18 part heatmaps after a Gaussian filter (sigma 3): >= the 4 neighbours
   and > ``thre1``; the score is read from the unsmoothed map.
5. PAF association along :data:`LIMB_SEQ` (10 samples, ``thre2``, distance prior
   ``min(0.5 H / length - 1, 0)``), greedy one-to-one matching, assembly into people
   (``subset``), deletion of people with < 4 parts or a mean score < 0.4.

Two decoders implement steps 3-5:

- :func:`decode_reference` reproduces ``body.py`` operation by operation on one frame (cv2
  INTER_CUBIC resizes, ``scipy.ndimage.gaussian_filter``, float64 accumulation, the same sample
  rounding and greedy order); parity with the shared reference vectors is exact for ids and
  positions.
- :func:`decode_fast` runs on the maps' device for a whole batch. The two cubic resizes of
  step 3 are linear maps along each axis; they are built once per geometry (from cv2's own
  weights) as matrices ``A_y [H, h]``, ``A_x [W, w]``, so the image-size map is
  ``A_y @ map @ A_x^T``. The separable Gaussian (25 taps, scipy's ``reflect`` border) is a 1-D
  convolution applied to those matrices, so smoothed heatmaps cost two matrix products and the
  full-resolution PAF is never formed: the PAF is evaluated only at the sample points. Peaks
  come from a cross-shaped max-pool NMS; PAF scoring is vectorized over all candidate pairs of
  all limbs and frames. Positions agree with the reference within 1 px (float32 arithmetic).

Channel order: frames are given as uint8 **RGB** (affectzoo's decode convention). The caffe
model was trained on BGR input scaled as ``x / 256 - 0.5`` (body.py reads frames with
``cv2.imread``); :func:`preprocess` reverses the channel axis, so the network sees exactly what
body.py feeds it for the same picture.

Coordinates: image pixels of the frame given, origin at the top-left pixel, x right, y down;
peaks lie on integer pixels. Missing parts: ``keypoints`` rows are NaN (x, y and score), the
affectzoo keypoint convention (:mod:`schemas.keypoints`); in ``subset`` a missing part is -1 as
in body.py.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from extractors import _device as _dev
from extractors import weights as _weights

__all__ = [
    "NUM_PARTS",
    "LIMB_SEQ",
    "PAF_CHANNELS",
    "BOXSIZE",
    "STRIDE",
    "PAD_VALUE",
    "DEFAULT_SCALE_SEARCH",
    "BodyPoseModel",
    "to_module_state_dict",
    "load_openpose",
    "ScaleGeometry",
    "scale_geometries",
    "preprocess",
    "network_maps",
    "BodyPoses",
    "decode_reference",
    "decode_fast",
    "assemble_people",
    "subset_to_keypoints",
    "estimate_poses",
    "preprocess_batch",
    "warmup",
]

NUM_PARTS = 18
BOXSIZE = 368
STRIDE = 8
PAD_VALUE = 128
THRE1 = 0.1
THRE2 = 0.05
GAUSSIAN_SIGMA = 3.0
GAUSSIAN_TRUNCATE = 4.0
MID_NUM = 10
MIN_PARTS = 4
MIN_MEAN_SCORE = 0.4
#: body.py's default ``scale_search`` (network input 184 px high); ``(1.0,)`` gives 368 px.
DEFAULT_SCALE_SEARCH = (0.5,)

# body.py's tables, 1-based parts and PAF channel numbers offset by 19 (seed_specs §7).
_LIMB_SEQ_1 = ((2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12),
               (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17), (6, 18))
_MAP_IDX = ((31, 32), (39, 40), (33, 34), (35, 36), (41, 42), (43, 44), (19, 20), (21, 22),
            (23, 24), (25, 26), (27, 28), (29, 30), (47, 48), (49, 50), (53, 54), (51, 52),
            (55, 56), (37, 38), (45, 46))
#: The 19 limbs (part A, part B), 0-based in :data:`schemas.keypoints.OPENPOSE18` order.
LIMB_SEQ = tuple((a - 1, b - 1) for a, b in _LIMB_SEQ_1)
#: PAF channels (x, y) of each limb of :data:`LIMB_SEQ` in the network's 38-channel output.
PAF_CHANNELS = tuple((cx - 19, cy - 19) for cx, cy in _MAP_IDX)
# Limbs 17 and 18 (shoulder -> ear) never start a new person (body.py ``k < 17``).
_NEW_PERSON_LIMBS = 17


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

_VGG = (("conv1_1", 3, 64, 3), ("conv1_2", 64, 64, 3), ("pool1_stage1",),
        ("conv2_1", 64, 128, 3), ("conv2_2", 128, 128, 3), ("pool2_stage1",),
        ("conv3_1", 128, 256, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3),
        ("conv3_4", 256, 256, 3), ("pool3_stage1",),
        ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3), ("conv4_3_CPM", 512, 256, 3),
        ("conv4_4_CPM", 256, 128, 3))
_FEATURES = 128
_BRANCH_OUT = {1: 38, 2: 19}  # L1 = PAF, L2 = heatmap


def _stage1_spec(branch: int):
    b, out = branch, _BRANCH_OUT[branch]
    return tuple((f"conv5_{i}_CPM_L{b}", _FEATURES, _FEATURES, 3) for i in (1, 2, 3)) + (
        (f"conv5_4_CPM_L{b}", _FEATURES, 512, 1), (f"conv5_5_CPM_L{b}", 512, out, 1))


def _refine_spec(stage: int, branch: int):
    b, t, out = branch, stage, _BRANCH_OUT[branch]
    cin = _BRANCH_OUT[1] + _BRANCH_OUT[2] + _FEATURES  # 185
    return ((f"Mconv1_stage{t}_L{b}", cin, 128, 7),) + tuple(
        (f"Mconv{i}_stage{t}_L{b}", 128, 128, 7) for i in (2, 3, 4, 5)) + (
        (f"Mconv6_stage{t}_L{b}", 128, 128, 1), (f"Mconv7_stage{t}_L{b}", 128, out, 1))


def _block(spec, relu_last: bool) -> nn.Sequential:
    """Convs (stride 1, 'same' padding) each followed by ReLU ``relu_<name>``, max-pools 2x2/2.

    Module names are the caffe layer names, so state-dict keys are ``<block>.<layer>.weight``.
    """
    layers = []
    for pos, entry in enumerate(spec):
        name = entry[0]
        if name.startswith("pool"):
            layers.append((name, nn.MaxPool2d(kernel_size=2, stride=2, padding=0)))
            continue
        _, cin, cout, k = entry
        layers.append((name, nn.Conv2d(cin, cout, k, stride=1, padding=k // 2)))
        if pos < len(spec) - 1 or relu_last:
            layers.append((f"relu_{name}", nn.ReLU(inplace=True)))
    return nn.Sequential(OrderedDict(layers))


class BodyPoseModel(nn.Module):
    """OpenPose COCO body network: VGG-19 front (stride 8, 128 features) + 6 two-branch stages.

    Same modules, state-dict keys (``model0.conv1_1.weight`` ... ``model6_2.Mconv7_stage6_L2.bias``,
    184 tensors) and parameter count (52,311,446) as pytorch-openpose ``bodypose_model``
    (seed_specs §7). Stage 1: 3 x conv3x3(128) -> conv1x1(512) -> conv1x1(38 | 19); stages 2-6
    take ``cat[PAF(38), heatmap(19), features(128)]`` (185 ch): 5 x conv7x7(128) ->
    conv1x1(128) -> conv1x1(38 | 19). ReLU after every conv except each branch's last one,
    with the reference's QUIRK kept: the last heatmap conv ``Mconv7_stage6_L2`` *is* followed
    by a ReLU (its no-ReLU list names ``Mconv7_stage6_L1`` twice).

    ``forward(x)``: x float32 [N, 3, H, W], **BGR**, ``pixel / 256 - 0.5``, H and W multiples
    of 8 (see :func:`preprocess`). Returns ``(paf [N, 38, H/8, W/8], heatmap [N, 19, H/8, W/8])``
    (heatmap channel 18 = background; PAF channel order: :data:`PAF_CHANNELS`).
    """

    def __init__(self):
        super().__init__()
        self.model0 = _block(_VGG, relu_last=True)
        for branch in (1, 2):  # registration order of the reference: all L1 blocks, then L2
            setattr(self, f"model1_{branch}", _block(_stage1_spec(branch), relu_last=False))
            for stage in range(2, 7):
                quirk = stage == 6 and branch == 2
                setattr(self, f"model{stage}_{branch}",
                        _block(_refine_spec(stage, branch), relu_last=quirk))

    def forward(self, x: torch.Tensor):
        features = self.model0(x)
        paf, heat = self.model1_1(features), self.model1_2(features)
        for stage in range(2, 7):
            h = torch.cat([paf, heat, features], 1)
            paf, heat = getattr(self, f"model{stage}_1")(h), getattr(self, f"model{stage}_2")(h)
        return paf, heat


def to_module_state_dict(state: Mapping[str, torch.Tensor],
                         model: Optional[BodyPoseModel] = None) -> "OrderedDict[str, torch.Tensor]":
    """Key a body-model state dict by :class:`BodyPoseModel`'s names.

    The distributed ``body_pose_model.pth`` (converted from the caffemodel) is keyed by caffe
    layer names (``conv1_1.weight``); pytorch-openpose ``util.transfer`` prefixes each with its
    block (``model0.conv1_1.weight``) by dropping the first component of the module key. A
    state dict already keyed by module names is returned as is (a strict load then checks it).

    Args:
        state: tensors keyed either way.
        model: the target model (its keys); default: a fresh :class:`BodyPoseModel`'s keys.
    Returns:
        ``OrderedDict`` keyed like ``model.state_dict()``.
    Raises:
        KeyError: caffe-style keys that do not match the model one to one (the message lists
            unknown and missing names).
    """
    targets = list((model or BodyPoseModel()).state_dict().keys())
    if any(k in state for k in targets):
        return OrderedDict(state)
    by_layer = {k.split(".", 1)[1]: k for k in targets}
    unknown = sorted(k for k in state if k not in by_layer)
    missing = sorted(k for k in by_layer if k not in state)
    if unknown or missing:
        raise KeyError(f"OpenPose body state dict does not match bodypose_model: unknown keys "
                       f"{unknown[:8]}{'...' if len(unknown) > 8 else ''}, missing keys "
                       f"{missing[:8]}{'...' if len(missing) > 8 else ''}")
    return OrderedDict((by_layer[k], state[k]) for k in by_layer)


def load_openpose(device="cpu", path: Optional[Path | str] = None,
                  channels_last: Optional[bool] = None) -> BodyPoseModel:
    """Build :class:`BodyPoseModel`, load ``body_pose_model.pth`` strictly, ``eval()``.

    Args:
        device: torch device for the model.
        channels_last: channels-last weights (default: on CUDA only).
        path: explicit weights file; default: the registry entry ``openpose-body``
            (``$AFFECTZOO_WEIGHTS``, ``~/.cache/affectzoo``, ``weights/``; user-supplied, never
            downloaded). Both key styles are accepted (:func:`to_module_state_dict`).
    Raises:
        WeightsNotFoundError: the registry file is missing (message: official source and the
            ``python -m extractors.weights install openpose-body FILE`` command).
        FileNotFoundError: ``path`` given and missing. KeyError / RuntimeError: key or shape
            mismatch. Loading uses ``torch.load(weights_only=True)``.
    """
    if path is None:
        state = _weights.load_state_dict("openpose-body", map_location="cpu")
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"OpenPose body weights {p} do not exist")
        state = torch.load(p, map_location="cpu", weights_only=True)
    model = BodyPoseModel()
    model.load_state_dict(to_module_state_dict(state, model), strict=True)
    model = model.to(device).eval()
    if _dev.is_cuda(device) if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------------------------------
# Geometry and preprocessing
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleGeometry:
    """Network-input geometry of one scale for one image size (body.py step by step).

    Attributes:
        scale: resize factor ``scale_search[i] * boxsize / H`` (body.py ``multiplier``).
        image_hw: source image (H, W) pixels.
        input_hw: resized image (before padding), cv2's ``round(dim * scale)``.
        padded_hw: ``input_hw`` padded right/bottom to a multiple of ``stride``.
        stride: network output stride (8).
    """

    scale: float
    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    stride: int = STRIDE

    @property
    def map_hw(self) -> tuple[int, int]:
        """Network output map size (h, w) = padded / stride."""
        return self.padded_hw[0] // self.stride, self.padded_hw[1] // self.stride

    @property
    def pad_udlr(self) -> tuple[int, int, int, int]:
        """Padding (up, left, down, right) as ``util.padRightDownCorner`` returns it."""
        return (0, 0, self.padded_hw[0] - self.input_hw[0], self.padded_hw[1] - self.input_hw[1])


def scale_geometries(image_hw: Sequence[int], scale_search: Sequence[float] = DEFAULT_SCALE_SEARCH,
                     boxsize: int = BOXSIZE, stride: int = STRIDE) -> list[ScaleGeometry]:
    """Geometry of every scale for an image of ``image_hw`` = (H, W) pixels.

    Raises:
        ValueError: non-positive image size, empty ``scale_search`` or a scale that resizes the
            image to nothing.
    """
    h, w = (int(v) for v in image_hw)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_hw must be positive, got {tuple(image_hw)}")
    if len(scale_search) == 0:
        raise ValueError("scale_search is empty")
    out = []
    for s in scale_search:
        scale = s * boxsize / h
        ih, iw = int(np.rint(h * scale)), int(np.rint(w * scale))  # cv2 saturate_cast (cvRound)
        if ih < 1 or iw < 1:
            raise ValueError(f"scale_search entry {s} resizes a {h}x{w} image to {ih}x{iw}")
        out.append(ScaleGeometry(scale, (h, w), (ih, iw), (ih + (-ih) % stride, iw + (-iw) % stride),
                                 stride))
    return out


def _check_frame(frame: np.ndarray, name: str = "frame") -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{name}: expected a uint8 RGB array [H, W, 3], got {got}")


def preprocess(frame: np.ndarray, geometry: ScaleGeometry) -> np.ndarray:
    """Network input of one RGB frame at one scale, exactly as body.py builds it.

    ``cv2.resize(fx=fy=geometry.scale, INTER_CUBIC)`` on the uint8 frame, right/bottom padding
    with 128, channel order reversed to BGR, ``x / 256 - 0.5`` in float32.

    Args:
        frame: uint8 RGB [H, W, 3] with (H, W) == ``geometry.image_hw``.
        geometry: from :func:`scale_geometries`.
    Returns:
        float32 [3, H_pad, W_pad] (BGR).
    Raises:
        ValueError: bad frame dtype/shape or a size other than the geometry's.
    """
    _check_frame(frame)
    if frame.shape[:2] != tuple(geometry.image_hw):
        raise ValueError(f"frame is {frame.shape[:2]}, geometry expects {geometry.image_hw}")
    resized = cv2.resize(frame, (0, 0), fx=geometry.scale, fy=geometry.scale,
                         interpolation=cv2.INTER_CUBIC)
    ih, iw = geometry.input_hw
    if resized.shape[:2] != (ih, iw):  # cv2 rounding differs from ours: should never happen
        raise RuntimeError(f"cv2 resized to {resized.shape[:2]}, expected {(ih, iw)}")
    padded = np.full(geometry.padded_hw + (3,), PAD_VALUE, dtype=np.uint8)
    padded[:ih, :iw] = resized
    bgr = np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1))
    return bgr.astype(np.float32) / 256 - 0.5


@lru_cache(maxsize=32)
def _cubic_fx_matrix(src: int, scale: float) -> np.ndarray:
    """float64 [round(src * scale), src]: cv2 ``resize(fx=fy=scale, INTER_CUBIC)`` along one
    axis (cv2's own weights, read off an identity; the other axis keeps its size)."""
    eye = np.eye(src, dtype=np.float64)
    return cv2.resize(eye, (0, 0), fx=1, fy=scale, interpolation=cv2.INTER_CUBIC)


def preprocess_batch(frames: torch.Tensor, geometry: ScaleGeometry) -> torch.Tensor:
    """Device-side :func:`preprocess` of equal-size frames (the CUDA path).

    The bicubic resize is ``round(A_y @ img @ A_x^T)`` with cv2's own cubic weights in float64
    on the frames' device; cv2 computes the same weights in 11-bit fixed point, so about 0.1 %
    of the resized values differ from cv2's by one grey level (1/256 in the network input;
    ``tests/test_openpose.py``). Padding (128), the BGR flip and ``x / 256 - 0.5`` are exact.

    Args:
        frames: uint8 [N, H, W, 3] RGB tensor on the target device, (H, W) ==
            ``geometry.image_hw``.
    Returns:
        float32 [N, 3, H_pad, W_pad] (BGR) on the frames' device.
    Raises:
        ValueError: wrong dtype or size.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected a uint8 [N, H, W, 3] tensor, got {frames.dtype} {tuple(frames.shape)}")
    if tuple(frames.shape[1:3]) != tuple(geometry.image_hw):
        raise ValueError(f"frames are {tuple(frames.shape[1:3])}, geometry expects {geometry.image_hw}")
    (h, w), (ih, iw) = geometry.image_hw, geometry.input_hw
    dev = frames.device
    ay = torch.from_numpy(_cubic_fx_matrix(h, geometry.scale)).to(dev)
    ax = torch.from_numpy(_cubic_fx_matrix(w, geometry.scale)).to(dev)
    if ay.shape[0] != ih or ax.shape[0] != iw:  # cv2 rounding differs from ours: never expected
        raise RuntimeError(f"cv2 resize matrices give {(ay.shape[0], ax.shape[0])}, expected {(ih, iw)}")
    bgr = frames.flip(-1).permute(0, 3, 1, 2).double()
    resized = _dev.round_to_uint8_values(_dev.separable_resize(bgr, ay, ax)).float()
    out = torch.full((frames.shape[0], 3) + tuple(geometry.padded_hw), float(PAD_VALUE),
                     dtype=torch.float32, device=dev)
    out[:, :, :ih, :iw] = resized
    return out / 256 - 0.5


@torch.no_grad()
def network_maps(model: BodyPoseModel, frames, scale_search: Sequence[float] = DEFAULT_SCALE_SEARCH,
                 device="cpu", dtype=None, device_preprocess: Optional[bool] = None
                 ) -> tuple[list[ScaleGeometry], list[tuple[torch.Tensor, torch.Tensor]]]:
    """One batched forward per scale for frames of one size.

    Args:
        model: :class:`BodyPoseModel` on ``device`` (eval mode).
        frames: uint8 RGB [H, W, 3] frames, all the same size (a list or one [N, H, W, 3]
            array).
        scale_search: scales relative to the 368 px box (body.py ``scale_search``).
        device: torch device of the model.
        dtype: autocast dtype on CUDA (``torch.bfloat16`` / ``float16`` or names); None /
            float32: none. Ignored off CUDA.
        device_preprocess: resize on the device (:func:`preprocess_batch`; default: on CUDA
            only); else cv2 on the host (:func:`preprocess`, exactly body.py's input).
    Returns:
        ``(geometries, maps)``: per scale, ``(paf float32 [N, 38, h, w], heatmap float32
        [N, 19, h, w])`` on ``device``.
    Raises:
        ValueError: no frames, a bad frame, or frames of different sizes.
    """
    frames = _dev.frame_list(frames)
    if len(frames) == 0:
        raise ValueError("no frames")
    for i, f in enumerate(frames):
        _check_frame(f, f"frames[{i}]")
    sizes = {f.shape[:2] for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"frames of one batch must share a size, got {sorted(sizes)}")
    geoms = scale_geometries(frames[0].shape[:2], scale_search)
    on_device = _dev.is_cuda(device) if device_preprocess is None else bool(device_preprocess)
    amp = _dev.resolve_dtype(dtype, device)
    channels_last = _dev.is_channels_last(model)
    uploaded = _dev.upload(_dev.stack(frames, range(len(frames))), device) if on_device else None
    maps = []
    for g in geoms:
        if on_device:
            batch = preprocess_batch(uploaded, g)
        else:
            batch = torch.from_numpy(np.stack([preprocess(f, g) for f in frames])).to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with _dev.autocast(device, amp):
            paf, heat = model(batch)
        maps.append((paf.float(), heat.float()))
    return geoms, maps


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

@dataclass
class BodyPoses:
    """People found in one frame.

    Attributes:
        keypoints: float32 [M, 18, 3] (x, y, score) in image pixels, parts in OPENPOSE18 order;
            all three values NaN for a missing part.
        scores: float32 [M]: the person's total score over its part count (body.py
            ``subset[:, -2] / subset[:, -1]``, the quantity it thresholds at 0.4).
        candidate: float64 [K, 4] body.py ``candidate``: every peak (x, y, score, id), ids
            0..K-1 part by part.
        subset: float64 [M, 20] body.py ``subset``: 18 candidate ids (-1 = none), total score
            (part scores + limb scores), part count.
        connection_all: 19 float64 arrays [C_k, 5] (candidate id A, id B, limb score, i, j);
            ``(0, 5)`` for limbs in ``special_k``.
        special_k: limbs with no candidate for one of their two parts.
        peaks_per_part: int64 [18].
    """

    keypoints: np.ndarray
    scores: np.ndarray
    candidate: np.ndarray
    subset: np.ndarray
    connection_all: list = field(default_factory=list)
    special_k: list = field(default_factory=list)
    peaks_per_part: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARTS, np.int64))


def subset_to_keypoints(candidate: np.ndarray, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """body.py ``(candidate, subset)`` -> ``(keypoints float32 [M, 18, 3], scores float32 [M])``.

    Keypoints are (x, y, peak score) in image pixels, NaN rows for missing parts; scores are
    ``subset[:, 18] / subset[:, 19]``.
    """
    subset = np.asarray(subset, dtype=np.float64).reshape(-1, NUM_PARTS + 2)
    kp = np.full((len(subset), NUM_PARTS, 3), np.nan, dtype=np.float64)
    ids = subset[:, :NUM_PARTS].astype(np.int64)
    have = ids >= 0
    if have.any():
        kp[have] = np.asarray(candidate, dtype=np.float64)[ids[have], :3]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = subset[:, NUM_PARTS] / subset[:, NUM_PARTS + 1]
    return kp.astype(np.float32), scores.astype(np.float32)


def _scale_weights(n_scales: int, average: str) -> tuple[list[float], list[float]]:
    """Weights of each scale's (heatmap, PAF) in the combined maps."""
    if average == "body.py":  # heatmap_avg += heatmap_avg + heatmap / S; paf_avg += paf / S
        return [2.0 ** (n_scales - 1 - s) / n_scales for s in range(n_scales)], \
            [1.0 / n_scales] * n_scales
    if average == "mean":
        return [1.0 / n_scales] * n_scales, [1.0 / n_scales] * n_scales
    raise ValueError(f"average must be 'body.py' or 'mean', not {average!r}")


# ---------------------------------------------------------------------------------------------
# Association (shared by both decoders)
# ---------------------------------------------------------------------------------------------

def _limb_samples(a: np.ndarray, b: np.ndarray, mid_num: int = MID_NUM):
    """Sample points from A to B as ``np.linspace(A, B, mid_num)`` computes them per pair.

    Args:
        a, b: [..., 2] (x, y) pixels, broadcast against each other (e.g. [nA, 1, 2] and
            [1, nB, 2] for all pairs).
    Returns:
        ``(unit [..., 2] float64, norm [...], xi, yi int64 [..., mid_num])``; coordinates rounded
        half to even, like Python's ``round`` on numpy floats.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    vec = b - a
    norm = np.sqrt(vec[..., 0] * vec[..., 0] + vec[..., 1] * vec[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = vec / norm[..., None]
    t = np.arange(mid_num, dtype=np.float64)
    pts = t * (vec / (mid_num - 1))[..., None] + a[..., None]   # [..., 2, mid_num]
    pts[..., -1] = np.broadcast_to(b, vec.shape)
    return unit, norm, np.rint(pts[..., 0, :]).astype(np.int64), np.rint(pts[..., 1, :]).astype(np.int64)


def _limb_scores(vx: np.ndarray, vy: np.ndarray, unit: np.ndarray, norm: np.ndarray,
                 image_h: int, thre2: float):
    """body.py limb criteria. vx, vy: [..., mid_num] PAF samples. Returns (score, accepted)."""
    proj = vx * unit[..., 0:1] + vy * unit[..., 1:2]
    total = proj[..., 0].copy()
    for t in range(1, proj.shape[-1]):  # sequential sum, as Python's sum()
        total = total + proj[..., t]
    with np.errstate(divide="ignore", invalid="ignore"):
        prior = np.minimum(0.5 * image_h / norm - 1, 0)
        score = total / proj.shape[-1] + prior
    crit1 = np.count_nonzero(proj > thre2, axis=-1) > 0.8 * proj.shape[-1]
    return score, crit1 & (score > 0)


def _greedy_connections(score: np.ndarray, ok: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray
                        ) -> np.ndarray:
    """Greedy one-to-one matching of accepted pairs by descending score (stable, row-major ties),
    stopping at ``min(nA, nB)`` connections. Returns float64 [C, 5] (idA, idB, score, i, j)."""
    ii, jj = np.nonzero(ok)
    s = score[ii, jj]
    order = np.argsort(-s, kind="stable")
    limit = min(len(ids_a), len(ids_b))
    used_a, used_b, rows = set(), set(), []
    for o in order:
        i, j = int(ii[o]), int(jj[o])
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        rows.append((ids_a[i], ids_b[j], s[o], i, j))
        if len(rows) >= limit:
            break
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def assemble_people(connection_all: Sequence[np.ndarray], special_k: Sequence[int],
                    candidate: np.ndarray, min_parts: int = MIN_PARTS,
                    min_mean_score: float = MIN_MEAN_SCORE) -> np.ndarray:
    """Group limb connections into people (body.py subset assembly).

    Limbs are visited in :data:`LIMB_SEQ` order; a connection whose part A or part B is already
    in one person extends it (part B set, score += peak score + limb score), one touching two
    disjoint people merges them, one touching none starts a person unless the limb is a
    shoulder->ear limb (17, 18). People with < ``min_parts`` parts or total/parts <
    ``min_mean_score`` are dropped.

    Args:
        connection_all: per limb float [C_k, 5] (idA, idB, score, i, j).
        special_k: limbs to skip.
        candidate: [K, >=3] peaks (x, y, score, ...), indexed by id.
    Returns:
        float64 [M, 20] ``subset`` (18 ids or -1, total score, part count).
    """
    candidate = np.asarray(candidate, dtype=np.float64)
    subset = -1 * np.ones((0, NUM_PARTS + 2))
    skip = set(int(k) for k in special_k)
    for k, (ia, ib) in enumerate(LIMB_SEQ):
        if k in skip:
            continue
        for row in np.asarray(connection_all[k]).reshape(-1, 5):
            pa, pb, s = row[0], row[1], row[2]
            hits = np.nonzero((subset[:, ia] == pa) | (subset[:, ib] == pb))[0]
            if len(hits) == 1:
                j = hits[0]
                if subset[j, ib] != pb:
                    subset[j, ib] = pb
                    subset[j, -1] += 1
                    subset[j, -2] += candidate[int(pb), 2] + s
            elif len(hits) >= 2:  # body.py keeps the first two rows found
                j1, j2 = hits[0], hits[1]
                both = ((subset[j1] >= 0).astype(int) + (subset[j2] >= 0).astype(int))[:-2]
                if not np.any(both == 2):
                    subset[j1, :-2] += subset[j2, :-2] + 1
                    subset[j1, -2:] += subset[j2, -2:]
                    subset[j1, -2] += s
                    subset = np.delete(subset, j2, 0)
                else:
                    subset[j1, ib] = pb
                    subset[j1, -1] += 1
                    subset[j1, -2] += candidate[int(pb), 2] + s
            elif k < _NEW_PERSON_LIMBS:
                new = -1 * np.ones(NUM_PARTS + 2)
                new[ia], new[ib] = pa, pb
                new[-1] = 2
                new[-2] = candidate[int(pa), 2] + candidate[int(pb), 2] + s
                subset = np.vstack([subset, new])
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = ~((subset[:, -1] < min_parts) | (subset[:, -2] / subset[:, -1] < min_mean_score))
    return subset[keep]


def _finish(candidate, connection_all, special_k, peaks_per_part) -> BodyPoses:
    subset = assemble_people(connection_all, special_k, candidate)
    keypoints, scores = subset_to_keypoints(candidate, subset)
    return BodyPoses(keypoints, scores, candidate, subset, connection_all, special_k,
                     np.asarray(peaks_per_part, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Reference decoder (body.py, one frame)
# ---------------------------------------------------------------------------------------------

def _to_numpy_chw(maps, channels: int, name: str) -> np.ndarray:
    a = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != channels:
        raise ValueError(f"{name}: expected [{channels}, h, w] (or [1, {channels}, h, w]), "
                         f"got {a.shape}")
    return a.astype(np.float32, copy=False)


def _image_maps_reference(maps_chw: np.ndarray, g: ScaleGeometry) -> np.ndarray:
    """body.py step 3 for one scale: [C, h, w] -> float32 [H, W, C] (cv2 INTER_CUBIC twice)."""
    if maps_chw.shape[1:] != g.map_hw:
        raise ValueError(f"maps are {maps_chw.shape[1:]}, geometry expects {g.map_hw}")
    m = np.ascontiguousarray(maps_chw.transpose(1, 2, 0))
    m = cv2.resize(m, (0, 0), fx=g.stride, fy=g.stride, interpolation=cv2.INTER_CUBIC)
    m = m[:g.input_hw[0], :g.input_hw[1], :]
    return cv2.resize(m, (g.image_hw[1], g.image_hw[0]), interpolation=cv2.INTER_CUBIC)


def _peaks_reference(heat_avg: np.ndarray, thre1: float) -> list[np.ndarray]:
    """Per part float64 [n, 4] (x, y, score, id) from float64 [H, W, >=18] maps (body.py)."""
    from scipy.ndimage import gaussian_filter

    peaks, counter = [], 0
    for part in range(NUM_PARTS):
        raw = heat_avg[:, :, part]
        sm = gaussian_filter(raw, sigma=GAUSSIAN_SIGMA)
        padded = np.pad(sm, 1)  # zeros outside, as body.py's shifted copies
        is_peak = ((sm >= padded[:-2, 1:-1]) & (sm >= padded[2:, 1:-1]) & (sm >= padded[1:-1, :-2])
                   & (sm >= padded[1:-1, 2:]) & (sm > thre1))
        ys, xs = np.nonzero(is_peak)
        ids = np.arange(counter, counter + len(xs))
        peaks.append(np.stack([xs, ys, raw[ys, xs], ids], 1).astype(np.float64).reshape(-1, 4))
        counter += len(xs)
    return peaks


def decode_reference(paf, heatmap, geometries: Sequence[ScaleGeometry],
                     average: str = "body.py", thre1: float = THRE1,
                     thre2: float = THRE2) -> BodyPoses:
    """body.py post-processing of one frame's network maps, reproduced operation by operation.

    Args:
        paf: per scale [38, h, w] (or [1, 38, h, w]) float32, numpy or torch; a single array is
            taken as one scale.
        heatmap: per scale [19, h, w] likewise.
        geometries: per scale, from :func:`scale_geometries` (``image_hw`` is the frame's size).
        average: scale combination, ``"body.py"`` (its heatmap accumulation quirk) or ``"mean"``.
        thre1: peak threshold on the smoothed heatmap; thre2: PAF sample threshold.
    Returns:
        :class:`BodyPoses` with body.py's ``candidate``, ``subset``, ``connection_all``,
        ``special_k`` and ``peaks_per_part``.
    Raises:
        ValueError: map shapes disagree with the geometries or with each other.
    """
    pafs = [paf] if not isinstance(paf, (list, tuple)) else list(paf)
    heats = [heatmap] if not isinstance(heatmap, (list, tuple)) else list(heatmap)
    if not (len(pafs) == len(heats) == len(geometries)):
        raise ValueError(f"{len(pafs)} PAF maps, {len(heats)} heatmaps, {len(geometries)} geometries")
    image_h, image_w = geometries[0].image_hw
    heat_avg = np.zeros((image_h, image_w, NUM_PARTS + 1))
    paf_avg = np.zeros((image_h, image_w, 2 * len(LIMB_SEQ)))
    n = len(geometries)
    if average not in ("body.py", "mean"):
        raise ValueError(f"average must be 'body.py' or 'mean', not {average!r}")
    for p, h, g in zip(pafs, heats, geometries):
        hm = _image_maps_reference(_to_numpy_chw(h, NUM_PARTS + 1, "heatmap"), g)
        pm = _image_maps_reference(_to_numpy_chw(p, 2 * len(LIMB_SEQ), "paf"), g)
        if average == "body.py":
            heat_avg += heat_avg + hm / n
        else:
            heat_avg += hm / n
        paf_avg += pm / n
    all_peaks = _peaks_reference(heat_avg, thre1)
    candidate = np.concatenate(all_peaks, 0)
    connection_all, special_k = [], []
    for k, ((ia, ib), (cx, cy)) in enumerate(zip(LIMB_SEQ, PAF_CHANNELS)):
        cand_a, cand_b = all_peaks[ia], all_peaks[ib]
        if len(cand_a) == 0 or len(cand_b) == 0:
            special_k.append(k)
            connection_all.append(np.zeros((0, 5)))
            continue
        unit, norm, xi, yi = _limb_samples(cand_a[:, None, :2], cand_b[None, :, :2])
        score, ok = _limb_scores(paf_avg[yi, xi, cx], paf_avg[yi, xi, cy], unit, norm, image_h,
                                 thre2)
        connection_all.append(_greedy_connections(score, ok, cand_a[:, 3], cand_b[:, 3]))
    return _finish(candidate, connection_all, special_k, [len(p) for p in all_peaks])


# ---------------------------------------------------------------------------------------------
# Fast decoder (batched, on the maps' device)
# ---------------------------------------------------------------------------------------------

def _cv2_cubic_matrix(src: int, dst: int, factor: Optional[int] = None) -> np.ndarray:
    """cv2 INTER_CUBIC resize along one axis as a float64 matrix [dst, src] (cv2's own weights,
    read off by resizing an identity; the other axis is left at its size, where cv2's cubic
    weights are exactly (0, 1, 0, 0)).

    The identity is float64 on purpose: cv2 resizes float64 images and float32 images of more
    than 4 channels (body.py's 19 / 38-channel maps) with the same weights, while 1-channel
    float32 images take another code path whose weights differ by up to 5e-5.
    """
    eye = np.eye(src, dtype=np.float64)
    if factor is not None:
        out = cv2.resize(eye, (0, 0), fx=1, fy=factor, interpolation=cv2.INTER_CUBIC)
    else:
        out = cv2.resize(eye, (src, dst), interpolation=cv2.INTER_CUBIC)
    if out.shape != (dst, src):
        raise RuntimeError(f"cv2 resize matrix is {out.shape}, expected {(dst, src)}")
    return out.astype(np.float64)


def _map_to_image_matrix(n_map: int, n_input: int, n_image: int, stride: int) -> np.ndarray:
    """float64 [n_image, n_map]: x``stride`` cubic upsampling, crop to ``n_input``, cubic resize
    to ``n_image`` (body.py step 3 along one axis)."""
    up = _cv2_cubic_matrix(n_map, n_map * stride, factor=stride)[:n_input]
    return _cv2_cubic_matrix(n_input, n_image) @ up


def _gaussian_kernel(sigma: float, truncate: float) -> np.ndarray:
    """scipy ``gaussian_filter1d`` kernel: radius ``int(truncate * sigma + 0.5)``, normalised."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / (sigma * sigma) * x * x)
    return k / k.sum()


def _gaussian_rows(op: torch.Tensor, sigma: float, truncate: float) -> torch.Tensor:
    """Gaussian filter along axis 0 of ``op`` [L, K] as a 1-D convolution with scipy's
    ``reflect`` border (d c b a | a b c d | d c b a), i.e. ``G @ op``."""
    kernel = torch.from_numpy(_gaussian_kernel(sigma, truncate)).to(op)
    r = (kernel.numel() - 1) // 2
    n = op.shape[0]
    idx = torch.arange(-r, n + r) % (2 * n)
    idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    padded = op[idx.to(op.device)].T[:, None, :]  # [K, 1, L + 2r]
    return F.conv1d(padded, kernel.view(1, 1, -1))[:, 0, :].T


@dataclass(frozen=True)
class _Operators:
    """Per-scale linear maps from network cells to image pixels (float32, on the device)."""

    up_y: torch.Tensor      # [H, h]
    up_x: torch.Tensor      # [W, w]
    smooth_y: torch.Tensor  # [H, h] Gaussian-filtered up_y
    smooth_x: torch.Tensor  # [W, w]


@lru_cache(maxsize=32)
def _operators(g: ScaleGeometry, device: str) -> _Operators:
    (mh, mw), (ih, iw), (h, w) = g.map_hw, g.input_hw, g.image_hw
    up_y = torch.from_numpy(_map_to_image_matrix(mh, ih, h, g.stride))
    up_x = torch.from_numpy(_map_to_image_matrix(mw, iw, w, g.stride))
    sm_y = _gaussian_rows(up_y, GAUSSIAN_SIGMA, GAUSSIAN_TRUNCATE)
    sm_x = _gaussian_rows(up_x, GAUSSIAN_SIGMA, GAUSSIAN_TRUNCATE)
    return _Operators(*(t.to(device=device, dtype=torch.float32) for t in (up_y, up_x, sm_y, sm_x)))


def _cross_peaks(smoothed: torch.Tensor, thre1: float) -> torch.Tensor:
    """Non-maximum suppression over the 4-neighbourhood (body.py's peak rule, i.e. a max-pool
    with a cross-shaped 3x3 window): indices of values > ``thre1`` that are >= their up, down,
    left and right neighbours (outside the map counts as 0, as in body.py's shifted copies).

    The threshold is applied first and the four neighbours are gathered only at the surviving
    pixels, so the cost is one pass over the map plus work proportional to the pixels above
    ``thre1``.

    Args:
        smoothed: float [N, C, H, W].
    Returns:
        int64 [P, 4] (n, c, y, x) in row-major order.
    """
    idx = (smoothed > thre1).nonzero()
    n, c, y, x = idx.unbind(1)
    center = smoothed[n, c, y, x]
    h, w = smoothed.shape[-2:]
    keep = torch.ones_like(center, dtype=torch.bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        nb = smoothed[n, c, yy.clamp(0, h - 1), xx.clamp(0, w - 1)]
        keep &= ~inside | (center >= nb)
    return idx[keep]


def _find_peaks_fast(heats, ops, wh, thre1: float, max_elements: int) -> np.ndarray:
    """Peaks of all frames: int64 [P, 4] (frame, part, y, x), sorted by frame, part, y, x."""
    n = heats[0].shape[0]
    h, w = ops[0].up_y.shape[0], ops[0].up_x.shape[0]
    chunk = max(1, max_elements // (NUM_PARTS * h * w))
    found = []
    for start in range(0, n, chunk):
        sm = None
        for heat, op, weight in zip(heats, ops, wh):
            part = heat[start:start + chunk, :NUM_PARTS].float()
            term = op.smooth_y @ (part @ op.smooth_x.T) * weight
            sm = term if sm is None else sm + term
        idx = _cross_peaks(sm, thre1)
        idx[:, 0] += start
        found.append(idx.cpu())
    return torch.cat(found).numpy().astype(np.int64)


def _sample_points(maps, ops, weights, n_idx, c_idx, y_idx, x_idx, max_elements: int
                   ) -> np.ndarray:
    """Combined image-resolution map values at points, without forming the full-size maps:
    ``sum_s weight_s * A_y[y] . (map_s[n, c] @ A_x^T)[:, x]``, with ``map_s @ A_x^T``
    ([N, C, h, W]) built once per scale and gathered in chunks of ``max_elements``.

    Args:
        maps: per scale float [N, C, h, w] tensors; ops: per scale :class:`_Operators`;
        weights: per scale floats; n_idx, c_idx, y_idx, x_idx: int64 [Q] (frame, channel,
            image row, image column).
    Returns:
        float64 [Q].
    """
    if len(n_idx) == 0:
        return np.zeros(0)
    dev = maps[0].device
    n_t, c_t, y_t, x_t = (torch.from_numpy(np.ascontiguousarray(v)).to(dev)
                          for v in (n_idx, c_idx, y_idx, x_idx))
    total = torch.zeros(len(n_idx), dtype=torch.float32, device=dev)
    for m, op, weight in zip(maps, ops, weights):
        t_map = m.float() @ op.up_x.T  # [N, C, h, W]
        step = max(1, max_elements // t_map.shape[2])
        for s in range(0, len(n_idx), step):
            sl = slice(s, s + step)
            cols = t_map[n_t[sl], c_t[sl], :, x_t[sl]]  # [q, h]
            total[sl] += (cols * op.up_y[y_t[sl]]).sum(1) * weight
    return total.double().cpu().numpy()


def decode_fast(pafs: Sequence[torch.Tensor], heatmaps: Sequence[torch.Tensor],
                geometries: Sequence[ScaleGeometry], average: str = "body.py",
                thre1: float = THRE1, thre2: float = THRE2,
                max_elements: int = 1 << 26) -> list[BodyPoses]:
    """Batched post-processing on the maps' device (same steps as :func:`decode_reference`).

    Heatmaps are brought to image resolution already smoothed (``S_y @ map @ S_x^T`` with the
    Gaussian folded into the cubic-resize matrices), peaks are found with a cross-shaped
    max-pool NMS, peak scores and PAF samples are evaluated only at the points needed, limb
    scoring is vectorized over all pairs of all limbs and frames, then the greedy matching and
    the person assembly of body.py run per frame on the (small) connection lists.

    Arithmetic is float32 on the device. On the shared reference vectors the result equals
    the reference decoder's (ids, positions, people). Caveat: a region where a part map is flat
    and above ``thre1`` (seen with untrained, random weights) has rounding-level ripples, and
    float32 ripples make far more 4-neighbour "peaks" there than body.py's float64 ones.

    Args:
        pafs: per scale float [N, 38, h, w] tensors (one device); heatmaps: per scale
            [N, 19, h, w].
        geometries: per scale (:func:`scale_geometries`; one image size for the batch).
        average: ``"body.py"`` or ``"mean"`` (see module docstring); thre1, thre2: thresholds.
        max_elements: memory bound (elements) of the full-resolution smoothed heatmaps and of
            the PAF gathers; frames are processed in chunks below it.
    Returns:
        One :class:`BodyPoses` per frame (``candidate`` ids, ``subset``, ``connection_all`` in
        body.py's layout).
    Raises:
        ValueError: shapes disagree with the geometries.
    """
    pafs, heatmaps = list(pafs), list(heatmaps)
    if not (len(pafs) == len(heatmaps) == len(geometries)) or not pafs:
        raise ValueError(f"{len(pafs)} PAF maps, {len(heatmaps)} heatmaps, {len(geometries)} geometries")
    n = heatmaps[0].shape[0]
    for p, h, g in zip(pafs, heatmaps, geometries):
        if tuple(h.shape) != (n, NUM_PARTS + 1) + g.map_hw or tuple(p.shape) != (n, 2 * len(LIMB_SEQ)) + g.map_hw:
            raise ValueError(f"maps {tuple(p.shape)} / {tuple(h.shape)} do not fit batch {n} and "
                             f"map size {g.map_hw}")
    wh, wp = _scale_weights(len(geometries), average)
    device = str(heatmaps[0].device)
    ops = [_operators(g, device) for g in geometries]
    image_h = geometries[0].image_hw[0]

    peaks = _find_peaks_fast(heatmaps, ops, wh, thre1, max_elements)   # (frame, part, y, x)
    raw = _sample_points([h[:, :NUM_PARTS] for h in heatmaps], ops, wh, peaks[:, 0], peaks[:, 1],
                        peaks[:, 2], peaks[:, 3], max_elements)
    # per frame: candidate rows (x, y, score, id), ids counted within the frame
    key = peaks[:, 0] * NUM_PARTS + peaks[:, 1]
    bounds = np.searchsorted(key, np.arange(n * NUM_PARTS + 1))
    frame_start = bounds[::NUM_PARTS]
    local_id = np.arange(len(peaks)) - frame_start[peaks[:, 0]]
    cand_all = np.stack([peaks[:, 3], peaks[:, 2], raw, local_id], 1).astype(np.float64).reshape(-1, 4)

    # every (frame, limb) pair list, concatenated
    groups, ga, gb = [], [], []
    for f in range(n):
        for k, (ia, ib) in enumerate(LIMB_SEQ):
            ra = np.arange(bounds[f * NUM_PARTS + ia], bounds[f * NUM_PARTS + ia + 1])
            rb = np.arange(bounds[f * NUM_PARTS + ib], bounds[f * NUM_PARTS + ib + 1])
            if len(ra) and len(rb):
                aa, bb = np.meshgrid(ra, rb, indexing="ij")
                groups.append((f, k, len(ra), len(rb)))
                ga.append(aa.ravel())
                gb.append(bb.ravel())
    pa = np.concatenate(ga) if ga else np.zeros(0, np.int64)
    pb = np.concatenate(gb) if gb else np.zeros(0, np.int64)
    limb = np.repeat([g[1] for g in groups], [len(x) for x in ga]).astype(np.int64)
    unit, norm, xi, yi = _limb_samples(cand_all[pa, :2], cand_all[pb, :2])   # per pair [Q, ...]
    chans = np.asarray(PAF_CHANNELS, dtype=np.int64)[limb]                   # [Q, 2] (x, y)
    nq = np.repeat(peaks[pa, 0], 2 * MID_NUM)
    cq = np.repeat(chans, MID_NUM, axis=1).ravel()                           # x x10, y x10
    yq = np.repeat(yi, 2, axis=0).ravel()
    xq = np.repeat(xi, 2, axis=0).ravel()
    vals = _sample_points(pafs, ops, wp, nq, cq, yq, xq, max_elements).reshape(-1, 2, MID_NUM)
    score, ok = _limb_scores(vals[:, 0], vals[:, 1], unit, norm, image_h, thre2)

    results = []
    for f in range(n):
        per_part = np.diff(bounds[f * NUM_PARTS:(f + 1) * NUM_PARTS + 1])
        special_k = [k for k, (ia, ib) in enumerate(LIMB_SEQ)
                     if per_part[ia] == 0 or per_part[ib] == 0]
        results.append((cand_all[frame_start[f]:frame_start[f + 1]],
                        [np.zeros((0, 5)) for _ in LIMB_SEQ], special_k, per_part))
    offset = 0
    for f, k, na, nb in groups:
        sl = slice(offset, offset + na * nb)
        offset += na * nb
        ia, ib = (f * NUM_PARTS + part for part in LIMB_SEQ[k])
        results[f][1][k] = _greedy_connections(
            score[sl].reshape(na, nb), ok[sl].reshape(na, nb),
            cand_all[bounds[ia]:bounds[ia + 1], 3], cand_all[bounds[ib]:bounds[ib + 1], 3])
    return [_finish(*r) for r in results]


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def estimate_poses(model: BodyPoseModel, frames,
                   scale_search: Sequence[float] = DEFAULT_SCALE_SEARCH, device="cpu",
                   mode: str = "fast", average: str = "body.py", thre1: float = THRE1,
                   thre2: float = THRE2, dtype=None, device_preprocess: Optional[bool] = None
                   ) -> list[BodyPoses]:
    """Multi-person OpenPose-18 body keypoints for RGB frames.

    Frames of one size share one batched forward per scale; ``mode="fast"`` decodes the batch
    on ``device`` (:func:`decode_fast`), ``mode="reference"`` decodes frame by frame on the CPU
    exactly as body.py (:func:`decode_reference`).

    Args:
        model: loaded :class:`BodyPoseModel` on ``device``.
        frames: uint8 RGB [H, W, 3] arrays (sizes may differ between frames), or one uint8
            [N, H, W, 3] array.
        scale_search: scales relative to the 368 px box (body.py default ``(0.5,)``).
        device: torch device. mode: ``"fast"`` or ``"reference"``. average, thre1, thre2: see
            :func:`decode_reference`.
        dtype, device_preprocess: see :func:`network_maps`.
    Returns:
        One :class:`BodyPoses` per frame, in input order (``keypoints [M, 18, 3]`` x, y in
        source pixels, NaN for missing parts; ``scores [M]``).
    Raises:
        ValueError: a bad frame, an unknown mode.
    """
    if mode not in ("fast", "reference"):
        raise ValueError(f"mode must be 'fast' or 'reference', not {mode!r}")
    frames = _dev.frame_list(frames)
    for i, f in enumerate(frames):
        _check_frame(f, f"frames[{i}]")
    results: list = [None] * len(frames)
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(f.shape[:2], []).append(i)
    for idx in groups.values():
        geoms, maps = network_maps(model, [frames[i] for i in idx], scale_search, device, dtype,
                                   device_preprocess)
        pafs, heats = [m[0] for m in maps], [m[1] for m in maps]
        if mode == "fast":
            decoded = decode_fast(pafs, heats, geoms, average, thre1, thre2)
        else:
            decoded = [decode_reference([p[b] for p in pafs], [h[b] for h in heats], geoms,
                                        average, thre1, thre2) for b in range(len(idx))]
        for b, i in enumerate(idx):
            results[i] = decoded[b]
    return results


def warmup(model: BodyPoseModel, device="cpu", size: tuple[int, int] = (480, 640), batch: int = 1,
           scale_search: Sequence[float] = DEFAULT_SCALE_SEARCH, dtype=None) -> None:
    """Run :func:`estimate_poses` once on ``batch`` black frames of ``size`` = (H, W)."""
    estimate_poses(model, np.zeros((batch, size[0], size[1], 3), np.uint8), scale_search,
                   device=device, dtype=dtype)
    if _dev.is_cuda(device):
        torch.cuda.synchronize(device)
