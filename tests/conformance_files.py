"""Small test videos for the decoder conformance suite, written with PyAV (64x48, 16 frames).

Used by ``tests/test_decoder_conformance.py`` and ``bench/decoders.py`` (the conformance table).
Besides plain encodes (:func:`encode`), the files whose packets do not map one to one onto
shown frames are made the way they arise in the wild:

* :func:`cut_with_edit_list`: a stream copy that starts between key frames (the packets are
  shifted to negative times, so the MP4 muxer writes an edit list and the demuxer marks the
  leading packets ``AV_PKT_FLAG_DISCARD``);
* :func:`append_packet`: one more packet after the last frame, an H.264 end-of-sequence NAL
  unit (no picture) or bytes the decoder refuses;
* :func:`patch_avi_frame_count`: an AVI whose header frame counts (``avih.dwTotalFrames``,
  ``strh.dwLength``) say something else than the file holds.
"""
from __future__ import annotations

import fractions
import struct
from pathlib import Path

import av
import numpy as np

F = fractions.Fraction
W, H, N = 64, 48, 16


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """uint8 [h, w, 3] frame ``i``: gradients and a white block that move, so every frame differs."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 4 + i * 9) % 256, (y * 5 + i * 17) % 256, ((x + y) * 3 + i * 29) % 256], -1).astype(np.uint8)
    img[(i * 3) % h: (i * 3) % h + 8, (i * 5) % w: (i * 5) % w + 8] = 255
    return img


def encode(path: Path, codec: str | None, *, w: int = W, h: int = H, n: int = N, rate: int = 12,
           pix_fmt: str = "yuv420p", options: dict | None = None, pts: list[int] | None = None,
           time_base: F | None = None, rotation: int | None = None, audio_s: float | None = None) -> Path:
    """Write a small test video with PyAV (``codec=None``: audio only; ``n=0``: an empty video
    stream); the container follows the suffix."""
    container = av.open(str(path), "w")
    stream = None
    if codec is not None:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            stream.time_base = stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
    audio = container.add_stream("aac", rate=16000) if audio_s else None
    if audio is not None:
        audio.layout = "mono"
    if stream is not None:
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24").reformat(format=pix_fmt)
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            container.mux(stream.encode(frame))
        if n:
            container.mux(stream.encode())
    if audio is not None:
        samples = (np.sin(np.arange(int(audio_s * 16000)) / 7.0) * 0.3).astype(np.float32)
        for k in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, k: k + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 16000, k, F(1, 16000)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    container.close()
    return path


def _copy_packets(src: Path, dst: Path, shift: int = 0, extra: bytes | None = None) -> Path:
    """Stream-copy ``src``'s video packets into ``dst`` (timestamps minus ``shift``), then one
    ``extra`` packet one frame after the last (pts and dts)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s_in = inp.streams.video[0]
        stream = out.add_stream_from_template(s_in)
        packets = [p for p in inp.demux(s_in) if p.size]
        step = min(int(b.dts - a.dts) for a, b in zip(packets, packets[1:]))
        for p in packets:
            p.stream = stream
            p.pts, p.dts = p.pts - shift, p.dts - shift
            out.mux(p)
        if extra is not None:
            q = av.Packet(extra)
            q.stream, q.time_base = stream, packets[0].time_base
            q.pts = max(p.pts for p in packets) + step
            q.dts = max(p.dts for p in packets) + step
            out.mux(q)
    return dst


def cut_with_edit_list(src: Path, dst: Path, hidden: int = 2) -> Path:
    """An MP4 whose edit list hides the first ``hidden`` frames of ``src`` (an H.264 MP4 with a
    key frame at frame 0): the packets are copied, shifted by ``hidden`` frame durations."""
    with av.open(str(src)) as inp:
        packets = [p for p in inp.demux(video=0) if p.size]
        step = min(int(b.dts - a.dts) for a, b in zip(packets, packets[1:]))
    return _copy_packets(src, dst, shift=hidden * step)


#: an H.264 end-of-sequence NAL unit, 4-byte length prefixed (MP4 sample format): no picture
END_OF_SEQUENCE = b"\x00\x00\x00\x01\x0a"
#: bytes the H.264 decoder refuses ("no frame!"): FFmpeg skips the packet and goes on
GARBAGE = bytes(range(7, 200))


def append_packet(src: Path, dst: Path, payload: bytes) -> Path:
    """``src`` stream-copied with one more packet after its last frame."""
    return _copy_packets(src, dst, extra=payload)


def patch_avi_frame_count(src: Path, dst: Path, frames: int) -> Path:
    """``src`` (an AVI) with ``avih.dwTotalFrames`` and the video ``strh.dwLength`` set to ``frames``."""
    data = bytearray(src.read_bytes())
    avih = data.index(b"avih")
    struct.pack_into("<I", data, avih + 8 + 16, frames)  # after dwMicroSecPerFrame ... dwFlags
    strh = data.index(b"strh")
    assert data[strh + 8: strh + 12] == b"vids", "the first stream of the AVI is not video"
    struct.pack_into("<I", data, strh + 8 + 32, frames)  # fccType fccHandler flags prio lang init scale rate start
    dst.write_bytes(bytes(data))
    return dst


def still_image(path: Path) -> Path:
    """A PNG picture (what a user may pass where a video is expected)."""
    from PIL import Image

    Image.fromarray(pattern(0, W, H)).save(path)
    return path
