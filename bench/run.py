"""``make bench``: extractor throughput, batched against one frame at a time, in the same run.

Decodes 32 frames of a shipped clip once, then times PoseNet and BlazeFace with batch size 1
(the baseline) and with batches of 8 and 16, and prints frames per second and the ratio to the
baseline. Results are appended to ``bench/RESULTS.md`` with machine and date.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from bench.common import REPO, record



def _fps(fn, frames, batch: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(frames), batch):
            fn(frames[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)

    from extractors.blazeface import detect_faces, load_blazeface
    from extractors.posenet import estimate_poses, load_posenet
    from pipelines.decode import decode_window

    window = decode_window(str(REPO / "samples/videos/hikers_walking.mp4"), 0.0, args.frames / 15.0, 15.0)
    frames = list(window.frames)
    pose, face = load_posenet(args.device), load_blazeface("front", args.device)
    cases = {"posenet 640x480": lambda b: estimate_poses(pose, b, 1.0, args.device),
             "blazeface-front": lambda b: detect_faces(face, b, args.device)}
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M')} — {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, device {args.device}\n", "| extractor | batch | frames/s | ratio to batch 1 |",
             "|---|---|---|---|"]
    for name, fn in cases.items():
        fn(frames[:2])  # warm-up
        base = _fps(fn, frames, 1, args.repeats)
        for batch in (1, 8, 16):
            fps = base if batch == 1 else _fps(fn, frames, batch, args.repeats)
            lines.append(f"| {name} | {batch} | {fps:.1f} | {fps / base:.2f} |")
    record(lines, "RESULTS.md", "Benchmark results (`make bench`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
