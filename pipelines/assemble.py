"""Per-sample assembly: tracking, the main person, head-crop requests, rows for the shards.

Pure functions (numpy in, numpy / dicts out) that the Beam stages in :mod:`pipelines.extract`
call; they hold no state and can be tested without Beam.
"""
from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np

from extractors.tracking import track_poses, track_prominence
from pipelines.config import ExtractConfig
from pipelines.decode import clip_positions
from pipelines.faces import (FACE_MARGIN, HEAD_CROP_SIZE, best_face, crop_square, crop_to_source, face_crop,
                             head_box)
from pipelines.represent.pose_features import ProcCfg, SampleRejected, kinematics, pose_feature_sequence
from pipelines.represent import face_windows
from pipelines.represent.segments import apply_face_mask, body_region, mask_landmarks
from pipelines.represent.superimage import tile_superimage
from pipelines.represent.timeline import skeleton_timeline
from schemas.keypoints import coco17_to_openpose18


def kept_positions(num_frames: int, cfg: ExtractConfig) -> set[int]:
    """Positions of a window's sampled frames whose pixels are kept after pose estimation: the
    clip frames (the C x K plan, :func:`pipelines.decode.clip_positions`), or every position when
    ``cfg.face_pool`` is on (the SISTCM redraw pool stores a face crop per sampled frame)."""
    if cfg.face_pool:
        return set(range(num_frames))
    return set(clip_positions(num_frames, cfg.clips, cfg.frames_per_clip).ravel().tolist())


PERSONS = 2  # people kept per sample in ``tracks`` (the CAER features use two)


def person_tracks(poses: list[tuple[np.ndarray, np.ndarray]], cfg: ExtractConfig,
                  keep: int = PERSONS) -> tuple[np.ndarray, np.ndarray]:
    """Track the poses of one window and keep its ``keep`` most prominent people.

    Args:
        poses: per sampled frame ``(pose_scores [P], keypoints [P, 17, 3])`` in source pixels.

    Returns:
        ``(tracks float32 [keep, T', 17, 3], persons int16 [T'])``: COCO-17 tracks ordered by
        :func:`extractors.tracking.track_prominence` (NaN where unseen; all-NaN rows when fewer
        people were found) and the number of poses per frame.
    """
    frames = [kp.astype(np.float32) for _, kp in poses]
    persons = np.array([len(kp) for kp in frames], np.int16)
    found = track_poses(frames, min_score=cfg.min_keypoint_score)
    out = np.full((keep, len(frames), 17, 3), np.nan, np.float32)
    if found.shape[0]:
        order = np.argsort(-track_prominence(found, cfg.min_keypoint_score), kind="stable")[:keep]
        out[: len(order)] = found[order]
    return out, persons


def main_person(poses: list[tuple[np.ndarray, np.ndarray]], cfg: ExtractConfig) -> tuple[np.ndarray, np.ndarray]:
    """The most prominent track ``coco float32 [T', 17, 3]`` (all NaN when nobody is found) and
    the poses per frame ``int16 [T']`` (see :func:`person_tracks`)."""
    tracks, persons = person_tracks(poses, cfg, keep=1)
    return tracks[0], persons


def pose_features_of(tracks: np.ndarray, frame_indices: np.ndarray, seq_len: int = 64) -> np.ndarray:
    """CAER pose features ``float32 [seq_len, P*17*7]`` of a sample's person tracks
    ``[P, T, 17, 3]`` (seed_specs 5.1-5.2: stage 1 with the CLI defaults, then the centre crop).

    A sample whose tracks all fail the stage-1 quality gates gives all zeros, as the seed's
    dataset does for an all-NaN sequence.
    """
    p = tracks.shape[0]
    try:
        kin = kinematics(np.transpose(tracks, (1, 0, 2, 3)), np.asarray(frame_indices), ProcCfg(keep_people=p))
    except SampleRejected:
        return np.zeros((seq_len, p * 17 * 7), np.float32)
    return pose_feature_sequence(kin, seq_len=seq_len, num_people=p)


def timeline_of(openpose18: np.ndarray, cfg: ExtractConfig) -> np.ndarray:
    """ACCM skeleton timeline ``float32 [36, size, length]`` of an OpenPose-18 track [T, 18, 3].

    Joints below ``cfg.min_keypoint_score`` count as missing. An all-missing track gives an
    all-zero timeline.
    """
    xy = openpose18[..., :2].astype(np.float64)
    xy[~(np.nan_to_num(openpose18[..., 2], nan=0.0) >= cfg.min_keypoint_score)] = np.nan
    return skeleton_timeline(xy, size=cfg.timeline_size, length=cfg.timeline_length, pad=cfg.timeline_pad)


