"""``python -m pipelines.extract``: decode, detect, represent and shard a corpus with Apache Beam.

Graph (one Beam pipeline, any runner)::

    video:    Create(samples) -> Reshuffle -> Decode (decord) --frames--> RunInference(PoseNet)
                  -> CoGroupByKey(meta, poses) -> Assemble (tracking, main person, timeline, head crops)
    images:   Create(samples) -> Reshuffle -> LoadImages (no pose; annotated face boxes used)
    both:     --head crops--> RunInference(BlazeFace) -> CoGroupByKey(record, faces)
    skeleton: Create(samples) -> Reshuffle -> LoadSkeleton (joint arrays -> timeline)
    all:      -> Represent (face super-images, rows) -> GroupByKey(shard) -> WriteShard
    reader problems and failures of every stage -> errors.jsonl

The driver then writes ``manifest.json`` and prints a one-screen summary.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from pipelines.cards import CardError, available_cards, corpus_root, load_card
from pipelines.config import ExtractConfig, config_from_card
from pipelines.samples import read_samples
from pipelines.shards import finished_shards, shard_of

RUNNERS = {"direct": "DirectRunner", "portable": "PortableRunner", "dataflow": "DataflowRunner",
           "flink": "FlinkRunner", "spark": "SparkRunner"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipelines.extract", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--dataset", default="sample", help=f"corpus card name or path ({', '.join(available_cards())})")
    ap.add_argument("--root", default=None, help="corpus root folder (default: the card's root)")
    ap.add_argument("--label-order", default=None, help="one of the card's [labels.orders] (e.g. ewalk: step)")
    ap.add_argument("--out", default=None, help="output folder (default: shards/<dataset>)")
    ap.add_argument("--runner", default="direct", choices=sorted(RUNNERS), help="Beam runner")
    ap.add_argument("--direct-mode", default="in_memory", choices=["in_memory", "multi_processing"],
                    help="DirectRunner running mode")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="worker processes for --direct-mode multi_processing")
    ap.add_argument("--device", default="cpu", help="torch device for the extractors (cpu, cuda, cuda:1)")
    ap.add_argument("--max-batch-size", type=int, default=16, help="frames per RunInference batch (cap)")
    ap.add_argument("--num-shards", type=int, default=None, help="shards to write (default: the card's)")
    ap.add_argument("--limit", type=int, default=None, help="process only the first N samples")
    ap.add_argument("--overwrite", action="store_true", help="redo shards that are already done")
    ap.add_argument("--fail-on-error", action="store_true", help="exit with status 1 if any sample failed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("beam_args", nargs=argparse.REMAINDER,
                    help="after --, options passed to Beam (e.g. -- --job_endpoint=localhost:8099)")
    return ap.parse_args(argv)


def pipeline_options(args: argparse.Namespace):
    from apache_beam.options.pipeline_options import PipelineOptions

    extra = [a for a in args.beam_args if a != "--"]
    flags = [f"--runner={RUNNERS[args.runner]}"]
    if args.runner == "direct":
        flags.append(f"--direct_running_mode={args.direct_mode}")
        if args.direct_mode == "multi_processing":
            flags.append(f"--direct_num_workers={args.workers}")
    return PipelineOptions(flags + extra)


def build_pipeline(p, samples, cfg: ExtractConfig, config_hash: str, attrs: dict, read_errors=()):
    """Add the extraction graph to Beam pipeline ``p``; returns the errors PCollection.

    The entry stage follows ``cfg.modality``: ``video`` decodes and runs PoseNet before the
    assembly; ``images`` loads the images and goes straight to the assembly (no pose model);
    ``skeleton`` reads the joint arrays and goes straight to the representation (no decoding,
    pose model or face detector). ``read_errors`` (problems the corpus reader found) join the
    dead-letter records.
    """
    import apache_beam as beam

    from pipelines import stages

    start = p | "Samples" >> beam.Create(samples) | "Reshuffle" >> beam.Reshuffle()
    errors = [p | "ReadErrors" >> beam.Create(list(read_errors))]
    if cfg.modality == "skeleton":
        loaded = start | "LoadSkeleton" >> beam.ParDo(stages.LoadSkeleton(cfg)).with_outputs(stages.ERRORS, main="grouped")
        errors.append(loaded[stages.ERRORS])
        grouped = loaded.grouped
    else:
        if cfg.modality == "images":
            loaded = start | "LoadImages" >> beam.ParDo(stages.LoadImages(cfg)).with_outputs(
                "faces", stages.ERRORS, main="records")
        else:
            loaded = _video_entry(start, cfg, errors)
        errors.append(loaded[stages.ERRORS])
        faces = (loaded.faces | "Face" >> _run_inference(_face_handler(cfg))
                 | "FaceBySample" >> beam.Map(stages.face_by_sample))
        grouped = {"record": loaded.records, "faces": faces} | "GroupFaces" >> beam.CoGroupByKey()
    represented = grouped | "Represent" >> beam.ParDo(stages.Represent(cfg)).with_outputs(stages.ERRORS, main="rows")
    written = (represented.rows | "GroupShards" >> beam.GroupByKey()
               | "WriteShard" >> beam.ParDo(stages.WriteShard(cfg, config_hash, attrs)).with_outputs(stages.ERRORS, main="done"))
    return tuple(errors) + (represented[stages.ERRORS], written[stages.ERRORS]) | "Errors" >> beam.Flatten()


def _threads(cfg: ExtractConfig) -> int:
    return 0 if cfg.device != "cpu" else max(1, (os.cpu_count() or 1))


def _run_inference(handler):
    from apache_beam.ml.inference.base import RunInference

    return RunInference(handler)


def _face_handler(cfg: ExtractConfig):
    from apache_beam.ml.inference.base import KeyedModelHandler

    from extractors.handlers import BlazeFaceHandler

    return KeyedModelHandler(BlazeFaceHandler(variant=cfg.face_extractor.split("-")[-1], device=cfg.device,
                                              max_batch_size=cfg.max_batch_size * 4, torch_threads=_threads(cfg)))


def _video_entry(start, cfg: ExtractConfig, errors: list):
    """Decode -> RunInference(PoseNet) -> Assemble; the decode errors join ``errors``."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler

    from extractors.handlers import PoseNetHandler
    from pipelines import stages

    pose_handler = KeyedModelHandler(PoseNetHandler(scale_factor=cfg.pose_scale_factor, device=cfg.device,
                                                    max_batch_size=cfg.max_batch_size, torch_threads=_threads(cfg)))
    decoded = start | "Decode" >> beam.ParDo(stages.Decode(cfg)).with_outputs("meta", stages.ERRORS, main="frames")
    errors.append(decoded[stages.ERRORS])
    poses = (decoded.frames | "Pose" >> _run_inference(pose_handler)
             | "PoseBySample" >> beam.Map(stages.pose_by_sample))
    return ({"meta": decoded.meta, "poses": poses} | "GroupPoses" >> beam.CoGroupByKey()
            | "Assemble" >> beam.ParDo(stages.Assemble(cfg)).with_outputs("faces", stages.ERRORS, main="records"))


