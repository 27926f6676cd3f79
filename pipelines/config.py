"""The resolved configuration of one extraction run (card defaults overridden by CLI flags)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Callable

from schemas.shards import ShardShapes


#: Field metadata of :class:`ExtractConfig` fields that say how a run executes, not what its
#: shards hold (left out of :meth:`ExtractConfig.content_hash`).
EXECUTION = {"execution": True}


def _run(default):
    return field(default=default, metadata=EXECUTION)

#: Crop rules for annotated face boxes (card ``representations.face_crop``).
FACE_CROPS = ("given", "vtt_friends", "vtt_static")


@dataclass(frozen=True)
class CardOption:
    """Where an :class:`ExtractConfig` field is read from a corpus card (field metadata ``card``).

    Attributes:
        key: dotted card key (``representations.face_pool`` = table ``[representations]``, key
            ``face_pool``); ``card_path`` is the loader's own key.
        default: the value when the card lacks the key; MISSING = the card must give it.
        parse: converts the card value (``bool`` values must be true or false).
        modality: read only for cards of this ``corpus.modality`` (None = every card).
        flag: the ``pipelines.extract`` flag that overrides it (None = none); ``help`` its help.
    """

    key: str
    default: Any = MISSING
    parse: Callable[[Any], Any] = str
    modality: str | None = None
    flag: str | None = None
    help: str = ""

    def read(self, card: dict) -> Any:
        """The option's value in ``card``.

        Raises:
            KeyError: a required key is missing; ValueError: a bool option that is not true or
                false (both name the card and the key).
        """
        value: Any = card
        for part in self.key.split("."):
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
        if value is MISSING:
            if self.default is MISSING:
                raise KeyError(f"{card.get('card_path')}: the card lacks {self.key}")
            return self.default
        if self.parse is bool and not isinstance(value, bool):
            raise ValueError(f"{card.get('card_path')}: {self.key} must be true or false, got {value!r}")
        return self.parse(value)


def _card(key: str, default: Any = MISSING, parse: Callable = str, **kw):
    """A field read from the card (:class:`CardOption`); a ``default`` here is the card's default,
    not the dataclass's (the field stays required when the class is built by hand)."""
    return field(metadata={"card": CardOption(key, default, parse, **kw)})


def _card_or(default: Any, key: str, parse: Callable = str, **kw):
    """A card field that also has ``default`` when the class is built by hand."""
    return field(default=default, metadata={"card": CardOption(key, default, parse, **kw)})


def card_options() -> dict[str, CardOption]:
    """``{ExtractConfig field: CardOption}`` of every field a card sets, in field order."""
    return {f.name: f.metadata["card"] for f in fields(ExtractConfig) if "card" in f.metadata}


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

    Each content field read from the card names its key in its metadata (:class:`CardOption`,
    e.g. ``representations.face_pool``; :func:`config_from_card` reads them all, and the
    ``pipelines.extract`` flags of the options that have one are made from them).

    Stored representations switched by the card's ``[representations]`` (CLI flags override):
    ``face_pool`` stores the face crop of every sampled frame (``videos/face_pool``, the SISTCM
    redraw pool; the face detector then runs on all T frames instead of the C x K clip frames);
    ``face_mask`` stores ``clips/faces_masked`` (the clip faces with the synthetic medical mask);
    ``world_joints`` is V of the 3-D joints the pose extractor gives (``blazepose-ghum``: 33,
    stored as ``videos/joints3d`` with the seed-000 gait; 0 for 2-D extractors; derived from
    ``pose_extractor`` by :func:`config_from_card`). ``face_crop`` picks how an annotated face
    box is cropped: ``given`` (square of side ``sqrt((w + m)(h + m))``,
    ``m = given_box_margin (w + h)``, resampled with sub-pixel precision), ``vtt_friends`` /
    ``vtt_static`` (the VTT seed's crop rules ``friends`` / ``static`` of
    :mod:`pipelines.represent.face_windows`, integer centre and side, seed_specs 4.2-4.3).
    Samples without an annotated box always use the detector.

    How a run executes, which never changes shard content and is not part of
    :meth:`content_hash` (the fields declared last, with :data:`EXECUTION` metadata): ``decoder``
    (the video decoder back-end, :data:`pipelines.decoders.DECODER_BACKENDS`; the back-ends
    decode identical frames),
    ``device``, ``max_batch_size`` (frames per pose-model call), ``torch_threads`` (intra-op
    threads per worker process on CPU, 0 = torch's default), ``decode_workers`` (isolated
    decoder processes per worker process), ``out`` and ``root``.
    """

    corpus: str = _card("corpus.name")
    card_path: str = _card("card_path")
    label_names: tuple[str, ...] = _card("labels.names", parse=tuple)
    window_s: float = _card("windows.length_s", 2.0, float)
    sample_fps: float = _card("windows.sample_fps", 15.0, float)
    clips: int = _card("representations.clips", 5, int)
    frames_per_clip: int = _card("representations.frames_per_clip", 2, int)
    face_size: int = _card("representations.face_size", 224, int)
    timeline_size: int = _card("representations.timeline_size", 64, int)
    timeline_length: int = _card("representations.timeline_length", 300, int)
    timeline_pad: str = _card("representations.timeline_pad", "faithful")
    face_extractor: str = _card("extractors.face", "blazeface-front")
    pose_extractor: str = _card("extractors.pose", "posenet-mobilenet-v1-075")
    pose_scale_factor: float = _card("extractors.pose_scale_factor", 1.0, float)
    num_shards: int = _card("shards.num_shards", 4, int)
    min_keypoint_score: float = 0.2
    modality: str = _card_or("video", "corpus.modality")
    joints: int = _card_or(18, "skeleton.joints", int, modality="skeleton")
    max_frames: int = _card_or(0, "windows.max_frames", int)
    coordinate_scale: float = _card_or(1.0, "skeleton.coordinate_scale", float, modality="skeleton")
    frame_rate: float = _card_or(0.0, "skeleton.frame_rate", float, modality="skeleton")
    given_box_margin: float = _card_or(0.3, "representations.given_box_margin", float)
    face_pool: bool = _card_or(False, "representations.face_pool", bool, flag="--face-pool", help=(
        "store the face crop of every sampled frame (videos/face_pool, the SISTCM redraw pool; runs the face "
        "detector on all frames)"))
    face_mask: bool = _card_or(False, "representations.face_mask", bool, flag="--face-mask", help=(
        "store clips/faces_masked (clip faces with the synthetic medical mask, TSN --input faces_masked)"))
    face_crop: str = _card_or("given", "representations.face_crop")
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


def config_from_card(card: dict, root: str, out: str, **overrides) -> ExtractConfig:
    """Resolve an :class:`ExtractConfig` from a corpus card (every field's :class:`CardOption`,
    :func:`card_options`) and CLI overrides (None = card value).

    Skeleton-only options (``skeleton.joints``, ...) are read from skeleton cards only; the
    other modalities keep the class default. ``world_joints`` follows ``pose_extractor``
    (:func:`world_joints_of`) for video cards.

    Raises:
        KeyError: the card lacks a required key; ValueError: a bad value (both name the card).
    """
    modality = card_options()["modality"].read(card)
    values: dict[str, Any] = {"root": str(root), "out": str(out)}
    for name, option in card_options().items():
        if option.modality in (None, modality):
            values[name] = option.read(card)
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
