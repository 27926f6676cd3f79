"""The resolved configuration of one extraction run (card defaults overridden by CLI flags)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from schemas.shards import ShardShapes


#: Field metadata of :class:`ExtractConfig` fields that say how a run executes, not what its
#: shards hold (left out of :meth:`ExtractConfig.content_hash`).
EXECUTION = {"execution": True}


def _run(default):
    return field(default=default, metadata=EXECUTION)

#: Crop rules for annotated face boxes (card ``representations.face_crop``).
FACE_CROPS = ("given", "vtt_friends", "vtt_static")


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that determines the content of a run's shards.

    Units: seconds for times, frames per second for rates, pixels for sizes.
    ``modality`` (card ``corpus.modality``) picks the entry stage: ``video`` decodes and runs
    PoseNet, ``images`` loads the images (no pose model; annotated face boxes used when given),
    ``skeleton`` reads the joint arrays straight into the representations. ``joints`` is V of
    the stored keypoints (18 OpenPose joints for video / images, the card's ``skeleton.joints``
    for skeleton corpora); ``coordinate_scale`` multiplies skeleton coordinates before the
    timeline's integer binning; ``frame_rate`` (Hz, 0 = unknown) dates skeleton frames;
    ``given_box_margin`` sizes the square crop around an annotated face box.

    Stored representations switched by the card's ``[representations]`` (CLI flags override):
    ``face_pool`` stores the face crop of every sampled frame (``videos/face_pool``, the SISTCM
    redraw pool; the face detector then runs on all T frames instead of the C x K clip frames);
    ``face_mask`` stores ``clips/faces_masked`` (the clip faces with the synthetic medical mask);
    ``world_joints`` is V of the 3-D joints the pose extractor gives (``blazepose-ghum``: 33,
    stored as ``videos/joints3d`` with the seed-000 gait; 0 for 2-D extractors; derived from
    ``pose_extractor`` by :func:`config_from_card`). ``face_crop`` picks how an annotated face box is cropped: ``given`` (square of side
    ``sqrt((w + m)(h + m))``, ``m = given_box_margin (w + h)``, resampled with sub-pixel
    precision), ``vtt_friends`` / ``vtt_static`` (the VTT seed's crop rules ``friends`` /
    ``static`` of :mod:`pipelines.represent.face_windows`, integer centre and side, seed_specs
    4.2-4.3). Samples without an annotated box always use the detector.

    How a run executes, which never changes shard content and is not part of
    :meth:`content_hash` (the fields declared last, with :data:`EXECUTION` metadata): ``decoder`` (the video decoder back-end,
    :data:`pipelines.decoders.DECODER_BACKENDS`; the back-ends decode identical frames),
    ``device``, ``max_batch_size`` (frames per pose-model call), ``torch_threads`` (intra-op
    threads per worker process on CPU, 0 = torch's default), ``decode_workers`` (isolated
    decoder processes per worker process), ``out`` and ``root``.
    """

    corpus: str
    card_path: str
    label_names: tuple[str, ...]
    window_s: float
    sample_fps: float
    clips: int
    frames_per_clip: int
    face_size: int
    timeline_size: int
    timeline_length: int
    timeline_pad: str
    face_extractor: str
    pose_extractor: str
    pose_scale_factor: float
    num_shards: int
    min_keypoint_score: float = 0.2
    modality: str = "video"
    joints: int = 18
    max_frames: int = 0
    coordinate_scale: float = 1.0
    frame_rate: float = 0.0
    given_box_margin: float = 0.3
    face_pool: bool = False
    face_mask: bool = False
    face_crop: str = "given"
    world_joints: int = 0
    # --- how the run executes (EXECUTION metadata: not part of content_hash) ---
    root: str = _run("")
    out: str = _run("")
    device: str = _run("cpu")
    decoder: str = _run("pyav")
    max_batch_size: int = _run(16)
    torch_threads: int = _run(0)
    decode_workers: int = _run(1)

    def __post_init__(self):
        if self.face_crop not in FACE_CROPS:
            raise ValueError(f"{self.card_path}: representations.face_crop must be one of {FACE_CROPS}, "
                             f"got {self.face_crop!r}")

    @property
    def frames(self) -> int:
        """T, frames stored per sample: ``max_frames`` when set (skeleton cards), else
        ``round(window_s * sample_fps)``."""
        return self.max_frames if self.max_frames > 0 else int(round(self.window_s * self.sample_fps))

    @property
    def shapes(self) -> ShardShapes:
        return ShardShapes(frames=self.frames, joints=self.joints, clips=self.clips,
                           frames_per_clip=self.frames_per_clip, face_size=self.face_size,
                           timeline_size=self.timeline_size, timeline_length=self.timeline_length,
                           persons=2, classes=len(self.label_names),
                           pool_frames=self.frames if self.face_pool and self.modality != "skeleton" else 0,
                           masked_frames=self.frames_per_clip if self.face_mask else 0,
                           world_joints=self.world_joints if self.modality == "video" else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    def content_hash(self) -> str:
        """sha256 of the fields that change shard content (those without :data:`EXECUTION` metadata)."""
        content = {k: v for k, v in asdict(self).items() if k not in EXECUTION_FIELDS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _flag(reps: dict, key: str, card: dict) -> bool:
    """A boolean ``[representations]`` key (default False); raises ValueError naming the card."""
    value = reps.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{card.get('card_path')}: representations.{key} must be true or false, got {value!r}")
    return value


def config_from_card(card: dict, root: str, out: str, **overrides) -> ExtractConfig:
    """Resolve an :class:`ExtractConfig` from a corpus card and CLI overrides (None = card value)."""
    reps, ext, win = card.get("representations", {}), card.get("extractors", {}), card.get("windows", {})
    values = dict(
        corpus=card["corpus"]["name"], card_path=card["card_path"], root=str(root), out=str(out),
        label_names=tuple(card["labels"]["names"]),
        window_s=float(win.get("length_s", 2.0)), sample_fps=float(win.get("sample_fps", 15.0)),
        clips=int(reps.get("clips", 5)), frames_per_clip=int(reps.get("frames_per_clip", 2)),
        face_size=int(reps.get("face_size", 224)), timeline_size=int(reps.get("timeline_size", 64)),
        timeline_length=int(reps.get("timeline_length", 300)),
        timeline_pad=str(reps.get("timeline_pad", "faithful")),
        face_extractor=str(ext.get("face", "blazeface-front")),
        pose_extractor=str(ext.get("pose", "posenet-mobilenet-v1-075")),
        pose_scale_factor=float(ext.get("pose_scale_factor", 1.0)),
        num_shards=int(card.get("shards", {}).get("num_shards", 4)),
        modality=str(card["corpus"].get("modality", "video")),
        max_frames=int(win.get("max_frames", 0)),
        given_box_margin=float(reps.get("given_box_margin", 0.3)),
        face_pool=_flag(reps, "face_pool", card), face_mask=_flag(reps, "face_mask", card),
        face_crop=str(reps.get("face_crop", "given")),
    )
    skeleton = card.get("skeleton", {})
    if values["modality"] == "skeleton":
        values.update(joints=int(skeleton.get("joints", 16)),
                      coordinate_scale=float(skeleton.get("coordinate_scale", 1.0)),
                      frame_rate=float(skeleton.get("frame_rate", 0.0)))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values["modality"] == "video":
        values["world_joints"] = world_joints_of(values["pose_extractor"])
    return ExtractConfig(**values)


def world_joints_of(pose_extractor: str) -> int:
    """V of the 3-D (world) joints a pose extractor gives (33 for ``blazepose-ghum``), 0 for a
    2-D one: the layouts of :data:`schemas.keypoints.WORLD_LAYOUTS`.

    Raises:
        extractors.registry.UnknownExtractorError: an extractor the registry lacks.
    """
    from extractors.registry import resolve
    from schemas.keypoints import WORLD_LAYOUTS, get_layout

    layout = resolve(pose_extractor, role="pose").keypoint_layout
    return get_layout(layout).num_joints if layout in WORLD_LAYOUTS else 0


#: Names of the execution fields of :class:`ExtractConfig`.
EXECUTION_FIELDS = tuple(f.name for f in fields(ExtractConfig) if f.metadata.get("execution"))