def _pad(a: np.ndarray, length: int, fill) -> np.ndarray:
    out = np.full((length,) + a.shape[1:], fill, dtype=a.dtype)
    out[: len(a)] = a[:length]
    return out


def head_requests(coco: np.ndarray, frames: dict[int, np.ndarray], cfg: ExtractConfig
                  ) -> tuple[dict, dict]:
    """Head crops of the main person at the kept frames (:func:`kept_positions`: the clip frames,
    or all sampled frames with ``cfg.face_pool``), one per frame position.

    Args:
        coco: the main person's track float32 [T', 17, 3] (source pixels).
        frames: ``{position: uint8 [H, W, 3]}``; positions that are not kept or have no frame
            are skipped.

    Returns:
        ``(crops, boxes)``: ``{position: uint8 [S, S, 3]}`` crops for the face detector and
        ``{position: (float32 [4] box in source pixels, kind)}``. ``kind`` is ``head`` when the
        crop (S = HEAD_CROP_SIZE) is placed from the person's head keypoints, ``frame`` when no
        head keypoint was found and the whole frame, letterboxed at its own size, is searched.
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
        crops[pos] = crop_square(frames[pos], box, size)
        boxes[pos] = (box, kind)
    return crops, boxes


def square_around(region: tuple[int, int, int, int]) -> np.ndarray:
    """float32 [4] square box (x1, y1, x2, y2) with the region's centre and its longer side."""
    left, top, right, bottom = region
    side = max(right - left, bottom - top, 1)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def body_crops(coco: np.ndarray, frames: dict[int, np.ndarray], cfg: ExtractConfig) -> dict:
    """Full-body crops of the main person at the clip frames (the TSN ``fullbody`` input,
    seed_specs 3.3, from our own keypoints).

    The region is the seed's rule (:func:`pipelines.represent.segments.body_region`: the box of
    the joints scoring at least ``cfg.min_keypoint_score``, grown 10 % per side) made square around
    its centre (black outside the frame) so that the person keeps its aspect; the whole frame
    when no joint is valid.

    Returns:
        ``{(c, k): (uint8 [S, S, 3], float32 [4] square box in source pixels)}``, S = face_size.
    """
    out = {}
    plan = clip_positions(len(coco), cfg.clips, cfg.frames_per_clip)
    for (c, k), pos in np.ndenumerate(plan):
        if pos not in frames:
            continue
        h, w = frames[pos].shape[:2]
        region = body_region(coco[pos], (h, w), cfg.min_keypoint_score) or (0, 0, w, h)
        box = square_around(region)
        out[(c, k)] = (crop_square(frames[pos], box, cfg.face_size), box)
    return out


def black_out_face(crop: np.ndarray, crop_box: np.ndarray, face_box: np.ndarray) -> np.ndarray:
    """The TSN ``body`` input (seed_specs 3.3): a body crop with the face region, the face box
    grown 10 % of its width / height per side, set to 0. Returns a copy.

    Args:
        crop: uint8 [S, S, 3] taken from ``crop_box`` (x1, y1, x2, y2 source pixels).
        face_box: (x1, y1, x2, y2) source pixels; NaN = no face (nothing is blacked out).
    """
    out = crop.copy()
    if not np.isfinite(face_box).all() or not np.isfinite(crop_box).all():
        return out
    side = crop.shape[0]
    scale = side / max(float(crop_box[2] - crop_box[0]), 1e-6)
    w, h = face_box[2] - face_box[0], face_box[3] - face_box[1]
    grown = np.array([face_box[0] - 0.1 * w, face_box[1] - 0.1 * h, face_box[2] + 0.1 * w, face_box[3] + 0.1 * h])
    x1, y1, x2, y2 = np.clip(np.round((grown - np.tile(crop_box[:2], 2)) * scale), 0, side).astype(int)
    out[y1:y2, x1:x2] = 0
    return out


