"""Appearance descriptors for re-identifying people across occlusions and shots.

No face-embedding network whose weights may ship could be had offline (``face-recognition-models``
holds dlib ``.dat`` files that need dlib or a port of its format; the OpenCV Zoo SFace ONNX file is
in no PyPI package; InsightFace's models are non-commercial), so the descriptor is a documented
hand-made one: **part-based HSV colour histograms** (colour indexing, M. J. Swain and D. H. Ballard,
"Color Indexing", IJCV 1991; parts of a person described by separate HSV histograms as in the
ELF / SDALF re-identification descriptors, D. Gray and H. Tao, ECCV 2008; M. Farenzena et al.,
"Person Re-Identification by Symmetry-Driven Accumulation of Local Features", CVPR 2010).

Parts (``x1, y1, x2, y2`` source pixels, clipped to the frame):

- ``kind="face"``: the **head** (the face box widened by 20 % and raised by 30 % of its height to
  take in hair) and the **torso** under it (twice the face width, from 0.3 to 2.3 face heights
  below the face box's bottom): clothes tell people apart where skin colours do not;
- ``kind="body"``: the upper and the lower half of the body box.

The V channel of the whole frame is first scaled to a mean of 128 (global gain normalisation, so
a fade or an exposure change does not move the bins). Each part gives a joint HSV histogram (``cv2.calcHist``, :data:`H_BINS` x :data:`S_BINS` x
:data:`V_BINS` bins over OpenCV's H 0-180, S 0-256, V 0-256) normalised to sum 1; its square root
(Hellinger map) makes the dot product of two parts their Bhattacharyya coefficient. The parts are
concatenated and L2-normalised, so the cosine similarity of two descriptors is the mean
Bhattacharyya coefficient of their parts (a part outside the frame is all zeros and counts 0).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["appearance_embeddings", "embedding_dim", "H_BINS", "S_BINS", "V_BINS"]

H_BINS, S_BINS, V_BINS = 16, 4, 4
_PART_DIM = H_BINS * S_BINS * V_BINS
#: Mean V (0-255) every frame is scaled to before the histograms (global gain normalisation).
_V_LEVEL = 128.0
#: Longest side (pixels) a part is resized to before its histogram (cost bound; histograms barely move).
_MAX_SIDE = 64


def embedding_dim(kind: str = "face") -> int:
    """D, the length of a descriptor of ``kind`` (two parts of 256 bins: 512)."""
    _check_kind(kind)
    return 2 * _PART_DIM


def _check_kind(kind: str) -> None:
    if kind not in ("face", "body"):
        raise ValueError(f"kind must be 'face' or 'body', got {kind!r}")


def _parts(box: np.ndarray, kind: str) -> list[tuple[float, float, float, float]]:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if kind == "body":
        return [(x1, y1, x2, y1 + h / 2), (x1, y1 + h / 2, x2, y2)]
    cx = (x1 + x2) / 2
    head = (cx - 0.6 * w, y1 - 0.3 * h, cx + 0.6 * w, y2)
    torso = (cx - w, y2 + 0.3 * h, cx + w, y2 + 2.3 * h)
    return [head, torso]


def _part_histogram(hsv: np.ndarray, part) -> np.ndarray:
    hgt, wid = hsv.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in part)
    x1, x2 = max(0, x1), min(wid, x2)
    y1, y2 = max(0, y1), min(hgt, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return np.zeros(_PART_DIM, np.float32)
    crop = hsv[y1:y2, x1:x2]
    scale = _MAX_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_NEAREST)
    hist = cv2.calcHist([crop], [0, 1, 2], None, [H_BINS, S_BINS, V_BINS], [0, 180, 0, 256, 0, 256]).ravel()
    return np.sqrt(hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def _gain_normalised_hsv(frame: np.ndarray) -> np.ndarray:
    """HSV of ``frame`` with V scaled so that the frame's mean V is :data:`_V_LEVEL`: a fade or an
    exposure change scales V of the whole frame and leaves H and S alone, so it moves no bin."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    level = float(hsv[..., 2].mean())
    if level >= 1.0:
        hsv[..., 2] = cv2.convertScaleAbs(hsv[..., 2], alpha=_V_LEVEL / level)
    return hsv


def appearance_embeddings(frame: np.ndarray, boxes: np.ndarray, kind: str = "face") -> np.ndarray:
    """Appearance descriptors of the people in ``boxes`` of one frame.

    Args:
        frame: uint8 ``[H, W, 3]`` **RGB**.
        boxes: float32 ``[N, 4]`` (x1, y1, x2, y2) source pixels (face boxes for ``"face"``,
            body boxes for ``"body"``); rows with a non-finite value or no area give zeros.
        kind: ``"face"`` (head + torso under it) or ``"body"`` (upper + lower half).

    Returns:
        float32 ``[N, D]`` (D = :func:`embedding_dim`), each row L2-normalised (all zeros when
        every part is empty); cosine similarity = mean Bhattacharyya coefficient of the parts.

    Raises:
        ValueError: ``frame`` not uint8 ``[H, W, 3]``, ``boxes`` not ``[N, >=4]``, unknown ``kind``.
    """
    _check_kind(kind)
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be uint8 [H, W, 3] RGB, got {frame.dtype} {frame.shape}")
    boxes = np.asarray(boxes, np.float32)
    boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"boxes must be [N, 4] (x1, y1, x2, y2), got shape {boxes.shape}")
    out = np.zeros((len(boxes), embedding_dim(kind)), np.float32)
    if not len(boxes):
        return out
    hsv = _gain_normalised_hsv(frame)
    for i, box in enumerate(boxes[:, :4]):
        if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            continue
        vec = np.concatenate([_part_histogram(hsv, p) for p in _parts(box, kind)])
        norm = float(np.linalg.norm(vec))
        out[i] = vec / norm if norm > 0 else vec
    return out
