"""Corpus-scale benchmark: throughput, start-up and memory of a whole extraction at two sizes.

``python -m bench.scale`` (``make bench-scale``) builds a card of N short windows of the
shipped clips (``datasets/sample.toml`` with 0.5 s windows at 4 frames/s and a small stride;
one clip of 2 frames, so every sampled frame also gets a face crop), runs ``python -m
pipelines.extract`` on it at two sizes and prints, in one run:

* marginal sampled frames/s and the fixed start-up, from the slope between the two sizes;
* the peak RSS summed over the whole process tree (driver, Beam workers, decoder children),
  sampled every 0.2 s from ``/proc``;
* the time per pipeline step (Beam distributions recorded in the manifest);
* the model-only throughput of the same extractors on the same frames, measured in this
  process (:class:`pipelines.models.ExtractorModels`: pose model on the frames, face model on
  one head-sized crop per frame), and the pipeline's ratio to it;
* with ``--cpu-baseline`` (GPU runs), the same two sizes on the CPU, and the GPU/CPU ratio.

Every run must write every planned sample; the benchmark fails otherwise.
``--record`` appends the figures to ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REPO, machine, record

WINDOW_S, SAMPLE_FPS = 0.5, 4.0


def scale_card(dest: Path, windows: int, num_shards: int, window_s: float = WINDOW_S,
               sample_fps: float = SAMPLE_FPS) -> Path:
    """A copy of ``datasets/sample.toml`` cut into at least ``windows`` windows of ``window_s``
    at ``sample_fps`` (one clip of ``window_s * sample_fps`` frames); returns its path."""
    text = (REPO / "datasets" / "sample.toml").read_text()
    spans = [float(e) - float(s) - window_s for s, e in
             re.findall(r"start_s = ([\d.]+)\s*\nend_s = ([\d.]+)", text)]
    stride = sum(max(0.0, x) for x in spans) / windows * 0.98
    frames = int(round(window_s * sample_fps))
    text = re.sub(r"stride_s = [\d.]+", f"stride_s = {stride:.6f}", text)
    text = re.sub(r"length_s = [\d.]+", f"length_s = {window_s}", text)
    text = re.sub(r"sample_fps = [\d.]+", f"sample_fps = {sample_fps}", text)
    text = re.sub(r"\nclips = \d+", "\nclips = 1", text)
    text = re.sub(r"\nframes_per_clip = \d+", f"\nframes_per_clip = {frames}", text)
    text = re.sub(r'root = "samples/videos"', f'root = "{REPO / "samples" / "videos"}"', text)
    text = re.sub(r"num_shards = \d+", f"num_shards = {num_shards}", text)
    path = dest / f"scale_{windows}.toml"
    path.write_text(text)
    return path


def _tree_rss(root_pid: int) -> int:
    """Resident bytes summed over ``root_pid`` and all its descendants (``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo, page = 0, [root_pid], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(children.get(pid, []))
    return total


def run_extract(card: Path, out: Path, limit: int, extra: list[str], allow_failed: bool = False) -> dict:
    """Run the extraction CLI; returns wall seconds, peak tree RSS (bytes) and the manifest.

    Every planned sample must be written (``allow_failed``: written or reported in errors.jsonl)."""
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(out),
           "--limit", str(limit), "--no-progress", *extra]
    peak, done = [0], threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    output = proc.communicate()[0]
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"extraction failed (rc {proc.returncode}):\n{output[-3000:]}")
    from pipelines.shardset import read_manifest

    manifest = read_manifest(out)
    samples = manifest["samples"]
    done = samples["written"] + (samples["failed"] if allow_failed else 0)
    if done != samples["planned"] or samples["planned"] != limit:
        raise SystemExit(f"only {samples['written']}/{samples['planned']} of {limit} samples written:\n{output[-3000:]}")
    return {"wall_s": wall, "peak_rss": peak[0], "manifest": manifest}


def model_only_fps(card: Path, device: str, frames: int, max_batch_size: int) -> float:
    """Sampled frames/s of the pose model on real frames of the shipped clips plus the face
    model on one head-sized crop per frame, in this process (no decoding, no Beam)."""
    import numpy as np

    from pipelines.cards import corpus_root, load_card
    from pipelines.config import config_from_card
    from pipelines.decoders import read_frames
    from pipelines.faces import HEAD_CROP_SIZE
    from pipelines.models import ExtractorModels

    card_dict = load_card(str(card))
    cfg = config_from_card(card_dict, corpus_root(card_dict, None), "/tmp", device=device,
                           max_batch_size=max_batch_size, torch_threads=os.cpu_count() or 1)
    pool = list(read_frames(str(REPO / "samples" / "videos" / "hikers_walking.mp4"), list(range(0, 64, 4)),
                            backend=_backend()))
    batch = [pool[i % len(pool)] for i in range(frames)]
    crops = [np.ascontiguousarray(f[:HEAD_CROP_SIZE, :HEAD_CROP_SIZE]) for f in batch]
    models = ExtractorModels(cfg)
    models.poses(batch[:max_batch_size]), models.faces(crops[:max_batch_size])  # warm-up
    _sync(device)
    start = time.perf_counter()
    models.poses(batch)
    models.faces(crops)
    _sync(device)
    return frames / (time.perf_counter() - start)


