"""Face regions for the main person: head crops from body keypoints, face crops from detections.

Small faces in full frames are beyond the BlazeFace front model (trained for faces filling more
than ~20 % of the image). affectzoo therefore runs face detection on a square **head crop**
placed from the person's COCO-17 head and shoulder keypoints, sized so that the face fills about
a quarter of it, and maps the detections back to source pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipelines.decoders import MAX_FRAME_PIXELS
from schemas.keypoints import COCO17_HEAD

HEAD_CROP_SIZE = 256       # pixels of the head crop handed to the face detector
FACE_MARGIN = 1.2          # face crop side = margin x detected box side
#: Largest crop :func:`crop_square` makes (size x size pixels): four times the frame cap, so the
#: whole-frame square of any frame within :data:`MAX_FRAME_PIXELS` up to a 4:1 aspect ratio fits
#: (7680 x 2160 -> 7680^2), while a 1 x 100000 frame (100000^2 x 3 bytes = 28 GiB) is refused.
MAX_CROP_PIXELS = 4 * MAX_FRAME_PIXELS


class CropTooLarge(ValueError):
    """A requested crop would exceed :data:`MAX_CROP_PIXELS` (an extreme aspect ratio or size)."""


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


def _check_crop_size(frame: np.ndarray, size: int) -> None:
    if size < 1 or size * size > MAX_CROP_PIXELS:
        h, w = frame.shape[:2]
        raise CropTooLarge(f"a {size}x{size} crop of a {w}x{h} frame is refused: more than the crop limit of "
                           f"{MAX_CROP_PIXELS} pixels (the frame's aspect ratio or size is extreme)"
                           if size >= 1 else f"crop size must be >= 1, got {size}")


def _shifted_copy(frame: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
    """``frame[y0:y0+size, x0:x0+size]`` with black outside the frame (a unit-scale crop).

    Raises:
        CropTooLarge: ``size * size`` exceeds :data:`MAX_CROP_PIXELS` (checked before allocating).
    """
    _check_crop_size(frame, size)
    out = np.zeros((size, size) + frame.shape[2:], frame.dtype)
    h, w = frame.shape[:2]
    ys, xs = slice(max(y0, 0), min(y0 + size, h)), slice(max(x0, 0), min(x0 + size, w))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0] = frame[ys, xs]
    return out


def crop_square(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Crop ``box`` from ``frame`` and resize it to ``size`` x ``size``; outside pixels are black.

    Args:
        frame: uint8 [H, W, 3].
        box: (x1, y1, x2, y2) in pixels, square or not (resized without keeping aspect).

    Returns:
        uint8 [size, size, 3].

    Raises:
        CropTooLarge: ``size * size`` exceeds :data:`MAX_CROP_PIXELS` (nothing is allocated;
            e.g. the whole-frame square of a 1 x 100000 frame).
    """
    _check_crop_size(frame, int(size))
    x1, y1, x2, y2 = box
    sx, sy = size / max(x2 - x1, 1e-6), size / max(y2 - y1, 1e-6)
    if sx == 1 and sy == 1 and float(x1).is_integer() and float(y1).is_integer():
        return _shifted_copy(frame, int(x1), int(y1), size)  # what warpAffine gives, without resampling
    affine = np.array([[sx, 0, -x1 * sx], [0, sy, -y1 * sy]], dtype=np.float64)
    interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, affine, (size, size), flags=interp,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_to_source(box_in_crop: np.ndarray, crop_box: np.ndarray, crop_size: int) -> np.ndarray:
    """Map (x1, y1, x2, y2) from head-crop pixels back to source pixels."""
    x1, y1, x2, y2 = crop_box
    scale = np.array([(x2 - x1), (y2 - y1)] * 2, np.float32) / crop_size
    return box_in_crop[:4] * scale + np.array([x1, y1, x1, y1], np.float32)


def best_face(detections: np.ndarray) -> np.ndarray | None:
    """The highest-scoring detection row of ``float32 [D, 17]`` (None when D = 0)."""
    if detections is None or len(detections) == 0:
        return None
    return detections[int(np.argmax(detections[:, 4]))]


def face_crop(head_crop: np.ndarray, box_in_crop: np.ndarray, size: int) -> np.ndarray:
    """Square face crop of side ``FACE_MARGIN`` x the box's larger side, resized to ``size``.

    Args:
        head_crop: uint8 [S, S, 3].
        box_in_crop: (x1, y1, x2, y2) in head-crop pixels.

    Returns:
        uint8 [size, size, 3].
    """
    x1, y1, x2, y2 = box_in_crop[:4]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = FACE_MARGIN * max(x2 - x1, y2 - y1) / 2
    return crop_square(head_crop, np.array([cx - half, cy - half, cx + half, cy + half]), size)
