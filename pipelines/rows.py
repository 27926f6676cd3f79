"""The shard rows of one sample: its ``videos`` row and its ``clips`` rows, with their arrays.

Made from a :class:`pipelines.record.SampleRecord` and the face detector's output; pure
functions (numpy in, dicts out), testable without Beam. Columns: :func:`schemas.shards.video_schema`,
:func:`schemas.shards.clip_schema`; HDF5 arrays: :data:`schemas.shards.H5_LAYOUT`.

Faces: ``faces`` maps a sampled-frame position to ``(head_crop uint8 [S, S, 3], detections
float32 [D, 17 or 15])`` (the face model's rows for the head crop
:func:`pipelines.assemble.head_requests` made at that position).
"""
from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np

from pipelines.config import ExtractConfig
from pipelines.crops import black_out_face, crop_to_source
from pipelines.faces import FACE_MARGIN, best_face, face_crop
from pipelines.persons import attribute_faces
from pipelines.record import SampleRecord
from pipelines.represent.segments import apply_face_mask, mask_landmarks
from pipelines.represent.superimage import tile_superimage

__all__ = ["sample_rows", "video_row", "clip_rows", "face_at", "face_pool_of", "masked_face", "landmarks_in_face_crop",
           "encode_png", "targets_vector", "annotation_columns", "fold_index"]


def _or_nan(value: float | None) -> float:
    """``value``, NaN for None (a 0.0 stays 0.0)."""
    return np.nan if value is None else value


def _pad(a: np.ndarray, length: int, fill) -> np.ndarray:
    out = np.full((length,) + a.shape[1:], fill, dtype=a.dtype)
    out[: len(a)] = a[:length]
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


def face_at(record: SampleRecord, faces: dict, pos: int, size: int) -> tuple:
    """The face of one sampled frame position: ``(face uint8 [size, size, 3], box float32 [4]
    source pixels (NaN = none), score, found, landmarks float32 [L, 2] face-crop pixels or None)``.

    One code path for the clip faces (``clips/faces`` at ``clip_plan[c, k]``) and the redraw pool
    (``videos/face_pool`` at every position), so both hold the same crop of a frame. An annotated
    box gives the crop directly (score 1 by convention, no landmarks); otherwise the best
    detection in the frame's head crop; a head crop without a detection gives the face region
    its keypoints predict with ``found`` False; a frame without a head crop gives zeros.
    """
    given = record.given_faces
    if pos in given:  # annotated face box: the crop is the face, no detector
        face, box = given[pos]
        return face, box, 1.0, True, None
    head_crop, detections = faces.get(pos, (None, None))
    return _face_of(head_crop, record.head_boxes.get(pos), detections, size)


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


def face_pool_of(record: SampleRecord, faces: dict, cfg: ExtractConfig) -> tuple[np.ndarray, np.ndarray]:
    """The SISTCM redraw pool of one sample: the face crop of every sampled frame.

    Returns:
        ``(pool uint8 [P, S, S, 3], found bool [P])`` with P = ``cfg.shapes.pool_frames`` (T when
        ``cfg.face_pool`` is on, else 0) and S = ``cfg.face_size``; row t is :func:`face_at` of
        position t (the same crop ``clips/faces`` holds at that position), zeros / False for
        positions past the decoded frames (padding) or without a head crop.
    """
    p, size = cfg.shapes.pool_frames, cfg.face_size
    pool, found = np.zeros((p, size, size, 3), np.uint8), np.zeros(p, bool)
    for pos in range(min(p, len(record.frame_indices))):
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


def sample_rows(record: SampleRecord, faces: dict, cfg: ExtractConfig) -> tuple[dict[str, Any], list[dict]]:
    """The ``videos`` row and the ``clips`` rows of one sample.

    The face detections are first narrowed to the main person's face at every position
    (:func:`pipelines.persons.attribute_faces`), so the clip faces, their super-image and the
    redraw pool hold one identity; ``clips/face_person`` records whose face each crop is.

    Args:
        faces: ``{position: (head_crop uint8 [S, S, 3], detections float32 [D, 17 or 15])}``.
    """
    attributed = attribute_faces(record, faces, cfg.min_keypoint_score)
    return (video_row(record, cfg, attributed.faces),
            clip_rows(record, attributed.faces, cfg, attributed.person))


