"""Video decoder back-ends behind one interface: decord, PyAV, OpenCV and torchcodec.

Every back-end is a small class with the same methods::

    with PyAVDecoder() as dec:
        info = dec.open(uri)              # VideoInfo(num_frames, fps, width, height)
        frames = dec.get_batch([0, 2, 4])  # uint8 [3, H, W, 3] RGB, in the order asked

Frame ``i`` is the ``i``-th frame FFmpeg shows: presentation order, the container's edit list
applied, packets that give no picture not counted (:mod:`pipelines.frame_index`, built with PyAV
for every back-end; the header's frame count is only a hint, ``VideoInfo.declared_frames``). On
the shipped sample videos the frames of every back-end are identical (``tests/test_decoders.py``);
on files whose packets are not frames (edit lists, trailing packets without a picture, a wrong
header count, ...) they are compared in ``tests/test_decoder_conformance.py``, with every
back-end's deviations listed there. Speed and behaviour on corrupt files are compared in
``bench/decoders.py`` (results in ``bench/results_decoders.md``).

Refusals are one line: the file, what is wrong, what FFmpeg finds in it (container, streams,
codec: :func:`describe_media`) and what to try (another ``--decoder``, or an ``ffmpeg``
re-encode command: :func:`refusal`). A file that is no video says what it is (no video stream,
an empty video stream, a still image: :func:`media_kind`), never that it is damaged.

Shared checks (before the library sees the file): a directory, a missing, non-regular,
unreadable or empty file is refused with a :class:`DecodeError` naming the path and the reason,
and so is a video whose frames exceed ``max_pixels`` (read from the header, before decoding).
Library errors are re-raised as :class:`DecodeError` with the path, the back-end and the
library's message. A back-end whose package is missing, or cannot load its native libraries
(torchcodec without system FFmpeg), raises :class:`BackendUnavailable` (an ``ImportError``).

Nothing here isolates a crash: a library that aborts the process on a hostile file takes the
caller with it; the pipeline decodes in a child process for that (``pipelines.isolated_decoder``).

Sources: decord 0.6.0 ``VideoReader`` (dmlc/decord, packet index built on open, frame ``i`` =
``i``-th pts); PyAV 18.1 ``InputContainer.seek`` / ``Frame.is_corrupt`` over FFmpeg 8
``av_seek_frame`` (``AVSEEK_FLAG_BACKWARD``) and ``AV_FRAME_FLAG_CORRUPT``; OpenCV 4.12
``VideoCapture`` (``CAP_FFMPEG``, ``CAP_PROP_N_THREADS``); torchcodec 0.17 ``VideoDecoder``
(``seek_mode="exact"``), which loads system FFmpeg 4-9 at run time.
"""
from __future__ import annotations

import bisect
import importlib.util
import math
import os
import re
import stat
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from pipelines.frame_index import UnindexableVideo, frame_index, seek_start

#: Largest frame (width x height) a back-end accepts by default: twice 4K UHD (3840 x 2160 x 2).
#: The same cap applies to images (:func:`pipelines.readers.media.load_image`).
MAX_FRAME_PIXELS = 3840 * 2160 * 2
#: The one default back-end (``make_decoder``, ``read_frames``, the pipeline, ``zoo.predict``):
#: PyAV, the fastest back-end measured that is reliable (bench/results_decoders.md: identical
#: frames to decord, 1.1-1.2x its speed single-threaded, and the only one that refuses frames
#: FFmpeg marks as corrupt instead of returning them silently).
DEFAULT_BACKEND = "pyav"


class DecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the file and the reason."""


class BackendUnavailable(ImportError):
    """A decoder back-end's package is not installed or its native libraries cannot be loaded."""


@dataclass(frozen=True)
class VideoInfo:
    """What a back-end reports about an opened video.

    Attributes:
        num_frames: frames that can be addressed by ``get_batch`` (0-based indices below it).
        fps: average frame rate (frames per second; ``nan`` when the container gives none).
        width, height: frame size in pixels.
        declared_frames: frame count the container header declares (0 when it gives none): a
            hint only (it counts packets an edit list drops, or is simply wrong).
        packets: video packets holding data (0 when the back-end does not say), including those
            that give no frame; clearly fewer than ``declared_frames`` means a truncated file.
    """

    num_frames: int
    fps: float
    width: int
    height: int
    declared_frames: int = 0
    packets: int = 0


