"""Per-sample steps after pose estimation: tracking, the main person, head and body crops,
annotated face crops, the pose representations.

Pure functions (numpy in, numpy / dicts out), no state, testable without Beam. The record steps
at the end (``*_step``) wrap them for the table of representations: each reads the keys its
:class:`pipelines.representations.RecordStep` declares and returns exactly the record fields it
adds (PySKL habit); :func:`pipelines.record.build_record` runs them to fill a
:class:`pipelines.record.SampleRecord`. The shard rows are made in :mod:`pipelines.rows`.
"""
from __future__ import annotations

import numpy as np

from extractors.tracking import track_prominence
from pipelines.config import ExtractConfig
from pipelines.crops import body_region, crop_box_resized, given_face_square, square_around
from pipelines.faces import HEAD_CROP_SIZE, head_box
from pipelines.persons import Identity, identify, seen
from pipelines.represent import face_windows
from pipelines.represent.joints3d import main_gait, person_joints3d
from pipelines.represent.pose_features import tracks_pose_features
from pipelines.represent.timeline import skeleton_timeline
from pipelines.sampling import clip_positions
from schemas.keypoints import COCO17, coco17_to_openpose18


def kept_positions(num_frames: int, cfg: ExtractConfig) -> set[int]:
    """Positions of a window's sampled frames whose pixels are kept after pose estimation: the
    clip frames (the C x K plan, :func:`pipelines.sampling.clip_positions`), or every position when
    ``cfg.face_pool`` is on (the SISTCM redraw pool stores a face crop per sampled frame)."""
    if cfg.face_pool:
        return set(range(num_frames))
    return set(clip_positions(num_frames, cfg.clips, cfg.frames_per_clip).ravel().tolist())


