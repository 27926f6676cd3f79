"""Video decoding with decord, following a sample's sampling plan."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def decode_window(uri: str, start_s: float, length_s: float, sample_fps: float) -> DecodedWindow:
    """Decode one window of ``uri`` with decord at ``sample_fps`` frames per second.

    The container is detected from content by FFmpeg (never from the file extension).

    Raises:
        DecodeError: missing file, unreadable container, no video stream, or a window that
            starts after the end of the video.
    """
    import decord  # imported here: the decoder is only needed in the workers that decode

    try:
        reader = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=1)
        fps = float(reader.get_avg_fps())
        n_video = len(reader)
    except Exception as exc:  # decord raises DECORDError / RuntimeError subclasses
        raise DecodeError(f"{uri}: cannot open video: {exc}") from exc
    if not math.isfinite(fps) or fps <= 0 or n_video <= 0:
        raise DecodeError(f"{uri}: no usable video stream (fps={fps}, frames={n_video})")
    idx = plan_window(start_s, length_s, sample_fps, fps, n_video)
    if idx.size == 0:
        raise DecodeError(f"{uri}: window starting at {start_s:.3f} s is past the end ({n_video / fps:.3f} s)")
    try:
        frames = reader.get_batch(idx.tolist()).asnumpy()
    except Exception as exc:
        raise DecodeError(f"{uri}: decoding frames {idx[0]}-{idx[-1]} failed: {exc}") from exc
    return DecodedWindow(idx, (idx / fps).astype(np.float32), frames, fps, n_video)


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
