"""BlazePose GHUM (3-D) throughput next to PoseNet (2-D) in the same run.

``python -m bench.extractors_blazepose [--device cpu] [--frames 64] [--batches 1 32] [--threads N]``

Frames: the first ``--frames`` 640x480 frames of ``samples/videos/hikers_walking.mp4`` (walkers),
decoded once with PyAV (RGB). Each extractor is loaded from :mod:`extractors.registry`, warmed up
once at every batch size, then :meth:`extractors.registry.Entry.infer` runs on consecutive
batches of the frames; frames/s = frames / wall time (CUDA synchronised). BlazePose's figure
includes the person detector and one landmark pass per person found (``persons/frame`` is
printed). The ratio is BlazePose frames/s over PoseNet frames/s at the same batch size.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "videos" / "hikers_walking.mp4"
EXTRACTORS = ("posenet-mobilenet-v1-075", "blazepose-ghum")


def _frames(count: int) -> np.ndarray:
    import av

    out = []
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return np.stack(out)


def _time(entry, model, frames: np.ndarray, batch: int, device: str) -> tuple[float, float]:
    """(frames/s, poses per frame) of ``entry.infer`` over ``frames`` in batches of ``batch``."""
    entry.warmup(model, device, size=frames.shape[1:3], batch=batch)
    poses = 0
    start = time.perf_counter()
    for lo in range(0, len(frames), batch):
        for scores, _ in entry.infer(model, frames[lo:lo + batch], device):
            poses += len(scores)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(frames) / (time.perf_counter() - start), poses / len(frames)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.extractors_blazepose", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    from extractors import registry

    registry.prepare_device(args.device, torch_threads=args.threads)
    frames = _frames(args.frames)
    print(f"{len(frames)} frames {frames.shape[2]}x{frames.shape[1]}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")
    results = {}
    for name in EXTRACTORS:
        entry = registry.resolve(name, role="pose")
        model = entry.load(args.device)
        for batch in args.batches:
            fps, per_frame = _time(entry, model, frames, batch, args.device)
            results[f"{name}@{batch}"] = {"fps": round(fps, 2), "persons_per_frame": round(per_frame, 2)}
            print(f"{name:26s} batch {batch:3d}: {fps:7.2f} frames/s, {per_frame:.2f} persons/frame")
    for batch in args.batches:
        ratio = results[f"blazepose-ghum@{batch}"]["fps"] / results[f"posenet-mobilenet-v1-075@{batch}"]["fps"]
        results[f"ratio@{batch}"] = round(ratio, 3)
        print(f"batch {batch:3d}: blazepose / posenet = {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