def _backend() -> str:
    try:
        import av  # noqa: F401

        return "pyav"
    except ImportError:
        return "opencv"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure(tmp: Path, sizes: tuple[int, int], device: str, extra: list[str], shards: int) -> dict:
    """Both sizes on one device: per-size runs plus marginal frames/s and start-up."""
    runs = {}
    frames_per_sample = int(round(WINDOW_S * SAMPLE_FPS))
    for n in sizes:
        card = scale_card(tmp, max(sizes), shards)
        runs[n] = run_extract(card, tmp / f"out_{device}_{n}", n, ["--device", device, *extra])
        print(f"  {device} {n:>5} samples: {runs[n]['wall_s']:.1f} s, peak RSS {runs[n]['peak_rss'] / 1e9:.2f} GB",
              flush=True)
    (a, ra), (b, rb) = sorted(runs.items())
    marginal = (b - a) * frames_per_sample / max(1e-9, rb["wall_s"] - ra["wall_s"])
    startup = ra["wall_s"] - a * frames_per_sample / marginal
    return {"runs": runs, "marginal_fps": marginal, "startup_s": startup, "card": card}


def report(device: str, res: dict, model_fps: float, cpu: dict | None) -> list[str]:
    runs = res["runs"]
    (a, ra), (b, rb) = sorted(runs.items())
    lines = [f"## bench.scale, {time.strftime('%Y-%m-%d')}, device {device}", "", f"Machine: {machine()}", "",
             f"Windows of {WINDOW_S} s at {SAMPLE_FPS:g} frames/s ({int(WINDOW_S * SAMPLE_FPS)} sampled frames "
             "per sample) of the shipped clips.", "",
             "| samples | wall s | peak RSS, process tree | written |", "|---|---|---|---|"]
    for n, r in sorted(runs.items()):
        s = r["manifest"]["samples"]
        lines.append(f"| {n} | {r['wall_s']:.1f} | {r['peak_rss'] / 1e9:.2f} GB | {s['written']}/{s['planned']} |")
    lines += ["", f"- marginal throughput: **{res['marginal_fps']:.0f} sampled frames/s**; start-up {res['startup_s']:.1f} s",
              f"- peak RSS ratio {b} vs {a} samples: **{rb['peak_rss'] / max(1, ra['peak_rss']):.2f}x**",
              f"- model-only throughput of the same extractors (pose + one face crop per frame): "
              f"{model_fps:.0f} frames/s; pipeline / model-only = **{res['marginal_fps'] / model_fps:.2f}**"]
    if cpu is not None:
        lines.append(f"- CPU run in the same call: marginal {cpu['marginal_fps']:.0f} frames/s, start-up "
                     f"{cpu['startup_s']:.1f} s; {device} / CPU = **{res['marginal_fps'] / cpu['marginal_fps']:.1f}x**")
    steps = rb["manifest"]["timings"]["stages"]
    lines.append(f"- per step at {b} samples (calls x mean ms): "
                 + ", ".join(f"{k} {v['elements']}x{v['mean_ms']:.0f}" for k, v in steps.items()))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="200,2000", help="the two corpus sizes (samples)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cpu-baseline", action="store_true", help="also run both sizes on the CPU (GPU runs)")
    ap.add_argument("--cpu-sizes", default=None, help="sizes of the CPU baseline (default: --sizes)")
    ap.add_argument("--shards", type=int, default=8, help="shards of the generated card")
    ap.add_argument("--model-frames", type=int, default=64, help="frames of the model-only measurement")
    ap.add_argument("--max-batch-size", type=int, default=16)
    ap.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="after --, flags for pipelines.extract")
    args = ap.parse_args(argv)
    sizes = tuple(int(x) for x in args.sizes.split(","))
    user = [a for a in args.extra if a != "--"]
    extra = user + ["--max-batch-size", str(args.max_batch_size)]
    with tempfile.TemporaryDirectory(prefix="affectzoo-scale-") as tmp:
        tmp = Path(tmp)
        res = measure(tmp, sizes, args.device, extra, args.shards)
        cpu = None
        if args.cpu_baseline:
            cpu_sizes = tuple(int(x) for x in (args.cpu_sizes or args.sizes).split(","))
            cpu = measure(tmp, cpu_sizes, "cpu", user, args.shards)
        model_fps = model_only_fps(res["card"], args.device, args.model_frames, args.max_batch_size)
    lines = report(args.device, res, model_fps, cpu)
    record(lines, "RESULTS.md", "Benchmark results", write=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