def landmarks_in_face_crop(detection: np.ndarray, size: int) -> np.ndarray:
    """The detector's face keypoints mapped into the pixels of :func:`pipelines.faces.face_crop`.

    Args:
        detection: one detection row in head-crop pixels, ``x1, y1, x2, y2, score`` then L (x, y)
            keypoints (BlazeFace: L = 6, ``float32 [17]``; DBFace: L = 5, ``float32 [15]``).
        size: side of the face crop.

    Returns:
        float32 [L, 2] (x, y) in face-crop pixels (the crop's affine map applied, so a point at
        source pixel ``x`` lands on crop pixel ``(x - x1) * size / side``).
    """
    x1, y1, x2, y2 = (float(v) for v in detection[:4])
    half = FACE_MARGIN * max(x2 - x1, y2 - y1) / 2
    origin = np.array([(x1 + x2) / 2 - half, (y1 + y2) / 2 - half])
    points = np.asarray(detection[5:], np.float64).reshape(-1, 2)
    return ((points - origin) * (size / max(2 * half, 1e-6))).astype(np.float32)


def _face_of(crop, crop_box, detections, size):
    """(face uint8 [size, size, 3], box_src [4], score, found, landmarks) for one frame.

    ``crop_box`` is ``(box in source pixels, kind)``: ``head`` crops come from keypoints,
    ``frame`` crops are the whole (letterboxed) frame. ``landmarks`` are the detection's face
    keypoints in face-crop pixels (:func:`landmarks_in_face_crop`), None without a detection.
    """
    empty = np.zeros((size, size, 3), np.uint8), np.full(4, np.nan, np.float32), 0.0, False, None
    if crop is None:
        return empty
    (src_box, kind), side = crop_box, crop.shape[0]
    best = best_face(detections)
    if best is not None:
        return (face_crop(crop, best, size), crop_to_source(best, src_box, side), float(best[4]), True,
                landmarks_in_face_crop(best, size))
    if kind == "frame":
        return empty
    # not confirmed by the detector: the face region the keypoints predict (centre half)
    q = side / 4
    box_crop = np.array([q, q, 3 * q, 3 * q], np.float32)
    return face_crop(crop, box_crop, size), crop_to_source(box_crop, src_box, side), 0.0, False, None


def face_at(record: dict[str, Any], faces: dict, pos: int, size: int) -> tuple:
    """The face of one sampled frame position: ``(face uint8 [size, size, 3], box float32 [4]
    source pixels (NaN = none), score, found, landmarks float32 [L, 2] face-crop pixels or None)``.

    One code path for the clip faces (``clips/faces`` at ``clip_plan[c, k]``) and the redraw pool
    (``videos/face_pool`` at every position), so both hold the same crop of a frame. An annotated
    box gives the crop directly (score 1 by convention, no landmarks); otherwise the best
    detection in the frame's head crop; a head crop without a detection gives the face region
    its keypoints predict with ``found`` False; a frame without a head crop gives zeros.
    """
    given = record.get("given_faces", {})
    if pos in given:  # annotated face box: the crop is the face, no detector
        face, box = given[pos]
        return face, box, 1.0, True, None
    head_crop, detections = faces.get(pos, (None, None))
    return _face_of(head_crop, record["head_boxes"].get(pos), detections, size)