def looks_truncated(declared: int, present: int) -> bool:
    """The header declares clearly more frames than the file holds (a few frames of slack)."""
    return declared - present > max(2, declared // 100)


#: Demuxers FFmpeg uses for single pictures: a file they open is a photo, not a video.
IMAGE_DEMUXERS = ("image2", "_pipe")


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def reencode_command(uri: str) -> str:
    """An FFmpeg command that rewrites ``uri``'s first video stream as H.264 in MP4 (every back-end reads it)."""
    stem = os.path.splitext(os.path.basename(uri))[0] or "video"
    return f"ffmpeg -i {_quote(uri)} -map 0:v:0 -c:v libx264 -pix_fmt yuv420p {_quote(stem + '_h264.mp4')}"


def describe_media(uri: str) -> str:
    """What FFmpeg (PyAV) finds in ``uri``: container and streams, for refusal messages (one line).

    Example: ``"mov,mp4,m4a,3gp,3g2,mj2 container: video h264 64x48 (16 frames declared), audio aac"``.
    Never raises: a file FFmpeg cannot open is described as such.
    """
    try:
        import av

        with av.open(uri, metadata_errors="ignore") as container:
            parts = []
            for s in container.streams:
                ctx = s.codec_context
                codec = ctx.name if ctx is not None else "unknown codec"
                if s.type == "video":
                    declared = f" ({s.frames} frames declared)" if s.frames else ""
                    parts.append(f"video {codec} {ctx.width}x{ctx.height}{declared}")
                else:
                    parts.append(f"{s.type} {codec}" if s.type in ("audio", "subtitle") else s.type)
            return f"{container.format.name} container: " + (", ".join(parts) or "no stream")
    except Exception as exc:  # noqa: BLE001 - describing must never mask the refusal itself
        return f"no media container FFmpeg recognises ({type(exc).__name__})"


def media_kind(uri: str) -> str | None:
    """What ``uri`` is when it cannot be a video, or None: ``"no video stream"`` (audio only, ...),
    ``"an empty video stream"`` (no packet) or ``"a still image"`` (a picture demuxer, one frame).
    Never raises (None when FFmpeg cannot open the file)."""
    try:
        import av

        with av.open(uri, metadata_errors="ignore") as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            fmt = container.format.name
            if fmt == IMAGE_DEMUXERS[0] or fmt.endswith(IMAGE_DEMUXERS[1]):
                return "a still image"
            if not any(p.size for p in container.demux(stream)):
                return "an empty video stream"
    except Exception:  # noqa: BLE001
        return None
    return None


_KIND_WHAT = {"no video stream": "not a video: it has no video stream",
              "an empty video stream": "its video stream is empty (no frame at all)",
              "a still image": "a still image, not a video"}
_KIND_TRY = {"no video stream": "give a file with pictures (this one has none to decode)",
             "an empty video stream": "give a file with pictures (this recording holds none)",
             "a still image": "give photos as images, not as a video"}


def refusal(uri: str, what: str, advice: str) -> str:
    """One-line refusal: ``"<uri>: <what>; found: <container and streams>; try: <advice>"``.

    ``advice``: ``"re-encode"`` (the :func:`reencode_command`), ``"other decoder"`` (another
    ``--decoder``, then re-encoding), or the text itself.
    """
    if advice == "re-encode":
        advice = f"re-encode it: {reencode_command(uri)}"
    elif advice == "other decoder":
        advice = f"another --decoder (pyav, the default, reads the most files), or re-encode it: {reencode_command(uri)}"
    return f"{uri}: {what}; found: {describe_media(uri)}; try: {advice}"


def check_video_file(uri: str) -> None:
    """Refuse paths that are not a readable, non-empty regular file (before any library opens them).

    Raises:
        DecodeError: a directory, a missing file, a FIFO/device/socket (reading one can block
            forever), an unreadable or an empty file; the message names ``uri`` and the reason.
    """
    try:
        st = os.stat(uri)
    except FileNotFoundError:
        raise DecodeError(f"{uri}: cannot open video: no such file") from None
    except OSError as exc:
        raise DecodeError(f"{uri}: cannot open video: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError(f"{uri}: is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError(f"{uri}: not a regular file (a FIFO, device or socket)")
    if not os.access(uri, os.R_OK):
        raise DecodeError(f"{uri}: cannot open video: permission denied")
    if st.st_size == 0:
        raise DecodeError(f"{uri}: cannot open video: the file is empty (0 bytes)")


class FrameDecoder:
    """Base of the back-ends: open a video, decode frames by index, close.

    Subclasses implement ``_open(uri) -> VideoInfo``, ``_get_batch(int64 [N]) -> uint8
    [N, H, W, 3]`` and ``_close()``; the base adds the shared checks and error wrapping.

    Args:
        threads: decoder threads (1, the default, for a fair single-core comparison; 0 lets the
            library choose).
        max_pixels: refuse frames larger than this (width x height); ``None`` for no limit.
        check_files: run :func:`check_video_file` before the library sees the path (``False``
            only to observe the bare library, as the reliability benchmark does).
    """

    #: back-end name (key of :data:`DECODER_BACKENDS`)
    name: ClassVar[str] = ""
    #: importable module the back-end needs
    module: ClassVar[str] = ""

    def __init__(self, threads: int = 1, max_pixels: int | None = MAX_FRAME_PIXELS, check_files: bool = True):
        self.threads = threads
        self.max_pixels = max_pixels
        self.check_files = check_files
        self.uri: str | None = None
        self.info: VideoInfo | None = None

    # -- public interface ----------------------------------------------------------------------
    def open(self, uri: str) -> VideoInfo:
        """Open ``uri`` (closing any video opened before) and read its frame count, rate and size.

        Returns:
            :class:`VideoInfo`.

        Raises:
            DecodeError: the shared file checks failed, the library cannot open the container,
                there is no video stream or no frame, or the frames exceed ``max_pixels``.
            BackendUnavailable: the back-end's package or native libraries are missing.
        """
        self.close()
        uri = os.fspath(uri)
        if self.check_files:
            check_video_file(uri)
        try:
            info = self._open(uri)
        except BackendUnavailable:
            self._safe_close()
            raise
        except Exception as exc:  # noqa: BLE001 - every library has its own error types
            self._safe_close()
            self._refuse_kind(uri)
            if isinstance(exc, DecodeError):
                raise
            msg = str(exc).replace(uri, "PATH").splitlines()[0][:200] if str(exc) else ""
            raise DecodeError(refusal(uri, f"{self.name} cannot open video ({type(exc).__name__}: {msg})",
                                      "other decoder")) from exc
        if info.num_frames <= 1:
            self._refuse_kind(uri)
        if info.num_frames <= 0:
            self._safe_close()
            raise DecodeError(refusal(uri, f"{self.name} finds no frame in the video stream", "other decoder"))
        self.uri, self.info = uri, info
        return info

    def _refuse_kind(self, uri: str) -> None:
        """Raise a :class:`DecodeError` saying what ``uri`` is when it is no video (see :func:`media_kind`)."""
        kind = media_kind(uri)
        if kind is not None:
            self._safe_close()
            raise DecodeError(refusal(uri, _KIND_WHAT[kind], _KIND_TRY[kind]))

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Decode the given 0-based frames of the open video.

        Args:
            indices: frame indices in any order, repeats allowed (sorted ones decode fastest).

        Returns:
            uint8 [N, H, W, 3] RGB, in the order of ``indices``.

        Raises:
            DecodeError: no video open, an index outside ``[0, num_frames)``, or the library
                failed (the message names the file, the back-end and the frames).
        """
        if self.info is None:
            raise DecodeError(f"{self.name}: get_batch called before open")
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.info.height, self.info.width, 3), np.uint8)
        bad = idx[(idx < 0) | (idx >= self.info.num_frames)]
        if bad.size:
            n, declared = self.info.num_frames, self.info.declared_frames
            why = (f" (the header declares {declared}: the file is truncated or its index damaged)"
                   if looks_truncated(declared, self.info.packets or n) else "")
            raise DecodeError(f"{self.uri}: frame {int(bad[0])} is out of range: {self.name} finds {n} frames{why}")
        try:
            frames = self._get_batch(idx)
        except DecodeError:
            raise
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise DecodeError(refusal(self.uri, f"{self.name} failed decoding frames {int(idx.min())}-{int(idx.max())} "
                                                f"({type(exc).__name__}: {msg})", "other decoder")) from exc
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != idx.size or frames.shape[-1] != 3:
            raise DecodeError(f"{self.uri}: {self.name} returned frames of shape {frames.shape} ({frames.dtype}) "
                              f"for {idx.size} frames")
        return frames

    def pause(self) -> None:
        """The consumer is busy for a while: stop any decoding ahead (bounds memory; default no-op)."""

    def close(self) -> None:
        """Release the library's reader (safe to call twice)."""
        self._safe_close()
        self.uri, self.info = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers for subclasses ----------------------------------------------------------------
    def _check_pixels(self, uri: str, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise DecodeError(f"{uri}: frame size {width}x{height} exceeds the decoder limit of "
                              f"{self.max_pixels} pixels")

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:  # noqa: BLE001 - closing a broken reader must not mask the real error
            pass

    def _open(self, uri: str) -> VideoInfo:
        raise NotImplementedError

    def _get_batch(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


def _import(module: str, backend: str):
    """Import a back-end's package, or raise :class:`BackendUnavailable` naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(f"decoder back-end {backend!r} needs the package {module!r}, which is not "
                                 f"installed ({exc})") from exc


def pyav_index(uri: str):
    """The :class:`pipelines.frame_index.FrameIndex` of ``uri``'s first video stream, built with
    PyAV (cached per process), for the back-ends that number packets or trust the header; None
    when PyAV is missing or cannot index the file (the back-end's own count is kept)."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(uri, metadata_errors="ignore") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            stream.thread_count = 1
            return frame_index(uri, container, stream)
    except Exception:  # noqa: BLE001 - the back-end's own open reports what is wrong
        return None


def _header(uri: str) -> tuple[int, int, int, int]:
    """``(width, height, declared frames, rotation degrees)`` from the container header via OpenCV's FFmpeg.

    No frame is decoded; zeros for what the header does not give. Width and height are the
    displayed size (OpenCV applies the rotation metadata).
    """
    import cv2

    cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return 0, 0, 0, 0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
        return (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(count) if math.isfinite(count) and count > 0 else 0,
                int(rotation) % 360 if math.isfinite(rotation) else 0)
    finally:
        cap.release()


class DecordDecoder(FrameDecoder):
    """decord ``VideoReader`` (CPU context): random access by frame index.

    decord indexes every packet when it opens a file and seeks to the key frame before each
    requested frame that is not reachable by decoding forward. Its threaded reader keeps
    decoding ahead of the last request (``pipelines.decode.iter_chunks`` resets it between
    chunks to bound memory). The frame size is read from the header (OpenCV) before decord opens
    the file, so oversized frames are refused without being decoded. A video with rotation
    metadata is refused (:class:`DecodeError`): decord 0.6 neither turns its frames nor decodes
    them consistently (the other back-ends return frames as displayed).
    """

    name, module = "decord", "decord"

    def _open(self, uri: str) -> VideoInfo:
        import cv2  # noqa: F401 - OpenCV loads its codec libraries before decord's (pipelines/__init__.py)

        decord = _import("decord", self.name)
        width, height, declared, rotation = _header(uri)
        self._check_pixels(uri, width, height)
        if rotation:
            raise DecodeError(refusal(uri, f"decord cannot turn frames by the video's rotation metadata (a turn of "
                                           f"{rotation} degrees clockwise; it fails or returns frames as stored)",
                                      "--decoder pyav (the default) or --decoder opencv"))
        index = pyav_index(uri)
        if index is not None and index.discarded:
            raise DecodeError(refusal(uri, f"decord numbers packets, and this file's edit list hides {index.discarded} "
                                           f"of them (decoded as references, never shown): its frames after a seek "
                                           f"would be shifted", "other decoder"))
        self._reader = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=self.threads)
        n = len(self._reader)
        if index is not None and index.num_frames:  # packets that give no frame are not frames
            n = min(n, index.num_frames)
        if (width == 0 or height == 0) and n > 0:
            height, width = self._reader[0].shape[:2]
            self._check_pixels(uri, width, height)
        fps = float(self._reader.get_avg_fps())
        return VideoInfo(n, fps if math.isfinite(fps) and fps > 0 else float("nan"), int(width), int(height),
                         declared)

    def _get_batch(self, idx: np.ndarray) -> np.ndarray:
        return self._reader.get_batch(idx.tolist()).asnumpy()

    def pause(self) -> None:
        """Re-seek to frame 0, which empties decord's read-ahead queue (the next batch decodes
        again from its key frame: about +60 % decode time for dense plans, nothing for plans that
        fit in one batch)."""
        if getattr(self, "_reader", None) is not None:
            self._reader.seek(0)

    def _close(self) -> None:
        self._reader = None


class PyAVDecoder(FrameDecoder):
    """PyAV (FFmpeg's libav* bundled in the ``av`` wheel): seek to a key frame, decode forward.

    On open, the frame index is built (:func:`pipelines.frame_index.frame_index`: a demux pass,
    packets an edit list discards left out, and a tail check that drops trailing packets without a
    picture; cached per process): frame ``i`` has the ``i``-th shown pts, key-frame packets give
    the seek points. Decoded frames are identified by their pts where the stream's frames carry
    their packets' pts, else (AVI files with B-frames label their frames out of order; see
    :meth:`_frame_index`) the first frame after a seek by its pts and the following ones by
    counting. A packet the decoder refuses that is not an indexed frame is skipped, as ``ffmpeg``
    does. ``get_batch`` visits the wanted frames in ascending order: when the
    next one is behind the decoder, or its key frame lies more than :attr:`seek_ahead_frames`
    frames ahead of the decoder's position, the container seeks to the last key frame at or
    before it (``container.seek(pts, stream=..., backward=True, any_frame=False)``, pts in the
    stream's time base; decoder buffers flushed); then it decodes forward and keeps the frames whose pts map to wanted indices. A
    seek that lands after the wanted frame is retried from the previous key frame. Frames are
    converted to RGB by FFmpeg's swscale through one ``VideoReformatter`` per open video (the
    same conversion as ``frame.to_ndarray(format="rgb24")``, without a new swscale context per
    frame).

    Rotation: frames are returned **as displayed**: a video whose display matrix turns it by a
    multiple of 90 degrees (phone videos) is turned (``np.rot90`` by ``frame.rotation``, counter-
    clockwise, as FFmpeg's players and OpenCV's ``CAP_PROP_ORIENTATION_AUTO`` do) and
    ``VideoInfo.width`` / ``height`` are the displayed size.

    Damaged data: FFmpeg conceals errors in a damaged stream and marks such frames
    (``AV_FRAME_FLAG_CORRUPT``, PyAV ``frame.is_corrupt``). With ``on_corrupt="error"`` (the
    default) a marked frame decoded on the way to a wanted one raises :class:`DecodeError`
    instead of handing back concealed frames, which decord and OpenCV return silently; frames
    that only inherit the damage through references are not marked, so the first marked frame
    is what is caught. ``on_corrupt="keep"`` returns them like the others.

    Args:
        threads: decoder threads (1: single-threaded, the default; 0: FFmpeg chooses).
        thread_type: ``None`` keeps the codec's default (slice threading, which with
            ``threads=1`` is single-threaded); ``"AUTO"`` enables frame + slice threading.
        on_corrupt: ``"error"`` or ``"keep"`` (see above).
        max_pixels, check_files: as :class:`FrameDecoder`.

    Raises (besides the base class's): ``ValueError`` for an unknown ``on_corrupt``.
    """

    name, module = "pyav", "av"
    #: seek forward only when the target's key frame is more than this many frames ahead of the
    #: decoder (a seek flushes the frames already in the decoder, which are then decoded again)
    seek_ahead_frames = 16

    def __init__(self, threads: int = 1, thread_type: str | None = None, on_corrupt: str = "error",
                 max_pixels: int | None = MAX_FRAME_PIXELS, check_files: bool = True):
        super().__init__(threads, max_pixels, check_files)
        if on_corrupt not in ("error", "keep"):
            raise ValueError(f"on_corrupt must be 'error' or 'keep', not {on_corrupt!r}")
        self.thread_type = thread_type
        self.on_corrupt = on_corrupt
        self._container = None

    def _open(self, uri: str) -> VideoInfo:
        av = _import("av", self.name)
        self._container = container = av.open(uri, metadata_errors="ignore")
        if not container.streams.video:
            raise DecodeError(refusal(uri, "no video stream", "nothing to decode"))
        self._stream = stream = container.streams.video[0]
        ctx = stream.codec_context
        self._check_pixels(uri, ctx.width, ctx.height)
        if self.thread_type is not None:
            stream.thread_type = self.thread_type
        stream.thread_count = self.threads
        try:
            index = frame_index(uri, container, stream)
        except UnindexableVideo as exc:
            raise DecodeError(refusal(uri, str(exc), "re-encode")) from None
        self._pts, self._keys, self._exact_pts = index.pts, list(index.keys), index.exact_pts
        self._index = {int(t): i for i, t in enumerate(self._pts)}
        self._frames_iter, self._pos = None, None
        # one converter for the whole video: frame.to_ndarray(format=...) builds a new swscale
        # context for every frame, which measured 3x the decoding time itself
        self._reformatter = av.video.reformatter.VideoReformatter()
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else float("nan")
        width, height = int(ctx.width), int(ctx.height)
        self._quarter_turns = 0
        if len(self._pts):  # the display matrix comes with the decoded frames: read it from the first
            self._seek(0)
            first = next(iter(self._frames_iter), None)  # the decoder stays there: frames after it follow
            self._pos = self._frame_index(first) if first is not None else None
            if self._pos is None:
                self._frames_iter = None
            rotation = int(getattr(first, "rotation", 0) or 0) if first is not None else 0
            if rotation % 90:
                raise DecodeError(refusal(uri, f"rotation metadata of {rotation} degrees (not a multiple of 90)",
                                          "re-encode"))
            self._quarter_turns = (rotation // 90) % 4
            if self._quarter_turns % 2:
                width, height = height, width
        elif index.packets:
            raise DecodeError(refusal(uri, f"none of the video stream's {index.packets} packets gives a frame",
                                      "re-encode"))
        return VideoInfo(len(self._pts), fps, width, height, index.declared, index.packets)

    def _key_before(self, i: int) -> int:
        """Index of the last key frame at or before frame ``i``."""
        return self._keys[bisect.bisect_right(self._keys, i) - 1]

    def _frame_index(self, frame) -> int | None:
        """Index of a decoded frame: the first frame after a seek by its pts, the others by counting.

        A decoder hands frames out in presentation order, so after the first frame of a run
        (identified by its pts, the nearest indexed pts if it is not exact) frame ``i + 1``
        follows frame ``i``. The pts of the later frames are not used: in AVI (which stores no
        presentation times) FFmpeg labels B-frame streams' frames with decode-order stamps, so
        frames in presentation order carry pts such as 1, 2, 4, 3, 5, 7, 6.
        """
        if self._exact_pts and frame.pts is not None and int(frame.pts) in self._index:
            return self._index[int(frame.pts)]
        if self._pos is not None:
            return self._pos + 1
        if frame.pts is None:
            return None
        i = self._index.get(int(frame.pts))
        if i is None:
            j = int(np.searchsorted(self._pts, frame.pts))
            i = j if j == 0 or j < len(self._pts) and self._pts[j] - frame.pts < frame.pts - self._pts[j - 1] else j - 1
        return i

    def _seek(self, key: int) -> None:
        if key == 0:
            seek_start(self._container, self._stream, int(self._pts[0]))
        else:
            self._container.seek(int(self._pts[key]), stream=self._stream, backward=True, any_frame=False)
        self._frames_iter, self._pos = self._decoded(), None

    def _decoded(self):
        """Decoded frames from the current position; a packet the decoder refuses is skipped (as
        FFmpeg does) when it is not one of the indexed frames (a packet without a picture)."""
        import av

        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                if packet.pts is not None and int(packet.pts) in self._index and not packet.is_discard:
                    raise
                continue
            yield from frames

    def _decode_to(self, target: int) -> np.ndarray | None:
        """Decode forward to frame ``target``; None when the decoder passed it or the stream ended."""
        for frame in self._frames_iter:
            i = self._frame_index(frame)
            if i is None:
                continue
            self._pos = i
            if frame.is_corrupt and self.on_corrupt == "error":
                raise DecodeError(f"{self.uri}: frame {i} is corrupt (FFmpeg concealed damaged data in it; "
                                  f"needed for frame {target}): the video stream is damaged")
            if i == target:
                rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
                return np.ascontiguousarray(np.rot90(rgb, self._quarter_turns)) if self._quarter_turns else rgb
            if i > target:
                return None
        return None

    def _get_batch(self, idx: np.ndarray) -> np.ndarray:
        got: dict[int, np.ndarray] = {}
        for target in np.unique(idx).tolist():
            key = self._key_before(target)
            if self._pos is None or self._frames_iter is None or target <= self._pos \
                    or key - self._pos > self.seek_ahead_frames:
                self._seek(key)
            frame = self._decode_to(target)
            while frame is None and key > 0 and (self._pos is None or self._pos > target):
                key = self._key_before(key - 1)  # the seek landed after the target: start earlier
                self._seek(key)
                frame = self._decode_to(target)
            if frame is None:
                raise DecodeError(self._missing(target))
            got[target] = frame
        return np.stack([got[i] for i in idx.tolist()])

    def _missing(self, target: int) -> str:
        """Refusal for an indexed frame the decoder does not give (one line, see :func:`refusal`)."""
        t = self._pts[target] * self._stream.time_base
        where = (f"the decoder gave no frame from its key frame on" if self._pos is None else
                 f"the decoder went on to frame {self._pos} without giving it" if self._pos > target else
                 f"the stream ended at frame {self._pos}")
        return refusal(self.uri, f"pyav gets no frame {target} (pts {float(t):.3f} s) though a packet is listed for it: "
                                 f"{where} (a packet without a picture inside the stream, or damaged data)",
                       "other decoder")

    def _close(self) -> None:
        container, self._container = self._container, None
        self._frames_iter = None
        if container is not None:
            container.close()


class OpenCVDecoder(FrameDecoder):
    """OpenCV ``VideoCapture`` (its bundled FFmpeg): sequential reads, seeking for far jumps.

    The frame count and rate come from the container header (OpenCV does not index packets:
    a truncated file reports the declared count and fails when a missing frame is read). A
    wanted frame behind the reader or more than ``seek_distance`` frames ahead is reached with
    ``CAP_PROP_POS_FRAMES``; nearer ones by grabbing forward. BGR frames are converted to RGB.
    Frames are returned as displayed (``CAP_PROP_ORIENTATION_AUTO``, on by default), width and
    height are the displayed size. Colour: OpenCV converts YUV with the BT.601 matrix whatever
    the stream declares, so a BT.709-tagged video (HD camera footage) gives colours up to ~30
    levels away from PyAV's and decord's, which honour the tag.
    """

    name, module = "opencv", "cv2"
    #: frames ahead beyond which a seek is cheaper than grabbing forward
    seek_distance = 64

    def _open(self, uri: str) -> VideoInfo:
        cv2 = _import("cv2", self.name)
        self._cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self.threads])
        if not self._cap.isOpened():
            raise DecodeError(refusal(uri, "opencv cannot open the video (no decodable video stream)", "other decoder"))
        width, height = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._check_pixels(uri, width, height)
        count, fps = self._cap.get(cv2.CAP_PROP_FRAME_COUNT), self._cap.get(cv2.CAP_PROP_FPS)
        self._pos = 0
        count = int(count) if math.isfinite(count) and count > 0 else 0
        index = pyav_index(uri)  # the header's count is a hint: count the frames FFmpeg shows
        frames = index.num_frames if index is not None else count
        return VideoInfo(frames, float(fps) if math.isfinite(fps) and fps > 0 else float("nan"), width, height, count,
                         index.packets if index is not None else 0)

    def _get_batch(self, idx: np.ndarray) -> np.ndarray:
        import cv2

        got: dict[int, np.ndarray] = {}
        for i in np.unique(idx).tolist():
            if i < self._pos or i - self._pos > self.seek_distance:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                self._pos = i
            while self._pos < i:
                if not self._cap.grab():
                    raise DecodeError(refusal(self.uri, f"opencv could not read frame {self._pos} (on the way to {i})",
                                              "other decoder"))
                self._pos += 1
            ok, bgr = self._cap.read()
            self._pos += 1
            if not ok:
                raise DecodeError(refusal(self.uri, f"opencv could not decode frame {i}", "other decoder"))
            got[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return np.stack([got[i] for i in idx.tolist()])

    def _close(self) -> None:
        cap, self._cap = getattr(self, "_cap", None), None
        if cap is not None:
            cap.release()


def torchcodec_load_error() -> str | None:
    """Why torchcodec cannot decode video here, or None when it can.

    torchcodec links against the system's FFmpeg (major versions 4-9, i.e. ``libavutil.so.56``
    to ``.61`` with the matching libavcodec/libavformat/libavfilter/libswscale/libswresample):
    its wheels do not bundle them. The returned text names the package state or the shared
    libraries the dynamic loader could not find.
    """
    if importlib.util.find_spec("torchcodec") is None:
        return "the package 'torchcodec' is not installed"
    try:
        from torchcodec._internally_replaced_utils import load_core_libraries  # private, torchcodec 0.17
    except ImportError as exc:
        return f"torchcodec cannot be imported: {exc}"
    try:
        load_core_libraries()
    except Exception as exc:  # noqa: BLE001 - RuntimeError("Could not load libtorchcodec ...") in 0.17
        missing = sorted(set(re.findall(r"(lib[\w+.-]+\.so[.\d]*): cannot open shared object file", str(exc))))
        return ("torchcodec is installed but cannot load its native library: it needs the FFmpeg 4-9 shared "
                "libraries from the system (libavutil, libavcodec, libavformat, libavfilter, libswscale, "
                "libswresample) and the dynamic loader did not find "
                + (", ".join(missing) if missing else f"them ({type(exc).__name__}: {str(exc)[:200]})"))
    return None


class TorchCodecDecoder(FrameDecoder):
    """torchcodec ``VideoDecoder`` (exact seek mode, NHWC uint8, ``num_ffmpeg_threads=threads``).

    Raises :class:`BackendUnavailable` on open when torchcodec is missing or cannot load the
    system FFmpeg libraries (see :func:`torchcodec_load_error`).
    """

    name, module = "torchcodec", "torchcodec"

    def _open(self, uri: str) -> VideoInfo:
        reason = torchcodec_load_error()
        if reason is not None:
            raise BackendUnavailable(f"decoder back-end 'torchcodec' is unavailable: {reason}")
        from torchcodec.decoders import VideoDecoder

        self._decoder = VideoDecoder(uri, dimension_order="NHWC", num_ffmpeg_threads=max(self.threads, 1),
                                     seek_mode="exact")
        meta = self._decoder.metadata
        self._check_pixels(uri, meta.width or 0, meta.height or 0)
        fps = meta.average_fps
        return VideoInfo(len(self._decoder), float(fps) if fps else float("nan"), int(meta.width or 0),
                         int(meta.height or 0))

    def _get_batch(self, idx: np.ndarray) -> np.ndarray:
        return self._decoder.get_frames_at(idx.tolist()).data.numpy()

    def _close(self) -> None:
        self._decoder = None


#: Decoder back-ends by name: ``name -> FrameDecoder subclass``.
DECODER_BACKENDS: dict[str, type[FrameDecoder]] = {
    cls.name: cls for cls in (DecordDecoder, PyAVDecoder, OpenCVDecoder, TorchCodecDecoder)}


def backend_status() -> dict[str, str | None]:
    """Per back-end: None when it can decode here, else the reason (package missing, libraries missing)."""
    out: dict[str, str | None] = {}
    for name, cls in DECODER_BACKENDS.items():
        if name == "torchcodec":
            out[name] = torchcodec_load_error()
        elif importlib.util.find_spec(cls.module) is None:
            out[name] = f"the package {cls.module!r} is not installed"
        else:
            out[name] = None
    return out


def available_backends() -> dict[str, bool]:
    """Which :data:`DECODER_BACKENDS` can decode here (``name -> usable``; see :func:`backend_status`)."""
    return {name: reason is None for name, reason in backend_status().items()}


def make_decoder(backend: str = DEFAULT_BACKEND, **options) -> FrameDecoder:
    """A new back-end instance by name (``options`` go to its constructor).

    Raises:
        KeyError: unknown back-end name (the message lists the known ones).
    """
    if backend not in DECODER_BACKENDS:
        raise KeyError(f"unknown decoder back-end {backend!r}; known: {sorted(DECODER_BACKENDS)}")
    return DECODER_BACKENDS[backend](**options)


def read_frames(uri: str, indices: Sequence[int], backend: str = DEFAULT_BACKEND, **options) -> np.ndarray:
    """Decode the given 0-based frames of ``uri`` with one back-end (open, get_batch, close; in process).

    Returns:
        uint8 [N, H, W, 3] RGB, in the order of ``indices``.

    Raises:
        KeyError: unknown back-end name.
        BackendUnavailable: the back-end's package or native libraries are missing.
        DecodeError: the file is refused or the back-end failed (the message names the file).
    """
    with make_decoder(backend, **options) as dec:
        dec.open(uri)
        return dec.get_batch(indices)
