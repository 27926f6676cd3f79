"""The frame index of a video: frame ``i`` is the ``i``-th frame FFmpeg displays.

Frames are numbered in presentation order, with the container's edit list applied, counting
only packets that give a picture. Packet counts and the header's frame count are not frame
counts: a stream-copied cut that starts between key frames (and many phone recordings) carries
an edit list whose leading packets are decoded only as references and never shown
(``AV_PKT_FLAG_DISCARD``); an end-of-sequence packet, or a trailing packet the decoder refuses,
gives no picture; and the header's count can be anything.

:func:`frame_index` builds the index of one video stream with PyAV, in two steps:

1. a demux pass (packets are read, not decoded): the pts of every packet that is not discarded
   and not empty, sorted ascending, are the candidate frames; key-frame packets give the seek
   points;
2. a tail check: the last key frame's group of pictures is decoded (not converted) to the end
   of the stream, and the pts of the frames that come out are compared with the candidates:
   candidates there that give no frame are dropped (when the tail decodes cleanly; damage is
   left to the decoder to report), and whether decoded frames carry their packets' pts
   (``exact_pts``; AVI streams with B-frames do not, see
   :meth:`pipelines.decoders.PyAVDecoder._frame_index`) is recorded.

Cost: one demux pass and one group of pictures decoded per video. Indexes are kept in a small
per-process cache keyed by the file's path, size and modification time, so the windows of one
video (the pipeline's decoder child opens a video once per window) pay once.

Limit: a packet *inside* the stream (before the last key frame) that gives no picture (VP8
alt-ref frames in WebM) is still counted; asking for its frame fails with a
:class:`pipelines.decoders.DecodeError` naming it (finding these would mean decoding the whole
video on open).

Sources: FFmpeg 8 ``libavformat/mov.c`` (``mov_fix_index``: edit lists mark the samples before
the edit's start ``AVINDEX_DISCARD_FRAME``, returned as ``AV_PKT_FLAG_DISCARD`` packets) and
``libavcodec/decode.c`` (frames of discarded packets are dropped); PyAV 18.1 ``Packet.is_discard``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

#: Indexes kept per process (a few KB each): the videos a pipeline child works through at once.
CACHE_SIZE = 64
_CACHE: "OrderedDict[tuple, FrameIndex]" = OrderedDict()


class UnindexableVideo(ValueError):
    """The packets of a video stream cannot be indexed (packets without timestamps)."""


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame of one video stream is.

    Attributes:
        pts: int64 [N] presentation timestamps of frames ``0..N-1`` (stream time base), ascending.
        keys: frame indices from which decoding can start after a seek (always includes 0), ascending.
        packets: video packets holding data, including those that give no frame.
        discarded: packets the edit list drops (decoded as references, never shown).
        frameless: packets found (by the tail check) to give no frame.
        exact_pts: decoded frames carry their packets' pts (False: frames are identified by counting).
        declared: frame count of the container header (0 when it gives none): a hint only.
    """

    pts: np.ndarray
    keys: tuple[int, ...]
    packets: int
    discarded: int
    frameless: int
    exact_pts: bool
    declared: int

    @property
    def num_frames(self) -> int:
        """Frames in the video (what FFmpeg displays)."""
        return int(len(self.pts))


