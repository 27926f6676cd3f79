"""``python -m pipelines.extract``: decode, detect, represent and shard a corpus with Apache Beam.

Graph (one Beam pipeline, any runner)::

    video:    Create(samples) -> Reshuffle -> Decode (decord in an isolated child process, chunks)
                  --frames--> RunInference(--body: PoseNet | OpenPose)
                  -> CoGroupByKey(meta, poses) -> Assemble (tracking, main person, timeline, head crops)
    images:   Create(samples) -> Reshuffle -> LoadImages (no pose; annotated face boxes used)
    both:     --head crops--> RunInference(--face: BlazeFace | DBFace) -> CoGroupByKey(record, faces)
    skeleton: Create(samples) -> Reshuffle -> LoadSkeleton (joint arrays -> timeline)
    all:      -> Represent (face super-images, rows) -> GroupByKey(shard) -> WriteShard
    reader problems and failures of every stage -> errors.jsonl

The driver then writes ``manifest.json`` and prints a one-screen summary.

Runners: the default is Beam's local runner (``DirectRunner``, which runs the portable
FnApiRunner) in ``multi_processing`` mode with one worker process per CPU core; ``--direct-mode
in_memory`` keeps everything in one process. ``--runner portable|dataflow|flink|spark`` take
Beam's own options after ``--``; they are checked before anything runs (see
:func:`validate_runner_options` and ``docs/runners.md``).

Reliability: shards are written atomically with a done-marker last, so a killed run is resumed
by running the same command again (done shards are skipped). ``--retry-failed`` reruns only the
samples listed in the previous run's ``errors.jsonl`` into a new ``retry-NN/`` shard folder,
which the manifest lists next to the main shards.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
from pathlib import Path

from pipelines.cards import CardError, available_cards, corpus_root, load_card
from pipelines.config import ExtractConfig, config_from_card
from pipelines.samples import read_samples
from pipelines.shards import finished_shards, shard_of

#: ``--face`` choices -> weights-registry names of the face detector.
FACE_EXTRACTORS = {"blazeface": "blazeface-front", "blazeface-front": "blazeface-front",
                   "blazeface-back": "blazeface-back", "dbface": "dbface-small", "dbface-small": "dbface-small",
                   "dbface-large": "dbface-large"}
#: ``--body`` choices -> weights-registry names of the body-pose model.
BODY_EXTRACTORS = {"posenet": "posenet-mobilenet-v1-075", "posenet-mobilenet-v1-075": "posenet-mobilenet-v1-075",
                   "openpose": "openpose-body", "openpose-body": "openpose-body"}
#: Registry files each extractor loads (checked before the run starts).
EXTRACTOR_FILES = {"blazeface-front": ("blazeface-front", "blazeface-anchors"),
                   "blazeface-back": ("blazeface-back", "blazeface-anchors")}

#: Samples per Decode batch: the decoder child decodes the next sample of a batch while the
#: current one's frames go through pose inference (see pipelines.isolated_decoder).
DECODE_BATCH = 8
RUNNERS = {"direct": "DirectRunner", "portable": "PortableRunner", "dataflow": "DataflowRunner",
           "flink": "FlinkRunner", "spark": "SparkRunner"}


class RunnerOptionsError(ValueError):
    """Runner options that cannot work; the message names the missing or bad option."""


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipelines.extract", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                 epilog="Runner commands (Dataflow with GPUs, Flink, Spark): docs/runners.md")
    cores = os.cpu_count() or 1
    ap.add_argument("--dataset", default="sample", help=f"corpus card name or path ({', '.join(available_cards())})")
    ap.add_argument("--root", default=None, help="corpus root folder (default: the card's root)")
    ap.add_argument("--label-order", default=None, help="one of the card's [labels.orders] (e.g. ewalk: step)")
    ap.add_argument("--out", default=None, help="output folder (default: shards/<dataset>)")
    ap.add_argument("--runner", default="direct", choices=sorted(RUNNERS),
                    help="Beam runner: direct = Beam's local runner (DirectRunner -> FnApiRunner); portable = "
                         "a Beam job service (-- --job_endpoint=HOST:PORT); dataflow / flink / spark: see docs/runners.md")
    ap.add_argument("--direct-mode", default="multi_processing", choices=["multi_processing", "in_memory"],
                    help="local runner mode: multi_processing = --workers SDK worker processes "
                         "(direct_running_mode=multi_processing); in_memory = one process")
    ap.add_argument("--workers", type=int, default=cores,
                    help="worker processes of the local runner in multi_processing mode (default: CPU cores)")
    ap.add_argument("--face", default=None, choices=sorted(FACE_EXTRACTORS),
                    help="face detector (default: the card's [extractors] face); blazeface = blazeface-front, "
                         "dbface = dbface-small")
    ap.add_argument("--body", default=None, choices=sorted(BODY_EXTRACTORS),
                    help="body-pose model (default: the card's [extractors] pose); posenet = "
                         "posenet-mobilenet-v1-075, openpose = openpose-body (COCO-18)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch CPU threads per worker process (default: cores // workers with the local "
                         "multi-process runner, else all cores)")
    ap.add_argument("--device", default="cpu", help="torch device for the extractors (cpu, cuda, cuda:1)")
    ap.add_argument("--max-batch-size", type=int, default=16, help="frames per RunInference batch (cap)")
    ap.add_argument("--num-shards", type=int, default=None, help="shards to write (default: the card's)")
    ap.add_argument("--face-pool", action=argparse.BooleanOptionalAction, default=None,
                    help="store the face crop of every sampled frame (videos/face_pool, the SISTCM redraw pool; "
                         "runs the face detector on all frames; default: the card's representations.face_pool)")
    ap.add_argument("--face-mask", action=argparse.BooleanOptionalAction, default=None,
                    help="store clips/faces_masked (clip faces with the synthetic medical mask, TSN --input "
                         "faces_masked; default: the card's representations.face_mask)")
    ap.add_argument("--limit", type=int, default=None, help="process only the first N samples")
    ap.add_argument("--overwrite", action="store_true",
                    help="redo shards that are already done (and drop earlier retry-NN/ folders)")
    ap.add_argument("--retry-failed", action="store_true",
                    help="rerun only the samples listed in OUT/errors.jsonl (that are in no done shard) "
                         "into a new OUT/retry-NN/ shard folder; done shards are not touched")
    ap.add_argument("--decoder", default="pyav", choices=("pyav", "decord", "opencv"),
                    help="video decoder back-end (identical frames; pyav is the fastest reliable one measured, "
                         "see bench/results_decoders.md)")
    ap.add_argument("--decode-timeout", type=float, default=120.0,
                    help="seconds the isolated decoder may take to open a file or decode one chunk")
    ap.add_argument("--fail-on-error", action="store_true", help="exit with status 1 if any sample failed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("beam_args", nargs=argparse.REMAINDER,
                    help="after --, options passed to Beam (e.g. -- --job_endpoint=localhost:8099)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be >= 1")
    return args


def runner_description(args: argparse.Namespace) -> str:
    """One line naming the runner, its mode and workers (printed in the summary, kept in the manifest)."""
    if args.runner == "direct":
        if args.direct_mode == "multi_processing":
            return f"DirectRunner (local), direct_running_mode=multi_processing, {args.workers} worker processes"
        return "DirectRunner (local), direct_running_mode=in_memory, 1 process"
    return RUNNERS[args.runner]


def pipeline_options(args: argparse.Namespace):
    """Beam ``PipelineOptions`` of the run: the runner flags plus the options after ``--``."""
    from apache_beam.options.pipeline_options import PipelineOptions

    extra = [a for a in args.beam_args if a != "--"]
    flags = [f"--runner={RUNNERS[args.runner]}"]
    if args.runner == "direct":
        flags.append(f"--direct_running_mode={args.direct_mode}")
        if args.direct_mode == "multi_processing":
            flags.append(f"--direct_num_workers={args.workers}")
            # the local worker processes log their start-up at INFO; keep the console for our summary
            if not any(a.startswith("--default_sdk_harness_log_level") for a in extra):
                flags.append("--default_sdk_harness_log_level=ERROR")
    return PipelineOptions(flags + extra)


def _is_remote_path(path: str) -> bool:
    return "://" in str(path)


def validate_runner_options(args: argparse.Namespace, options) -> None:
    """Check the options a runner needs before anything is decoded.

    Rules (each violation is one line of the error):

    * every runner but ``direct``: ``--out`` and the corpus must be POSIX paths that all workers
      see (a shared file system or a bucket mounted with gcsfuse): the shard sinks write with
      POSIX file APIs, so ``gs://`` / ``s3://`` URLs are refused;
    * ``portable``: ``--job_endpoint``;
    * ``dataflow``: ``--project``, ``--region`` and a ``gs://`` ``--temp_location``; with
      ``--device cuda`` also ``--sdk_container_image`` (CUDA torch and the weights, see the
      ``Dockerfile``) and a ``worker_accelerator`` in ``--dataflow_service_options``;
    * ``flink``: ``--flink_master`` (``host:port``; ``[local]`` / ``[auto]`` for an embedded
      cluster) or ``--job_endpoint``; an existing ``--flink_job_server_jar`` when given;
    * ``spark``: ``--spark_master_url`` or ``--job_endpoint``; an existing
      ``--spark_job_server_jar`` when given;
    * ``--environment_type`` one of DOCKER, PROCESS, EXTERNAL, LOOPBACK (LOOPBACK only with a
      job service on this machine).

    Raises:
        RunnerOptionsError: the problems found, one per line.
    """
    from apache_beam.options.pipeline_options import (GoogleCloudOptions, PortableOptions, SetupOptions,
                                                      WorkerOptions)

    problems: list[str] = []
    runner = args.runner
    if runner == "direct":
        return
    all_opts = options.get_all_options(drop_default=True, retain_unknown_options=True)
    portable = options.view_as(PortableOptions)
    if args.out and _is_remote_path(args.out) or args.root and _is_remote_path(args.root):
        problems.append("--out/--root: shards are written with POSIX file APIs; mount the bucket (e.g. gcsfuse) "
                        "on every worker and pass the mount path instead of a URL")
    env = portable.environment_type
    if env and env.upper() not in ("DOCKER", "PROCESS", "EXTERNAL", "LOOPBACK", "BEAM_PYTHON_DOCKER"):
        problems.append(f"--environment_type={env}: expected DOCKER, PROCESS, EXTERNAL or LOOPBACK")
    if runner == "portable" and not portable.job_endpoint:
        problems.append("--runner portable needs -- --job_endpoint=HOST:PORT (a running Beam job service, "
                        "or 'embed' for an in-process one)")
    if runner == "dataflow":
        gcp = options.view_as(GoogleCloudOptions)
        for flag, value in (("--project", gcp.project), ("--region", gcp.region), ("--temp_location", gcp.temp_location)):
            if not value:
                problems.append(f"--runner dataflow needs -- {flag}=...")
        if gcp.temp_location and not str(gcp.temp_location).startswith("gs://"):
            problems.append(f"--temp_location={gcp.temp_location}: Dataflow needs a gs:// path")
        if args.device.startswith("cuda"):
            image = options.view_as(WorkerOptions).sdk_container_image
            services = " ".join(gcp.dataflow_service_options or [])
            if not image:
                problems.append("--device cuda on Dataflow needs -- --sdk_container_image=IMAGE (built from the "
                                "repository's Dockerfile: CUDA torch and the weights cache)")
            if "worker_accelerator" not in services:
                problems.append("--device cuda on Dataflow needs -- --dataflow_service_options="
                                "'worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver'")
        setup = options.view_as(SetupOptions)
        if not (setup.setup_file or setup.requirements_file or options.view_as(WorkerOptions).sdk_container_image):
            problems.append("--runner dataflow needs the affectzoo code on the workers: -- --sdk_container_image=IMAGE "
                            "(Dockerfile) or -- --setup_file=./setup.py")
    if runner == "flink":
        master = all_opts.get("flink_master")
        if not master and not portable.job_endpoint:
            problems.append("--runner flink needs -- --flink_master=HOST:PORT (or [local]) or -- --job_endpoint=HOST:PORT")
        jar = all_opts.get("flink_job_server_jar")
        if jar and not _is_remote_path(jar) and not os.path.isfile(jar):
            problems.append(f"--flink_job_server_jar={jar}: no such file")
    if runner == "spark":
        master = all_opts.get("spark_master_url")
        if not master and not portable.job_endpoint:
            problems.append("--runner spark needs -- --spark_master_url=spark://HOST:7077 (or local[N]) "
                            "or -- --job_endpoint=HOST:PORT")
        jar = all_opts.get("spark_job_server_jar")
        if jar and not _is_remote_path(jar) and not os.path.isfile(jar):
            problems.append(f"--spark_job_server_jar={jar}: no such file")
    if problems:
        raise RunnerOptionsError("invalid runner options:\n  " + "\n  ".join(problems))


def check_extractor_weights(cfg: ExtractConfig) -> dict[str, str]:
    """Find and sha256-check every weights file the run's extractors load, before any decoding.

    Returns:
        ``{registry name: path}``.

    Raises:
        extractors.weights.WeightsNotFoundError: a file is missing (the message names the file,
            its official source and the ``python -m extractors.weights install`` command).
        extractors.weights.WeightsChecksumError: a file differs from the registry's sha256.
    """
    from extractors import weights

    used = (cfg.face_extractor, cfg.pose_extractor) if cfg.modality == "video" else (cfg.face_extractor,)
    names = [n for ex in used for n in EXTRACTOR_FILES.get(ex, (ex,))]
    return {n: str(weights.verify(n)) for n in names}


def build_pipeline(p, samples, cfg: ExtractConfig, config_hash: str, attrs: dict, read_errors=(),
                   decode_timeout_s: float = 120.0):
    """Add the extraction graph to Beam pipeline ``p``; returns the errors PCollection.

    The entry stage follows ``cfg.modality``: ``video`` decodes and runs the body-pose model
    before the assembly; ``images`` loads the images and goes straight to the assembly (no pose
    model); ``skeleton`` reads the joint arrays and goes straight to the representation (no
    decoding, pose model or face detector). ``read_errors`` (problems the corpus reader found)
    join the dead-letter records.
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
            loaded = _video_entry(start, cfg, errors, decode_timeout_s)
        errors.append(loaded[stages.ERRORS])
        faces = (loaded.faces | "Face" >> _run_inference(face_handler(cfg))
                 | "FaceBySample" >> beam.Map(stages.face_by_sample))
        grouped = {"record": loaded.records, "faces": faces} | "GroupFaces" >> beam.CoGroupByKey()
    represented = grouped | "Represent" >> beam.ParDo(stages.Represent(cfg)).with_outputs(stages.ERRORS, main="rows")
    written = (represented.rows | "GroupShards" >> beam.GroupByKey()
               | "WriteShard" >> beam.ParDo(stages.WriteShard(cfg, config_hash, attrs)).with_outputs(stages.ERRORS, main="done"))
    return tuple(errors) + (represented[stages.ERRORS], written[stages.ERRORS]) | "Errors" >> beam.Flatten()


