"""Video decoding: sampling plans and chunked decoding with decord.

Two layers here, a third in :mod:`pipelines.isolated_decoder`:

* :func:`plan_window` / :func:`clip_positions`: pure sampling plans (frame indices).
* :func:`open_video` + :func:`iter_chunks`: decode the planned frames with decord in chunks of
  at most ``chunk_frames`` frames, so a long window (or a whole video) is never held in memory
  at once; :func:`decode_window` collects one (short) window.
* :class:`pipelines.isolated_decoder.IsolatedDecoder`: the same decoding in a separate,
  persistent child process that decodes ahead of its consumer; a decoder that crashes or hangs
  on a corrupt file loses only that file. The pipeline's ``Decode`` stage uses it.

Before any frame is decoded, the frame size is probed from the container header (OpenCV's
FFmpeg backend) and a video whose frames exceed :data:`MAX_FRAME_PIXELS` is refused.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

#: Frames per decoded chunk (``uint8 [chunk, H, W, 3]``): 32 frames are 28 MB at 640x480 and
#: 200 MB at 1080p; a 2 s window at 15 frames/s is one chunk.
CHUNK_FRAMES = 32
#: Largest frame (width x height) the decoder accepts: twice 4K UHD (3840 x 2160 x 2).
MAX_FRAME_PIXELS = 3840 * 2160 * 2


class DecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class DecodedWindow:
    """Frames sampled from one window of a video.

    Attributes:
        frame_indices: int32 [T'] 0-based indices into the video (T' <= planned T when the
            video ends early).
        timestamps_s: float32 [T'] seconds, ``index / avg_fps`` (AVI timestamps from the
            container are unreliable, see shared data README).
        frames: uint8 [T', H, W, 3] RGB.
        fps: decord's average frame rate.
        num_video_frames: frames in the whole video.
    """

    frame_indices: np.ndarray
    timestamps_s: np.ndarray
    frames: np.ndarray
    fps: float
    num_video_frames: int


@dataclass(frozen=True)
class VideoPlan:
    """What will be decoded from one video: its frame rate, length and the planned indices.

    Attributes:
        uri: the video file.
        fps: decord's average frame rate (frames per second).
        num_video_frames: frames in the whole video.
        frame_indices: int32 [T'] planned 0-based frame indices (non-empty).
        width, height: frame size in pixels from the container header (0 when unknown).
    """

    uri: str
    fps: float
    num_video_frames: int
    frame_indices: np.ndarray
    width: int = 0
    height: int = 0

    @property
    def timestamps_s(self) -> np.ndarray:
        """float32 [T'] seconds of the planned frames, ``index / fps``."""
        return (self.frame_indices / self.fps).astype(np.float32)


def plan_window(start_s: float, length_s: float, sample_fps: float, fps: float, n_video: int) -> np.ndarray:
    """Frame indices of a window sampled at ``sample_fps``.

    Frame ``i`` of the plan is the video frame shown at ``start_s + i / sample_fps``
    (``floor(t * fps)``); indices past the end of the video are dropped.

    Returns:
        int32 [T'] with ``T' <= round(length_s * sample_fps)``, non-decreasing.
    """
    count = int(round(length_s * sample_fps))
    times = start_s + np.arange(count) / sample_fps
    idx = np.floor(times * fps + 1e-6).astype(np.int64)
    return idx[idx < n_video].astype(np.int32)


def probe_header(uri: str) -> tuple[int, int, int]:
    """``(width, height, declared_frames)`` from the container header (OpenCV's FFmpeg backend).

    Nothing is decoded. Zeros when the header cannot be read (decord then gives the reason).
    """
    import cv2

    cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return 0, 0, 0
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(frames) if math.isfinite(frames) and frames > 0 else 0)
    finally:
        cap.release()


def _truncated(declared: int, present: int) -> bool:
    """The header promises clearly more frames than the file holds (a few frames of slack)."""
    return declared - present > max(2, declared // 100)


def open_video(uri: str, window: tuple[float, float, float] | None = None,
               frame_indices: Sequence[int] = (), max_pixels: int = MAX_FRAME_PIXELS):
    """Open ``uri`` with decord and plan the frames to decode.

    Args:
        window: ``(start_s, length_s, sample_fps)``: sample a window (see :func:`plan_window`).
        frame_indices: explicit 0-based frames instead (indices past the end are dropped).
        max_pixels: refuse frames larger than this (width x height, from the header).

    Returns:
        ``(reader, plan)``: the decord ``VideoReader`` and a :class:`VideoPlan`.

    Raises:
        DecodeError: a folder or other non-regular file, unreadable container, no video stream, frames larger
            than ``max_pixels``, a truncated file (the header declares clearly more frames than
            decord finds) whose missing part the plan needs, or nothing of the plan inside the
            video.
    """
    import decord  # imported here: the decoder is only needed in the processes that decode

    if os.path.isdir(uri):
        raise DecodeError(f"{uri}: is a directory, not a video file")
    if not os.path.exists(uri):
        raise DecodeError(f"{uri}: cannot open video: no such file")
    if not os.path.isfile(uri):  # FIFOs, devices, sockets: reading them can block forever
        raise DecodeError(f"{uri}: not a regular file (a FIFO, device or socket)")
    if not os.access(uri, os.R_OK):
        raise DecodeError(f"{uri}: cannot open video: permission denied")
    if os.path.getsize(uri) == 0:
        raise DecodeError(f"{uri}: cannot open video: the file is empty (0 bytes)")
    width, height, declared = probe_header(uri)
    if width * height > max_pixels:
        raise DecodeError(f"{uri}: frame size {width}x{height} exceeds the decoder limit of "
                          f"{max_pixels} pixels")
    try:
        reader = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=1)
        fps = float(reader.get_avg_fps())
        n_video = len(reader)
    except Exception as exc:  # decord raises DECORDError / RuntimeError subclasses
        raise DecodeError(f"{uri}: cannot open video: {exc}") from exc
    if n_video <= 0 or not frame_indices and (not math.isfinite(fps) or fps <= 0):
        raise DecodeError(f"{uri}: no usable video stream (fps={fps}, frames={n_video})")
    if frame_indices:
        fps = fps if math.isfinite(fps) and fps > 0 else float("nan")
        wanted = np.asarray(frame_indices, np.int64)
    else:
        start_s, length_s, sample_fps = window
        wanted = plan_window(start_s, length_s, sample_fps, fps, max(n_video, declared))
    lost = wanted[(wanted >= n_video) & (wanted < declared)]
    if lost.size and _truncated(declared, n_video):
        raise DecodeError(f"{uri}: truncated file: the container declares {declared} frames but only {n_video} "
                          f"can be decoded, and frame {int(lost[0])} is needed")
    idx = wanted[(wanted >= 0) & (wanted < n_video)].astype(np.int32)
    if idx.size == 0:
        if frame_indices:
            raise DecodeError(f"{uri}: frames {list(frame_indices)[:4]} are past the end ({n_video} frames)")
        raise DecodeError(f"{uri}: window starting at {start_s:.3f} s is past the end ({n_video / fps:.3f} s)")
    return reader, VideoPlan(uri, fps, n_video, idx, width, height)


def iter_chunks(reader, plan: VideoPlan, chunk_frames: int = CHUNK_FRAMES,
                start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``plan.frame_indices[start:]`` in chunks.

    decord's threaded decoder keeps decoding ahead of the last request while the consumer is
    busy (measured: the reader grew to 0.9-1.8 GB on a 640x360 video when chunks were consumed
    slowly). Between chunks the reader is therefore re-seeked to frame 0, which empties that
    queue; the next chunk then decodes again from its key frame (about +60 % decode time for
    dense 30 frames/s plans, nothing for plans that fit in one chunk).

    Yields:
        ``(first_position, frames uint8 [n <= chunk_frames, H, W, 3] RGB)`` in plan order;
        ``first_position`` is the plan position of the chunk's first frame.

    Raises:
        DecodeError: decord failed on a chunk (message names the file and the frames).
    """
    idx = plan.frame_indices
    for lo in range(start, len(idx), chunk_frames):
        part = idx[lo: lo + chunk_frames]
        try:
            frames = reader.get_batch(part.tolist()).asnumpy()
            if lo + chunk_frames < len(idx):
                reader.seek(0)  # stop the read-ahead while this chunk is consumed
        except Exception as exc:
            raise DecodeError(f"{plan.uri}: decoding frames {part[0]}-{part[-1]} failed: {exc}") from exc
        if frames.ndim != 4 or frames.shape[0] != len(part) or frames.shape[-1] != 3:
            raise DecodeError(f"{plan.uri}: decoder returned frames of shape {frames.shape} for {len(part)} frames")
        yield lo, frames


def decode_window(uri: str, start_s: float, length_s: float, sample_fps: float) -> DecodedWindow:
    """Decode one window of ``uri`` with decord at ``sample_fps`` frames per second (in this process).

    The container is detected from content by FFmpeg (never from the file extension). Meant for
    short windows: the frames are stacked (``uint8 [T', H, W, 3]``); stream long ones with
    :func:`iter_chunks` or :class:`IsolatedDecoder`.

    Raises:
        DecodeError: missing file, unreadable container, no video stream, or a window that
            starts after the end of the video.
    """
    reader, plan = open_video(uri, window=(start_s, length_s, sample_fps))
    frames = np.concatenate([f for _, f in iter_chunks(reader, plan)])
    return DecodedWindow(plan.frame_indices, plan.timestamps_s, frames, plan.fps, plan.num_video_frames)


# --- decoder back-ends behind one interface (compared in bench/pipeline.py) ---------------------


def _frames_decord(uri: str, indices: np.ndarray) -> np.ndarray:
    import decord

    reader = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch(indices.tolist()).asnumpy()


def _frames_opencv(uri: str, indices: np.ndarray) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise DecodeError(f"{uri}: OpenCV cannot open the video")
    out, pos = [], 0
    try:
        for i in indices.tolist():
            if i < pos or i - pos > 64:  # far ahead or backwards: seek; near: grab forward
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                pos = i
            while pos < i:
                cap.grab()
                pos += 1
            ok, bgr = cap.read()
            pos += 1
            if not ok:
                raise DecodeError(f"{uri}: OpenCV could not decode frame {i}")
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return np.stack(out)


def _frames_pyav(uri: str, indices: np.ndarray) -> np.ndarray:
    import av  # PyAV: optional, not in requirements.lock

    wanted, out = set(indices.tolist()), {}
    with av.open(uri) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n in wanted:
                out[n] = frame.to_ndarray(format="rgb24")
            if n >= indices.max():
                break
    return np.stack([out[i] for i in indices.tolist()])


def _frames_torchcodec(uri: str, indices: np.ndarray) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder  # optional, not in requirements.lock

    batch = VideoDecoder(uri).get_frames_at(indices.tolist())
    return batch.data.permute(0, 2, 3, 1).numpy()


#: Decoder back-ends: ``name -> fn(uri, int indices [N]) -> uint8 [N, H, W, 3] RGB``. The
#: pipeline uses decord (fastest reliable one measured in bench/results_pipeline.md); the others
#: are there to compare and to switch if decord is unavailable on a platform.
DECODER_BACKENDS = {"decord": _frames_decord, "opencv": _frames_opencv, "pyav": _frames_pyav,
                    "torchcodec": _frames_torchcodec}
_BACKEND_MODULES = {"decord": "decord", "opencv": "cv2", "pyav": "av", "torchcodec": "torchcodec"}


def available_backends() -> dict[str, bool]:
    """Which :data:`DECODER_BACKENDS` can be imported here (``name -> installed``)."""
    import importlib.util

    return {name: importlib.util.find_spec(mod) is not None for name, mod in _BACKEND_MODULES.items()}


def read_frames(uri: str, indices: Sequence[int], backend: str = "decord") -> np.ndarray:
    """Decode the given 0-based frames of ``uri`` with one of :data:`DECODER_BACKENDS` (in process).

    Returns:
        uint8 [N, H, W, 3] RGB, in the order of ``indices``.

    Raises:
        KeyError: unknown back-end name.
        ImportError: the back-end's package is not installed (the message names it).
        DecodeError: the back-end failed (the message names the file).
    """
    if backend not in DECODER_BACKENDS:
        raise KeyError(f"unknown decoder back-end {backend!r}; known: {sorted(DECODER_BACKENDS)}")
    if not available_backends()[backend]:
        raise ImportError(f"decoder back-end {backend!r} needs the package {_BACKEND_MODULES[backend]!r}, "
                          "which is not installed")
    idx = np.asarray(indices, np.int64)
    try:
        return DECODER_BACKENDS[backend](uri, idx)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every back-end has its own error types
        raise DecodeError(f"{uri}: {backend} failed: {type(exc).__name__}: {exc}") from exc


def clip_positions(num_frames: int, clips: int, frames_per_clip: int) -> np.ndarray:
    """Deterministic C x K frame plan over a sequence (FER_BGER ``sample_video``, seed_specs §1.1).

    Clip j covers positions ``[j * inter, (j + 1) * inter)`` with ``inter = num_frames // C``
    (the last clip runs to the end); inside a clip of length n, frame k is position
    ``int(n / K * k)``. Sequences shorter than ``C * K`` repeat the last frame (as the seed's
    padding does).

    Returns:
        int64 [C, K] positions into the sequence (0-based).

    Raises:
        ValueError: ``num_frames < 1``.
    """
    if num_frames < 1:
        raise ValueError("clip_positions needs at least one frame")
    if num_frames <= clips * frames_per_clip:
        flat = np.minimum(np.arange(clips * frames_per_clip), num_frames - 1)
        return flat.reshape(clips, frames_per_clip)
    inter = num_frames // clips
    out = np.empty((clips, frames_per_clip), dtype=np.int64)
    for j in range(clips):
        lo = j * inter
        hi = num_frames if j == clips - 1 else (j + 1) * inter
        seg = (hi - lo) / frames_per_clip
        out[j] = [lo + min(int(seg * k), hi - lo - 1) for k in range(frames_per_clip)]
    return out

