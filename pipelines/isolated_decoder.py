"""Decoding in a separate, persistent child process that decodes ahead of its consumer.

A decoder that aborts or segfaults on a corrupt file, hangs past ``timeout_s`` or runs out of
its memory limit kills only its child process (``python -m pipelines.isolated_decoder``): the
file is reported as a :class:`DecoderCrashed` / :class:`DecodeTimeout` dead-letter and the next
file gets a fresh child. The pipeline's ``Decode`` stage uses one child per DoFn instance.

The child decodes ahead of the consumer, so decoding overlaps with what the consumer does with
the frames (pose inference, assembly, shard writing) on another core:

* within a file, up to :data:`AHEAD_CHUNKS` chunks wait in the child while the consumer works;
* across files, :meth:`IsolatedDecoder.decode_many` sends the next ``ahead`` requests before the
  current file's frames are consumed, so the child starts on the next file at once.

Memory stays bounded: at most ``AHEAD_CHUNKS`` chunks (``CHUNK_FRAMES`` frames each) plus the
pipe's buffer are held beyond the chunk the consumer is working on.

When the child dies while requests for later files are outstanding, the crash may belong to a
later file (its queued chunks for the current file die with it). The current file is then
resumed alone, from the first frame it has not delivered yet, in a fresh child: a file that
crashes again alone is the culprit; otherwise the stream goes on without a lost or a repeated
frame.
"""
from __future__ import annotations

import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from pipelines.decode import (CHUNK_FRAMES, DEFAULT_BACKEND, MAX_FRAME_PIXELS, DecodedWindow, DecodeError, VideoPlan,
                              iter_chunks, open_video)

#: Address-space limit of the decoder process (bytes): a hostile header that makes FFmpeg
#: allocate without bound fails inside the child instead of exhausting the machine.
DECODER_MEMORY_BYTES = 6 << 30
#: Kernel buffer of the decoder's output pipe (bytes; capped by /proc/sys/fs/pipe-max-size).
PIPE_BYTES = 1 << 20
#: Seconds the decoder may go without answering (open, or one chunk) before it is killed.
DECODER_TIMEOUT_S = 120.0
#: Decoded chunks the child may hold ahead of the consumer (each at most ``CHUNK_FRAMES`` frames).
AHEAD_CHUNKS = 2


class DecoderCrashed(DecodeError):
    """The isolated decoder process died (signal or exit) while decoding a file."""


class DecodeTimeout(DecodeError):
    """The isolated decoder process did not answer within its timeout and was killed."""


@dataclass(frozen=True)
class DecodeRequest:
    """One file to decode.

    Attributes:
        uri: the video file.
        window: ``(start_s, length_s, sample_fps)`` (see :func:`pipelines.decode.plan_window`),
            or None with explicit ``frame_indices`` (0-based).
        start: first plan position to send (a resumed stream skips what was delivered).
    """

    uri: str
    window: tuple[float, float, float] | None = None
    frame_indices: tuple[int, ...] = ()
    start: int = 0


class DecodeResult(NamedTuple):
    """Outcome of one :class:`DecodeRequest`: ``plan`` and ``chunks``, or ``error``.

    ``chunks`` yields ``(first_position, frames uint8 [n, H, W, 3] RGB)`` in plan order and may
    raise :class:`DecodeError` (incl. :class:`DecoderCrashed`, :class:`DecodeTimeout`) midway.
    """

    request: DecodeRequest
    plan: VideoPlan | None
    chunks: Iterator[tuple[int, np.ndarray]] | None
    error: DecodeError | None


# --- protocol: length-prefixed pickles, chunk frames as raw bytes after their header ------------

_HEADER = struct.Struct("<Q")


def _send(fh, obj, payload: np.ndarray | None = None) -> None:
    """Write one message: a length-prefixed pickle, then (for chunks) the array's raw bytes.

    The frames travel as raw bytes (not inside the pickle) so that they are copied once into
    the pipe and once out of it.
    """
    data = pickle.dumps(obj, protocol=5)
    fh.write(_HEADER.pack(len(data)))
    fh.write(data)
    if payload is not None:
        fh.write(memoryview(np.ascontiguousarray(payload)).cast("B"))
    fh.flush()