#: Torch intra-op threads per worker process on CPU (set by :func:`main` from the runner: the
#: cores divided among the local worker processes, so that 2 workers on 2 cores do not run 4
#: threads); None = all cores.
TORCH_THREADS: int | None = None


def _threads(cfg: ExtractConfig) -> int:
    if cfg.device != "cpu":
        return 0
    return TORCH_THREADS or max(1, os.cpu_count() or 1)


def torch_threads_for(args: argparse.Namespace) -> int:
    """CPU threads per worker: cores // workers for the multi-process local runner, else all cores."""
    cores = os.cpu_count() or 1
    if getattr(args, "torch_threads", None):
        return max(1, args.torch_threads)
    if args.runner == "direct" and args.direct_mode == "multi_processing":
        return max(1, cores // args.workers)
    return cores


def _run_inference(handler):
    from apache_beam.ml.inference.base import RunInference

    return RunInference(handler)


def face_handler(cfg: ExtractConfig):
    """Keyed RunInference handler of ``cfg.face_extractor`` (``blazeface-*`` or ``dbface-*``).

    Raises:
        ValueError: an extractor name no handler serves.
    """
    from apache_beam.ml.inference.base import KeyedModelHandler

    from extractors import handlers

    name, kw = cfg.face_extractor, dict(device=cfg.device, max_batch_size=cfg.max_batch_size * 4,
                                        torch_threads=_threads(cfg))
    if name.startswith("blazeface-"):
        return KeyedModelHandler(handlers.BlazeFaceHandler(variant=name.split("-")[-1], **kw))
    if name.startswith("dbface-"):
        if not hasattr(handlers, "DBFaceHandler"):
            raise ValueError("face extractor dbface: extractors.handlers has no DBFaceHandler in this version")
        return KeyedModelHandler(handlers.DBFaceHandler(variant=name.split("-")[-1], **kw))
    raise ValueError(f"face extractor {name!r}: no model handler (known: {sorted(set(FACE_EXTRACTORS.values()))})")


def pose_handler(cfg: ExtractConfig):
    """Keyed RunInference handler of ``cfg.pose_extractor`` (PoseNet or OpenPose body).

    Raises:
        ValueError: an extractor name no handler serves.
    """
    from apache_beam.ml.inference.base import KeyedModelHandler

    from extractors import handlers

    name, kw = cfg.pose_extractor, dict(device=cfg.device, max_batch_size=cfg.max_batch_size,
                                        torch_threads=_threads(cfg))
    if name == "posenet-mobilenet-v1-075":
        return KeyedModelHandler(handlers.PoseNetHandler(scale_factor=cfg.pose_scale_factor, **kw))
    if name == "openpose-body":
        if not hasattr(handlers, "OpenPoseHandler"):
            raise ValueError("body extractor openpose: extractors.handlers has no OpenPoseHandler in this version")
        return KeyedModelHandler(handlers.OpenPoseHandler(**kw))
    raise ValueError(f"body extractor {name!r}: no model handler (known: {sorted(set(BODY_EXTRACTORS.values()))})")


def _video_entry(start, cfg: ExtractConfig, errors: list, decode_timeout_s: float):
    """Decode -> RunInference(body) -> Assemble; the decode errors join ``errors``."""
    import apache_beam as beam

    from pipelines import stages

    decoded = (start | "DecodeBatches" >> beam.BatchElements(min_batch_size=1, max_batch_size=DECODE_BATCH)
               | "Decode" >> beam.ParDo(stages.Decode(cfg, timeout_s=decode_timeout_s)).with_outputs(
                   "meta", stages.ERRORS, main="frames"))
    errors.append(decoded[stages.ERRORS])
    to_coco = cfg.pose_extractor == "openpose-body"
    poses = (decoded.frames | "Pose" >> _run_inference(pose_handler(cfg))
             | "PoseBySample" >> beam.Map(stages.pose_by_sample, to_coco))
    return ({"meta": decoded.meta, "poses": poses} | "GroupPoses" >> beam.CoGroupByKey()
            | "Assemble" >> beam.ParDo(stages.Assemble(cfg)).with_outputs("faces", stages.ERRORS, main="records"))


def read_error_records(corpus: str, problems) -> list[dict]:
    """Dead-letter records (``errors.jsonl``, stage ``read``) of the corpus reader's problems."""
    return [{"corpus": corpus, "sample_id": p.sample_id, "video_id": None, "uri": p.path, "stage": "read",
             "error_type": p.kind, "message": p.reason, "where": None} for p in problems]


def screen_segments(card: dict, root: Path, problems: list) -> dict:
    """A copy of a ``segments`` card without the segments that cannot give samples.

    Segments naming an unknown label or lacking a field are reported in ``problems``
    (:class:`pipelines.readers.base.Problem`, kinds ``unknown_label`` / ``bad_value``) and left
    out, so one bad entry does not stop the corpus; other layouts are returned unchanged (their
    readers report such problems themselves).
    """
    if card["corpus"].get("layout") != "segments":
        return card
    from pipelines.readers.base import Problem

    names, keep = card["labels"]["names"], []
    for n, seg in enumerate(card.get("segments", [])):
        missing = [k for k in ("video", "label", "start_s", "end_s", "stride_s") if k not in seg]
        where = str(root / seg["video"]) if "video" in seg else f"{card['card_path']} [[segments]] #{n + 1}"
        if missing:
            problems.append(Problem("bad_value", where, f"segment #{n + 1} of {card['card_path']} lacks {missing}"))
        elif seg["label"] not in names:
            problems.append(Problem("unknown_label", where, f"segment #{n + 1} of {card['card_path']}: label "
                                    f"{seg['label']!r} is not one of {names}"))
        else:
            keep.append(seg)
    return {**card, "segments": keep}


def load_samples(card: dict, root: Path, problems: list) -> list:
    """The corpus's samples with bad entries reported in ``problems`` and left out.

    Segments cards are screened (:func:`screen_segments`) and their repeated sample ids
    dropped (the first stays, each repeat is a ``duplicate_id`` problem).
    """
    from pipelines.readers.base import dedupe

    samples = read_samples(screen_segments(card, root, problems), root, problems)
    return dedupe(samples, problems) if card["corpus"].get("layout") == "segments" else samples


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


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Run an extraction; returns the exit status (0 ok, 1 errors with --fail-on-error, 2 bad setup)."""
    args = parse_args(argv)
    from pipelines import report

    try:
        options = pipeline_options(args)
        validate_runner_options(args, options)
        card = load_card(args.dataset, label_order=args.label_order)
    except (CardError, RunnerOptionsError) as exc:
        return _fail(str(exc))
    global TORCH_THREADS
    TORCH_THREADS = torch_threads_for(args)
    out = Path(args.out or f"shards/{card['corpus']['name']}").resolve()
    root = corpus_root(card, args.root)
    try:
        cfg = config_from_card(card, root, out, device=args.device, max_batch_size=args.max_batch_size,
                               num_shards=args.num_shards, face_extractor=FACE_EXTRACTORS.get(args.face),
                               pose_extractor=BODY_EXTRACTORS.get(args.body), face_pool=args.face_pool,
                               face_mask=args.face_mask, decoder=args.decoder)
    except ValueError as exc:
        return _fail(str(exc))
    if cfg.modality != "skeleton":
        try:
            check_extractor_weights(cfg)
            face_handler(cfg), pose_handler(cfg) if cfg.modality == "video" else None
        except (OSError, ValueError, KeyError) as exc:  # WeightsNotFoundError is an OSError
            return _fail(f"{type(exc).__name__}: {exc}")
    problems: list = []
    samples = load_samples(card, root, problems)[: args.limit]
    read_errors = read_error_records(card["corpus"]["name"], problems)
    config_hash = cfg.content_hash()
    out.mkdir(parents=True, exist_ok=True)
    if args.overwrite:
        report.drop_retries(out)
    done = {} if args.overwrite else finished_shards(out, cfg.num_shards, config_hash)
    retried = report.retry_sample_ids(out, cfg.num_shards, config_hash)
    shard_out, retry_dir = out, None
    if args.retry_failed:
        failed = report.failed_sample_ids(out)
        in_done = {sid for m in done.values() for sid in m["sample_ids"]} | retried
        todo = [s for s in samples if s.sample_id in failed and s.sample_id not in in_done]
        if todo:
            retry_dir = report.new_retry_dir(out)
            shard_out = retry_dir
    else:
        todo = [s for s in samples if shard_of(s.sample_id, cfg.num_shards) not in done
                and s.sample_id not in retried]
    previous_errors = report.read_errors(out)
    report.reset_run_files(out)
    started = time.time()
    if todo:
        import apache_beam as beam

        run_cfg = dataclasses.replace(cfg, out=str(shard_out))
        attrs = report.shard_attrs(cfg)
        if retry_dir is not None:
            report.keep_previous_errors(out, retry_dir)
        p = beam.Pipeline(options=options)
        errors = build_pipeline(p, todo, run_cfg, config_hash, attrs, read_errors, args.decode_timeout)
        errors | "WriteErrors" >> beam.combiners.ToList() | beam.Map(report.write_errors, str(out / "errors.jsonl"))
        result = _run_with_progress(p, len(todo), shard_out, not args.no_progress)
    else:
        result = None
        report.write_errors(read_errors, str(out / "errors.jsonl"))
    report.carry_errors(out, previous_errors, redone={s.sample_id for s in todo}, num_shards=cfg.num_shards,
                        config_hash=config_hash)
    manifest = report.write_manifest(out, cfg, config_hash, samples, result, time.time() - started,
                                     skipped_shards=sorted(done), runner=runner_description(args),
                                     retry=None if retry_dir is None else retry_dir.name)
    report.print_summary(manifest, out)
    return 1 if args.fail_on_error and manifest["errors"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
