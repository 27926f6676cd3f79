"""Run outputs of an extraction: ``errors.jsonl``, ``manifest.json`` and the closing summary."""
from __future__ import annotations

import json
import platform
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.config import ExtractConfig
from pipelines.shards import finished_shards
from schemas.shards import SCHEMA_VERSION

AFFECTZOO_VERSION = "0.1.0"


def reset_run_files(out: Path) -> None:
    """Clear the per-run progress markers before a run."""
    shutil.rmtree(out / ".progress", ignore_errors=True)


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


def _read_errors(out: Path) -> list[dict]:
    path = out / "errors.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_timings(result) -> dict[str, dict[str, float]]:
    """Per-stage timings from Beam metrics: elements, total and mean milliseconds."""
    if result is None:
        return {}
    try:
        dists = result.metrics().query()["distributions"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return {}
    out = {}
    for d in dists:
        value = d.result
        if d.key.metric.namespace == "affectzoo" and value is not None and value.count:
            out[d.key.metric.name.removesuffix("_ms")] = {
                "elements": value.count, "total_s": round(value.sum / 1000, 3), "mean_ms": round(value.mean, 2)}
    return out


def write_manifest(out: Path, cfg: ExtractConfig, config_hash: str, samples: list, result,
                   wall_s: float, skipped_shards: list[int]) -> dict[str, Any]:
    """Write ``manifest.json`` from the shards' done markers and return it."""
    markers = finished_shards(out, cfg.num_shards, config_hash)
    errors = _read_errors(out)
    done_ids = {sid for m in markers.values() for sid in m["sample_ids"]}
    splits = Counter(s.split for s in samples if s.sample_id in done_ids)
    manifest = {
        "affectzoo_version": AFFECTZOO_VERSION, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "corpus": cfg.corpus,
        "label_names": list(cfg.label_names), "config": cfg.to_dict(), "config_hash": config_hash,
        "extractors": extractor_info(cfg),
        "rows": {"videos": sum(m["videos"] for m in markers.values()),
                 "clips": sum(m["clips"] for m in markers.values()), "videos_per_split": dict(splits)},
        "samples": {"planned": len(samples), "written": len(done_ids)},
        "shards": [markers[i] for i in sorted(markers)], "missing_shards": sorted(set(range(cfg.num_shards)) - set(markers)),
        "skipped_shards": skipped_shards,
        "timings": {"wall_s": round(wall_s, 2), "stages": stage_timings(result)},
        "errors": {"total": len(errors), "by_stage": dict(Counter(e["stage"] for e in errors)),
                   "by_type": dict(Counter(e["error_type"] for e in errors))},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(out / "manifest.json")
    shutil.rmtree(out / ".progress", ignore_errors=True)
    return manifest


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def print_summary(manifest: dict[str, Any], out: Path) -> None:
    """One screen: samples, rows, shard files and sizes, stage timings, errors."""
    rows, samples, err = manifest["rows"], manifest["samples"], manifest["errors"]
    lines = [f"affectzoo extract: corpus {manifest['corpus']} -> {out}",
             f"  samples  {samples['written']}/{samples['planned']} written "
             f"({', '.join(f'{k} {v}' for k, v in sorted(rows['videos_per_split'].items()))}); "
             f"rows: {rows['videos']} videos, {rows['clips']} clips",
             f"  shards   {len(manifest['shards'])} done"
             + (f", {len(manifest['skipped_shards'])} reused from an earlier run" if manifest["skipped_shards"] else "")
             + (f", MISSING {manifest['missing_shards']}" if manifest["missing_shards"] else "")]
    for m in manifest["shards"]:
        sizes = ", ".join(f"{f['name']} {_mb(f['bytes'])}" for f in m["files"].values())
        lines.append(f"    #{m['shard']}: {m['videos']} videos, {m['clips']} clips: {sizes}")
    ex = manifest["extractors"]
    lines.append(f"  models   face {ex['face']['name']}, pose {ex['pose']['name']} (device {manifest['config']['device']})")
    stages = manifest["timings"]["stages"]
    lines.append(f"  time     {manifest['timings']['wall_s']:.1f} s wall"
                 + "".join(f"; {k} {v['elements']}x{v['mean_ms']:.0f} ms" for k, v in stages.items()))
    if err["total"]:
        lines.append(f"  ERRORS   {err['total']} (by stage {err['by_stage']}, by type {err['by_type']}); see {out / 'errors.jsonl'}")
    else:
        lines.append("  errors   none")
    print("\n".join(lines))