def _read_into(fd: int, buf: memoryview, deadline: float | None) -> bool:
    """Fill ``buf`` from ``fd``; False on EOF; raises TimeoutError past ``deadline``."""
    got, n = 0, len(buf)
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        k = os.readv(fd, [buf[got:]])
        if k == 0:
            return False
        got += k
    return True


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """Read ``n`` bytes from ``fd``; None on EOF; raises TimeoutError past ``deadline``."""
    buf = bytearray(n)
    return bytes(buf) if _read_into(fd, memoryview(buf), deadline) else None


def _widen_pipe(fd: int) -> None:
    """Grow a pipe's kernel buffer (Linux ``F_SETPIPE_SZ``) to cut the read/write calls per chunk."""
    import fcntl

    try:
        limit = int(open("/proc/sys/fs/pipe-max-size").read())
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), min(PIPE_BYTES, limit))
    except (OSError, ValueError):
        pass  # not Linux, or not allowed: the default 64 KiB pipe still works


# --- the child -------------------------------------------------------------------------------------


def _messages(request: dict) -> Iterator[tuple[tuple, np.ndarray | None]]:
    """The answer to one request: ``plan``, then ``chunk``s, then ``end`` (or one ``error``)."""
    try:
        decoder, plan = open_video(request["uri"], request.get("window"), request.get("frame_indices", ()),
                                   request.get("max_pixels", MAX_FRAME_PIXELS), request.get("backend", DEFAULT_BACKEND))
        with decoder:
            yield ("plan", plan), None
            for pos, frames in iter_chunks(decoder, plan, request.get("chunk_frames", CHUNK_FRAMES),
                                           start=request.get("start", 0)):
                yield ("chunk", pos, frames.shape, frames.dtype.str), frames
        yield ("end",), None
    except MemoryError as exc:
        yield ("error", "DecodeError", f"{request['uri']}: out of decoder memory: {exc}"), None
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        yield ("error", type(exc).__name__, str(exc)), None


def _writer(out, outbox: queue.Queue) -> None:
    """Child thread: send queued messages; exit the process when the parent has gone."""
    while (item := outbox.get()) is not None:
        try:
            _send(out, *item)
        except (BrokenPipeError, OSError):
            os._exit(0)


def _worker_main() -> None:
    """Child loop: requests on stdin, answers on the saved stdout, decoded ahead by a writer thread.

    FFmpeg/decord may print to stdout, so the protocol stream is a duplicate of the original
    stdout and file descriptor 1 is pointed at stderr. The main thread decodes into a queue of
    :data:`AHEAD_CHUNKS` messages; a writer thread drains it into the pipe, so decoding goes on
    while the parent is busy, and the next request (already sent) starts at once.
    """
    import resource

    limit = int(os.environ.get("AFFECTZOO_DECODER_MEMORY_BYTES", DECODER_MEMORY_BYTES))
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    outbox: queue.Queue = queue.Queue(maxsize=AHEAD_CHUNKS)
    writer = threading.Thread(target=_writer, args=(out, outbox), daemon=True)
    writer.start()
    inp = sys.stdin.buffer
    while True:
        head = inp.read(_HEADER.size)
        if len(head) < _HEADER.size:
            break
        for item in _messages(pickle.loads(inp.read(_HEADER.unpack(head)[0]))):
            outbox.put(item)
    outbox.put(None)
    writer.join()


# --- the parent ------------------------------------------------------------------------------------