def _scan(container, stream) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Demux pass: ``(pts int64 [M] sorted, key bool [M], packets, discarded)`` of the shown packets."""
    pts, keys, packets, discarded = [], [], 0, 0
    for packet in container.demux(stream):
        if not packet.size:
            continue  # the demuxer's empty flush packet (or an empty sample: no picture)
        packets += 1
        if packet.is_discard:
            discarded += 1
            continue
        t = packet.pts if packet.pts is not None else packet.dts
        if t is None:
            raise UnindexableVideo("video packets without timestamps: frames cannot be indexed")
        pts.append(t)
        keys.append(packet.is_keyframe)
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")
    return np.asarray(pts, np.int64)[order], np.asarray(keys, bool)[order], packets, discarded


def seek_start(container, stream, first_pts: int) -> None:
    """Seek to the start of the stream (before the packet of pts ``first_pts``).

    The target is one second before the first frame: MPEG-TS seeking by the first frame's own
    pts lands after its packet (and the parameter sets in it); AVI refuses negative targets, so
    the first frame's pts is the fallback.
    """
    import av

    try:
        container.seek(int(first_pts - 1 / stream.time_base), stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(int(first_pts), stream=stream, backward=True, any_frame=False)


def _frames(container, stream):
    """Decoded frames from the container's position; packets the decoder refuses are skipped."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def _tail(container, stream, first_pts: int, start_pts: int, prime: bool) -> tuple[list[int], bool]:
    """Decode from the key frame at ``start_pts`` to the end: ``(pts of the frames, clean)``;
    ``prime``: decode the first frame of the stream before.

    ``clean`` is False when a frame came out marked corrupt or a packet the decoder refused was
    followed by more frames (damage, not a trailing packet without a picture).
    """
    import av

    if prime:  # a stream may carry its parameter sets only in its first packet (H.264 in MPEG-TS): a
        # decoder that has not seen them gives nothing from a later key frame
        seek_start(container, stream, first_pts)
        next((f for f in _frames(container, stream)), None)
    if start_pts == first_pts:
        seek_start(container, stream, first_pts)
    else:
        container.seek(int(start_pts), stream=stream, backward=True, any_frame=False)
    out, refused, clean = [], False, True
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            refused = True  # FFmpeg goes on after a packet it cannot decode ("no frame!")
            continue
        for frame in frames:  # frames drained at the end (empty packet) may follow a refused packet
            clean = clean and not frame.is_corrupt and not (refused and packet.size)
            if frame.pts is not None:
                out.append(int(frame.pts))
    return out, clean


def build_frame_index(container, stream) -> FrameIndex:
    """The :class:`FrameIndex` of ``stream`` in an open PyAV input ``container`` (see the module doc).

    The container is left at an arbitrary position: seek before decoding.

    Raises:
        UnindexableVideo: packets without timestamps.
        av.error.FFmpegError: the demuxer failed.
    """
    pts, key, packets, discarded = _scan(container, stream)
    declared = int(stream.frames or 0)
    if not len(pts):
        return FrameIndex(pts, (0,), packets, discarded, 0, True, declared)
    key_frames = np.flatnonzero(key)
    last_key = int(key_frames[-1]) if len(key_frames) else 0
    got, clean = _tail(container, stream, int(pts[0]), int(pts[last_key]), prime=False)
    if not got and last_key > 0:
        got, clean = _tail(container, stream, int(pts[0]), int(pts[last_key]), prime=True)
    tail = pts[last_key:]
    shown = [t for t in got if t >= pts[last_key]]  # open GOP: leading frames belong to the previous group
    # frames can be told apart by pts: the tail's frames carry their packets' pts, in order, and
    # no two packets share one (a broken muxer's duplicates are counted instead)
    exact = set(shown) <= set(tail.tolist()) and got == sorted(got) and bool(np.all(np.diff(pts) > 0))
    got = shown
    frameless = 0
    if not got:  # nothing decodes from the last key frame on: leave it to the decoder to report
        clean = False
    if clean and exact:
        keep = np.ones(len(pts), bool)
        keep[last_key:] = np.isin(tail, got)
        frameless = int((~keep).sum())
    elif clean and len(got) < len(tail):  # frames labelled otherwise (AVI): count them
        frameless = len(tail) - len(got)
        keep = np.ones(len(pts), bool)
        keep[len(pts) - frameless:] = False
    if frameless:
        pts, key = pts[keep], key[keep]
    keys = tuple(sorted({0} | {int(i) for i in np.flatnonzero(key)}))
    return FrameIndex(pts, keys, packets, discarded, frameless, exact, declared)


def frame_index(uri: str, container, stream) -> FrameIndex:
    """:func:`build_frame_index`, cached per process by ``(path, size, mtime, stream index)``."""
    try:
        st = os.stat(uri)
        key = (os.path.realpath(uri), st.st_size, st.st_mtime_ns, stream.index)
    except OSError:
        key = None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    index = build_frame_index(container, stream)
    if key is not None:
        _CACHE[key] = index
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index
