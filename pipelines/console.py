"""The console of a local extraction: library noise filtered out of everything printed to stderr.

Beam's local worker processes, the FFmpeg and decord inside the decoder children and gRPC all
write to the file descriptor 2 they inherit: "apitools not found", "Logging handler created",
"moov atom not found", ``[h264 @ 0x...]`` lines, and after Ctrl-C pages of gRPC tracebacks.
:func:`filtered_stderr` points descriptor 2 at a pipe for the duration of the run; a thread
copies each line to the real stderr unless it matches :data:`NOISE` (``--verbose`` copies
everything), and after :meth:`Console.silence` (Ctrl-C) copies nothing. The progress bar
writes to :attr:`Console.stream`, the real stderr, so it is never delayed. What a decoder
reports about a file it cannot read still reaches ``errors.jsonl`` as the sample's message.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from typing import Iterator, TextIO

#: Lines dropped from stderr unless ``--verbose``.
NOISE = re.compile(r"apitools not found|compatible bson package|Logging handler created|moov atom not found"
                   r"|video_reader\.cc|^\s*\[[\w,]+ @ 0x[0-9a-f]+\]|^WARNING: All log messages before absl"
                   r"|Discarding unparseable args|Using default tensorflow")


class Console:
    """Where the run writes its own lines (:attr:`stream`) and the filter's switch."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.silent = False

    def silence(self) -> None:
        """Drop everything still arriving on descriptor 2 (after Ctrl-C), also after the block:
        descriptor 2 then points at ``/dev/null`` until the process exits, so the shutdown of
        Beam's threads prints nothing either."""
        self.silent = True


#: Seconds a line waits before it is copied: on Ctrl-C the whole process group gets SIGINT at
#: once, and the workers' tracebacks must not slip out before :meth:`Console.silence`.
HOLD_S = 0.3


def _pump(read_fd: int, out_fd: int, console: Console, verbose: bool) -> None:
    with os.fdopen(read_fd, "rb", closefd=True) as pipe:
        for raw in pipe:
            arrived = time.monotonic()
            line = raw.decode("utf-8", "replace")
            if not verbose and NOISE.search(line):
                continue
            time.sleep(max(0.0, arrived + HOLD_S - time.monotonic()))
            if not console.silent:
                os.write(out_fd, raw)


def _silence_on_sigint(console: Console):
    """A SIGINT handler that silences the console at once, then raises KeyboardInterrupt."""
    def handler(signum, frame):
        console.silence()
        raise KeyboardInterrupt
    return handler


@contextlib.contextmanager
def filtered_stderr(verbose: bool = False) -> Iterator[Console]:
    """Filter descriptor 2 (this process and every child started inside the block)."""
    sys.stderr.flush()
    real = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    console = Console(os.fdopen(os.dup(real), "w", buffering=1))
    pump = threading.Thread(target=_pump, args=(read_fd, real, console, verbose), daemon=True)
    pump.start()
    previous = signal.signal(signal.SIGINT, _silence_on_sigint(console))
    try:
        yield console
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.stderr.flush()
        if console.silent:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        else:
            os.dup2(real, 2)  # the pipe's last writer in this process is gone; children may hold it
        pump.join(timeout=1.0)
        console.stream.flush()
        os.close(real)