class IsolatedDecoder:
    """Decode videos in a persistent child process so that a crashing decoder loses one file.

    Usage::

        with IsolatedDecoder() as dec:
            plan, chunks = dec.decode(uri, window=(start_s, length_s, sample_fps))
            for first_position, frames in chunks:   # uint8 [n, H, W, 3] per chunk
                ...
            for result in dec.decode_many(requests):  # the next file decodes meanwhile
                ...

    The child is started lazily, reused for every file and restarted after a crash or a
    timeout. Overhead against in-process decoding: one copy of the frames through a pipe
    (measured in ``bench/pipeline.py``).

    Args:
        timeout_s: seconds the child may take to open a file or to send one chunk.
        chunk_frames: frames per chunk.
        max_pixels: frame-size limit (see :data:`pipelines.decode.MAX_FRAME_PIXELS`).
        backend: decoder back-end in the child (:data:`pipelines.decoders.DECODER_BACKENDS`).
    """

    def __init__(self, timeout_s: float = DECODER_TIMEOUT_S, chunk_frames: int = CHUNK_FRAMES,
                 max_pixels: int = MAX_FRAME_PIXELS, backend: str = DEFAULT_BACKEND):
        self.timeout_s = timeout_s
        self.backend = backend
        self.chunk_frames = chunk_frames
        self.max_pixels = max_pixels
        self._proc: subprocess.Popen | None = None
        self._inflight: deque[tuple[int, DecodeRequest]] = deque()  # (number, request) not yet consumed
        self._numbered = 0  # requests numbered so far
        self._sent = 0  # how many of them the current child has received
        self._solo = False  # resuming the head request alone: later requests wait
        self.restarts = 0  # children killed after a crash, a timeout or an abandoned stream

    @property
    def pid(self) -> int | None:
        """Process id of the current child (None before the first file)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    # process management

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self._kill()
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            self._proc = subprocess.Popen([sys.executable, "-m", "pipelines.isolated_decoder"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
            _widen_pipe(self._proc.stdout.fileno())
        return self._proc

    def _kill(self) -> int | None:
        proc, self._proc, self._sent = self._proc, None, 0
        if proc is None:
            return None
        self.restarts += 1
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for fh in (proc.stdin, proc.stdout):
            try:
                fh.close()
            except OSError:
                pass
        return code

    def _post_pending(self) -> None:
        """Send the in-flight requests the child has not received (only the head when solo)."""
        limit = 1 if self._solo else len(self._inflight)
        while self._sent < min(limit, len(self._inflight)):
            req = self._inflight[self._sent][1]
            message = {"uri": req.uri, "window": req.window, "frame_indices": req.frame_indices,
                       "start": req.start, "chunk_frames": self.chunk_frames, "max_pixels": self.max_pixels,
                       "backend": self.backend}
            try:
                _send(self._start().stdin, message)
            except (BrokenPipeError, OSError):
                return  # the child is gone: reading its answer reports the crash
            self._sent += 1

    # reading answers

    def _receive(self, uri: str):
        """The next message of the head request; raises on timeout or a dead child."""
        proc = self._proc
        fd = proc.stdout.fileno()
        try:
            deadline = time.monotonic() + self.timeout_s
            head = _read_exact(fd, _HEADER.size, deadline)
            body = None if head is None else _read_exact(fd, _HEADER.unpack(head)[0], deadline)
            msg = None if body is None else pickle.loads(body)
            if msg is not None and msg[0] == "chunk":  # the frames follow as raw bytes
                frames = np.empty(msg[2], dtype=np.dtype(msg[3]))
                msg = ("chunk", msg[1], frames) if _read_into(fd, memoryview(frames).cast("B"), deadline) else None
        except TimeoutError:
            self._kill()
            raise DecodeTimeout(f"{uri}: decoder gave no answer within {self.timeout_s:.0f} s; "
                                f"its process was killed") from None
        if msg is None:
            code = self._kill()
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
            raise DecoderCrashed(f"{uri}: decoder process died ({how}) while decoding this file")
        return msg

    def _next_message(self, delivered: int):
        """The head request's next message; a crash that may be a later file's resumes it alone."""
        while True:
            self._post_pending()
            number, req = self._inflight[0]
            ambiguous = not self._solo and len(self._inflight) > 1 and self._sent > 1
            try:
                return self._receive(req.uri)
            except DecoderCrashed:
                if not ambiguous:
                    raise
                self._inflight[0] = (number, replace(req, start=req.start + delivered))
                self._solo = True  # retry in a fresh child, alone, from the first undelivered frame

    @staticmethod
    def _error(uri: str, msg: tuple) -> DecodeError:
        return DecodeError(msg[2] if msg[1] == "DecodeError" else f"{uri}: {msg[1]}: {msg[2]}")

    def _submit(self, request: DecodeRequest) -> None:
        self._inflight.append((self._numbered, request))
        self._numbered += 1

    def _open_head(self) -> DecodeResult:
        number, req = self._inflight[0]
        try:
            msg = self._next_message(0)
        except DecodeError as exc:
            self._finish(number, clean=True)
            return DecodeResult(req, None, None, exc)
        if msg[0] == "error":
            self._finish(number, clean=True)
            return DecodeResult(req, None, None, self._error(req.uri, msg))
        return DecodeResult(req, msg[1], self._chunks(number, req.uri), None)

    def _chunks(self, number: int, uri: str) -> Iterator[tuple[int, np.ndarray]]:
        finished, delivered = False, 0
        try:
            while True:
                msg = self._next_message(delivered)
                if msg[0] == "plan":  # a resumed stream starts with its plan again
                    continue
                if msg[0] in ("end", "error"):
                    finished = True
                    if msg[0] == "error":
                        raise self._error(uri, msg)
                    return
                delivered += len(msg[2])
                yield msg[1], msg[2]
        except DecodeError:
            finished = True
            raise
        finally:
            self._finish(number, clean=finished)

    def _finish(self, number: int, clean: bool) -> None:
        """Request ``number`` is done; an abandoned stream leaves stale chunks, so kill the child.

        A no-op when it is no longer the head (its stream was dropped before).
        """
        if not self._inflight or self._inflight[0][0] != number:
            return
        self._inflight.popleft()
        self._sent = max(self._sent - 1, 0)
        self._solo = False
        if not clean:
            self._kill()

    def _drop_inflight(self) -> None:
        """Forget requests an earlier caller abandoned; their answers may be in the pipe, so the
        child is restarted."""
        if self._inflight:
            self._inflight.clear()
            self._solo = False
            self._kill()

    # public API

    def decode_many(self, requests: Iterable[DecodeRequest], ahead: int = 1) -> Iterator[DecodeResult]:
        """Decode files in order, the next ``ahead`` ones already decoding while one is consumed.

        Consume each result's ``chunks`` before taking the next result (an abandoned stream
        restarts the child; the requests after it are sent again). Requests left over from an
        earlier, abandoned call are dropped (a failed bundle that Beam retries).

        Yields:
            one :class:`DecodeResult` per request, in order; decoding failures are in ``error``
            (or raised from ``chunks`` when they happen midway), never raised here.
        """
        self._drop_inflight()
        source = iter(requests)

        def top_up() -> None:
            while len(self._inflight) <= ahead and (nxt := next(source, None)) is not None:
                self._submit(nxt)

        top_up()
        while self._inflight:
            self._post_pending()
            number = self._inflight[0][0]
            result = self._open_head()
            yield result
            if self._inflight and self._inflight[0][0] == number:  # chunks not consumed: drop them
                result.chunks.close()
                self._finish(number, clean=False)  # (an unstarted generator runs no cleanup)
            top_up()

    def decode(self, uri: str, window: tuple[float, float, float] | None = None,
               frame_indices: Sequence[int] = ()) -> tuple[VideoPlan, Iterator[tuple[int, np.ndarray]]]:
        """Open ``uri`` in the child and stream its planned frames.

        Args:
            window: ``(start_s, length_s, sample_fps)``; or ``frame_indices``: explicit frames.

        Returns:
            ``(plan, chunks)``: the :class:`VideoPlan` and an iterator of
            ``(first_position, frames uint8 [n, H, W, 3])``. Consume ``chunks`` fully before the
            next call (an abandoned iterator makes the next call restart the child).

        Raises:
            DecodeError: the child reported a decoding failure (as :func:`pipelines.decode.open_video`).
            DecoderCrashed: the child died (e.g. SIGSEGV / SIGABRT inside FFmpeg).
            DecodeTimeout: the child did not answer in ``timeout_s``.
        """
        self._drop_inflight()
        self._submit(DecodeRequest(uri, window, tuple(frame_indices)))
        result = self._open_head()
        if result.error is not None:
            raise result.error
        return result.plan, result.chunks

    def decode_window(self, uri: str, start_s: float, length_s: float, sample_fps: float) -> DecodedWindow:
        """:func:`pipelines.decode.decode_window` through the child (frames stacked; short windows)."""
        plan, chunks = self.decode(uri, window=(start_s, length_s, sample_fps))
        frames = np.concatenate([f for _, f in chunks])
        return DecodedWindow(plan.frame_indices, plan.timestamps_s, frames, plan.fps, plan.num_video_frames)

    def close(self) -> None:
        """Stop the child (closing its stdin ends its loop)."""
        proc, self._proc = self._proc, None
        self._inflight.clear()
        self._sent = 0
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        try:
            proc.stdout.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    # run the loop from the importable module so that pickled classes are pipelines.* classes
    from pipelines.isolated_decoder import _worker_main as _loop

    _loop()