def masked_face(face: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    """The TSN ``--mask`` input of one face crop: :func:`pipelines.represent.segments.apply_face_mask`
    with the detector keypoints mapped to its five landmarks
    (:func:`pipelines.represent.segments.mask_landmarks`), drawn in face-crop pixels.

    A crop without detector keypoints (annotated box, keypoint-predicted region, no face) or
    with keypoints the mask cannot be placed from (coincident eyes) is returned unmasked (a
    copy); pixels outside the mask polygon are never changed.
    """
    if landmarks is None:
        return face.copy()
    try:
        return apply_face_mask(face, mask_landmarks(landmarks))
    except ValueError:
        return face.copy()


def face_pool_of(record: dict[str, Any], faces: dict, cfg: ExtractConfig) -> tuple[np.ndarray, np.ndarray]:
    """The SISTCM redraw pool of one sample: the face crop of every sampled frame.

    Returns:
        ``(pool uint8 [P, S, S, 3], found bool [P])`` with P = ``cfg.shapes.pool_frames`` (T when
        ``cfg.face_pool`` is on, else 0) and S = ``cfg.face_size``; row t is :func:`face_at` of
        position t (the same crop ``clips/faces`` holds at that position), zeros / False for
        positions past the decoded frames (padding) or without a head crop.
    """
    p, size = cfg.shapes.pool_frames, cfg.face_size
    pool, found = np.zeros((p, size, size, 3), np.uint8), np.zeros(p, bool)
    for pos in range(min(p, len(record["frame_indices"]))):
        face, _, _, ok, _ = face_at(record, faces, pos, size)
        pool[pos], found[pos] = face, ok
    return pool, found


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _ids(sample: dict[str, Any]) -> dict[str, Any]:
    keys = ("corpus", "sample_id", "video_id", "uri", "split", "label", "label_name")
    return {k: sample[k] for k in keys}


def video_row(record: dict[str, Any], cfg: ExtractConfig, faces: dict | None = None) -> dict[str, Any]:
    """The ``videos`` table row of one sample (see :func:`schemas.shards.video_schema`) plus the
    HDF5-only arrays ``face_pool`` / ``face_pool_found`` (:func:`face_pool_of`, from ``faces``:
    ``{position: (head_crop, detections)}``, as for :func:`clip_rows`)."""
    t = cfg.frames
    sample = record["sample"]
    return {**_ids(sample), "start_s": sample["start_s"], "end_s": sample["end_s"] or np.nan,
            "fps": record["fps"], "num_frames": len(record["frame_indices"]),
            "frame_indices": _pad(record["frame_indices"], t, -1),
            "timestamps_s": _pad(record["timestamps_s"], t, np.nan),
            "keypoints": _pad(record["keypoints"], t, np.nan),
            "persons": _pad(record["persons"], t, 0),
            "timeline": record["timeline"], "frame_shape": record["frame_shape"],
            "tracks": _pad(record["tracks"].transpose(1, 0, 2, 3), t, np.nan).transpose(1, 0, 2, 3),
            "pose_features": record["pose_features"], **annotation_columns(sample),
            "targets_vector": targets_vector(sample, len(cfg.label_names)), "fold_index": fold_index(sample),
            **dict(zip(("face_pool", "face_pool_found"), face_pool_of(record, faces or {}, cfg)))}


def fold_index(sample: dict[str, Any]) -> int:
    """The sample's 1-based cross-validation fold (CK+), -1 when the corpus has none."""
    fold = sample.get("fold")
    return -1 if fold is None or (isinstance(fold, float) and not np.isfinite(fold)) else int(fold)


def targets_vector(sample: dict[str, Any], classes: int) -> np.ndarray:
    """float32 [classes]: the sample's multi-hot / soft ``targets`` when the corpus gives them,
    else the one-hot of its ``label`` (all zero for ``label < 0``).

    Raises:
        ValueError: targets of another length than ``classes`` or not finite, or a label that is
            not an integer (the message names the sample and the field).
    """
    given = sample.get("targets")
    who = sample.get("sample_id", "sample")
    if given:
        out = np.asarray(given, np.float32)
        if out.shape != (classes,) or not np.isfinite(out).all():
            raise ValueError(f"{who}: targets {list(given)} must be {classes} finite values")
        return out
    label = sample["label"]
    if isinstance(label, float) and not label.is_integer():
        raise ValueError(f"{who}: label {label!r} is not a class index")
    out = np.zeros(classes, np.float32)
    if 0 <= int(label) < classes:
        out[int(label)] = 1.0
    return out


def annotation_columns(sample: dict[str, Any]) -> dict[str, Any]:
    """``targets`` (list of float), ``valence``, ``arousal``, ``fold`` of a sample dict (None = absent)."""
    return {"targets": [float(v) for v in sample.get("targets") or ()], "valence": sample.get("valence"),
            "arousal": sample.get("arousal"), "fold": sample.get("fold")}


def clip_rows(record: dict[str, Any], faces: dict, cfg: ExtractConfig) -> list[dict[str, Any]]:
    """The ``clips`` table rows of one sample, with their face crops.

    Args:
        record: the sample record (ids, frame indices, keypoints, head boxes, clip plan).
        faces: ``{position: (head_crop uint8 [S, S, 3], detections float32 [D, 17 or 15])}``.

    Returns:
        One dict per clip with the columns of :func:`schemas.shards.clip_schema` plus the HDF5
        arrays ``faces`` uint8 [K, size, size, 3] (clip frame k is :func:`face_at` of position
        ``clip_plan[c, k]``), ``faces_masked`` uint8 [K', size, size, 3] (:func:`masked_face`;
        K' = K with ``cfg.face_mask``, else 0), ``fullbody`` and ``body``.
    """
    rows = []
    plan = record["clip_plan"]
    empty_body = (np.zeros((cfg.face_size, cfg.face_size, 3), np.uint8), np.full(4, np.nan, np.float32))
    for c in range(plan.shape[0]):
        got = [face_at(record, faces, int(plan[c, k]), cfg.face_size) for k in range(plan.shape[1])]
        crops = np.stack([g[0] for g in got])
        masked = np.stack([masked_face(g[0], g[4]) for g in got])[: cfg.shapes.masked_frames]
        bodies = [record.get("body_crops", {}).get((c, k), empty_body) for k in range(plan.shape[1])]
        image, layout = tile_superimage(crops)
        pos = plan[c]
        rows.append({**_ids(record["sample"]), "clip_index": c,
                     "frame_indices": record["frame_indices"][pos].astype(np.int32),
                     "timestamps_s": record["timestamps_s"][pos].astype(np.float32),
                     "face_boxes": np.stack([g[1] for g in got]).astype(np.float32),
                     "face_scores": np.array([g[2] for g in got], np.float32),
                     "face_found": [bool(g[3]) for g in got],
                     "keypoints": record["keypoints"][pos],
                     "superimage_png": encode_png(image),
                     "superimage_layout": json.dumps(layout, sort_keys=True),
                     "body_boxes": np.stack([b[1] for b in bodies]),
                     "fullbody_png": encode_png(tile_superimage(np.stack([b[0] for b in bodies]))[0]),
                     "faces": crops, "faces_masked": masked, "fullbody": np.stack([b[0] for b in bodies]),
                     "body": np.stack([black_out_face(b[0], b[1], g[1]) for b, g in zip(bodies, got)]),
                     "fold_index": fold_index(record["sample"])})
    return rows


def build_record(meta: dict[str, Any], poses: dict[int, tuple], frames: dict[int, np.ndarray],
                 cfg: ExtractConfig) -> tuple[dict[str, Any], dict]:
    """Assemble one sample after pose estimation.

    Args:
        meta: ``{"sample": Sample dict, "frame_indices": int32 [T'], "timestamps_s": float32
            [T'], "fps": float}`` from the decode stage.
        poses: ``{position: (pose_scores [P], keypoints [P, 17, 3])}`` for every sampled frame.
        frames: ``{position: uint8 [H, W, 3]}`` for the kept frames (:func:`kept_positions`).

    Returns:
        ``(record, head_crops)``: the record (meta plus OpenPose-18 ``keypoints`` [T', 18, 3],
        ``persons``, ``timeline``, ``clip_plan`` [C, K], ``head_boxes``, ``given_faces``) and the
        head crops ``{position: uint8 [S, S, 3]}`` to run the face detector on.

    Raises:
        ValueError: when a sampled frame has no pose result (a lost element).
    """
    n = len(meta["frame_indices"])
    missing = sorted(set(range(n)) - set(poses))
    if missing:
        raise ValueError(f"pose results missing for positions {missing[:5]}")
    tracks, persons = person_tracks([poses[i] for i in range(n)], cfg)
    op18 = coco17_to_openpose18(tracks[0])
    given = meta["sample"].get("box")
    if given is not None:  # annotated face box (AffectNet, RAF-DB, Friends): no detector needed
        crops, boxes, given_faces = {}, {}, given_faces_at(given, frames, n, cfg)
    else:
        (crops, boxes), given_faces = head_requests(tracks[0], frames, cfg), {}
    shape = next(iter(frames.values())).shape[:2] if frames else (0, 0)
    record = {**meta, "keypoints": op18, "persons": persons, "timeline": timeline_of(op18, cfg),
              "tracks": tracks, "pose_features": pose_features_of(tracks, meta["frame_indices"]),
              "frame_shape": np.array(meta.get("frame_shape", shape), np.int32),
              "clip_plan": clip_positions(n, cfg.clips, cfg.frames_per_clip), "head_boxes": boxes,
              "given_faces": given_faces, "body_crops": body_crops(tracks[0], frames, cfg)}
    return record, crops


def given_face_square(box, margin: float) -> np.ndarray:
    """Square crop box around an annotated face box (x1, y1, x2, y2), source pixels.

    Side ``sqrt((w + m)(h + m))`` with ``m = margin * (w + h)``, centred on the box: the Friends
    rule of ``JanghoonChoi/VTT_vid_emotion`` (seed spec 4.2, margin 0.3); for a square box it
    equals the static AffectNet / RAF-DB side ``w + margin (w + h)`` of seed 4.3 (margin 0.5).

    Returns:
        float32 [4] (x1, y1, x2, y2).

    Raises:
        ValueError: an empty or inverted box.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if not np.isfinite([x1, y1, x2, y2]).all():
        raise ValueError(f"face box {box} is not finite")
    if w <= 0 or h <= 0:
        raise ValueError(f"face box {box} is empty or inverted")
    m = margin * (w + h)
    side = float(np.sqrt((w + m) * (h + m)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def given_face(frame: np.ndarray, box, cfg: ExtractConfig) -> np.ndarray:
    """uint8 [S, S, 3] crop of an annotated face box ``(x1, y1, x2, y2)`` (source pixels) under
    ``cfg.face_crop``: ``given`` = :func:`given_face_square` with ``cfg.given_box_margin``,
    resampled with sub-pixel precision (:func:`pipelines.faces.crop_square`); ``vtt_friends`` /
    ``vtt_static`` = :func:`pipelines.represent.face_windows.face_crop` with rule ``friends`` /
    ``static`` (the VTT seed's integer centre and side, zero / mean-colour border,
    ``cv2.resize``; seed_specs 4.2-4.3).

    Raises:
        ValueError: an empty, inverted or non-finite box.
    """
    if cfg.face_crop == "given":
        return crop_square(frame, given_face_square(box, cfg.given_box_margin), cfg.face_size)
    rule = cfg.face_crop.removeprefix("vtt_")
    return face_windows.face_crop(frame, box, rule, cfg.face_size)


def given_faces_at(box, frames: dict[int, np.ndarray], num_frames: int, cfg: ExtractConfig) -> dict:
    """Face crops from an annotated box at every kept frame (:func:`kept_positions`):
    ``{position: (uint8 [S, S, 3], box float32 [4])}``, crop rule :func:`given_face`.

    The same box is used in every frame of the window (as the seed does for Friends windows), so
    a Friends window's clip faces equal
    :func:`pipelines.represent.face_windows.window_crops` of its frames.
    """
    out = {}
    for pos in sorted(kept_positions(num_frames, cfg)):
        if pos in frames:
            out[pos] = (given_face(frames[pos], box, cfg), np.asarray(box, np.float32))
    return out


def even_positions(num_frames: int, keep: int) -> np.ndarray:
    """``keep`` evenly spaced positions of a sequence (all of them when it is not longer).

    Returns:
        int64 [min(num_frames, keep)] increasing, starting at 0.
    """
    if num_frames <= keep:
        return np.arange(num_frames)
    return np.linspace(0, num_frames, keep, endpoint=False).astype(np.int64)


def skeleton_record(sample: dict[str, Any], joints: np.ndarray, cfg: ExtractConfig) -> dict[str, Any]:
    """Record of a skeleton sample (EWalk / ELMD gait, Emilya sheet): no decoding, no detection.

    Args:
        sample: the Sample dict.
        joints: float64 [T, V, 3] (x, y, z) in the corpus's units, V = ``cfg.joints``.

    Returns:
        The record :func:`video_row` / :func:`clip_rows` read: ``keypoints`` float32 [T', V, 3]
        (raw x, y, z at ``cfg.frames`` evenly spaced rows when T is longer), ``frame_indices``
        int32 [T'] (rows of the sequence), ``timestamps_s`` (rows / ``cfg.frame_rate``, NaN when
        unknown), ``persons`` (1 per frame), ``timeline`` float32 [2V, size, length] from the
        (x, y) of **all** T rows times ``cfg.coordinate_scale`` (seed spec 1.7), ``clip_plan``
        and no face requests.

    Raises:
        ValueError: ``joints`` is not [T >= 1, cfg.joints, 3].
    """
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[0] < 1 or joints.shape[1:] != (cfg.joints, 3):
        raise ValueError(f"{sample.get('uri')}: joints of shape {joints.shape}, expected [T, {cfg.joints}, 3]")
    keep = even_positions(len(joints), cfg.frames)
    fps = cfg.frame_rate if cfg.frame_rate > 0 else float("nan")
    timeline = skeleton_timeline(joints[..., :2] * cfg.coordinate_scale, size=cfg.timeline_size,
                                 length=cfg.timeline_length, pad=cfg.timeline_pad)
    return {"sample": sample, "frame_indices": keep.astype(np.int32), "timestamps_s": (keep / fps).astype(np.float32),
            "fps": fps, "keypoints": joints[keep].astype(np.float32), "persons": np.ones(len(keep), np.int16),
            "tracks": np.full((PERSONS, len(keep), 17, 3), np.nan, np.float32),
            "pose_features": np.zeros((64, PERSONS * 17 * 7), np.float32), "frame_shape": np.zeros(2, np.int32),
            "timeline": timeline, "clip_plan": clip_positions(len(keep), cfg.clips, cfg.frames_per_clip),
            "head_boxes": {}, "given_faces": {}}
