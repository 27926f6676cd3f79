"""Video decoding: the planned frames of a video, decoded in chunks.

Two layers here; the frame plans themselves (:func:`pipelines.sampling.plan_window`, the C x K
clip plan, ...) live in :mod:`pipelines.sampling`:

* :func:`open_video` + :func:`iter_chunks`: decode the planned frames in chunks of
  at most ``chunk_frames`` frames, so a long window (or a whole video) is never held in memory
  at once; :func:`decode_window` collects one (short) window.
* :class:`pipelines.isolated_decoder.IsolatedDecoder`: the same decoding in a separate,
  persistent child process that decodes ahead of its consumer; a decoder that crashes or hangs
  on a corrupt file loses only that file. The pipeline's ``Decode`` stage uses it.

Decoding goes through one interface, :class:`pipelines.decoders.FrameDecoder` (PyAV by
default, :data:`DEFAULT_BACKEND`; decord and OpenCV give identical frames on normal files, their
deviations are listed in ``tests/test_decoder_conformance.py``). Frame ``i`` is the ``i``-th frame
FFmpeg shows (:mod:`pipelines.frame_index`); the header's frame count is a hint, used only to
name a truncated file. Before any frame is decoded, a video whose frames exceed
:data:`MAX_FRAME_PIXELS` is refused.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from pipelines.decoders import (DEFAULT_BACKEND, MAX_FRAME_PIXELS, DecodeError, FrameDecoder, looks_truncated,
                                make_decoder)
from pipelines.sampling import plan_window

#: Frames per decoded chunk (``uint8 [chunk, H, W, 3]``): 32 frames are 28 MB at 640x480 and
#: 200 MB at 1080p; a 2 s window at 15 frames/s is one chunk.
CHUNK_FRAMES = 32
__all__ = ["CHUNK_FRAMES", "DEFAULT_BACKEND", "MAX_FRAME_PIXELS", "DecodeError", "DecodedWindow", "VideoPlan",
           "decode_window", "iter_chunks", "open_video"]
# DEFAULT_BACKEND (PyAV) is defined once, in pipelines.decoders, and re-exported here for the pipeline.


@dataclass(frozen=True)
class DecodedWindow:
    """Frames sampled from one window of a video.

    Attributes:
        frame_indices: int32 [T'] 0-based indices into the video (T' <= planned T when the
            video ends early).
        timestamps_s: float32 [T'] seconds, ``index / avg_fps`` (AVI timestamps from the
            container are unreliable, see shared data README).
        frames: uint8 [T', H, W, 3] RGB.
        fps: the container's average frame rate (frames per second).
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
        fps: the container's average frame rate (frames per second).
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


def open_video(uri: str, window: tuple[float, float, float] | None = None,
               frame_indices: Sequence[int] = (), max_pixels: int = MAX_FRAME_PIXELS,
               backend: str = DEFAULT_BACKEND) -> tuple[FrameDecoder, VideoPlan]:
    """Open ``uri`` with a decoder back-end and plan the frames to decode.

    Args:
        window: ``(start_s, length_s, sample_fps)``: sample a window
            (:func:`pipelines.sampling.plan_window`).
        frame_indices: explicit 0-based frames instead (indices past the end are dropped).
        max_pixels: refuse frames larger than this (width x height, from the header).
        backend: a key of :data:`pipelines.decoders.DECODER_BACKENDS` (frames are identical
            across back-ends; see ``tests/test_decoders.py``).

    Returns:
        ``(decoder, plan)``: the open :class:`pipelines.decoders.FrameDecoder` and a
        :class:`VideoPlan`.

    Raises:
        DecodeError: a folder or other non-regular file, unreadable container, no video stream, frames larger
            than ``max_pixels``, a truncated file (the header declares clearly more frames than
            the container holds packets) whose missing part the plan needs, or nothing of the plan
            inside the video.
        KeyError: unknown back-end; ImportError: its package is missing.
    """
    decoder = make_decoder(backend, max_pixels=max_pixels)
    info = decoder.open(uri)
    fps, n_video, declared = info.fps, info.num_frames, info.declared_frames
    if not frame_indices and (not math.isfinite(fps) or fps <= 0):
        decoder.close()
        raise DecodeError(f"{uri}: no usable video stream (fps={fps}, frames={n_video})")
    if frame_indices:
        wanted = np.asarray(frame_indices, np.int64)
    else:
        start_s, length_s, sample_fps = window
        wanted = plan_window(start_s, length_s, sample_fps, fps, max(n_video, declared))
    lost = wanted[(wanted >= n_video) & (wanted < declared)]
    if lost.size and looks_truncated(declared, info.packets or n_video):
        decoder.close()
        raise DecodeError(f"{uri}: truncated file: the container declares {declared} frames but only {n_video} "
                          f"can be decoded ({info.packets or n_video} packets found), and frame {int(lost[0])} is "
                          f"needed; try: a complete copy of the file")
    idx = wanted[(wanted >= 0) & (wanted < n_video)].astype(np.int32)
    if idx.size == 0:
        decoder.close()
        if frame_indices:
            raise DecodeError(f"{uri}: frames {list(frame_indices)[:4]} are past the end ({n_video} frames)")
        raise DecodeError(f"{uri}: window starting at {start_s:.3f} s is past the end ({n_video / fps:.3f} s)")
    return decoder, VideoPlan(uri, fps, n_video, idx, info.width, info.height)


def iter_chunks(decoder: FrameDecoder, plan: VideoPlan, chunk_frames: int = CHUNK_FRAMES,
                start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``plan.frame_indices[start:]`` in chunks.

    Between chunks the decoder is told it may stop reading ahead
    (:meth:`pipelines.decoders.FrameDecoder.pause`: decord's threaded reader otherwise keeps
    decoding while the consumer is busy and grew to 0.9-1.8 GB on a 640x360 video).

    Yields:
        ``(first_position, frames uint8 [n <= chunk_frames, H, W, 3] RGB)`` in plan order;
        ``first_position`` is the plan position of the chunk's first frame.

    Raises:
        DecodeError: the back-end failed on a chunk (message names the file and the frames).
    """
    idx = plan.frame_indices
    for lo in range(start, len(idx), chunk_frames):
        part = idx[lo: lo + chunk_frames]
        frames = decoder.get_batch(part)
        if lo + chunk_frames < len(idx):
            decoder.pause()
        yield lo, frames


def decode_window(uri: str, start_s: float, length_s: float, sample_fps: float,
                  backend: str = DEFAULT_BACKEND) -> DecodedWindow:
    """Decode one window of ``uri`` at ``sample_fps`` frames per second (in this process).

    The container is detected from content by FFmpeg (never from the file extension). Meant for
    short windows: the frames are stacked (``uint8 [T', H, W, 3]``); stream long ones with
    :func:`iter_chunks` or :class:`pipelines.isolated_decoder.IsolatedDecoder`.

    Raises:
        DecodeError: missing file, unreadable container, no video stream, or a window that
            starts after the end of the video.
    """
    decoder, plan = open_video(uri, window=(start_s, length_s, sample_fps), backend=backend)
    with decoder:
        frames = np.concatenate([f for _, f in iter_chunks(decoder, plan)])
    return DecodedWindow(plan.frame_indices, plan.timestamps_s, frames, plan.fps, plan.num_video_frames)
