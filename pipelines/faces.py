"""Face regions for the main person: head crops from body keypoints, face crops from detections.

Small faces in full frames are beyond the BlazeFace front model (trained for faces filling more
than ~20 % of the image). affectzoo therefore runs face detection on a square **head crop**
placed from the person's COCO-17 head and shoulder keypoints, sized so that the face fills about
a quarter of it, and maps the detections back to source pixels
(:func:`pipelines.crops.crop_to_source`). The crop geometry itself is in :mod:`pipelines.crops`
(the face crop around a detection: :func:`pipelines.crops.face_box_crop`, side
:data:`pipelines.crops.FACE_MARGIN` x the box).
"""
from __future__ import annotations

import numpy as np

from pipelines.crops import FACE_MARGIN
from schemas.keypoints import COCO17_HEAD

__all__ = ["HEAD_CROP_SIZE", "FACE_MARGIN", "head_box", "best_face"]

HEAD_CROP_SIZE = 256       # pixels of the head crop handed to the face detector


def head_box(pose: np.ndarray, min_score: float = 0.2) -> np.ndarray | None:
    """Square head region from COCO-17 keypoints.

    The centre is the mean of the confident head joints (nose, eyes, ears); the estimated face
    side is ``max(2 x head-joint extent, 0.5 x shoulder width, 12 px)`` and the region is twice
    that, so the face fills about 25 % of its area.

    Args:
        pose: ``float32 [17, 3]`` (x, y, score) in source pixels.

    Returns:
        ``float32 [4]`` (x1, y1, x2, y2) in source pixels (may extend past the image), or None
        when no head joint is confident.
    """
    head = pose[list(COCO17_HEAD)]
    ok = np.nan_to_num(head[:, 2], nan=0.0) >= min_score
    if not ok.any():
        return None
    xy = head[ok, :2]
    centre = xy.mean(axis=0)
    extent = float(np.max(xy.max(axis=0) - xy.min(axis=0))) if ok.sum() > 1 else 0.0
    shoulders = pose[[5, 6]]
    width = 0.0
    if np.all(np.nan_to_num(shoulders[:, 2], nan=0.0) >= min_score):
        width = float(np.hypot(*(shoulders[0, :2] - shoulders[1, :2])))
    face_side = max(2.0 * extent, 0.5 * width, 12.0)
    half = face_side  # region side = 2 x face side
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half], np.float32)


def best_face(detections: np.ndarray) -> np.ndarray | None:
    """The highest-scoring detection row of ``float32 [D, 17]`` (None when D = 0)."""
    if detections is None or len(detections) == 0:
        return None
    return detections[int(np.argmax(detections[:, 4]))]