def read_error_records(corpus: str, problems) -> list[dict]:
    """Dead-letter records (``errors.jsonl``, stage ``read``) of the corpus reader's problems."""
    return [{"corpus": corpus, "sample_id": p.sample_id, "video_id": None, "uri": p.path, "stage": "read",
             "error_type": p.kind, "message": p.reason, "where": None} for p in problems]


def _run_with_progress(p, total: int, out: Path, show: bool):
    """Run ``p`` in a thread while a tqdm bar counts finished samples (files in .progress)."""
    from tqdm import tqdm

    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=_safe_run(p)), daemon=True)
    thread.start()
    progress = out / ".progress"
    with tqdm(total=total, unit="sample", desc="extract", disable=not show, file=sys.stderr) as bar:
        while thread.is_alive():
            thread.join(0.5)
            n = len(os.listdir(progress)) if progress.is_dir() else 0
            bar.update(n - bar.n)
    if "error" in box.get("result", {}):
        raise box["result"]["error"]
    return box["result"]["result"]


def _safe_run(p) -> dict:
    try:
        result = p.run()
        result.wait_until_finish()
        return {"result": result}
    except BaseException as exc:  # re-raised in the driver thread
        return {"error": exc}


def main(argv=None) -> int:
    args = parse_args(argv)
    from pipelines import report

    try:
        card = load_card(args.dataset, label_order=args.label_order)
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"shards/{card['corpus']['name']}").resolve()
    root = corpus_root(card, args.root)
    cfg = config_from_card(card, root, out, device=args.device, max_batch_size=args.max_batch_size,
                           num_shards=args.num_shards)
    problems: list = []
    samples = read_samples(card, root, problems)[: args.limit]
    read_errors = read_error_records(card["corpus"]["name"], problems)
    config_hash = cfg.content_hash()
    done = {} if args.overwrite else finished_shards(out, cfg.num_shards, config_hash)
    todo = [s for s in samples if shard_of(s.sample_id, cfg.num_shards) not in done]
    out.mkdir(parents=True, exist_ok=True)
    report.reset_run_files(out)
    started = time.time()
    if todo:
        import apache_beam as beam

        attrs = report.shard_attrs(cfg)
        with_errors_path = out / "errors.jsonl"
        p = beam.Pipeline(options=pipeline_options(args))
        errors = build_pipeline(p, todo, cfg, config_hash, attrs, read_errors)
        errors | "WriteErrors" >> beam.combiners.ToList() | beam.Map(report.write_errors, str(with_errors_path))
        result = _run_with_progress(p, len(todo), out, not args.no_progress)
    else:
        result = None
        if read_errors:
            report.write_errors(read_errors, str(out / "errors.jsonl"))
    manifest = report.write_manifest(out, cfg, config_hash, samples, result, time.time() - started,
                                     skipped_shards=sorted(done))
    report.print_summary(manifest, out)
    return 1 if args.fail_on_error and manifest["errors"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
