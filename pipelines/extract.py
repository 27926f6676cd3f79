"""``python -m pipelines.extract``: decode, detect, represent and shard a corpus with Apache Beam.

The driver plans the shards up front (:mod:`pipelines.plan`: shard = ``crc32(sample_id) % N``,
samples in id order) and the pipeline has one element per shard to write::

    Create([(shard, samples)]) -> Reshuffle -> ExtractShard (pipelines.stages), the single leaf
        video:    DecodeAhead (PyAV in isolated child processes, uint8 [T, H, W, 3] per sample)
                  -> pose model (--body: PoseNet | OpenPose) on the frames of several samples at once
                  -> tracking, main person, timeline, head crops -> face model (--face: BlazeFace | DBFace)
        images:   load images (no pose; annotated face boxes used) -> face model
        skeleton: joint arrays -> timeline
        all:      -> rows appended to the shard's Parquet row groups and HDF5 datasets as they come
                  -> shard log (dead letters, step times), atomic renames, done marker
    driver: reader problems + the shard logs' dead letters -> errors.jsonl; step times -> manifest

Memory is flat in the corpus size: no stage groups frames, rows or shards. The driver then
writes ``manifest.json``, checks that every planned sample was written or reported (exit 3
otherwise) and prints a one-screen summary.

Runners: the default is Beam's local runner (``DirectRunner``, which runs the portable
FnApiRunner) in ``multi_processing`` mode with one worker process per CPU core (one with
``--device cuda``: one model copy per GPU, fed by several decoder processes); ``--direct-mode
in_memory`` keeps everything in one process. ``--runner dask`` runs on a dask.distributed
cluster (:mod:`pipelines.dask_cluster`: one started on this machine, one worker process per core
or per GPU, or an existing one with ``-- --dask_client_address=HOST:PORT``), one shard per Dask
task (``--dask_partition_size=1``). ``--runner portable|dataflow|flink|spark`` take Beam's own
options after ``--``; they are checked before anything runs (see :func:`validate_runner_options`
and ``docs/runners.md``). A shard is the unit of parallelism: use at least as many shards as
workers.

Reliability: shards are written atomically with a done-marker last, so a killed run is resumed
by running the same command again. A done shard is reused only when its marker lists every
planned sample of the shard; otherwise it is redone whole and the reason is printed.
``--retry-failed`` reruns only the samples listed in the previous run's ``errors.jsonl`` into a
new ``retry-NN/`` shard folder, which the manifest lists next to the main shards. One run at a
time per output folder (``OUT/.lock``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from pipelines.cli import HelpFormatter, add_verbose
from pipelines.cards import CardError, available_cards, corpus_root, load_card
from pipelines.config import ExtractConfig, card_options, config_from_card
from pipelines.decoders import DECODER_BACKENDS
from pipelines.readers import read_samples

#: Default frames per pose-model call: on CPU, PoseNet at 640x480 ran fastest per frame one frame
#: at a time (activations of larger batches leave the caches); a GPU wants large batches.
CPU_BATCH, GPU_BATCH = 1, 64
RUNNERS = {"direct": "DirectRunner", "portable": "PortableRunner", "dataflow": "DataflowRunner",
           "flink": "FlinkRunner", "spark": "SparkRunner",
           "dask": "apache_beam.runners.dask.dask_runner.DaskRunner"}  # = pipelines.dask_cluster.DASK_RUNNER


class RunnerOptionsError(ValueError):
    """Runner options that cannot work; the message names the missing or bad option."""


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipelines.extract", description=__doc__.split("\n")[0],
                                 formatter_class=HelpFormatter,
                                 epilog="Runner commands (Dataflow with GPUs, Flink, Spark): docs/runners.md")
    cores = os.cpu_count() or 1
    ap.add_argument("--dataset", default="sample", help=f"corpus card name or path ({', '.join(available_cards())})")
    ap.add_argument("--root", default=None, help="corpus root folder (default: the card's root)")
    ap.add_argument("--label-order", default=None, help="one of the card's [labels.orders] (e.g. ewalk: step)")
    ap.add_argument("--out", default=None, help="output folder (default: shards/<dataset>)")
    ap.add_argument("--runner", default="direct", choices=sorted(RUNNERS),
                    help="Beam runner: direct = Beam's local runner (DirectRunner -> FnApiRunner); dask = "
                         "Beam's DaskRunner on a Dask cluster started here (one worker per core, or per GPU with "
                         "--device cuda) or on an existing one (-- --dask_client_address=HOST:PORT); portable = "
                         "a Beam job service (-- --job_endpoint=HOST:PORT); dataflow / flink / spark: see docs/runners.md")
    ap.add_argument("--direct-mode", default="multi_processing", choices=["multi_processing", "in_memory"],
                    help="local runner mode: multi_processing = --workers SDK worker processes "
                         "(direct_running_mode=multi_processing); in_memory = one process")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"worker processes of the local runner in multi_processing mode, or of the Dask "
                         f"cluster started for --runner dask (default: the CPU cores, {cores}, on CPU; with "
                         f"--device cuda 1 on the local runner, one per GPU on Dask: one model copy per GPU)")
    ap.add_argument("--decode-workers", type=int, default=None,
                    help="isolated decoder processes per worker (default: 1 on CPU; cores - 2 with --device cuda)")
    ap.add_argument("--face", default=None,
                    help="face detector (default: the card's [extractors] face): blazeface = blazeface-front, "
                         "blazeface-back, dbface = dbface-small, dbface-large")
    ap.add_argument("--body", default=None,
                    help="body-pose model (default: the card's [extractors] pose): posenet = "
                         "posenet-mobilenet-v1-075, openpose = openpose-body (COCO-18)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch CPU threads per worker process (default: cores // workers with the local "
                         "multi-process runner, else all cores)")
    ap.add_argument("--device", default="cpu", help="torch device for the extractors (cpu, cuda, cuda:1)")
    ap.add_argument("--max-batch-size", type=int, default=None,
                    help=f"frames per pose-model call (face crops: 4x as many); frames of several samples are "
                         f"gathered until a call is full (default: {CPU_BATCH} on CPU, where larger batches "
                         f"were slower per frame; {GPU_BATCH} with --device cuda)")
    ap.add_argument("--num-shards", type=int, default=None, help="shards to write (default: the card's)")
    for name, option in card_options().items():  # representation switches: flags of the card's options
        if option.flag:
            ap.add_argument(option.flag, dest=name, default=None, help=f"{option.help} (default: the card's "
                            f"{option.key})", **({"action": argparse.BooleanOptionalAction} if option.parse is bool
                                                 else {"type": option.parse}))
    ap.add_argument("--allow-outside-root", action="store_true",
                    help="follow symbolic links that lead outside --root (refused by default; '../' and absolute "
                         "paths in annotations are always refused)")
    ap.add_argument("--limit", type=int, default=None, help="process only the first N samples")
    ap.add_argument("--overwrite", action="store_true",
                    help="redo shards that are already done (and drop earlier retry-NN/ folders)")
    ap.add_argument("--retry-failed", action="store_true",
                    help="rerun only the samples listed in OUT/errors.jsonl (that are in no done shard) "
                         "into a new OUT/retry-NN/ shard folder; done shards are not touched")
    ap.add_argument("--decoder", default="pyav", choices=tuple(DECODER_BACKENDS),
                    help="video decoder back-end (identical frames; pyav is the fastest reliable one measured, "
                         "see bench/results_decoders.md)")
    ap.add_argument("--decode-timeout", type=float, default=120.0,
                    help="seconds the isolated decoder may take to open a file or decode one chunk")
    ap.add_argument("--fail-on-error", action="store_true", help="exit with status 1 if any sample failed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbose(ap)
    ap.add_argument("beam_args", nargs=argparse.REMAINDER,
                    help="after --, options passed to Beam (e.g. -- --job_endpoint=localhost:8099)")
    args = ap.parse_args(argv)
    if args.workers is None:  # resolved here so that the options and the runner line agree
        args.workers = execution_defaults(args)[0]
    for flag in ("workers", "decode_workers", "torch_threads", "max_batch_size", "num_shards", "limit"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "limit" else 1):
            ap.error(f"--{flag.replace('_', '-')} must be >= {0 if flag == 'limit' else 1}")
    return args


def runner_description(args: argparse.Namespace) -> str:
    """One line naming the runner, its mode and workers (printed in the summary, kept in the manifest)."""
    if args.runner == "direct":
        if args.direct_mode == "multi_processing":
            return f"DirectRunner (local), direct_running_mode=multi_processing, {args.workers} worker processes"
        return "DirectRunner (local), direct_running_mode=in_memory, 1 process"
    if args.runner == "dask":
        return "DaskRunner (dask.distributed)"
    return RUNNERS[args.runner]


def _beam_flag(extra: list[str], name: str) -> str | None:
    """The value of ``--name=VALUE`` / ``--name VALUE`` among the options after ``--``."""
    for n, arg in enumerate(extra):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and n + 1 < len(extra):
            return extra[n + 1]
    return None


def pipeline_options(args: argparse.Namespace, scheduler: str | None = None):
    """Beam ``PipelineOptions`` of the run: the runner flags plus the options after ``--``.

    ``scheduler``: the address of the Dask cluster started for the run (``--runner dask``).
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    extra = [a for a in args.beam_args if a != "--"]
    flags = [f"--runner={RUNNERS[args.runner]}"]
    if args.runner == "dask":
        if scheduler and not _beam_flag(extra, "dask_client_address"):
            flags.append(f"--dask_client_address={scheduler}")
        if not (_beam_flag(extra, "dask_partition_size") or _beam_flag(extra, "dask_npartitions")):
            flags.append("--dask_partition_size=1")  # one shard per task: the runner's Reshuffle is a no-op
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
    * ``dask``: ``--dask_client_address`` as ``HOST:PORT`` or ``tcp://HOST:PORT`` and an
      existing ``--dask_scheduler_file`` when given (neither: a cluster is started here);
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
    if runner == "dask":
        problems += _dask_problems([a for a in args.beam_args if a != "--"])
    if problems:
        raise RunnerOptionsError("invalid runner options:\n  " + "\n  ".join(problems))


