"""VTT face windows: 4 consecutive frames around an annotated frame, one square face crop each.

Source: JanghoonChoi/VTT_vid_emotion@e142d7d (seed_specs §4.2-§4.4): ``parse_friends_new.ipynb``
(window and crop of the Friends clips that train the causal-TSM ResNet-18, input
``[B, T=4, 3, 224, 224]``), ``data_loader.py`` (the static AffectNet/RAF crop), ``utils.py crop_img``
(centred crop with padding) and ``extract_Friends.py`` (frame files ``%05d.jpg`` numbered from 0,
so the seed's frame numbers are 0-based decoder indices).

**Window.** For the annotated frame ``p``: frames ``p - 2, p - 1, p, p + 1`` (``p - size//2 + i``;
the annotated frame is the third, so a causal model sees two frames before it and one after).
The seed reads the files without any check (a window that leaves the video fails there);
:func:`pipelines.sampling.window_frames` clamps such indices to the first / last frame
(``clamp=True``, our rule) or raises.

**Square crop** (:func:`pipelines.crops.vtt_square_side`, :func:`pipelines.crops.vtt_square_centre`,
:func:`pipelines.crops.crop_centred_padded`), box ``[x1, y1, x2, y2]`` with ``w = x2 - x1``,
``h = y2 - y1``, centre ``(int(x1 + w/2), int(y1 + h/2))`` (``int`` truncates):

- ``rule="static"`` (AffectNet / RAF static sampler, §4.3, no augmentation jitter): side
  ``int(w + (w + h) * 0.5)`` (the seed computes ``sqrt((w+m)(w+m))`` with ``m = 0.5 (w+h)``: its
  ``h`` never enters except through ``m``, QUIRK); border filled with the mean colour of a 10 x 10
  grid of the in-image part (``mfill=True``).
- ``rule="friends"`` (the Friends windows, §4.2): side ``int(sqrt((w+m)(h+m)))`` with
  ``m = 0.3 (w + h)``; border filled with zeros. The seed's windows use this rule.

The crop spans columns ``cx - side//2 .. cx + (side - side//2) - 1`` (same for rows); the part
outside the image is padded, so the crop is always ``side x side``. It is then resized to
``size x size`` (224) with ``cv2.resize`` (bilinear). The same box (the annotated frame's) is used
for every frame of the window.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from pipelines.crops import crop_centred_padded, vtt_square_centre, vtt_square_side
from pipelines.sampling import VTT_WINDOW_SIZE, window_frames

__all__ = [
    "WINDOW_SIZE",
    "CROP_SIZE",
    "timecode_to_frame",
    "vtt_face_crop",
    "window_crops",
]

WINDOW_SIZE = VTT_WINDOW_SIZE
CROP_SIZE = 224


def timecode_to_frame(timecode: str, fps: int = 24) -> int:
    """Frame number of a Friends annotation time ``"HH:MM:SS;FF"`` (``hmsf_to_fnum``, 24 fps).

    Raises:
        ValueError: not of the form ``HH:MM:SS;FF``.
    """
    try:
        hms, frames = timecode.split(";")
        h, m, s = (int(v) for v in hms.split(":"))
        return (h * 3600 + m * 60 + s) * fps + int(frames)
    except ValueError:
        raise ValueError(f"timecode must be 'HH:MM:SS;FF', got {timecode!r}") from None


def vtt_face_crop(frame: np.ndarray, box, rule: str = "friends", size: int = CROP_SIZE) -> np.ndarray:
    """Square face crop of one frame under ``rule``, resized to ``size x size`` (bilinear).

    Args:
        frame: ``uint8 [H, W, 3]`` RGB. box: face ``[x1, y1, x2, y2]`` in pixels.
    Returns:
        ``[size, size, 3]`` of the frame's dtype.
    Raises:
        ValueError: bad box or rule (see :func:`pipelines.crops.vtt_square_side`).
    """
    side = vtt_square_side(box, rule)
    cx, cy = vtt_square_centre(box)
    crop = crop_centred_padded(frame, cx, cy, max(side, 1), "mean" if rule == "static" else "zero")
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def window_crops(frames: Sequence[np.ndarray] | np.ndarray, frame: int, box, rule: str = "friends",
                 size: int = CROP_SIZE, window: int = WINDOW_SIZE, clamp: bool = True) -> np.ndarray:
    """The VTT model input of one annotation: ``[window, size, size, 3]`` face crops.

    Args:
        frames: the video's frames, indexable by 0-based frame number (``[N, H, W, 3]`` or a list).
        frame: the annotated frame; box: its face box ``[x1, y1, x2, y2]`` (used for all frames).
        rule, size: see :func:`vtt_face_crop`; window, clamp: see :func:`pipelines.sampling.window_frames`.

    Returns:
        ``[window, size, size, 3]`` in window order (``p-2, p-1, p, p+1``).
    """
    idx = window_frames(frame, len(frames), window, clamp)
    return np.stack([vtt_face_crop(frames[int(i)], box, rule, size) for i in idx])
