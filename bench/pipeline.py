"""``python -m bench.pipeline``: the extraction pipeline's overheads against bare baselines.

Three measurements, each a ratio against a baseline measured in the same run (the decoder
back-ends are compared in ``bench/decoders.py``):

1. decode + represent + write (isolated chunked decoder, assembly, rows, shard files) against
   bare decord decoding of the same windows (goal >= 0.8). The pose and face models are run once
   beforehand and their outputs reused, so the ratio measures the pipeline's own work.
2. shard writing (:func:`pipelines.shards.write_shard`: atomic renames, sha256, done marker)
   against raw pyarrow + h5py writes of the same arrays (goal >= 0.7).
3. the whole extraction with 2 local worker processes against 1 (goal >= 1.7x on 2 cores).

Results go to ``bench/results_pipeline.md`` (appended) and stdout.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, machine, record

RESULTS = REPO / "bench" / "results_pipeline.md"
DATE = "2026-11-21"


def _windows(n: int):
    """The first ``n`` windows of the sample card, taken round-robin over its three clips."""
    from pipelines.cards import corpus_root, load_card
    from pipelines.readers import read_samples

    card = load_card("sample")
    samples = read_samples(card, corpus_root(card, None))
    by_clip: dict[str, list] = {}
    for s in samples:
        by_clip.setdefault(s.video_id, []).append(s)
    picked, lists = [], list(by_clip.values())
    while len(picked) < n and any(lists):
        for lst in lists:
            if lst and len(picked) < n:
                picked.append(lst.pop(0))
    return card, picked


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_decode_represent_write(windows: int, repeats: int) -> dict:
    """Measurement 1 (and the rows for measurement 2)."""
    import decord

    from extractors.blazeface import detect_faces, load_blazeface
    from extractors.posenet import estimate_poses, load_posenet
    from pipelines import assemble
    from pipelines.record import video_record
    from pipelines.rows import clip_rows, video_row
    from pipelines.cards import corpus_root
    from pipelines.config import config_from_card
    from pipelines.decode import decode_window
    from pipelines.isolated_decoder import DecodeRequest, IsolatedDecoder
    from pipelines.shards import write_shard

    card, samples = _windows(windows)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    cfg = config_from_card(card, corpus_root(card, None), tmp, num_shards=1)
    # models once, outside the timed region
    pose_model, face_model = load_posenet("cpu"), load_blazeface("front", "cpu")
    cached = []
    for s in samples:
        w = decode_window(s.uri, s.start_s, cfg.window_s, cfg.sample_fps)
        poses = estimate_poses(pose_model, list(w.frames), 1.0, "cpu")
        meta = {"sample": s.to_dict(), "frame_indices": w.frame_indices, "timestamps_s": w.timestamps_s, "fps": w.fps}
        keep = assemble.kept_positions(len(w.frame_indices), cfg)
        _, crops = video_record(meta, dict(enumerate(poses)), {i: w.frames[i] for i in keep}, cfg)
        dets = detect_faces(face_model, list(crops.values()), "cpu") if crops else []
        cached.append((s, dict(enumerate(poses)), dict(zip(crops, dets))))

    def bare():
        n = 0
        for s in samples:
            reader = decord.VideoReader(s.uri, ctx=decord.cpu(0), num_threads=1)
            from pipelines.decode import plan_window
            idx = plan_window(s.start_s, cfg.window_s, cfg.sample_fps, reader.get_avg_fps(), len(reader))
            n += len(reader.get_batch(idx.tolist()).asnumpy())
        return n

    items_box: dict = {}
    phases = {"decode": 0.0, "assemble": 0.0, "rows": 0.0, "write": 0.0}

    def ours(dec: IsolatedDecoder):
        items = []
        requests = [DecodeRequest(s.uri, window=(s.start_s, cfg.window_s, cfg.sample_fps)) for s, _, _ in cached]
        results = dec.decode_many(requests)  # as the Decode stage: the next window decodes meanwhile
        for (s, poses, dets), result in zip(cached, results):
            t0 = time.perf_counter()
            plan = result.plan
            frames = np.concatenate([f for _, f in result.chunks])
            t1 = time.perf_counter()
            keep = assemble.kept_positions(len(plan.frame_indices), cfg)
            meta = {"sample": s.to_dict(), "frame_indices": plan.frame_indices,
                    "timestamps_s": plan.timestamps_s, "fps": plan.fps}
            record, crops = video_record(meta, poses, {i: frames[i] for i in keep}, cfg)
            t2 = time.perf_counter()
            faces = {ck: (crops[ck], dets.get(ck, np.zeros((0, 17), np.float32))) for ck in crops}
            items.append((video_row(record, cfg, faces), clip_rows(record, faces, cfg)))
            t3 = time.perf_counter()
            for k, dt in zip(("decode", "assemble", "rows"), (t1 - t0, t2 - t1, t3 - t2)):
                phases[k] += dt
        t4 = time.perf_counter()
        write_shard(tmp, 0, 1, cfg.shapes, items, "bench", {})
        phases["write"] += time.perf_counter() - t4
        items_box["items"] = items

    def in_process():
        for s in samples:
            decode_window(s.uri, s.start_s, cfg.window_s, cfg.sample_fps)

    def isolated(dec: IsolatedDecoder):
        requests = [DecodeRequest(s.uri, window=(s.start_s, cfg.window_s, cfg.sample_fps)) for s in samples]
        for result in dec.decode_many(requests):
            np.concatenate([f for _, f in result.chunks])

    frames = bare()  # warm caches
    t_bare = _best(bare, repeats)
    t_inproc = _best(in_process, repeats)
    with IsolatedDecoder() as dec:
        isolated(dec)
        t_isolated = _best(lambda: isolated(dec), repeats)
        ours(dec)
        for k in phases:
            phases[k] = 0.0
        t_ours = _best(lambda: ours(dec), repeats)
    share = {k: v / repeats for k, v in phases.items()}  # mean per repeat
    return {"windows": len(samples), "frames": frames, "bare_s": t_bare, "ours_s": t_ours,
            "inproc_s": t_inproc, "isolated_s": t_isolated, "phases": share,
            "ratio": t_bare / t_ours, "items": items_box["items"], "cfg": cfg, "tmp": tmp}


def bench_shard_write(items, cfg, tmp: Path, repeats: int) -> dict:
    """Measurement 2: write_shard against raw pyarrow + h5py writes of the same arrays."""
    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.shards import h5_arrays, rows_to_table, write_shard
    from schemas.shards import clip_schema, video_schema

    videos = [v for v, _ in items]
    clips = [c for _, cs in items for c in cs]
    tables = {"videos": rows_to_table(videos, video_schema(cfg.shapes)), "clips": rows_to_table(clips, clip_schema(cfg.shapes))}
    arrays = h5_arrays(cfg.shapes, videos, clips)  # the same arrays, stacked once (outside the timing)

    def raw(dest: Path):
        for name, table in tables.items():
            pq.write_table(pa.Table.from_batches(table.to_batches(), table.schema), dest / f"{name}.parquet")
        with h5py.File(dest / "raw.h5", "w") as f:
            for name, arr in arrays.items():
                if arr.dtype == object:
                    f.create_dataset(name, data=arr, dtype=h5py.string_dtype())
                else:
                    chunks = (1,) + arr.shape[1:] if arr.ndim > 1 and arr.size else None
                    compress = chunks is not None and arr.dtype != np.uint8  # as write_shard does
                    f.create_dataset(name, data=arr, chunks=chunks, compression="lzf" if compress else None)

    def ours(dest: Path):
        write_shard(dest, 0, 1, cfg.shapes, items, "bench", {})

    def best_fresh(write, name: str) -> float:
        """Best time of writing into a new folder each time (a shard is written once; replacing
        old files would add the cost of freeing them)."""
        times = []
        for i in range(repeats + 1):  # the first pass warms up
            dest = tmp / f"{name}{i}"
            dest.mkdir()
            t = time.perf_counter()
            write(dest)
            times.append(time.perf_counter() - t)
            if i < repeats:
                shutil.rmtree(dest)
        return min(times[1:])

    t_raw, t_ours = best_fresh(raw, "raw"), best_fresh(ours, "ours")
    size = sum(p.stat().st_size for p in (tmp / f"ours{repeats}").glob("*-of-*"))
    return {"raw_s": t_raw, "ours_s": t_ours, "ratio": t_raw / t_ours, "bytes": size}


def _card_for_workers(tmp: Path, face_pool: bool) -> Path:
    """The sample card with an absolute root and the face pool on or off."""
    text = (REPO / "datasets" / "sample.toml").read_text()
    text = text.replace('root = "samples/videos"', f'root = "{REPO / "samples" / "videos"}"')
    text = text.replace("face_pool = true", f"face_pool = {str(face_pool).lower()}")
    path = tmp / f"bench_sample_pool_{face_pool}.toml"
    path.write_text(text)
    return path


def _extract_seconds(card: Path, dest: Path, limit: int, workers: int, threads: int) -> float:
    """Wall time of one whole extraction run (a fresh process, as a user runs it)."""
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(dest), "--no-progress",
           "--limit", str(limit), "--direct-mode", "multi_processing", "--workers", str(workers),
           "--torch-threads", str(threads)]
    t = time.perf_counter()
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"extraction with {workers} workers failed: {run.stderr[-2000:]}")
    return time.perf_counter() - t


def bench_workers(limit: int, face_pool: bool) -> dict:
    """Measurement 3: the whole extraction, multi_processing with 1 and with 2 workers.

    Three set-ups: 1 worker with 1 torch thread, 2 workers with 1 thread each (the worker scaling
    proper) and 1 worker with 2 threads (torch's own parallelism, the default for 1 worker on 2
    cores). Each runs twice, on 1 sample and on ``limit`` samples: the whole-run ratio includes
    the fixed start-up (interpreter, Beam, worker processes, models, manifest), the marginal
    ratio ``(t(limit) - t(1))`` is the steady-state throughput a large corpus sees. With
    ``face_pool`` (on in the sample card, off by default) every sampled frame's pixels go through
    the shuffle to the assembly, not only the C x K clip frames.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    card = _card_for_workers(tmp, face_pool)
    whole, fixed = {}, {}
    for workers, threads in ((1, 1), (2, 1), (1, 2)):
        fixed[(workers, threads)] = _extract_seconds(card, tmp / f"one{workers}{threads}", 1, workers, threads)
        whole[(workers, threads)] = _extract_seconds(card, tmp / f"all{workers}{threads}", limit, workers, threads)
    shutil.rmtree(tmp, ignore_errors=True)
    marginal = {k: whole[k] - fixed[k] for k in whole}
    return {"samples": limit, "face_pool": face_pool, "w1_s": whole[(1, 1)], "w2_s": whole[(2, 1)], "w1t2_s": whole[(1, 2)],
            "fixed_w1_s": fixed[(1, 1)], "fixed_w2_s": fixed[(2, 1)],
            "speedup": whole[(1, 1)] / whole[(2, 1)], "speedup_vs_threads": whole[(1, 2)] / whole[(2, 1)],
            "marginal_speedup": marginal[(1, 1)] / marginal[(2, 1)],
            "marginal_vs_threads": marginal[(1, 2)] / marginal[(2, 1)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=6, help="sample windows (2 s at 15 frames/s) per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (best kept)")
    ap.add_argument("--worker-samples", type=int, default=18, help="samples of the 1-vs-2-workers extraction (0: skip)")
    args = ap.parse_args(argv)

    m1 = bench_decode_represent_write(args.windows, args.repeats)
    m2 = bench_shard_write(m1.pop("items"), m1.pop("cfg"), m1["tmp"], args.repeats)
    shutil.rmtree(m1.pop("tmp"), ignore_errors=True)
    m3s = [bench_workers(args.worker_samples, pool) for pool in (False, True)] if args.worker_samples else []
    load = os.getloadavg()
    lines = [f"\n## {DATE} {time.strftime('%H:%M')} — {machine()}",
             f"CPU shared with other engineers' jobs while measuring (load average {load[0]:.1f} / {load[1]:.1f} "
             f"/ {load[2]:.1f} on {os.cpu_count()} cores): absolute times are noisy; ratios are taken in the same run.\n",
             "| measurement | baseline | ours | ratio (baseline/ours) | goal |", "|---|---|---|---|---|",
             f"| decode + represent + write, {m1['windows']} windows / {m1['frames']} frames (models cached) "
             f"| bare decord {m1['bare_s']:.3f} s | {m1['ours_s']:.3f} s | {m1['ratio']:.2f} | >= 0.8 |",
             f"| isolated decoder (child process, raw-byte pipe) vs decord in process, same windows "
             f"| {m1['inproc_s']:.3f} s | {m1['isolated_s']:.3f} s | {m1['inproc_s'] / m1['isolated_s']:.2f} | - |",
             f"| shard writing ({m2['bytes'] / 1e6:.1f} MB: 2 Parquet + 1 HDF5, sha256, marker) | raw pyarrow + h5py "
             f"{m2['raw_s']:.3f} s | {m2['ours_s']:.3f} s | {m2['ratio']:.2f} | >= 0.7 |"]
    for m3 in m3s:
        pool = "face pool on, --face-pool" if m3["face_pool"] else "face pool off, the cards' default"
        lines.append(f"| extraction of {m3['samples']} samples (2 s windows, PoseNet + BlazeFace on CPU, {pool}), "
                     f"2 workers vs 1, 1 torch thread each | 1 worker {m3['w1_s']:.1f} s | 2 workers {m3['w2_s']:.1f} s "
                     f"| {m3['speedup']:.2f}x | >= 1.7x |")
        lines.append(f"| same, against 1 worker with 2 torch threads | {m3['w1t2_s']:.1f} s | {m3['w2_s']:.1f} s "
                     f"| {m3['speedup_vs_threads']:.2f}x | - |")
        lines.append(f"| same, steady state: marginal time of the {m3['samples'] - 1} samples after the first "
                     f"(1-sample runs: {m3['fixed_w1_s']:.1f} s / {m3['fixed_w2_s']:.1f} s) | 1 worker "
                     f"{m3['w1_s'] - m3['fixed_w1_s']:.1f} s | 2 workers {m3['w2_s'] - m3['fixed_w2_s']:.1f} s "
                     f"| {m3['marginal_speedup']:.2f}x | >= 1.7x |")
        lines.append(f"| same steady state, against 1 worker with 2 torch threads | | "
                     f"| {m3['marginal_vs_threads']:.2f}x | - |")
    ph = m1["phases"]
    lines.append(f"\nTime of 'ours' in measurement 1 (mean per pass; decode = waiting for frames, the child decodes "
                 f"ahead meanwhile): decode {ph['decode']:.3f} s, assemble "
                 f"(tracking, timeline, head crops) {ph['assemble']:.3f} s, rows (faces, super-image PNG) "
                 f"{ph['rows']:.3f} s, shard write {ph['write']:.3f} s.")
    record(lines, RESULTS.name, "Pipeline benchmarks (`python -m bench.pipeline`, part of `make bench`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
