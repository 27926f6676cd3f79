"""The sample record: everything one sample holds between inference and its shard rows.

The fields are filled by the record steps of :data:`pipelines.representations.REPRESENTATIONS`
(:func:`build_record`, in table order); one builder per modality gives them their inputs:

* :func:`video_record`: a decoded video window after pose estimation (also the image path's
  core, and what :mod:`zoo.predict` rebuilds for a checkpoint's window);
* :func:`image_record`: an image or an image sequence (CK+), no pose model;
* :func:`skeleton_record`: a skeleton sequence (EWalk / ELMD gait, Emilya sheet), no decoding
  and no detection.

Array sizes come from :class:`schemas.shards.ShardShapes` (``cfg.shapes``): P = ``persons``,
F = ``feature_frames``, D = ``feature_dim``; T' is the number of sampled frames (<= T, the
rows pad it to T). The rows for the shards are made from a record by :mod:`pipelines.rows`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from pipelines.assemble import kept_positions
from pipelines.config import ExtractConfig
from pipelines.persons import Identity, identify
from pipelines.representations import REPRESENTATIONS
from pipelines.sampling import even_positions
from schemas.keypoints import COCO17

__all__ = ["NO_POSE", "SampleRecord", "build_record", "image_record", "skeleton_record", "video_record"]

#: ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``: no person (image corpora).
NO_POSE = (np.zeros(0, np.float32), np.zeros((0, len(COCO17), 3), np.float32))


@dataclass
class SampleRecord:
    """One sample, ready for :func:`pipelines.rows.video_row` / :func:`pipelines.rows.clip_rows`.

    Attributes:
        sample: the :class:`pipelines.samples.Sample` as a dict (ids, labels, window, box).
        frame_indices: int32 [T'] 0-based frame (or row) indices of the sampled frames.
        timestamps_s: float32 [T'] seconds of the sampled frames (NaN when unknown).
        fps: frames per second of the source (NaN when unknown).
        keypoints: float32 [T', V, 3] the main person's OpenPose-18 keypoints (x, y, score in
            source pixels); skeleton corpora: their own V joints (x, y, z).
        persons: int16 [T'] poses found per frame.
        tracks: float32 [P, T', 17, 3] one COCO-17 track per person, the P people with the most
            screen time first (row 0 = the main person; NaN where a person is not seen).
        person_ids: int32 [P] the person id of each ``tracks`` row (-1 = empty row); ids are the
            window's own (:func:`pipelines.persons.identify`), stable across its shots.
        shots: int32 [T'] 0-based shot index of every sampled frame.
        pose_features: float32 [F, D] the CAER input (zeros when no track passes its gates).
        timeline: float32 [2V, size, length] the ACCM skeleton timeline.
        frame_shape: int32 [2] (H, W) of the source frames (0 for skeleton corpora).
        clip_plan: int64 [C, K] sampled-frame positions of the clips
            (:func:`pipelines.sampling.clip_positions`).
        head_boxes: ``{position: (float32 [4] source box, kind)}`` of the head crops handed to
            the face detector (:func:`pipelines.assemble.head_requests`).
        given_faces: ``{position: (uint8 [S, S, 3], float32 [4] box)}`` crops of an annotated
            face box (:func:`pipelines.assemble.given_faces_at`).
        body_crops: ``{(c, k): (uint8 [S, S, 3], float32 [4] box)}`` full-body crops
            (:func:`pipelines.assemble.body_crops`).
        joints3d: float32 [P, T', W, 8] the ``tracks`` persons' 3-D keypoints, gait: float32
            [T, 16, 3] the main person's seed-000 gait, gait_embedding: float32 [244, 244, 3]
            its ProxEmo embedding (:mod:`pipelines.represent.joints3d`); None with a 2-D pose
            extractor.
    """

    sample: dict[str, Any]
    frame_indices: np.ndarray
    timestamps_s: np.ndarray
    fps: float
    keypoints: np.ndarray
    persons: np.ndarray
    tracks: np.ndarray
    person_ids: np.ndarray
    shots: np.ndarray
    pose_features: np.ndarray
    timeline: np.ndarray
    frame_shape: np.ndarray
    clip_plan: np.ndarray
    head_boxes: dict = field(default_factory=dict)
    given_faces: dict = field(default_factory=dict)
    body_crops: dict = field(default_factory=dict)
    joints3d: np.ndarray | None = None
    gait: np.ndarray | None = None
    gait_embedding: np.ndarray | None = None


def build_record(got: dict[str, Any], cfg: ExtractConfig, modality: str = "record") -> dict[str, Any]:
    """Run the record steps of every :data:`pipelines.representations.REPRESENTATIONS` line, in
    table order, on ``got`` (PySKL-style: each step reads the keys it ``needs`` and adds the keys
    it declares).

    Args:
        got: the builder's inputs, updated in place with every step's keys. Always ``sample``,
            ``frame_indices``, ``timestamps_s`` and ``fps``; for ``record`` also ``poses`` (per
            sampled frame ``(scores [P], keypoints [P, 17, 3])``), ``frames`` (``{position:
            uint8 [H, W, 3]}`` of the kept frames), ``identity``, ``world`` (3-D keypoints or
            None) and ``decoded_shape`` ((H, W) or None); for ``skeleton`` ``joints`` (float64
            [T, V, 3]) and ``keep`` (int [T'] the stored rows).
        modality: ``record`` (video and image samples) or ``skeleton`` (the steps used).

    Returns:
        ``got``.

    Raises:
        RuntimeError: a step needs a key that no earlier line adds, or returns other keys than
            it declares (a wrong table line; the message names the representation).
    """
    for rep in REPRESENTATIONS:
        step = getattr(rep, modality)
        if step is None:
            continue
        missing = [k for k in step.needs if k not in got]
        if missing:
            raise RuntimeError(f"representation {rep.name!r}: its {modality} step needs {missing}, which no "
                               "earlier line of REPRESENTATIONS adds")
        added = step.run(got, cfg)
        if set(added) != set(step.adds):
            raise RuntimeError(f"representation {rep.name!r}: its {modality} step added {sorted(added)}, "
                               f"declared {sorted(step.adds)}")
        got.update(added)
    return got


def _record_of(got: dict[str, Any]) -> SampleRecord:
    return SampleRecord(**{f.name: got[f.name] for f in fields(SampleRecord) if f.name in got})


def video_record(meta: dict[str, Any], poses: dict[int, tuple], frames: dict[int, np.ndarray],
                 cfg: ExtractConfig, identity: Identity | None = None,
                 world: list[np.ndarray] | None = None) -> tuple[SampleRecord, dict]:
    """Assemble one video (or image) sample after pose estimation: :func:`build_record` with the
    table's ``record`` steps.

    Requires ``sample``, ``frame_indices``, ``timestamps_s``, ``fps`` (``meta``), the poses of
    every sampled frame and the pixels of the kept frames; the steps add every other field
    (tracking, main person, timeline, pose features, clip plan, head / given / body crops).

    Args:
        meta: ``{"sample": Sample dict, "frame_indices": int32 [T'], "timestamps_s": float32
            [T'], "fps": float}`` from the decode stage (optionally ``frame_shape``).
        poses: ``{position: (pose_scores [P], keypoints [P, 17, 3])}`` for every sampled frame.
        frames: ``{position: uint8 [H, W, 3]}`` for the kept frames
            (:func:`pipelines.assemble.kept_positions`).
        identity: shots and person ids from all sampled frames (:func:`pipelines.persons.identify`);
            None = computed from the poses alone (one shot, no re-identification).
        world: per sampled frame float32 [P_t, W, 8] the 3-D extractor's keypoints, in the order
            of ``poses`` (``cfg.world_joints`` > 0); None for a 2-D extractor.

    Returns:
        ``(record, head_crops)``: the :class:`SampleRecord` and the head crops
        ``{position: uint8 [S, S, 3]}`` to run the face detector on.

    Raises:
        ValueError: when a sampled frame has no pose result (a lost element).
    """
    n = len(meta["frame_indices"])
    missing = sorted(set(range(n)) - set(poses))
    if missing:
        raise ValueError(f"pose results missing for positions {missing[:5]}")
    ordered = [poses[i] for i in range(n)]
    if identity is None:
        identity = identify(ordered, None, cfg.min_keypoint_score)
    got = build_record({"sample": meta["sample"], "frame_indices": meta["frame_indices"],
                        "timestamps_s": meta["timestamps_s"], "fps": meta["fps"],
                        "decoded_shape": meta.get("frame_shape"), "poses": ordered, "frames": frames,
                        "identity": identity, "world": world}, cfg)
    return _record_of(got), got["head_crops"]


def image_record(sample: dict[str, Any], positions: np.ndarray, images: list[np.ndarray],
                 cfg: ExtractConfig) -> tuple[SampleRecord, dict]:
    """Record of an image sample (one image, or the frames of a sequence such as CK+).

    Requires the images at ``positions`` of the sample's frame list; no pose model runs (every
    frame gets :data:`NO_POSE`), so the record is :func:`video_record`'s with empty tracks.

    Args:
        sample: the Sample dict.
        positions: int [T'] the frames of the sample that were loaded
            (:func:`pipelines.sampling.even_positions` of its frame list).
        images: T' images uint8 [H, W, 3], in ``positions`` order.

    Returns:
        ``(record, head_crops)`` as :func:`video_record`; ``timestamps_s`` are
        ``positions / cfg.sample_fps`` and ``fps`` is ``cfg.sample_fps``.
    """
    n = len(images)
    meta = {"sample": sample, "frame_indices": positions.astype(np.int32),
            "timestamps_s": (positions / cfg.sample_fps).astype(np.float32), "fps": cfg.sample_fps}
    kept = {i: images[i] for i in kept_positions(n, cfg)}
    return video_record(meta, {i: NO_POSE for i in range(n)}, kept, cfg)


def skeleton_record(sample: dict[str, Any], joints: np.ndarray, cfg: ExtractConfig) -> SampleRecord:
    """Record of a skeleton sample (EWalk / ELMD gait, Emilya sheet): no decoding, no detection;
    :func:`build_record` with the table's ``skeleton`` steps.

    Requires the joints; adds ``keypoints`` (raw x, y, z at ``cfg.frames`` evenly spaced rows
    when T is longer, :func:`pipelines.sampling.even_positions`), ``frame_indices`` (rows of the
    sequence), ``timestamps_s`` (rows / ``cfg.frame_rate``, NaN when unknown), ``persons`` (1 per
    frame), ``timeline`` float32 [2V, size, length] from the (x, y) of **all** T rows times
    ``cfg.coordinate_scale`` (seed spec 1.7), ``clip_plan``; empty ``tracks`` (NaN) and
    ``pose_features`` (zeros), no face or body crops.

    Args:
        sample: the Sample dict.
        joints: float64 [T, V, 3] (x, y, z) in the corpus's units, V = ``cfg.joints``.

    Raises:
        ValueError: ``joints`` is not [T >= 1, cfg.joints, 3].
    """
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[0] < 1 or joints.shape[1:] != (cfg.joints, 3):
        raise ValueError(f"{sample.get('uri')}: joints of shape {joints.shape}, expected [T, {cfg.joints}, 3]")
    keep = even_positions(len(joints), cfg.frames)
    fps = cfg.frame_rate if cfg.frame_rate > 0 else float("nan")
    got = build_record({"sample": sample, "frame_indices": keep.astype(np.int32),
                        "timestamps_s": (keep / fps).astype(np.float32), "fps": fps, "joints": joints, "keep": keep},
                       cfg, "skeleton")
    return _record_of(got)
