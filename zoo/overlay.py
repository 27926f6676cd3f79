"""Draw predictions onto video frames: face boxes with labels, body skeletons, overlay videos and
contact sheets (OpenCV drawing, ``cv2.VideoWriter`` with the ``mp4v`` codec).

An *annotation* is a plain dict (what :mod:`zoo.predict` produces per sampled frame)::

    {"box": [x1, y1, x2, y2] | None,          # source pixels
     "label": "id 0 happy 0.91",              # text drawn above the box (or top-left)
     "id": 0,                                 # picks the colour
     "keypoints": float32 [18, 3] | None}     # OpenPose-18 (x, y, score) source pixels, NaN absent

Annotations are keyed by the 0-based frame index of the video they belong to.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from schemas.keypoints import LAYOUTS

__all__ = ["OPENPOSE18_LIMBS", "draw_annotations", "write_overlay", "write_contact_sheet"]

#: Limbs of the OpenPose-18 skeleton drawn by :func:`draw_annotations` (pairs of joint indices):
#: the layout's edges from :mod:`schemas.keypoints`.
OPENPOSE18_LIMBS = LAYOUTS["openpose18"].edges

# RGB colours, picked by annotation id.
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _colour(ident) -> tuple[int, int, int]:
    return _PALETTE[int(ident or 0) % len(_PALETTE)]


def _label(img: np.ndarray, text: str, x: int, y: int, colour) -> None:
    scale = max(0.4, img.shape[0] / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(th + base, y)
    cv2.rectangle(img, (x, y - th - base), (x + tw + 2, y), colour, -1)
    cv2.putText(img, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _skeleton(img: np.ndarray, keypoints: np.ndarray, colour, min_score: float) -> None:
    kp = np.asarray(keypoints, np.float32)
    ok = np.isfinite(kp).all(axis=1) & (np.nan_to_num(kp[:, 2]) >= min_score)
    thick = max(1, img.shape[0] // 240)
    for a, b in OPENPOSE18_LIMBS:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(int(v) for v in kp[a, :2]), tuple(int(v) for v in kp[b, :2]), colour, thick,
                     cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(img, (int(kp[j, 0]), int(kp[j, 1])), thick + 1, colour, -1, cv2.LINE_AA)


def draw_annotations(frame_rgb: np.ndarray, annotations: Iterable[Mapping], min_score: float = 0.2) -> np.ndarray:
    """Draw boxes, labels and skeletons on a copy of one frame.

    Args:
        frame_rgb: uint8 [H, W, 3] RGB.
        annotations: dicts as described in the module docstring.
        min_score: keypoints below this score are not drawn.

    Returns:
        uint8 [H, W, 3] RGB copy with the drawings.
    """
    img = np.ascontiguousarray(frame_rgb).copy()
    thick = max(1, img.shape[0] // 360)
    for i, ann in enumerate(annotations):
        colour = _colour(ann.get("id", i))
        if ann.get("keypoints") is not None:
            _skeleton(img, ann["keypoints"], colour, min_score)
        box = ann.get("box")
        if box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
            if ann.get("label"):
                _label(img, ann["label"], x1, y1 - 2, colour)
        elif ann.get("label"):
            _label(img, ann["label"], 4, 4 + 24 * (i + 1), colour)
    return img


def _held(annotations: Mapping[int, list], frame_indices: Sequence[int]) -> dict[int, list]:
    """For each frame index, the annotations of the latest annotated frame at or before it."""
    keys = np.array(sorted(annotations), dtype=np.int64)
    out = {}
    for f in frame_indices:
        pos = np.searchsorted(keys, f, side="right") - 1
        out[f] = annotations[int(keys[pos])] if pos >= 0 else []
    return out


def write_overlay(video: str | Path, annotations: Mapping[int, list], out: str | Path,
                  chunk_frames: int = 32, min_score: float = 0.2) -> Path:
    """Render every frame of ``video`` with its annotations into an mp4 (``mp4v``) at the video's fps.

    Each frame shows the annotations of the latest annotated frame at or before it (so
    predictions on sampled frames are held until the next sampled frame; an annotated frame
    with an empty list clears them). The video is decoded with decord ``chunk_frames`` frames
    at a time (never whole).

    Args:
        video: source video path.
        annotations: ``{frame index: [annotation, ...]}``.
        out: output path (parent folders are created).

    Returns:
        ``Path(out)``.

    Raises:
        pipelines.decode.DecodeError: the video cannot be opened or decoded.
        RuntimeError: OpenCV cannot open a writer for ``out``.
    """
    from pipelines.decode import DecodeError

    import decord

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        reader = decord.VideoReader(str(video), ctx=decord.cpu(0), num_threads=1)
        fps, n = float(reader.get_avg_fps()), len(reader)
        h, w = reader[0].shape[:2]
    except Exception as exc:  # decord raises DECORDError / RuntimeError
        raise DecodeError(f"{video}: cannot open video for the overlay: {exc}") from exc
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{out}: OpenCV cannot write an mp4v video here")
    try:
        for start in range(0, n, chunk_frames):
            idx = list(range(start, min(n, start + chunk_frames)))
            try:
                frames = reader.get_batch(idx).asnumpy()
            except Exception as exc:
                raise DecodeError(f"{video}: decoding frames {idx[0]}-{idx[-1]} for the overlay failed: {exc}") from exc
            held = _held(annotations, idx) if annotations else {i: [] for i in idx}
            for i, frame in zip(idx, frames):
                writer.write(cv2.cvtColor(draw_annotations(frame, held[i], min_score), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return out


def write_contact_sheet(video: str | Path, annotations: Mapping[int, list], out: str | Path,
                        max_tiles: int = 12, columns: int = 4, tile_width: int = 320,
                        min_score: float = 0.2) -> Path:
    """Save a PNG grid of annotated frames of ``video``.

    Up to ``max_tiles`` of the annotated frame indices, evenly spread, are decoded (one decord
    batch), annotated, resized to ``tile_width`` pixels wide, labelled with their frame index
    and tiled ``columns`` per row (row-major, black padding).

    Args:
        video: source video path.
        annotations: ``{frame index: [annotation, ...]}``; frames without an entry are not shown.
        out: PNG path.

    Returns:
        ``Path(out)``.

    Raises:
        pipelines.decode.DecodeError: the video cannot be decoded.
        ValueError: ``annotations`` is empty.
        RuntimeError: the PNG cannot be written.
    """
    from pipelines.decode import DecodeError

    import decord

    if not annotations:
        raise ValueError(f"{video}: no sampled frames to put on a contact sheet")
    keys = sorted(annotations)
    pick = sorted({keys[int(round(i))] for i in np.linspace(0, len(keys) - 1, min(max_tiles, len(keys)))})
    try:
        frames = decord.VideoReader(str(video), ctx=decord.cpu(0), num_threads=1).get_batch(pick).asnumpy()
    except Exception as exc:
        raise DecodeError(f"{video}: cannot decode frames for the contact sheet: {exc}") from exc
    tiles = []
    for f, frame in zip(pick, frames):
        img = draw_annotations(frame, annotations[f], min_score)
        h = int(round(img.shape[0] * tile_width / img.shape[1]))
        img = cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA)
        _label(img, f"frame {f}", 2, img.shape[0] - 2, (255, 255, 255))
        tiles.append(img)
    th = max(t.shape[0] for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * th, min(columns, len(tiles)) * tile_width, 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * th:r * th + t.shape[0], c * tile_width:(c + 1) * tile_width] = t
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"{out}: cannot write the contact sheet PNG")
    return out
