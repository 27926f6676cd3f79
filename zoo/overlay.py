"""Draw predictions onto video frames: face boxes with labels, body skeletons, overlay videos and
contact sheets (OpenCV drawing; videos decoded through :mod:`pipelines.decoders`, PyAV by
default; overlays encoded with PyAV in H.264 (``libx264``) when the FFmpeg build has an H.264
encoder, else MPEG-4 Part 2).

An *annotation* is a plain dict (what :mod:`zoo.predict` produces per sampled frame)::

    {"box": [x1, y1, x2, y2] | None,          # source pixels
     "label": "id 0 happy 0.91",              # text drawn above the box (or top-left)
     "id": 0,                                 # picks the colour
     "keypoints": float32 [V, 3] | None}      # (x, y, score) source pixels, NaN absent; V = 18
                                              # OpenPose-18, 17 COCO-17 (bones by joint count)

Annotations are keyed by the 0-based frame index of the video they belong to. Photos
(:mod:`zoo.predict.photos`) get a PNG each (:func:`write_image_overlay`) and a contact sheet of
fitted tiles (:func:`image_tile`, :func:`write_tile_sheet`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np

from schemas.keypoints import LAYOUTS

__all__ = ["OPENPOSE18_LIMBS", "draw_annotations", "write_overlay", "write_contact_sheet", "sheet_frames",
           "VIDEO_CODECS", "encode_overlay", "write_image_overlay", "image_tile", "write_tile_sheet"]

#: Limbs of the OpenPose-18 skeleton drawn by :func:`draw_annotations` (pairs of joint indices):
#: the layout's edges from :mod:`schemas.keypoints`.
OPENPOSE18_LIMBS = LAYOUTS["openpose18"].edges
#: Bones by joint count: OpenPose-18 (the pipeline's stored keypoints) and COCO-17 (PoseNet's own).
_LIMBS_BY_JOINTS = {18: OPENPOSE18_LIMBS, 17: LAYOUTS["coco17"].edges, 33: LAYOUTS["blazepose33"].edges}
#: Overlay encoders tried in order (FFmpeg encoder names through PyAV): H.264 plays in browsers;
#: MPEG-4 Part 2 is the fallback of FFmpeg builds without an H.264 encoder.
VIDEO_CODECS = ("libx264", "h264", "mpeg4")

# RGB colours, picked by annotation id.
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _colour(ident) -> tuple[int, int, int]:
    return _PALETTE[int(ident or 0) % len(_PALETTE)]


def _label(img: np.ndarray, text: str, x: int, y: int, colour) -> None:
    scale = max(0.45, img.shape[0] / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(th + base, y)
    cv2.rectangle(img, (x, y - th - base), (x + tw + 2, y), colour, -1)
    cv2.putText(img, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _skeleton(img: np.ndarray, keypoints: np.ndarray, colour, min_score: float) -> None:
    kp = np.asarray(keypoints, np.float32)
    ok = np.isfinite(kp).all(axis=1) & (np.nan_to_num(kp[:, 2]) >= min_score)
    thick = max(1, img.shape[0] // 240)
    for a, b in _LIMBS_BY_JOINTS.get(len(kp), ()):
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


def _open(video, decoder: str):
    from pipelines.decoders import make_decoder

    dec = make_decoder(decoder)
    info = dec.open(str(video))
    return dec, info


def _encoder(path: Path, fps: float, width: int, height: int):
    """``(container, stream)`` of the first of :data:`VIDEO_CODECS` this FFmpeg build has."""
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(100000)
    last = None
    for codec in VIDEO_CODECS:
        try:
            av.codec.Codec(codec, "w")
        except Exception as exc:  # noqa: BLE001 - the build lacks this encoder
            last = exc
            continue
        container = av.open(str(path), "w")
        try:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec in ("libx264", "h264"):
                stream.options = {"crf": "18", "preset": "veryfast"}
            return container, stream
        except Exception as exc:  # noqa: BLE001
            container.close()
            last = exc
    raise RuntimeError(f"{path}: no video encoder among {', '.join(VIDEO_CODECS)} in this FFmpeg build ({last})")


def write_overlay(video: str | Path, annotations: Mapping[int, list], out: str | Path,
                  chunk_frames: int = 32, min_score: float = 0.2, decoder: str = "pyav") -> Path:
    """Render every frame of ``video`` with its annotations into an mp4 at the video's fps.

    Each frame shows the annotations of the latest annotated frame at or before it (so
    predictions on sampled frames are held until the next sampled frame; an annotated frame
    with an empty list clears them). The video is decoded with the ``decoder`` back-end of
    :mod:`pipelines.decoders`, ``chunk_frames`` frames at a time (never whole), and encoded in
    H.264 (yuv420p, CRF 18) when FFmpeg has an encoder (:data:`VIDEO_CODECS`); odd frame sizes
    are padded by one black pixel row / column (yuv420p needs even sizes).

    Args:
        video: source video path.
        annotations: ``{frame index: [annotation, ...]}``.
        out: output path (parent folders are created).

    Returns:
        ``Path(out)``.

    Raises:
        pipelines.decoders.DecodeError: the video cannot be opened or decoded.
        RuntimeError: no encoder, or the output cannot be written.
    """
    from pipelines.decode import VideoPlan, iter_chunks

    dec, info = _open(video, decoder)
    n, h, w = info.num_frames, info.height, info.width
    with dec:
        plan = VideoPlan(str(video), info.fps, n, np.arange(n, dtype=np.int64), w, h)
        return encode_overlay(iter_chunks(dec, plan, chunk_frames), info.fps, (h, w), annotations, out, min_score)


def encode_overlay(chunks: Iterable[tuple[int, np.ndarray]], fps: float, size: tuple[int, int],
                   annotations: Mapping[int, list], out: str | Path, min_score: float = 0.2) -> Path:
    """Encode frames with their (held) annotations into an mp4, as :func:`write_overlay` describes.

    Args:
        chunks: ``(index of the first frame, uint8 [c, H, W, 3] RGB frames)`` in order, every frame
            once (a decoder's :func:`pipelines.decode.iter_chunks`, or a folder of frame images).
        fps: frame rate of the output. size: ``(H, W)`` of the frames.

    Raises:
        RuntimeError: no encoder, or the output cannot be written.
    """
    import av

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    eh, ew = h + h % 2, w + w % 2
    try:
        container, stream = _encoder(out, fps, ew, eh)
    except (OSError, av.FFmpegError) as exc:
        raise RuntimeError(f"{out}: cannot write the overlay video: {exc}") from exc
    try:
        for lo, frames in chunks:
            idx = list(range(lo, lo + len(frames)))
            held = _held(annotations, idx) if annotations else {i: [] for i in idx}
            for i, frame in zip(idx, frames):
                img = draw_annotations(frame, held[i], min_score)
                if (eh, ew) != (h, w):
                    img = np.pad(img, ((0, eh - h), (0, ew - w), (0, 0)))
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return out


def sheet_frames(frames: Sequence[int], max_tiles: int = 24) -> tuple[list[int], list[int]]:
    """``(shown, left_out)``: at most ``max_tiles`` of the sampled ``frames``, evenly spread (all
    of them when they fit), and the ones left out."""
    keys = sorted(int(f) for f in frames)
    if len(keys) <= max_tiles:
        return keys, []
    pick = sorted({keys[int(round(i))] for i in np.linspace(0, len(keys) - 1, max_tiles)})
    chosen = set(pick)
    return pick, [k for k in keys if k not in chosen]


def _scaled(ann: Mapping, f: float) -> dict:
    out = dict(ann)
    if ann.get("box") is not None:
        out["box"] = [float(v) * f for v in ann["box"]]
    if ann.get("keypoints") is not None:
        kp = np.array(ann["keypoints"], np.float32)
        kp[:, :2] *= f
        out["keypoints"] = kp
    return out


def write_contact_sheet(video: str | Path, annotations: Mapping[int, list], out: str | Path,
                        max_tiles: int = 24, columns: Optional[int] = None, tile_width: Optional[int] = None,
                        min_score: float = 0.2, decoder: str = "pyav") -> Path:
    """Save a PNG grid of annotated frames of ``video``, sized by its content.

    Every annotated (sampled) frame is shown when there are at most ``max_tiles``; otherwise
    ``max_tiles`` evenly spread ones, and a footer line names how many were left out
    (:func:`sheet_frames` gives the lists). Frames are resized to the tile first and the
    annotations drawn at tile scale, so labels stay readable on any input size (1080p included).
    Tiles are ``tile_width`` pixels wide (default: the source width, at most 480 and at least
    240), ``columns`` per row (default: up to 4, fewer for few frames).

    Args:
        video: source video path.
        annotations: ``{frame index: [annotation, ...]}``; frames without an entry are not shown.
        out: PNG path.

    Returns:
        ``Path(out)``.

    Raises:
        pipelines.decoders.DecodeError: the video cannot be decoded.
        ValueError: ``annotations`` is empty.
        RuntimeError: the PNG cannot be written.
    """
    if not annotations:
        raise ValueError(f"{video}: no sampled frames to put on a contact sheet")
    pick, left_out = sheet_frames(list(annotations), max_tiles)
    dec, info = _open(video, decoder)
    with dec:
        frames = dec.get_batch(pick)
    tw = int(tile_width or min(info.width, max(240, min(480, info.width))))
    scale = tw / info.width
    th = max(1, int(round(info.height * scale)))
    cols = int(columns or min(4, len(pick)))
    tiles = []
    for f, frame in zip(pick, frames):
        img = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
        img = draw_annotations(img, [_scaled(a, scale) for a in annotations[f]], min_score)
        _label(img, f"frame {f}", 2, img.shape[0] - 2, (255, 255, 255))
        tiles.append(img)
    footer = None
    if left_out:
        footer = f"{len(pick)} of {len(pick) + len(left_out)} sampled frames shown ({len(left_out)} left out)"
    return write_tile_sheet(tiles, out, cols, footer)


def write_image_overlay(image_rgb: np.ndarray, annotations: Iterable[Mapping], out: str | Path,
                        min_score: float = 0.2) -> Path:
    """Save one photo with its annotations drawn as a PNG, at the photo's own (displayed) size.

    Args:
        image_rgb: uint8 [H, W, 3] RGB (as :func:`pipelines.images.load_image` gives it).
        annotations: dicts as described in the module docstring, in the photo's pixels.
        out: PNG path (parent folders are created).

    Returns:
        ``Path(out)``.

    Raises:
        RuntimeError: the PNG cannot be written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    img = draw_annotations(image_rgb, annotations, min_score)
    if not cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise RuntimeError(f"{out}: cannot write the overlay PNG")
    return out


def image_tile(image_rgb: np.ndarray, annotations: Iterable[Mapping], title: str, size: tuple[int, int] = (320, 240),
               min_score: float = 0.2) -> np.ndarray:
    """One contact-sheet tile of a photo of any size: fitted into ``size`` (width, height) pixels
    with its aspect ratio kept (black bars), annotations drawn at tile scale, ``title`` at the foot.

    Returns:
        uint8 [height, width, 3] RGB.
    """
    tw, th = size
    h, w = image_rgb.shape[:2]
    scale = min(tw / w, th / h)
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    img = cv2.resize(image_rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    img = draw_annotations(img, [_scaled(a, scale) for a in annotations], min_score)
    tile = np.zeros((th, tw, 3), np.uint8)
    y0, x0 = (th - sh) // 2, (tw - sw) // 2
    tile[y0:y0 + sh, x0:x0 + sw] = img
    _label(tile, title, 2, th - 2, (255, 255, 255))
    return tile


def write_tile_sheet(tiles: Sequence[np.ndarray], out: str | Path, columns: Optional[int] = None,
                     footer: Optional[str] = None) -> Path:
    """Save equal-size tiles (:func:`image_tile`) as a PNG grid, ``columns`` per row (default up to 4),
    with an optional ``footer`` line (e.g. how many were left out).

    Raises:
        ValueError: no tile. RuntimeError: the PNG cannot be written.
    """
    if not tiles:
        raise ValueError(f"{out}: no image to put on a contact sheet")
    th, tw = tiles[0].shape[:2]
    cols = int(columns or min(4, len(tiles)))
    rows = -(-len(tiles) // cols)
    extra = 28 if footer else 0
    sheet = np.zeros((rows * th + extra, cols * tw, 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = t
    if footer:
        cv2.putText(sheet, footer, (6, sheet.shape[0] - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"{out}: cannot write the contact sheet PNG")
    return out
