"""The stored face crops of a sample: the clip faces, the SISTCM redraw pool, the masked faces.

One code path (:func:`face_at`) gives the face crop of a sampled-frame position, so the clip
faces (``clips/faces`` at ``clip_plan[c, k]``) and the redraw pool (``videos/face_pool`` at every
position) hold the same crop of a frame. The crop geometry is :mod:`pipelines.crops`
(:func:`pipelines.crops.face_box_crop`, :func:`pipelines.crops.landmarks_in_face_crop`).

Faces: ``faces`` maps a sampled-frame position to ``(head_crop uint8 [S, S, 3], detections
float32 [D, 17 or 15])`` (the face model's rows for the head crop
:func:`pipelines.assemble.head_requests` made at that position).
"""
from __future__ import annotations

import numpy as np

from pipelines.crops import crop_to_source, face_box_crop, landmarks_in_face_crop
from pipelines.faces import best_face
from pipelines.represent.segments import apply_face_mask, mask_landmarks

__all__ = ["face_at", "face_pool_of", "masked_face", "face_person_at"]


def _face_of(crop, crop_box, detections, size):
    """(face uint8 [size, size, 3], box_src [4], score, found, landmarks) for one frame.

    ``crop_box`` is ``(box in source pixels, kind)``: ``head`` crops come from keypoints,
    ``frame`` crops are the whole (letterboxed) frame. ``landmarks`` are the detection's face
    keypoints in face-crop pixels (:func:`pipelines.crops.landmarks_in_face_crop`), None without
    a detection.
    """
    empty = np.zeros((size, size, 3), np.uint8), np.full(4, np.nan, np.float32), 0.0, False, None
    if crop is None:
        return empty
    (src_box, kind), side = crop_box, crop.shape[0]
    best = best_face(detections)
    if best is not None:
        return (face_box_crop(crop, best, size), crop_to_source(best, src_box, side), float(best[4]), True,
                landmarks_in_face_crop(best, size))
    if kind == "frame":
        return empty
    # not confirmed by the detector: the face region the keypoints predict (centre half)
    q = side / 4
    box_crop = np.array([q, q, 3 * q, 3 * q], np.float32)
    return face_box_crop(crop, box_crop, size), crop_to_source(box_crop, src_box, side), 0.0, False, None


def face_at(record, faces: dict, pos: int, size: int) -> tuple:
    """The face of one sampled frame position of a :class:`pipelines.record.SampleRecord`:
    ``(face uint8 [size, size, 3], box float32 [4] source pixels (NaN = none), score, found,
    landmarks float32 [L, 2] face-crop pixels or None)``.

    An annotated box gives the crop directly (score 1 by convention, no landmarks); otherwise the
    best detection in the frame's head crop; a head crop without a detection gives the face
    region its keypoints predict with ``found`` False; a frame without a head crop gives zeros.
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


def face_pool_of(record, faces: dict, cfg) -> tuple[np.ndarray, np.ndarray]:
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


def face_person_at(record, face_person: dict | None, pos: int, found: bool) -> int:
    """Person id of the face stored at ``pos``: 0 for an annotated box, -1 when no face was found."""
    if pos in record.given_faces:
        return 0
    return int((face_person or {}).get(pos, -1)) if found else -1
