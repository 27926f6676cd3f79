"""``--runner dask`` against the local runner, in one run: throughput and peak memory.

``python -m bench.dask_runner`` runs ``python -m pipelines.extract`` on the same corpora with
Beam's local runner (``DirectRunner``, multi_processing, ``--workers`` processes) and with
``--runner dask`` (a ``distributed.LocalCluster`` of ``--workers`` worker processes started by
the CLI), one after the other, and prints:

* per corpus, wall seconds of both and the throughput ratio dask / local (target >= 0.9);
* the marginal sampled frames/s of each runner between the two sizes of the generated card
  (:func:`bench.scale.scale_card`: short windows of the shipped clips), which leaves the fixed
  start-up out, and their ratio;
* the peak RSS summed over the whole process tree (driver with the in-process scheduler,
  Dask or Beam workers, decoder children) at both sizes, and its ratio (flat = about 1.0);
* the 1-minute load average before and after (the machine may be shared).

Corpora: the shipped sample (27 windows of 2 s at 15 frames/s) and the generated card at
``--sizes`` (default 50 and 200 windows of 0.5 s at 4 frames/s). Every run must write every
planned sample or report it in ``errors.jsonl``, and both runners must write the same samples
(a failing sample costs both the same). ``--record`` appends the figures to ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, machine, record
from bench.scale import SAMPLE_FPS, WINDOW_S, run_extract, scale_card

RUNNERS = {"local": ["--runner", "direct"], "dask": ["--runner", "dask"]}


def run_pair(card: Path, limit: int, out: Path, common: list[str]) -> dict[str, dict]:
    """Both runners on ``card``'s first ``limit`` samples: ``{runner: run_extract result}``."""
    runs = {}
    for name, flags in RUNNERS.items():
        folder = out / f"{card.stem}_{limit}_{name}"
        runs[name] = r = run_extract(card, folder, limit, [*flags, *common], allow_failed=True)
        failed = r["manifest"]["samples"]["failed"]
        first = (folder / "errors.jsonl").read_text().splitlines()[0] if failed else ""
        print(f"  {card.stem} {limit:>4} {name:>5}: {r['wall_s']:6.1f} s, peak RSS {r['peak_rss'] / 1e9:.2f} GB, "
              f"{failed} failed ({r['manifest']['runner']}) {first}", flush=True)
    if runs["local"]["manifest"]["samples"] != runs["dask"]["manifest"]["samples"]:
        raise SystemExit(f"the runners wrote different samples: {[r['manifest']['samples'] for r in runs.values()]}")
    return runs


def report(sample: dict, sizes: dict[int, dict], workers: int, loads: tuple) -> list[str]:
    lines = [f"## bench.dask_runner, {time.strftime('%Y-%m-%d')}, CPU, {workers} workers", "",
             f"Machine: {machine()}; 1-minute load average {loads[0]:.2f} before, {loads[1]:.2f} after "
             "(other processes on the machine count in it).", "",
             "| corpus | samples (written) | local wall s | dask wall s | dask / local throughput "
             "| local peak RSS | dask peak RSS |", "|---|---|---|---|---|---|---|"]
    rows = [("sample (2 s at 15 fps)", 27, sample)]
    rows += [(f"generated ({WINDOW_S} s at {SAMPLE_FPS:g} fps)", n, r) for n, r in sorted(sizes.items())]
    for name, n, r in rows:
        lo, da = r["local"], r["dask"]
        lines.append(f"| {name} | {n} ({lo['manifest']['samples']['written']}) | {lo['wall_s']:.1f} | {da['wall_s']:.1f} | **{lo['wall_s'] / da['wall_s']:.2f}x** "
                     f"| {lo['peak_rss'] / 1e9:.2f} GB | {da['peak_rss'] / 1e9:.2f} GB |")
    (a, ra), (b, rb) = sorted(sizes.items())
    per = int(round(WINDOW_S * SAMPLE_FPS))
    marginal = {k: (b - a) * per / max(1e-9, rb[k]["wall_s"] - ra[k]["wall_s"]) for k in RUNNERS}
    lines += ["", f"- marginal sampled frames/s between {a} and {b} windows: local {marginal['local']:.1f}, "
                  f"dask {marginal['dask']:.1f}; dask / local = **{marginal['dask'] / marginal['local']:.2f}x** "
                  "(target >= 0.9x)",
              f"- start-up beyond the marginal rate at {a} windows: local "
              f"{ra['local']['wall_s'] - a * per / marginal['local']:.1f} s, dask "
              f"{ra['dask']['wall_s'] - a * per / marginal['dask']:.1f} s"]
    for k in RUNNERS:
        lines.append(f"- peak RSS of the {k} process tree, {b} vs {a} windows: "
                     f"**{rb[k]['peak_rss'] / max(1, ra[k]['peak_rss']):.2f}x**")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dask_runner", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="50,200", help="two sizes of the generated card (windows)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of both runners")
    ap.add_argument("--shards", type=int, default=None, help="shards (default: 2 per worker)")
    ap.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = ap.parse_args(argv)
    sizes = sorted(int(x) for x in args.sizes.split(","))
    shards = args.shards or 2 * args.workers
    common = ["--workers", str(args.workers), "--num-shards", str(shards)]
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="affectzoo-dask-bench-") as tmp:
        tmp = Path(tmp)
        sample = run_pair(REPO / "datasets" / "sample.toml", 27, tmp, common)
        card = scale_card(tmp, max(sizes), shards)
        by_size = {n: run_pair(card, n, tmp, common) for n in sizes}
    lines = report(sample, by_size, args.workers, (before, os.getloadavg()[0]))
    record(lines, "RESULTS.md", "Benchmark results", write=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
