"""Memory is flat in the number of samples: a 10x larger corpus peaks at most 1.15x higher.

The corpus is many cheap skeleton samples (an EWalk-layout ``features.h5`` / ``labels.h5`` of
synthetic 16-joint gaits, generated here), so the test measures what the pipeline holds per
sample (rows, grouping buffers), not model or decoding costs. Peak RSS is summed over the whole
process tree of ``python -m pipelines.extract`` (driver, Beam workers), sampled from ``/proc``
(:func:`bench.scale.run_extract`). Before the per-shard writer, the rows of every shard passed
through a GroupByKey held by the runner, and the peak grew with the corpus.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from bench.scale import run_extract

SMALL, LARGE = 300, 3000
FRAMES = 240  # EWalk gaits are 240 frames of 16 joints x (x, y, z)


def _gait_corpus(root: Path, n: int) -> Path:
    rng = np.random.default_rng(n)
    root.mkdir(parents=True)
    base = np.cumsum(rng.normal(0, 1, (FRAMES, 48)), axis=0).astype(np.float32)
    with h5py.File(root / "features.h5", "w") as f, h5py.File(root / "labels.h5", "w") as g:
        for i in range(n):
            key = f"{i:05d}_gait_positions.csv"
            f[key] = base + np.float32(i % 97)
            g[key] = np.int32(i % 4)
    return root


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    out = {}
    for n in (SMALL, LARGE):
        root = _gait_corpus(tmp / f"root{n}", n)
        out[n] = run_extract(Path("ewalk"), tmp / f"out{n}", n, ["--root", str(root), "--num-shards", "4"])
    return out


def test_every_sample_is_written_at_both_sizes(peaks):
    for n, run in peaks.items():
        assert run["manifest"]["samples"] == {"planned": n, "written": n, "failed": 0, "lost": []}
        assert run["manifest"]["rows"]["videos"] == n


def test_peak_memory_does_not_grow_with_the_corpus(peaks):
    small, large = peaks[SMALL]["peak_rss"], peaks[LARGE]["peak_rss"]
    assert small > 100e6  # the sampler saw the process tree
    assert large <= 1.15 * small, f"peak RSS {large / 1e9:.2f} GB at {LARGE} samples vs {small / 1e9:.2f} GB at {SMALL}"
