"""Crop geometry: cut a region out of a frame, map boxes between crop and source pixels.

Two ways to cut a square, named by what they do (they give different pixels on purpose):

* :func:`crop_box_resized`: a float box (x1, y1, x2, y2) resampled to ``size x size`` with one
  affine warp (sub-pixel precise, black outside the frame); head crops, face crops, body crops
  and annotated face boxes of the pipeline.
* :func:`crop_region`: an integer region sliced out as it is (the TSN crops of
  :mod:`pipelines.represent.segments`).
* :func:`crop_centred_padded`: an integer ``side x side`` window centred on a pixel, copied
  without resampling and padded with zeros or the mean colour; the VTT seed's ``crop_img``
  (:mod:`pipelines.represent.face_windows` resizes it afterwards with ``cv2.resize``).

Boxes around a region: :func:`square_around` (a region made square), :func:`given_face_square`
(the square around an annotated face box with a margin, VTT / static rules of seed 4.2-4.3),
:func:`face_box_crop` (the square around a detection).

The seeds' own integer rules: the TSN regions (:func:`expand_box`, :func:`face_region`,
:func:`body_region`, :func:`zero_region`; seed_specs 3.3) and the VTT squares
(:func:`vtt_square_side`, :func:`vtt_square_centre`; seed_specs 4.2-4.3).

Frames are ``[H, W, C]`` arrays (uint8 RGB in the pipeline); boxes are (x1, y1, x2, y2) pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipelines.decoders import MAX_FRAME_PIXELS

__all__ = ["MAX_CROP_PIXELS", "FACE_MARGIN", "CropTooLarge", "crop_box_resized", "crop_centred_padded",
           "crop_to_source", "square_around", "black_out_face", "face_box_crop", "landmarks_in_face_crop",
           "crop_region", "expand_box", "face_region", "body_region", "zero_region", "SQUARE_RULES",
           "vtt_square_side", "vtt_square_centre"]

#: Side of a face crop around a detection, as a multiple of the detected box's larger side.
FACE_MARGIN = 1.2

#: Largest crop :func:`crop_box_resized` makes (size x size pixels): four times the frame cap, so
#: the whole-frame square of any frame within :data:`MAX_FRAME_PIXELS` up to a 4:1 aspect ratio fits
#: (7680 x 2160 -> 7680^2), while a 1 x 100000 frame (100000^2 x 3 bytes = 28 GiB) is refused.
MAX_CROP_PIXELS = 4 * MAX_FRAME_PIXELS


class CropTooLarge(ValueError):
    """A requested crop would exceed :data:`MAX_CROP_PIXELS` (an extreme aspect ratio or size)."""


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


def crop_box_resized(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Crop ``box`` from ``frame`` and resize it to ``size`` x ``size``; outside pixels are black.

    One ``cv2.warpAffine`` (``INTER_AREA`` when shrinking, else ``INTER_LINEAR``); a unit-scale
    box on whole pixels is copied instead (the same pixels, without resampling).

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


def _mean_colour(inside: np.ndarray) -> np.ndarray:
    """float64 [C]: mean colour of ``inside`` [h, w, C] sampled on a 10 x 10 grid (rows / columns
    ``linspace(0, n, 10, endpoint=False).astype(int)``)."""
    rows = np.linspace(0, inside.shape[0], 10, endpoint=False).astype(int)
    cols = np.linspace(0, inside.shape[1], 10, endpoint=False).astype(int)
    return inside[rows][:, cols].reshape(-1, inside.shape[2]).astype(np.float64).mean(axis=0)


def crop_centred_padded(frame: np.ndarray, cx: int, cy: int, side: int, fill: str = "zero") -> np.ndarray:
    """Square ``side x side`` crop centred on pixel ``(cx, cy)``, padded where it leaves the frame
    (no resampling: the VTT seed's ``utils.py crop_img``).

    Args:
        frame: ``[H, W, C]`` (any dtype).
        cx, cy: centre pixel; the crop covers columns ``cx - side//2 .. cx + side - side//2 - 1``.
        side: crop side (>= 1).
        fill: ``zero`` or ``mean`` = the mean colour of the in-image part sampled on a 10 x 10 grid
            (rows / columns ``linspace(0, n, 10, endpoint=False).astype(int)``), rounded for
            integer frames; zeros when the crop misses the frame entirely.

    Returns:
        ``[side, side, C]`` of the frame's dtype.

    Raises:
        ValueError: ``side < 1``, unknown fill, frame not ``[H, W, C]``.
    """
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    if fill not in ("zero", "mean"):
        raise ValueError(f"fill must be 'zero' or 'mean', got {fill!r}")
    if frame.ndim != 3:
        raise ValueError(f"frame must be [H, W, C], got shape {frame.shape}")
    h, w = frame.shape[:2]
    x0, y0 = cx - side // 2, cy - side // 2
    xs, xe = max(x0, 0), min(x0 + side, w)
    ys, ye = max(y0, 0), min(y0 + side, h)
    out = np.zeros((side, side, frame.shape[2]), frame.dtype)
    if xe <= xs or ye <= ys:
        return out
    inside = frame[ys:ye, xs:xe]
    if fill == "mean":
        colour = _mean_colour(inside)
        out[:] = np.rint(colour) if np.issubdtype(frame.dtype, np.integer) else colour
    out[ys - y0:ye - y0, xs - x0:xe - x0] = inside
    return out


def crop_to_source(box_in_crop: np.ndarray, crop_box: np.ndarray, crop_size: int) -> np.ndarray:
    """Map (x1, y1, x2, y2) from the pixels of a ``crop_size`` crop of ``crop_box``
    (:func:`crop_box_resized`) back to source pixels: float32 [4]."""
    x1, y1, x2, y2 = crop_box
    scale = np.array([(x2 - x1), (y2 - y1)] * 2, np.float32) / crop_size
    return box_in_crop[:4] * scale + np.array([x1, y1, x1, y1], np.float32)


def square_around(region: tuple[int, int, int, int]) -> np.ndarray:
    """float32 [4] square box (x1, y1, x2, y2) with the region's centre and its longer side."""
    left, top, right, bottom = region
    side = max(right - left, bottom - top, 1)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


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


def black_out_face(crop: np.ndarray, crop_box: np.ndarray, face_box: np.ndarray) -> np.ndarray:
    """The TSN ``body`` input (seed_specs 3.3): a body crop with the face region, the face box
    grown 10 % of its width / height per side, set to 0. Returns a copy.

    Args:
        crop: uint8 [S, S, 3] taken from ``crop_box`` (x1, y1, x2, y2 source pixels).
        face_box: (x1, y1, x2, y2) source pixels; NaN = no face (nothing is blacked out).
    """
    if not np.isfinite(face_box).all() or not np.isfinite(crop_box).all():
        return crop.copy()
    side = crop.shape[0]
    scale = side / max(float(crop_box[2] - crop_box[0]), 1e-6)
    w, h = face_box[2] - face_box[0], face_box[3] - face_box[1]
    grown = np.array([face_box[0] - 0.1 * w, face_box[1] - 0.1 * h, face_box[2] + 0.1 * w, face_box[3] + 0.1 * h])
    x1, y1, x2, y2 = np.clip(np.round((grown - np.tile(crop_box[:2], 2)) * scale), 0, side).astype(int)
    return zero_region(crop, (x1, y1, x2, y2))


def face_box_crop(head_crop: np.ndarray, box_in_crop: np.ndarray, size: int) -> np.ndarray:
    """Square face crop around a detection: side ``FACE_MARGIN`` x the box's larger side, same
    centre, resized to ``size`` (:func:`crop_box_resized`).

    Args:
        head_crop: uint8 [S, S, 3] (the head crop the face detector ran on).
        box_in_crop: (x1, y1, x2, y2, ...) in head-crop pixels (a detection row).

    Returns:
        uint8 [size, size, 3].
    """
    x1, y1, x2, y2 = box_in_crop[:4]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = FACE_MARGIN * max(x2 - x1, y2 - y1) / 2
    return crop_box_resized(head_crop, np.array([cx - half, cy - half, cx + half, cy + half]), size)


def landmarks_in_face_crop(detection: np.ndarray, size: int) -> np.ndarray:
    """The detector's face keypoints mapped into the pixels of :func:`face_box_crop`.

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


def crop_region(frame: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    """``frame[top:bottom, left:right]`` (a copy, no resampling); the whole frame when ``region``
    (left, top, right, bottom integer pixels) is None or empty."""
    if region is None:
        return frame.copy()
    left, top, right, bottom = region
    if right <= left or bottom <= top:
        return frame.copy()
    return frame[top:bottom, left:right].copy()


# ------------------------------------------------------- TSN regions (seed_specs 3.3)

def expand_box(box, frame_hw: tuple[int, int], ratio: float = 0.1) -> tuple[int, int, int, int]:
    """The seed's region rule (``get_bounding_box(..., format="PIL")``) for a float box.

    Args:
        box: ``[x1, y1, x2, y2]`` in pixels (min/max of the points).
        frame_hw: ``(H, W)`` of the frame.
        ratio: growth per side, as a fraction of the rounded width / height (0.1 in the seed).

    Returns:
        ``(left, top, right, bottom)`` ints; rows ``top:bottom`` and columns ``left:right`` of the
        frame. Corners are rounded with ``round`` (half to even), the margins are
        ``round(ratio * (x2 - x1))`` and ``round(ratio * (y2 - y1))`` of the rounded corners, and
        the result is clamped to ``[0, W] x [0, H]``.
    Raises:
        ValueError: a coordinate is not finite.
    """
    b = np.asarray(box, np.float64)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"box must be 4 finite numbers [x1, y1, x2, y2], got {box}")
    x1, y1, x2, y2 = (int(round(float(v))) for v in b)
    ex, ey = int(round(ratio * (x2 - x1))), int(round(ratio * (y2 - y1)))
    h, w = frame_hw
    return max(0, x1 - ex), max(0, y1 - ey), min(x2 + ex, w), min(y2 + ey, h)


def face_region(face_box, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """:func:`expand_box` of a face box ``[x1, y1, x2, y2]``; None when the box is missing or NaN."""
    if face_box is None or not np.isfinite(np.asarray(face_box, np.float64)).all():
        return None
    return expand_box(face_box, frame_hw)


def body_region(keypoints: np.ndarray, frame_hw: tuple[int, int],
                min_score: float = 0.5) -> tuple[int, int, int, int] | None:
    """:func:`expand_box` of the bounding box of the valid body keypoints.

    Args:
        keypoints: ``[V, 3]`` (x, y, score) pixels, NaN where absent.
        min_score: joints below it are left out (0.5 = the seed's MediaPipe visibility cut).
    Returns:
        The region, or None when no joint is valid.
    Raises:
        ValueError: keypoints not ``[V, 3]``.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 2 or kp.shape[1] != 3:
        raise ValueError(f"keypoints must be [V, 3] (x, y, score), got shape {kp.shape}")
    ok = np.isfinite(kp[:, :2]).all(axis=1) & (np.nan_to_num(kp[:, 2], nan=-1.0) >= min_score)
    if not ok.any():
        return None
    xy = kp[ok, :2]
    return expand_box([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], frame_hw)


def zero_region(frame: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    """``frame`` with ``frame[top:bottom, left:right]`` set to 0 (the TSN ``body`` and ``fusion``
    inputs black out the face region, seed_specs 3.3). Returns a copy; ``frame`` itself (not a
    copy) when ``region`` (left, top, right, bottom integer pixels) is None."""
    if region is None:
        return frame
    left, top, right, bottom = region
    out = frame.copy()
    out[top:bottom, left:right] = 0
    return out


# ------------------------------------------------- VTT squares (seed_specs 4.2-4.3)

#: The VTT seed's square-crop rules: ``static`` (AffectNet / RAF-DB) and ``friends``.
SQUARE_RULES = ("static", "friends")


def _wh(box) -> tuple[float, float, float, float]:
    b = np.asarray(box, np.float64)
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"box must be finite [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {box}")
    return float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])


def vtt_square_side(box, rule: str = "friends") -> int:
    """Side in pixels of the VTT seed's square crop of ``box`` (``[x1, y1, x2, y2]``) under
    ``rule`` (seed_specs 4.2-4.3; cut with :func:`crop_centred_padded`).

    ``static``: ``int(w + (w + h) * 0.5)``; ``friends``: ``int(sqrt((w + m)(h + m)))``,
    ``m = 0.3 (w + h)``. Raises ValueError for an unknown rule or an empty / non-finite box.
    """
    _, _, w, h = _wh(box)
    if rule == "static":
        return int(w + (w + h) * 0.5)
    if rule == "friends":
        m = (w + h) * 0.3
        return int(np.sqrt((w + m) * (h + m)))
    raise ValueError(f"rule must be one of {SQUARE_RULES}, got {rule!r}")


def vtt_square_centre(box) -> tuple[int, int]:
    """Integer crop centre ``(int(x1 + w/2), int(y1 + h/2))`` (truncation, as the seed)."""
    x1, y1, w, h = _wh(box)
    return int(x1 + w / 2.0), int(y1 + h / 2.0)
