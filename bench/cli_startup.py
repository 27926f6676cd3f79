"""Start-up time of every command line: ``python -m X --help`` (and ``zoo.train --list``).

A benchmark, not a test: prints the minimum wall time of ``--runs`` runs per command (seconds),
so the numbers are comparable across machines that are otherwise busy. Issue 15 asks for under
1 s each (torch and Beam are imported only when a command needs them).

    .venv/bin/python -m bench.cli_startup [--runs 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["pipelines.extract", "--help"],
    ["pipelines.corpora", "--help"],
    ["pipelines.preview", "--help"],
    ["pipelines.export", "--help"],
    ["zoo.train", "--help"],
    ["zoo.evaluate", "--help"],
    ["zoo.predict", "--help"],
    ["extractors.weights", "--help"],
    ["zoo.train", "--list"],
]


def time_command(argv: list[str], runs: int = 3) -> float:
    """Minimum wall seconds of ``python -m argv`` over ``runs`` runs (output discarded)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"python -m {' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
        best = min(best, elapsed)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per command; the minimum is reported (default 3)")
    args = ap.parse_args(argv)
    print(f"{'command':40} {'seconds':>8}")
    slow = 0
    for cmd in COMMANDS:
        t = time_command(cmd, args.runs)
        slow += t >= 1.0
        print(f"{'python -m ' + ' '.join(cmd):40} {t:8.2f}" + ("  (>= 1 s)" if t >= 1.0 else ""))
    print(f"{slow} of {len(COMMANDS)} commands take 1 s or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
