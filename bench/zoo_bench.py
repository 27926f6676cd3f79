"""``python -m bench.zoo_bench``: representation and trainer throughput against baselines, same run.

1. Representations (issue 4): the representation stage alone (skeleton timeline, CAER pose
   features, super-image tiling) on the stored tracks and face crops of an extraction run,
   in windows/s, against decord decoding of the same windows (the stage's input rate).
2. Trainer input (issue 6): one training epoch of ACCM reading the HDF5 shards through
   ``ShardDataset`` + DataLoader, in samples/s, against the same tensors held in memory.

Needs an extraction run (default ``shards/sample``: ``make extract``). Results are appended to
``bench/RESULTS.md`` with machine and date.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import REPO, best_seconds, record




def _rows(shards: Path, clips: int) -> list[dict]:
    """Per stored sample: its uri and window, COCO tracks, frame indices and face crops."""
    from pipelines.shardset import ShardSet

    rows = []
    for shard in ShardSet(shards).shards:
        table = shard.read_table("videos", ["uri", "start_s", "end_s", "frame_indices", "num_frames"]).to_pylist()
        tracks, faces = shard.dataset("videos/tracks"), shard.dataset("clips/faces")
        for i, r in enumerate(table):
            n = r["num_frames"]
            rows.append({**r, "tracks": tracks[i][:, :n], "frame_indices": np.asarray(r["frame_indices"][:n]),
                         "faces": faces[clips * i: clips * (i + 1)]})
    return rows


def bench_represent(shards: Path, repeats: int) -> tuple[float, float]:
    """(windows/s of the representation stage, windows/s of decoding the same windows)."""
    from pipelines.assemble import pose_features_of, timeline_of
    from pipelines.config import config_from_card
    from pipelines.cards import load_card
    from pipelines.decode import decode_window
    from pipelines.represent.superimage import tile_superimage
    from schemas.keypoints import coco17_to_openpose18

    cfg = config_from_card(load_card("sample"), REPO / "samples" / "videos", "/tmp/unused")
    rows = _rows(shards, cfg.clips)

    def represent():
        for r in rows:
            timeline_of(coco17_to_openpose18(r["tracks"][0]), cfg)
            pose_features_of(r["tracks"], r["frame_indices"], cfg)
            for clip in r["faces"]:
                tile_superimage(clip)

    def decode():
        for r in rows:
            decode_window(r["uri"], r["start_s"], r["end_s"] - r["start_s"], cfg.sample_fps)

    return len(rows) / best_seconds(represent, repeats), len(rows) / best_seconds(decode, repeats)


def bench_loader(shards: Path, repeats: int) -> tuple[float, float]:
    """(samples/s of an ACCM epoch reading the shards, samples/s with the tensors in memory)."""
    from torch.utils.data import DataLoader, TensorDataset

    from zoo.data import ShardDataset
    from zoo.registry import get_model

    data = ShardDataset(shards, "timeline", None)
    x, y = data.tensors()
    spec = get_model("accm")
    model = spec.build(tuple(x.shape[1:]), len(data.label_names))
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def epoch(loader):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb.float()), torch.as_tensor(yb)).backward()
            opt.step()

    memory = TensorDataset(x, torch.tensor(y))
    epoch(DataLoader(memory, 8))  # warm-up: first-call allocations are not the loader's cost
    from_shards, in_memory = float("inf"), float("inf")
    for _ in range(repeats):  # alternate, so that machine load changes hit both alike
        from_shards = min(from_shards, best_seconds(lambda: epoch(DataLoader(data, 8, shuffle=True)), 1))
        in_memory = min(in_memory, best_seconds(lambda: epoch(DataLoader(memory, 8, shuffle=True)), 1))
    return len(data) / from_shards, len(data) / in_memory


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=Path, default=REPO / "shards" / "sample")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args(argv)
    if not (args.shards / "manifest.json").is_file():
        print(f"no extraction run in {args.shards}: run `make extract` first")
        return 2
    rep, dec = bench_represent(args.shards, args.repeats)
    disk, mem = bench_loader(args.shards, args.repeats)
    load = os.getloadavg()[0]
    lines = [f"## {time.strftime('%Y-%m-%d %H:%M')} zoo_bench: {platform.machine()}, {os.cpu_count()} cores, "
             f"load {load:.1f}, torch threads {torch.get_num_threads()}, shards {args.shards.name}",
             "", "| measure | rate | baseline | ratio |", "|---|---|---|---|",
             f"| representation stage (timeline, pose features, super-images) | {rep:.1f} windows/s | "
             f"decord decode {dec:.1f} windows/s | {rep / dec:.1f} |",
             f"| ACCM epoch reading HDF5 shards | {disk:.1f} samples/s | same tensors in memory {mem:.1f} samples/s "
             f"| {disk / mem:.2f} |", ""]
    record(lines, "RESULTS.md", "Benchmark results (`make bench`)", not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