def person_tracks(poses: list[tuple[np.ndarray, np.ndarray]], cfg: ExtractConfig,
                  keep: int | None = None, identity: Identity | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(tracks, persons)`` of :func:`identified_tracks` (without the person ids)."""
    tracks, persons, _ = identified_tracks(poses, cfg, keep, identity)
    return tracks, persons


def identified_tracks(poses: list[tuple[np.ndarray, np.ndarray]], cfg: ExtractConfig, keep: int | None = None,
                      identity: Identity | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One track per person of a window, the ``keep`` people with the most screen time first.

    Adds the record's ``tracks``, ``persons`` and ``person_ids``. A person's track holds its
    poses in every shot it is seen in (person ids from :func:`pipelines.persons.identify`) and
    NaN where it is not seen, never another person's pose.

    Args:
        poses: per sampled frame ``(pose_scores [P], keypoints [P, 17, 3])`` in source pixels.
        keep: people kept; None = ``cfg.shapes.persons`` (:class:`schemas.shards.ShardShapes`).
        identity: the window's :class:`pipelines.persons.Identity`; None = computed here
            without pixels (one shot, tracking by motion only).

    Returns:
        ``(tracks float32 [keep, T', 17, 3], persons int16 [T'], person_ids int32 [keep])``:
        COCO-17 tracks ordered by screen time (frames seen), then by
        :func:`extractors.tracking.track_prominence` (all-NaN rows, person id -1, when fewer
        people were found) and the number of poses per frame.
    """
    keep = cfg.shapes.persons if keep is None else keep
    frames = [kp.astype(np.float32) for _, kp in poses]
    persons = np.array([len(kp) for kp in frames], np.int16)
    if identity is None:
        identity = identify(poses, None, cfg.min_keypoint_score)
    ids = sorted({int(i) for f in identity.pose_person for i in f if i >= 0})
    found = np.full((len(ids), len(frames), len(COCO17), 3), np.nan, np.float32)
    row = {pid: r for r, pid in enumerate(ids)}
    for t, (kp, who) in enumerate(zip(frames, identity.pose_person)):
        for j in np.flatnonzero(who >= 0):
            found[row[int(who[j])], t] = kp[j]
    out = np.full((keep, len(frames), len(COCO17), 3), np.nan, np.float32)
    person_ids = np.full(keep, -1, np.int32)
    if ids:
        screen = np.isfinite(found[..., 0]).any(axis=2).sum(axis=1)
        order = np.lexsort((-track_prominence(found, cfg.min_keypoint_score), -screen))[:keep]
        out[: len(order)] = found[order]
        person_ids[: len(order)] = np.asarray(ids)[order]
    return out, persons, person_ids


def main_person(poses: list[tuple[np.ndarray, np.ndarray]], cfg: ExtractConfig) -> tuple[np.ndarray, np.ndarray]:
    """The most prominent track ``coco float32 [T', 17, 3]`` (all NaN when nobody is found) and
    the poses per frame ``int16 [T']`` (see :func:`person_tracks`)."""
    tracks, persons = person_tracks(poses, cfg, keep=1)
    return tracks[0], persons


def pose_features_of(tracks: np.ndarray, frame_indices: np.ndarray, cfg: ExtractConfig) -> np.ndarray:
    """CAER pose features ``float32 [F, P*17*7]`` of a sample's person tracks ``[P, T, 17, 3]``
    (seed_specs 5.1-5.2: stage 1 with the CLI defaults, then the centre crop;
    :func:`pipelines.represent.pose_features.tracks_pose_features`). Adds ``pose_features``.

    F is ``cfg.shapes.feature_frames`` (64); joints count as valid from
    ``cfg.min_keypoint_score`` (0.2 by default, the seed's ``ProcCfg.min_score``, so the stored
    features are the seed's). A sample whose tracks all fail the stage-1 quality gates gives all
    zeros, as the seed's dataset does for an all-NaN sequence.
    """
    return tracks_pose_features(tracks, frame_indices, cfg.shapes.feature_frames, cfg.min_keypoint_score)


def timeline_of(openpose18: np.ndarray, cfg: ExtractConfig) -> np.ndarray:
    """ACCM skeleton timeline ``float32 [36, size, length]`` of an OpenPose-18 track [T, 18, 3].
    Adds ``timeline``.

    Joints below ``cfg.min_keypoint_score`` count as missing. An all-missing track gives an
    all-zero timeline.
    """
    xy = openpose18[..., :2].astype(np.float64)
    xy[~(np.nan_to_num(openpose18[..., 2], nan=0.0) >= cfg.min_keypoint_score)] = np.nan
    return skeleton_timeline(xy, size=cfg.timeline_size, length=cfg.timeline_length, pad=cfg.timeline_pad)


def head_requests(coco: np.ndarray, frames: dict[int, np.ndarray], cfg: ExtractConfig
                  ) -> tuple[dict, dict]:
    """Head crops of the main person at the kept frames (:func:`kept_positions`: the clip frames,
    or all sampled frames with ``cfg.face_pool``), one per frame position. Adds ``head_boxes``.

    Args:
        coco: the main person's track float32 [T', 17, 3] (source pixels).
        frames: ``{position: uint8 [H, W, 3]}``; positions that are not kept or have no frame
            are skipped.

    Returns:
        ``(crops, boxes)``: ``{position: uint8 [S, S, 3]}`` crops for the face detector and
        ``{position: (float32 [4] box in source pixels, kind)}``. ``kind`` is ``head`` when the
        crop (S = HEAD_CROP_SIZE) is placed from the person's head keypoints, ``frame`` when no
        head keypoint was found and the whole frame, letterboxed at its own size, is searched.
        Where the main person is not seen (or the window has no pose), the whole frame is
        searched too; :func:`pipelines.persons.attribute_faces` then keeps a face there only
        when it is the main person's by appearance, so a crop is never someone else's.
    """
    crops, boxes = {}, {}
    for pos in sorted(kept_positions(len(coco), cfg)):
        if pos not in frames:
            continue
        box = head_box(coco[pos], cfg.min_keypoint_score)
        if box is None:  # no head keypoints (e.g. a close-up): search the whole frame
            side = float(max(frames[pos].shape[:2]))
            box, size, kind = np.array([0, 0, side, side], np.float32), int(side), "frame"
        else:
            size, kind = HEAD_CROP_SIZE, "head"
        crops[pos] = crop_box_resized(frames[pos], box, size)
        boxes[pos] = (box, kind)
    return crops, boxes


def body_crops(coco: np.ndarray, frames: dict[int, np.ndarray], cfg: ExtractConfig) -> dict:
    """Full-body crops of the main person at the clip frames (the TSN ``fullbody`` input,
    seed_specs 3.3, from our own keypoints). Adds ``body_crops``.

    The region is the seed's rule (:func:`pipelines.crops.body_region`: the box of
    the joints scoring at least ``cfg.min_keypoint_score``, grown 10 % per side) made square around
    its centre (black outside the frame) so that the person keeps its aspect; the whole frame
    when no joint is valid.

    Positions where the main person is not seen get no crop (stored as zeros with a NaN box),
    unless the window has no pose at all (then the whole frame, as before).

    Returns:
        ``{(c, k): (uint8 [S, S, 3], float32 [4] square box in source pixels)}``, S = face_size.
    """
    out = {}
    plan = clip_positions(len(coco), cfg.clips, cfg.frames_per_clip)
    someone = seen(coco)
    for (c, k), pos in np.ndenumerate(plan):
        if pos not in frames or (someone.any() and not someone[pos]):
            continue
        h, w = frames[pos].shape[:2]
        region = body_region(coco[pos], (h, w), cfg.min_keypoint_score) or (0, 0, w, h)
        box = square_around(region)
        out[(c, k)] = (crop_box_resized(frames[pos], box, cfg.face_size), box)
    return out


def given_face(frame: np.ndarray, box, cfg: ExtractConfig) -> np.ndarray:
    """uint8 [S, S, 3] crop of an annotated face box ``(x1, y1, x2, y2)`` (source pixels) under
    ``cfg.face_crop``: ``given`` = :func:`given_face_square` with ``cfg.given_box_margin``,
    resampled with sub-pixel precision (:func:`pipelines.crops.crop_box_resized`); ``vtt_friends`` /
    ``vtt_static`` = :func:`pipelines.represent.face_windows.vtt_face_crop` with rule ``friends`` /
    ``static`` (the VTT seed's integer centre and side, zero / mean-colour border,
    ``cv2.resize``; seed_specs 4.2-4.3).

    Raises:
        ValueError: an empty, inverted or non-finite box.
    """
    if cfg.face_crop == "given":
        return crop_box_resized(frame, given_face_square(box, cfg.given_box_margin), cfg.face_size)
    rule = cfg.face_crop.removeprefix("vtt_")
    return face_windows.vtt_face_crop(frame, box, rule, cfg.face_size)


def given_faces_at(box, frames: dict[int, np.ndarray], num_frames: int, cfg: ExtractConfig) -> dict:
    """Face crops from an annotated box at every kept frame (:func:`kept_positions`):
    ``{position: (uint8 [S, S, 3], box float32 [4])}``, crop rule :func:`given_face`.
    Adds ``given_faces``.

    The same box is used in every frame of the window (as the seed does for Friends windows), so
    a Friends window's clip faces equal
    :func:`pipelines.represent.face_windows.window_crops` of its frames.
    """
    out = {}
    for pos in sorted(kept_positions(num_frames, cfg)):
        if pos in frames:
            out[pos] = (given_face(frames[pos], box, cfg), np.asarray(box, np.float32))
    return out




# ------------------------------------------------------------------------------ record steps
# Each step reads the keys its table line declares (``needs``) from the record being built and
# returns exactly the keys it ``adds``; :data:`pipelines.representations.REPRESENTATIONS` lists
# them and :func:`pipelines.record.build_record` runs them in table order.
def window_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``frame_shape`` (the decoder's, else the first kept frame's, else 0) and
    ``clip_plan`` (:func:`pipelines.sampling.clip_positions`)."""
    shape = got.get("decoded_shape")
    if shape is None:
        frames = got["frames"]
        shape = next(iter(frames.values())).shape[:2] if frames else (0, 0)
    return {"frame_shape": np.array(shape, np.int32),
            "clip_plan": clip_positions(len(got["frame_indices"]), cfg.clips, cfg.frames_per_clip)}


def persons_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``tracks``, ``persons``, ``person_ids`` (:func:`identified_tracks`) and ``shots``."""
    tracks, persons, person_ids = identified_tracks(got["poses"], cfg, identity=got["identity"])
    return {"tracks": tracks, "persons": persons, "person_ids": person_ids, "shots": got["identity"].shots}


def keypoints_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``keypoints``: the main person's (``tracks`` row 0) OpenPose-18 track."""
    return {"keypoints": coco17_to_openpose18(got["tracks"][0])}


def timeline_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``timeline`` (:func:`timeline_of` the main person's keypoints)."""
    return {"timeline": timeline_of(got["keypoints"], cfg)}


def pose_features_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``pose_features`` (:func:`pose_features_of` the tracks)."""
    return {"pose_features": pose_features_of(got["tracks"], got["frame_indices"], cfg)}


def faces_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``given_faces`` (crops of an annotated face box: AffectNet, RAF-DB, Friends; no
    detector then) or ``head_boxes`` and ``head_crops`` (the main person's head crops the face
    detector searches, :func:`head_requests`)."""
    given = got["sample"].get("box")
    if given is not None:
        return {"head_crops": {}, "head_boxes": {},
                "given_faces": given_faces_at(given, got["frames"], len(got["frame_indices"]), cfg)}
    crops, boxes = head_requests(got["tracks"][0], got["frames"], cfg)
    return {"head_crops": crops, "head_boxes": boxes, "given_faces": {}}


def body_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``body_crops`` (:func:`body_crops` of the main person at the clip frames)."""
    return {"body_crops": body_crops(got["tracks"][0], got["frames"], cfg)}


def joints3d_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``joints3d``, ``gait`` and ``gait_embedding`` from a 3-D pose extractor's keypoints
    (``world``; :mod:`pipelines.represent.joints3d`), all None with a 2-D extractor."""
    if got["world"] is None:
        return {"joints3d": None, "gait": None, "gait_embedding": None}
    joints3d = person_joints3d(got["world"], got["identity"].pose_person, got["person_ids"])
    gait, embedding = main_gait(joints3d[0], cfg.frames)
    return {"joints3d": joints3d, "gait": gait, "gait_embedding": embedding}


# Skeleton corpora (EWalk / ELMD gait, Emilya sheet): ``joints`` float64 [T, V, 3] and ``keep``
# (the ``cfg.frames`` evenly spaced rows stored) instead of poses and pixels.
def skeleton_window_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``frame_shape`` (0: no pixels) and ``clip_plan``."""
    return {"frame_shape": np.zeros(2, np.int32),
            "clip_plan": clip_positions(len(got["frame_indices"]), cfg.clips, cfg.frames_per_clip)}


def skeleton_persons_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds empty ``tracks`` (NaN) and ``person_ids`` (-1), one pose per frame, one shot."""
    t, shapes = len(got["frame_indices"]), cfg.shapes
    return {"tracks": np.full((shapes.persons, t, len(COCO17), 3), np.nan, np.float32),
            "persons": np.ones(t, np.int16), "person_ids": np.full(shapes.persons, -1, np.int32),
            "shots": np.zeros(t, np.int32)}


def skeleton_keypoints_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``keypoints``: the raw (x, y, z) joints at the stored rows."""
    return {"keypoints": got["joints"][got["keep"]].astype(np.float32)}


def skeleton_timeline_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds ``timeline`` from the (x, y) of **all** T rows times ``cfg.coordinate_scale``
    (seed spec 1.7)."""
    xy = got["joints"][..., :2] * cfg.coordinate_scale
    return {"timeline": skeleton_timeline(xy, size=cfg.timeline_size, length=cfg.timeline_length,
                                          pad=cfg.timeline_pad)}


def skeleton_pose_features_step(got: dict, cfg: ExtractConfig) -> dict:
    """Adds all-zero ``pose_features`` (the CAER features need COCO tracks)."""
    return {"pose_features": np.zeros((cfg.shapes.feature_frames, cfg.shapes.feature_dim), np.float32)}
