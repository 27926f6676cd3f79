"""OpenPose body throughput: batched extraction against pytorch-openpose's frame-at-a-time loop.

``python -m bench.extractors_openpose [--device cpu] [--frames 4] [--scale 1.0]``

Both sides use the same model (the real ``body_pose_model.pth`` when the registry finds it,
otherwise :class:`extractors.openpose.BodyPoseModel` with PyTorch's default random
initialisation, seed 0: the run says which), the same RGB frames of a shipped clip and the same
``scale_search`` (default ``[1.0]``: network input 368 px high).

- baseline (the way ``Body.__call__`` in Hzzone/pytorch-openpose works): for each frame, cv2
  resize + pad, a forward of batch 1, then :func:`extractors.openpose.decode_reference` on the
  CPU (cv2 x8 resizes of all 57 channels, one scipy ``gaussian_filter`` per part, Python limb
  association);
- affectzoo: :func:`extractors.openpose.estimate_poses` with all frames in one batch and
  ``mode="fast"`` (one forward, post-processing batched on ``device``).

Prints frames/s of both, the ratio, and the post-processing time per frame of both decoders on
the same network maps, with peak and people counts (random weights give maps without real
people, so the association work differs from real footage). Appends the table to
``bench/results_openpose.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import REPO, record

CLIP = REPO / "samples/videos/group_event_smiling.mp4"


def _model(device: str):
    """(model, description): the registry's weights, or seeded random weights when absent."""
    from extractors import openpose as op
    from extractors.weights import WeightsNotFoundError

    try:
        return op.load_openpose(device), "real body_pose_model.pth"
    except WeightsNotFoundError:
        torch.manual_seed(0)
        return op.BodyPoseModel().to(device).eval(), "random init (seed 0; real weights absent)"


def _baseline(model, frames, scales, device):
    """pytorch-openpose's loop: per frame resize, forward (batch 1), CPU reference decode."""
    from extractors import openpose as op

    out = []
    for frame in frames:
        geoms = op.scale_geometries(frame.shape[:2], scales)
        pafs, heats = [], []
        with torch.no_grad():
            for g in geoms:
                x = torch.from_numpy(op.preprocess(frame, g)[None]).to(device)
                paf, heat = model(x)
                pafs.append(paf[0].cpu().numpy())
                heats.append(heat[0].cpu().numpy())
        out.append(op.decode_reference(pafs, heats, geoms))
    return out


def _timed(fn, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0],
                    help="scale_search (1.0 = network input 368 px high)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="alternate the two paths this many times, keep the best time of each")
    ap.add_argument("--no-write", action="store_true", help="do not append to the results file")
    args = ap.parse_args(argv)

    from extractors import openpose as op
    from pipelines.decode import decode_window

    frames = list(decode_window(str(CLIP), 0.0, args.frames / 15.0, 15.0).frames)[:args.frames]
    model, weights = _model(args.device)
    scales = tuple(args.scale)
    op.estimate_poses(model, frames[:1], scales, args.device)  # warm-up (operators, allocator)

    t_base = t_ours = float("inf")
    for _ in range(args.repeats):  # alternate, so that a change of machine load hits both
        ours, t = _timed(op.estimate_poses, model, frames, scales, args.device, "fast")
        t_ours = min(t_ours, t)
        base, t = _timed(_baseline, model, frames, scales, args.device)
        t_base = min(t_base, t)

    # post-processing alone, on the same maps
    (geoms, maps), t_net = _timed(op.network_maps, model, frames, scales, args.device)
    pafs, heats = [m[0] for m in maps], [m[1] for m in maps]
    _, t_fast = _timed(op.decode_fast, pafs, heats, geoms)
    cpu_p, cpu_h = [p.cpu() for p in pafs], [h.cpu() for h in heats]
    _, t_ref = _timed(lambda: [op.decode_reference([p[i] for p in cpu_p], [h[i] for h in cpu_h],
                                                   geoms) for i in range(len(frames))])
    n = len(frames)
    h, w = frames[0].shape[:2]
    peaks_b = sum(int(r.peaks_per_part.sum()) for r in base)
    peaks_o = sum(int(r.peaks_per_part.sum()) for r in ours)
    people_b, people_o = sum(len(r.subset) for r in base), sum(len(r.subset) for r in ours)
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (torch threads {torch.get_num_threads()}), device {args.device}",
        f"\n{n} frames {w}x{h} of `{CLIP.name}`, scale_search {list(scales)} (network input "
        f"{geoms[0].padded_hw[0]}x{geoms[0].padded_hw[1]}), weights: {weights}; best of "
        f"{args.repeats} alternating run(s).\n",
        "| path | frames/s | ratio |", "|---|---|---|",
        f"| baseline: per frame resize, forward (batch 1), body.py decode on CPU | {n / t_base:.3f} | 1.00 |",
        f"| affectzoo: one batch of {n}, fast decode on {args.device} | {n / t_ours:.3f} | "
        f"{t_base / t_ours:.2f} |",
        "",
        f"Breakdown on the same maps: batched forward {1000 * t_net / n:.0f} ms/frame; post-processing "
        f"reference {1000 * t_ref / n:.0f} ms/frame, fast {1000 * t_fast / n:.0f} ms/frame "
        f"({t_ref / max(t_fast, 1e-9):.1f}x).",
        f"Peaks found: baseline {peaks_b}, affectzoo {peaks_o}; people: {people_b} / {people_o}.",
    ]
    record(lines, "results_openpose.md", "OpenPose body benchmark (`python -m bench.extractors_openpose`)",
           not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
