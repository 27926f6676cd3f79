"""Run outputs of an extraction: ``errors.jsonl``, ``manifest.json`` and the closing summary.

Retry folders: ``--retry-failed`` writes the samples it reruns into ``OUT/retry-NN/`` (a full
shard set of the same config: Parquet, HDF5 and done markers, numbered like the main shards).
The manifest's ``shards`` list holds the main shards and then the retry shards, whose file
names are relative to OUT (``retry-01/shard-00000-of-00002.h5``) and whose entries carry
``"retry": "retry-01"``, so readers that open ``OUT / name`` find every row once; ``retries``
summarises each folder, and ``samples.written`` counts main and retry rows together. A later
normal rerun leaves the samples already in a retry folder out of the main shards (no sample
is written twice); ``--overwrite`` deletes the retry folders.

``errors.jsonl`` always describes the current state of OUT: this run's dead-letters, the
reader's problems, and the earlier runs' records of samples that are still not written and
were not redone in this run.

Shard logs: every shard task writes ``<shard folder>/.shard-logs/shard-NNNNN.json`` (its
dead-letter records and per-step times, :func:`write_shard_log`) just before its done marker,
by atomic rename, so a task that Dask reruns after a worker died replaces its log instead of
adding to it. The driver merges the logs of the shards it planned into ``errors.jsonl`` and the
manifest's ``timings.stages`` (:func:`merge_shard_logs`): nothing is read back from the runner,
so the same files serve every Beam runner, including those without metrics (Dask).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.config import ExtractConfig
from pipelines.shards import finished_shards, shard_of
from schemas.shards import SCHEMA_VERSION

AFFECTZOO_VERSION = "0.1.0"


RETRY_PREFIX = "retry-"
#: Per-shard logs (dead letters and step times) under a shard folder.
SHARD_LOGS = ".shard-logs"


def reset_run_files(out: Path) -> None:
    """Clear the per-run progress markers and the temporary files a killed run left behind.

    Shard files are written as hidden ``.<name>.tmp-<id>`` files and renamed when complete
    (:func:`pipelines.shards._atomic`); a SIGKILL between the two leaves the hidden file, which
    no reader globs. They are deleted here, before the next run writes into ``out``.
    """
    shutil.rmtree(out / ".progress", ignore_errors=True)
    for folder in [Path(out)] + retry_dirs(out):
        shutil.rmtree(folder / SHARD_LOGS, ignore_errors=True)
        remove_temporary_files(folder)


def remove_temporary_files(folder: Path) -> None:
    """Delete the hidden temporary shard files in ``folder`` (left by a killed writer: a run
    killed by SIGKILL, or a Dask worker that died while its task was rescheduled elsewhere)."""
    for tmp in Path(folder).glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)
    for tmp in Path(folder).glob("*.json.tmp"):
        tmp.unlink(missing_ok=True)


def retry_dirs(out: Path) -> list[Path]:
    """The ``retry-NN`` folders of ``out``, in order."""
    return sorted(p for p in Path(out).glob(f"{RETRY_PREFIX}[0-9][0-9]") if p.is_dir())


def new_retry_dir(out: Path) -> Path:
    """Create and return the next ``retry-NN`` folder (``retry-01`` first)."""
    existing = [int(p.name[len(RETRY_PREFIX):]) for p in retry_dirs(out)]
    path = Path(out) / f"{RETRY_PREFIX}{max(existing, default=0) + 1:02d}"
    path.mkdir(parents=True)
    return path


def drop_retries(out: Path) -> None:
    """Delete the retry folders (``--overwrite`` redoes every sample in the main shards)."""
    for d in retry_dirs(out):
        shutil.rmtree(d)


def retry_markers(out: Path, num_shards: int, config_hash: str) -> dict[str, dict[int, dict]]:
    """Done markers of every retry folder with the same config: ``{folder name: {shard: marker}}``."""
    return {d.name: finished_shards(d, num_shards, config_hash) for d in retry_dirs(out)}


def retry_sample_ids(out: Path, num_shards: int, config_hash: str) -> set[str]:
    """Sample ids already written in a retry folder."""
    return {sid for markers in retry_markers(out, num_shards, config_hash).values()
            for m in markers.values() for sid in m["sample_ids"]}


def failed_sample_ids(out: Path) -> set[str]:
    """Sample ids named by the dead-letter records of ``out/errors.jsonl`` (shard-level
    records, which name no sample, are not included)."""
    return {e["sample_id"] for e in read_errors(out) if e.get("sample_id") and not str(e["sample_id"]).startswith("shard ")}


def keep_previous_errors(out: Path, retry_dir: Path) -> None:
    """Copy ``out/errors.jsonl`` (the failures a retry reruns) to ``retry_dir/errors.before.jsonl``."""
    src = Path(out) / "errors.jsonl"
    if src.is_file():
        shutil.copyfile(src, Path(retry_dir) / "errors.before.jsonl")


def extractor_info(cfg: ExtractConfig) -> dict[str, Any]:
    """Names, files and sha256 of the extractors the run uses (recorded in manifest and shards)."""
    from extractors.weights import REGISTRY, sha256_of

    return {role: {"name": name, "file": REGISTRY[name].filename, "sha256": sha256_of(name)}
            for role, name in (("face", cfg.face_extractor), ("pose", cfg.pose_extractor))}


def shard_attrs(cfg: ExtractConfig) -> dict[str, str]:
    """HDF5 root attributes: corpus, label names and extractors (JSON strings)."""
    return {"corpus": cfg.corpus, "label_names": json.dumps(list(cfg.label_names)),
            "extractors": json.dumps(extractor_info(cfg)), "config": json.dumps(cfg.to_dict())}


def write_errors(errors: list[dict], path: str) -> int:
    """Write dead-letter records to ``path`` (JSON lines, sorted for stable output)."""
    errors = sorted(errors, key=lambda e: (str(e.get("sample_id")), e["stage"]))
    tmp = Path(path).with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(e, default=str) + "\n" for e in errors))
    tmp.replace(path)
    return len(errors)


def read_errors(out: Path) -> list[dict]:
    """The dead-letter records of ``out/errors.jsonl`` (empty when absent)."""
    path = Path(out) / "errors.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def carry_errors(out: Path, previous: list[dict], redone: set[str], num_shards: int, config_hash: str) -> int:
    """Append to ``out/errors.jsonl`` the earlier records that still hold.

    An earlier record is kept when its stage is not ``read`` (the reader's problems are found
    again by every run), its sample was not redone in this run and is in no done shard (main
    or retry). Returns the number of records carried over.
    """
    written = {sid for m in finished_shards(out, num_shards, config_hash).values() for sid in m["sample_ids"]}
    written |= retry_sample_ids(out, num_shards, config_hash)
    current = read_errors(out)
    seen = {(e.get("sample_id"), e.get("stage")) for e in current}
    keep = [e for e in previous if e.get("stage") != "read" and e.get("sample_id") not in redone
            and e.get("sample_id") not in written and (e.get("sample_id"), e.get("stage")) not in seen]
    if keep:
        write_errors(current + keep, str(Path(out) / "errors.jsonl"))
    return len(keep)


def shard_log_path(folder: Path, index: int) -> Path:
    """``folder/.shard-logs/shard-NNNNN.json``: the log of shard ``index``."""
    return Path(folder) / SHARD_LOGS / f"shard-{index:05d}.json"


def write_shard_log(folder: Path, index: int, errors: list[dict], steps: dict[str, list[int]],
                    worker: str = "") -> None:
    """Write the log of shard ``index`` (atomic: a rerun of the task replaces it).

    Args:
        errors: the shard's dead-letter records (:func:`pipelines.errors.error_record`).
        steps: ``{step: [calls, total milliseconds]}``.
        worker: who wrote it (``host:pid``), for diagnosis.
    """
    path = shard_log_path(folder, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"shard": index, "worker": worker, "errors": errors, "steps": steps}, default=str))
    tmp.replace(path)


def read_shard_logs(folder: Path, indices) -> list[dict]:
    """The logs of shards ``indices`` in ``folder`` that exist, in index order."""
    paths = [shard_log_path(folder, i) for i in sorted(indices)]
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def stage_timings(logs: list[dict]) -> dict[str, dict[str, float]]:
    """Per-step timings summed over shard logs: ``{step: {elements, total_s, mean_ms}}``."""
    calls: Counter = Counter()
    total: Counter = Counter()
    for log in logs:
        for step, (n, ms) in log["steps"].items():
            calls[step] += n
            total[step] += ms
    return {step: {"elements": calls[step], "total_s": round(total[step] / 1000, 3),
                   "mean_ms": round(total[step] / calls[step], 2)} for step in calls if calls[step]}


def merge_shard_logs(out: Path, folder: Path, indices, read_errors: list[dict]) -> dict[str, dict[str, float]]:
    """Write ``out/errors.jsonl`` (the reader's problems and the dead letters of shards
    ``indices`` of ``folder``) and return their per-step timings (:func:`stage_timings`)."""
    logs = read_shard_logs(folder, indices)
    write_errors(list(read_errors) + [e for log in logs for e in log["errors"]], str(Path(out) / "errors.jsonl"))
    return stage_timings(logs)


def _retry_entry(folder: str, marker: dict) -> dict:
    files = {k: {**f, "name": f"{folder}/{f['name']}"} for k, f in marker["files"].items()}
    return {**marker, "files": files, "retry": folder}


def account(samples: list, entries: list[dict], errors: list[dict]) -> dict[str, Any]:
    """Where every planned sample ended: ``written`` (in a done shard, main or retry), ``failed``
    (a dead-letter record names it) or ``lost`` (neither: the run cannot vouch for it).

    Returns:
        ``{"planned": n, "written": n, "failed": n, "lost": [sample ids, sorted]}``.
    """
    planned = {s.sample_id for s in samples}
    written = planned & {sid for m in entries for sid in m["sample_ids"]}
    failed = (planned - written) & {e.get("sample_id") for e in errors}
    return {"planned": len(planned), "written": len(written), "failed": len(failed),
            "lost": sorted(planned - written - failed)}


def write_manifest(out: Path, cfg: ExtractConfig, config_hash: str, samples: list, stages: dict,
                   wall_s: float, skipped_shards: list[int], runner: str = "", retry: str | None = None
                   ) -> dict[str, Any]:
    """Write ``manifest.json`` from the shards' done markers (main and retry folders) and return it.

    Only the main shards that planned samples map to are listed (a marker left by an earlier,
    larger run of another plan is not).

    Args:
        stages: per-step timings (:func:`merge_shard_logs`).
        runner: the runner line (``pipelines.extract.runner_description``).
        retry: the retry folder this run wrote (``--retry-failed``), else None.
    """
    planned_shards = {shard_of(s.sample_id, cfg.num_shards) for s in samples}
    main = {i: m for i, m in finished_shards(out, cfg.num_shards, config_hash).items() if i in planned_shards}
    retries = retry_markers(out, cfg.num_shards, config_hash)
    entries = [main[i] for i in sorted(main)] + [_retry_entry(folder, m[i]) for folder, m in retries.items()
                                                   for i in sorted(m)]
    errors = read_errors(out)
    done_ids = {sid for m in entries for sid in m["sample_ids"]}
    splits = Counter(s.split for s in samples if s.sample_id in done_ids)
    accounting = account(samples, entries, errors)
    manifest = {
        "affectzoo_version": AFFECTZOO_VERSION, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "corpus": cfg.corpus,
        "label_names": list(cfg.label_names), "config": cfg.to_dict(), "config_hash": config_hash,
        "extractors": extractor_info(cfg),
        "runner": runner,
        "rows": {"videos": sum(m["videos"] for m in entries),
                 "clips": sum(m["clips"] for m in entries), "videos_per_split": dict(splits)},
        "samples": accounting,
        "shards": entries,
        "missing_shards": sorted({shard_of(sid, cfg.num_shards) for sid in accounting["lost"]}),
        "skipped_shards": skipped_shards,
        "retries": [{"folder": folder, "shards": sorted(m), "samples": sum(x["videos"] for x in m.values()),
                     "this_run": folder == retry} for folder, m in retries.items()],
        "timings": {"wall_s": round(wall_s, 2), "stages": stages},
        "errors": {"total": len(errors), "by_stage": dict(Counter(e["stage"] for e in errors)),
                   "by_type": dict(Counter(e["error_type"] for e in errors))},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(out / "manifest.json")
    shutil.rmtree(out / ".progress", ignore_errors=True)
    if retry:
        shutil.rmtree(out / retry / ".progress", ignore_errors=True)
    return manifest


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def plural(n: int, word: str) -> str:
    """``1 track``, ``2 tracks``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counts(counter: dict) -> str:
    """``{'read': 3, 'decode': 1}`` -> ``read 3, decode 1`` (largest first)."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def print_summary(manifest: dict[str, Any], out: Path) -> None:
    """One screen: samples, rows, shard files and sizes, stage timings, errors."""
    rows, samples, err = manifest["rows"], manifest["samples"], manifest["errors"]
    splits = ", ".join(f"{k} {v}" for k, v in sorted(rows["videos_per_split"].items()))
    lines = [f"affectzoo extract: corpus {manifest['corpus']} -> {out}",
             f"  samples  {samples['written']}/{samples['planned']} written"
             + (f" ({splits})" if splits else "")
             + (f", {samples['failed']} failed" if samples.get("failed") else "")
             + (f", {len(samples['lost'])} LOST" if samples.get("lost") else "")
             + f"; rows: {plural(rows['videos'], 'video')}, {plural(rows['clips'], 'clip')}",
             f"  shards   {len(manifest['shards'])} done"
             + (f", {len(manifest['skipped_shards'])} reused from an earlier run" if manifest["skipped_shards"] else "")
             + (f", MISSING {', '.join(map(str, manifest['missing_shards']))}" if manifest["missing_shards"] else "")]
    for m in manifest["shards"]:
        sizes = ", ".join(f"{f['name']} {_mb(f['bytes'])}" for f in m["files"].values())
        tag = f"{m['retry']} " if m.get("retry") else ""
        lines.append(f"    {tag}#{m['shard']}: {plural(m['videos'], 'video')}, {plural(m['clips'], 'clip')}: {sizes}")
    for r in manifest.get("retries", []):
        lines.append(f"  retry    {r['folder']}: {plural(r['samples'], 'sample')} in shards "
                     f"{', '.join(map(str, r['shards']))}" + (" (this run)" if r["this_run"] else ""))
    if manifest.get("runner"):
        lines.append(f"  runner   {manifest['runner']}")
    ex = manifest["extractors"]
    lines.append(f"  models   face {ex['face']['name']}, pose {ex['pose']['name']} (device {manifest['config']['device']})")
    stages = manifest["timings"]["stages"]
    lines.append(f"  time     {manifest['timings']['wall_s']:.1f} s wall"
                 + "".join(f"; {k} {v['elements']}x{v['mean_ms']:.0f} ms" for k, v in stages.items()))
    if err["total"]:
        lines.append(f"  ERRORS   {err['total']} (by stage: {_counts(err['by_stage'])}; by type: "
                     f"{_counts(err['by_type'])}); see {out / 'errors.jsonl'}")
    else:
        lines.append("  errors   none")
    print("\n".join(lines))