def video_row(record: SampleRecord, cfg: ExtractConfig, faces: dict | None = None) -> dict[str, Any]:
    """The ``videos`` table row of one sample (see :func:`schemas.shards.video_schema`) plus the
    HDF5-only arrays ``face_pool`` / ``face_pool_found`` (:func:`face_pool_of`, from ``faces``:
    ``{position: (head_crop, detections)}``, as for :func:`clip_rows`).

    Requires every record field but ``clip_plan`` and ``body_crops``; per-frame arrays are padded
    to ``cfg.frames`` (frame indices -1, times / keypoints / tracks NaN, persons 0, shots -1,
    ``main_present`` False). ``main_present`` marks the frames where the main person (``tracks``
    row 0) has a pose; ``person_ids`` names each ``tracks`` row. An unknown
    ``end_s`` (None) is NaN; an ``end_s`` of 0.0 stays 0.0."""
    t = cfg.frames
    sample = record.sample
    return {**_ids(sample), "start_s": sample["start_s"], "end_s": _or_nan(sample["end_s"]),
            "fps": record.fps, "num_frames": len(record.frame_indices),
            "frame_indices": _pad(record.frame_indices, t, -1),
            "timestamps_s": _pad(record.timestamps_s, t, np.nan),
            "keypoints": _pad(record.keypoints, t, np.nan),
            "persons": _pad(record.persons, t, 0),
            "shots": _pad(record.shots.astype(np.int32), t, -1),
            "person_ids": record.person_ids.astype(np.int32),
            "main_present": _pad(np.isfinite(record.tracks[0, ..., 0]).any(axis=-1), t, False),
            "timeline": record.timeline, "frame_shape": record.frame_shape,
            "tracks": _pad(record.tracks.transpose(1, 0, 2, 3), t, np.nan).transpose(1, 0, 2, 3),
            "pose_features": record.pose_features, **annotation_columns(sample),
            "targets_vector": targets_vector(sample, len(cfg.label_names)), "fold_index": fold_index(sample),
            **dict(zip(("face_pool", "face_pool_found"), face_pool_of(record, faces or {}, cfg))),
            **_world_arrays(record, t)}


def _world_arrays(record: SampleRecord, frames: int) -> dict[str, np.ndarray]:
    """The HDF5-only 3-D datasets of a record made with a 3-D pose extractor (``joints3d``
    padded to ``frames`` with NaN, ``gait``, ``gait_embedding``); none for a 2-D one."""
    if record.joints3d is None:
        return {}
    joints = _pad(record.joints3d.transpose(1, 0, 2, 3), frames, np.nan).transpose(1, 0, 2, 3)
    return {"joints3d": joints, "gait": record.gait, "gait_embedding": record.gait_embedding}


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


def _face_person(record: SampleRecord, face_person: dict | None, pos: int, found: bool) -> int:
    """Person id of the face stored at ``pos``: 0 for an annotated box, -1 when no face was found."""
    if pos in record.given_faces:
        return 0
    return int((face_person or {}).get(pos, -1)) if found else -1


def clip_rows(record: SampleRecord, faces: dict, cfg: ExtractConfig,
              face_person: dict | None = None) -> list[dict[str, Any]]:
    """The ``clips`` table rows of one sample, with their face crops.

    Requires ``sample``, ``frame_indices``, ``timestamps_s``, ``keypoints``, ``clip_plan``,
    ``head_boxes``, ``given_faces`` and ``body_crops``.

    Args:
        record: the sample record.
        faces: ``{position: (head_crop uint8 [S, S, 3], detections float32 [D, 17 or 15])}``.
        face_person: ``{position: person id}`` of the face at each position
            (:func:`pipelines.persons.attribute_faces`); missing = -1, an annotated box = 0.

    Returns:
        One dict per clip with the columns of :func:`schemas.shards.clip_schema` plus the HDF5
        arrays ``faces`` uint8 [K, size, size, 3] (clip frame k is :func:`face_at` of position
        ``clip_plan[c, k]``), ``faces_masked`` uint8 [K', size, size, 3] (:func:`masked_face`;
        K' = K with ``cfg.face_mask``, else 0), ``fullbody`` and ``body``.
    """
    rows = []
    plan = record.clip_plan
    empty_body = (np.zeros((cfg.face_size, cfg.face_size, 3), np.uint8), np.full(4, np.nan, np.float32))
    for c in range(plan.shape[0]):
        got = [face_at(record, faces, int(plan[c, k]), cfg.face_size) for k in range(plan.shape[1])]
        crops = np.stack([g[0] for g in got])
        masked = np.stack([masked_face(g[0], g[4]) for g in got])[: cfg.shapes.masked_frames]
        bodies = [record.body_crops.get((c, k), empty_body) for k in range(plan.shape[1])]
        image, layout = tile_superimage(crops)
        pos = plan[c]
        rows.append({**_ids(record.sample), "clip_index": c,
                     "frame_indices": record.frame_indices[pos].astype(np.int32),
                     "timestamps_s": record.timestamps_s[pos].astype(np.float32),
                     "face_boxes": np.stack([g[1] for g in got]).astype(np.float32),
                     "face_scores": np.array([g[2] for g in got], np.float32),
                     "face_found": [bool(g[3]) for g in got],
                     "face_person": np.array([_face_person(record, face_person, int(p), g[3])
                                              for p, g in zip(pos, got)], np.int32),
                     "shots": record.shots[pos].astype(np.int32),
                     "keypoints": record.keypoints[pos],
                     "superimage_png": encode_png(image),
                     "superimage_layout": json.dumps(layout, sort_keys=True),
                     "body_boxes": np.stack([b[1] for b in bodies]),
                     "fullbody_png": encode_png(tile_superimage(np.stack([b[0] for b in bodies]))[0]),
                     "faces": crops, "faces_masked": masked, "fullbody": np.stack([b[0] for b in bodies]),
                     "body": np.stack([black_out_face(b[0], b[1], g[1]) for b, g in zip(bodies, got)]),
                     "fold_index": fold_index(record.sample)})
    return rows