def _dask_problems(extra: list[str]) -> list[str]:
    """Problems of the Dask options after ``--`` (see :func:`validate_runner_options`)."""
    problems = []
    address = _beam_flag(extra, "dask_client_address")
    if address is not None:
        host, _, port = address.split("://", 1)[-1].rpartition(":")
        if not host or not port.isdigit():
            problems.append(f"--dask_client_address={address}: expected HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    scheduler_file = _beam_flag(extra, "dask_scheduler_file")
    if scheduler_file and not os.path.isfile(scheduler_file):
        problems.append(f"--dask_scheduler_file={scheduler_file}: no such file")
    if _beam_flag(extra, "dask_partition_size") and _beam_flag(extra, "dask_npartitions"):
        problems.append("--dask_partition_size and --dask_npartitions exclude each other")
    return problems


def check_extractor_weights(cfg: ExtractConfig) -> dict[str, str]:
    """Find and sha256-check every weights file the run's extractors load, before any decoding.

    Returns:
        ``{registry name: path}``.

    Raises:
        extractors.registry.UnknownExtractorError: an extractor name the registry lacks.
        extractors.weights.WeightsNotFoundError: a file is missing (the message names the file,
            its official source and the ``python -m extractors.weights install`` command).
        extractors.weights.WeightsChecksumError: a file differs from the registry's sha256.
    """
    from extractors import registry, weights

    used = [registry.resolve(cfg.face_extractor, role="face")]
    if cfg.modality == "video":
        used.append(registry.resolve(cfg.pose_extractor, role="pose"))
    return {n: str(weights.verify(n)) for entry in used for n in entry.weight_files}


def build_pipeline(p, shards: list[tuple[int, list]], cfg: ExtractConfig, config_hash: str, attrs: dict,
                   decode_timeout_s: float = 120.0, keep_empty: bool = True):
    """Add the extraction graph to Beam pipeline ``p``; returns its single leaf, the PCollection
    of per-shard summaries ``{"shard", "written", "failed"}``.

    ``shards`` are the ``(index, samples)`` elements of :meth:`pipelines.plan.ShardPlan.elements`;
    each becomes one :class:`pipelines.stages.ExtractShard` call that writes its shard, its shard
    log (dead letters, step times) and its done marker as files; the driver reads them back
    (:func:`pipelines.report.merge_shard_logs`). ``keep_empty`` (False for retry folders): write
    shards whose samples all failed.
    """
    import apache_beam as beam

    from pipelines import stages

    return (p | "Shards" >> beam.Create(shards) | "Reshuffle" >> beam.Reshuffle()
            | "ExtractShard" >> beam.ParDo(stages.ExtractShard(cfg, config_hash, attrs, decode_timeout_s,
                                                           keep_empty=keep_empty)))


def execution_defaults(args: argparse.Namespace) -> tuple[int, int, int, int]:
    """``(worker processes, torch threads per worker, decoder processes per worker, batch)``.

    CPU: one worker per core (``--workers``), the cores divided among them for torch, one
    decoder child each. CUDA with the local runner: one worker process, so one model copy per
    GPU, fed by ``cores - 2`` decoder children (``--decode-workers`` overrides). Dask, cluster
    started here: as the local runner on CPU; with ``--device cuda`` one worker per GPU, the
    ``cores - 2`` decoder children divided among them. Dask, existing cluster: torch threads
    as the workers' environment sets them (``dask worker`` sets ``OMP_NUM_THREADS=1``) unless
    ``--torch-threads``.
    """
    cores = os.cpu_count() or 1
    dask_here = args.runner == "dask" and not _dask_address_given(args)
    local_multi = args.runner == "direct" and args.direct_mode == "multi_processing" or dask_here
    on_gpu = args.device.startswith("cuda")
    if args.workers:
        workers = args.workers
    elif dask_here and args.device == "cuda":  # one worker per GPU
        from pipelines.dask_cluster import gpu_ids

        workers = max(1, len(gpu_ids()))
    else:
        workers = 1 if on_gpu or not local_multi else cores
    threads = args.torch_threads or (max(1, cores // workers) if local_multi else 0 if args.runner == "dask" else cores)
    decoders = args.decode_workers or (max(1, (cores - 2) // workers) if on_gpu else 1)
    batch = args.max_batch_size or (GPU_BATCH if on_gpu else CPU_BATCH)
    return workers, max(0 if args.runner == "dask" else 1, threads), max(1, decoders), batch


def _dask_address_given(args: argparse.Namespace) -> bool:
    extra = [a for a in args.beam_args if a != "--"]
    return bool(_beam_flag(extra, "dask_client_address") or _beam_flag(extra, "dask_scheduler_file"))


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


def load_samples(card: dict, root: Path, problems: list, allow_outside_root: bool = False) -> list:
    """The corpus's samples with bad entries reported in ``problems`` and left out.

    Segments cards are screened (:func:`screen_segments`) and their repeated sample ids
    dropped (the first stays, each repeat is a ``duplicate_id`` problem).
    """
    from pipelines.readers.base import dedupe

    samples = read_samples(screen_segments(card, root, problems), root, problems,
                           allow_outside_root=allow_outside_root)
    return dedupe(samples, problems) if card["corpus"].get("layout") == "segments" else samples


def _progress_count(progress: Path) -> int:
    """Samples finished so far: one byte per sample in each worker's ``.progress/<pid>`` file."""
    try:
        return sum(f.stat().st_size for f in progress.iterdir())
    except OSError:
        return 0


def _run_with_progress(p, total: int, out: Path, show: bool, stream=None):
    """Run ``p`` in a thread while one tqdm bar (on ``stream``, default stderr) counts finished
    samples (``.progress`` files)."""
    from tqdm import tqdm

    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=_safe_run(p)), daemon=True)
    thread.start()
    progress = out / ".progress"
    with tqdm(total=total, unit="sample", desc="extract", disable=not show, file=stream or sys.stderr,
              smoothing=0.1, dynamic_ncols=True) as bar:
        while thread.is_alive():
            thread.join(0.5)
            bar.update(min(total, _progress_count(progress)) - bar.n)
    if "error" in box.get("result", {}):
        raise box["result"]["error"]
    return box["result"]["result"]


def _safe_run(p) -> dict:
    result = None
    try:
        result = p.run()
        result.wait_until_finish()
        return {"result": result}
    except BaseException as exc:  # re-raised in the driver thread
        return {"error": exc}
    finally:
        client = getattr(result, "client", None)  # Beam's DaskRunner never closes its client
        if client is not None:
            client.close()


def _resolve_extractors(args: argparse.Namespace) -> dict:
    """``--face`` / ``--body`` resolved through the extractor registry (aliases allowed)."""
    out: dict = {}
    if not (args.face or args.body):
        return out
    from extractors import registry

    if args.face:
        out["face_extractor"] = registry.resolve(args.face, role="face").name
    if args.body:
        out["pose_extractor"] = registry.resolve(args.body, role="pose").name
    return out


def _setup(args: argparse.Namespace):
    """Card, corpus root, output folder and config of the run; raises ``_SetupError``."""
    from pipelines import cli

    here = args.runner == "direct" or args.runner == "dask" and not _dask_address_given(args)
    if here and (problem := cli.check_device(args.device)):  # a remote cluster's workers have their own
        raise _SetupError(problem)
    workers, threads, decoders, batch = execution_defaults(args)
    args.workers = workers
    try:
        options = pipeline_options(args)
        validate_runner_options(args, options)
        card = load_card(args.dataset, label_order=args.label_order)
        extractors = _resolve_extractors(args)
    except (CardError, RunnerOptionsError, ValueError) as exc:
        raise _SetupError(str(exc)) from exc
    out = Path(args.out or f"shards/{card['corpus']['name']}").resolve()
    if problem := cli.check_writable_dir(out):
        raise _SetupError(problem)
    root = corpus_root(card, args.root)
    try:
        cfg = config_from_card(card, root, out, device=args.device, max_batch_size=batch,
                               num_shards=args.num_shards, **{n: getattr(args, n) for n in _flagged()},
                               decoder=args.decoder, torch_threads=threads, decode_workers=decoders,
                               **extractors)
        if cfg.modality != "skeleton":
            check_extractor_weights(cfg)
    except (OSError, ValueError, KeyError) as exc:  # WeightsNotFoundError is an OSError
        raise _SetupError(str(exc)) from exc
    return options, card, root, out, cfg


def _flagged() -> list[str]:
    """The ExtractConfig fields that have a flag (:class:`pipelines.config.CardOption`)."""
    return [name for name, option in card_options().items() if option.flag]


class _SetupError(Exception):
    """A problem found before any work: printed as one ``error:`` line, exit 2."""


def _plan(args, card, root, out: Path, cfg: ExtractConfig, config_hash: str):
    """``(samples, read_errors, plan, retry_dir)`` of the run (see :mod:`pipelines.plan`)."""
    from pipelines import report
    from pipelines.plan import plan_shards
    from pipelines.shards import finished_shards

    problems: list = []
    samples = load_samples(card, root, problems, args.allow_outside_root)[: args.limit]
    read_errors = read_error_records(card["corpus"]["name"], problems)
    if not samples:
        first = f"; the reader found {len(problems)} problem{'s' * (len(problems) != 1)}, first: " \
                f"{problems[0].path}: {problems[0].reason}" if problems else ""
        raise _SetupError(f"no samples found under {root} for corpus {card['corpus']['name']!r}: expected the "
                          f"'{card['corpus'].get('layout')}' layout of {card.get('card_path')}{first}")
    if args.overwrite:
        report.drop_retries(out)
    done = {} if args.overwrite else finished_shards(out, cfg.num_shards, config_hash)
    retried = report.retry_sample_ids(out, cfg.num_shards, config_hash)
    if not args.retry_failed:
        return samples, read_errors, plan_shards(samples, cfg.num_shards, done, elsewhere=retried), None
    failed = report.failed_sample_ids(out)
    in_done = {sid for m in done.values() for sid in m["sample_ids"]} | retried
    todo = [s for s in samples if s.sample_id in failed and s.sample_id not in in_done]
    retry_dir = report.new_retry_dir(out) if todo else None
    return samples, read_errors, plan_shards(todo, cfg.num_shards, {}), retry_dir


@contextlib.contextmanager
def _engine(args: argparse.Namespace, options, todo: bool):
    """``(Beam options, runner line)`` of the run; with ``--runner dask`` and shards to write,
    the Dask cluster is started or connected here and closed when the block ends."""
    if args.runner != "dask" or not todo:
        yield options, runner_description(args)
        return
    from pipelines.dask_cluster import CONNECT_TIMEOUT_S, DaskClusterError, dask_cluster

    extra = [a for a in args.beam_args if a != "--"]
    with contextlib.ExitStack() as stack:
        try:
            timeout = _beam_flag(extra, "dask_connection_timeout")
            cluster = stack.enter_context(dask_cluster(
                _beam_flag(extra, "dask_client_address"), _beam_flag(extra, "dask_scheduler_file"),
                args.device, args.workers, verbose=args.verbose,
                timeout_s=float(timeout) if timeout and timeout.isdigit() else CONNECT_TIMEOUT_S))
        except DaskClusterError as exc:
            raise _SetupError(str(exc)) from exc
        yield pipeline_options(args, scheduler=cluster.address), cluster.describe()


def _extract(args, options, out: Path, cfg: ExtractConfig, config_hash: str, plan, read_errors, retry_dir,
             console=None) -> dict:
    """Run the Beam pipeline over ``plan``'s shards, then merge the shard logs into
    ``errors.jsonl``; returns the per-step timings (empty: nothing to do)."""
    from pipelines import report

    shard_out = retry_dir or out
    if not plan.todo:
        return report.merge_shard_logs(out, shard_out, [], read_errors)
    import apache_beam as beam

    run_cfg = dataclasses.replace(cfg, out=str(shard_out))
    if retry_dir is not None:
        report.keep_previous_errors(out, retry_dir)
    p = beam.Pipeline(options=options)
    build_pipeline(p, plan.elements(), run_cfg, config_hash, report.shard_attrs(cfg), args.decode_timeout,
                   keep_empty=retry_dir is None)
    total = sum(len(plan.members[i]) for i in plan.todo)
    _run_with_progress(p, total, shard_out, not args.no_progress, console and console.stream)
    report.remove_temporary_files(shard_out)  # a writer killed mid-shard (a lost Dask worker) leaves its own
    return report.merge_shard_logs(out, shard_out, plan.todo, read_errors)


def _run(args: argparse.Namespace, console) -> tuple[dict, Path]:
    """Set up, plan, extract and report under the output folder's lock; returns the manifest."""
    from pipelines import report
    from pipelines.run_lock import run_lock

    options, card, root, out, cfg = _setup(args)
    config_hash = cfg.content_hash()
    with run_lock(out):
        samples, read_errors, plan, retry_dir = _plan(args, card, root, out, cfg, config_hash)
        for index, reason in sorted(plan.redo_reasons.items()):
            print(f"shard {index}: redone: {reason}", file=sys.stderr)
        previous_errors = report.read_errors(out)
        report.reset_run_files(out)
        started = time.time()
        with _engine(args, options, bool(plan.todo)) as (run_options, runner_line):
            stages = _extract(args, run_options, out, cfg, config_hash, plan, read_errors, retry_dir, console)
        if retry_dir is not None and not list(retry_dir.glob("*.done.json")):
            shutil.rmtree(retry_dir)  # nothing succeeded: no empty retry-NN folder
            retry_dir = None
        redone = {s.sample_id for i in plan.todo for s in plan.members[i]}
        report.carry_errors(out, previous_errors, redone=redone, num_shards=cfg.num_shards, config_hash=config_hash)
        manifest = report.write_manifest(out, cfg, config_hash, samples, stages, time.time() - started,
                                         skipped_shards=sorted(plan.reused), runner=runner_line,
                                         retry=None if retry_dir is None else retry_dir.name)
    return manifest, out


def main(argv=None) -> int:
    """Run an extraction; returns the exit status.

    0: every planned sample written or reported in ``errors.jsonl`` (1 with ``--fail-on-error``
    when any was reported); 2: a setup problem found before any work (one ``error:`` line);
    3: the accounting does not close (a planned sample neither written nor reported); 130:
    interrupted (one line; rerun the same command to resume).
    """
    args = parse_args(argv)
    from pipelines import cli, report
    from pipelines.console import filtered_stderr
    from pipelines.run_lock import RunLocked

    cli.quiet_library_logs(args.verbose)
    problem = None
    with filtered_stderr(args.verbose) as console:
        try:
            manifest, out = _run(args, console)
        except (_SetupError, RunLocked) as exc:
            problem = str(exc)
        except KeyboardInterrupt:
            console.silence()
            print("\ninterrupted; rerun the same command to resume", file=console.stream)
            return cli.EXIT_INTERRUPTED
    if problem is not None:
        return cli.fail(problem)
    report.print_summary(manifest, out)
    lost = manifest["samples"]["lost"]
    if lost:
        print(f"error: {len(lost)} planned sample{'s' * (len(lost) != 1)} neither written nor reported "
              f"(e.g. {lost[0]}); rerun the same command to extract them", file=sys.stderr)
        return 3
    return 1 if args.fail_on_error and manifest["errors"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
