"""One extraction per output folder at a time: an inter-process lock on ``OUT/.lock``.

Two runs writing into the same folder would race on the same shard names and errors.jsonl.
The lock is ``fasteners.InterProcessLock`` (an ``fcntl`` lock, released by the kernel when the
process dies, so a killed run never leaves a stale lock behind).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


class RunLocked(RuntimeError):
    """Another run holds the output folder's lock."""


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the duration of the block.

    Raises:
        RunLocked: another process holds it (the message names the folder and that process).
    """
    import fasteners

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    lock = fasteners.InterProcessLock(str(path))
    if not lock.acquire(blocking=False):
        owner = (out / ".lock.pid").read_text().strip() if (out / ".lock.pid").is_file() else "another process"
        raise RunLocked(f"{out} is in use by another extraction (pid {owner}); wait for it to finish "
                        f"or choose another --out")
    try:
        (out / ".lock.pid").write_text(str(os.getpid()))
        yield
    finally:
        (out / ".lock.pid").unlink(missing_ok=True)
        lock.release()
