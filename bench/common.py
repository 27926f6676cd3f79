"""Timing and result-recording helpers shared by the benchmarks in ``bench/``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``fn`` (the least disturbed run on a busy machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def record(lines: list[str], results: str, title: str, write: bool = True) -> str:
    """Print a result block and append it to ``bench/<results>`` (created with ``title``)."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        path = REPO / "bench" / results
        if not path.exists():
            path.write_text(f"# {title}\n")
        with open(path, "a") as f:
            f.write(text)
    return text


def machine() -> str:
    """One line naming the CPU, core count, Python and OS (for the results files)."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
