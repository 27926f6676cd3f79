"""Compare two extraction outputs array by array: ``python -m bench.compare_shards A B``.

Used to show that a change to the pipeline keeps what it writes: every HDF5 dataset of every
shard (values, dtype, shape; exact, NaN equal to NaN), every Parquet table (column values, as
Arrow compares them; row-group boundaries may differ) and the manifest apart from its timings,
creation time, machine, runner line and execution-only config fields. File bytes are not
compared: HDF5 chunk layout and Parquet row groups may change while the content does not.

With ``--atol PIXELS`` the float datasets holding source-pixel coordinates (keypoints, tracks,
boxes) may differ by that much (GPU vs CPU runs) and images by ``--image-atol`` grey levels;
the other datasets stay exact.

Exit status 0 when equal, 1 with one line per difference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

from pipelines.shardset import Shard, ShardSet

#: Manifest keys that describe how and when a run happened, not what it wrote.
RUN_KEYS = ("created", "timings", "machine", "runner", "skipped_shards", "affectzoo_version")


def _config_without_execution(manifest: dict) -> dict:
    from pipelines.config import EXECUTION_FIELDS

    return {k: v for k, v in manifest.get("config", {}).items() if k not in EXECUTION_FIELDS}


def _close(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "OSU":
        return a.tolist() == b.tolist()
    if atol == 0 or a.dtype.kind not in "fu":
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    same_nan = np.isnan(a) == np.isnan(b) if a.dtype.kind == "f" else True
    return bool(np.all(same_nan) and np.all(np.nan_to_num(diff) <= atol))


def _tolerance(name: str, atol: float, image_atol: float) -> float:
    if any(k in name for k in ("keypoints", "tracks", "box", "landmarks")):
        return atol
    if any(k in name for k in ("faces", "face_pool", "fullbody", "body", "superimage")):
        return image_atol
    return 0.0


def compare_h5(a: Path, b: Path, atol: float = 0.0, image_atol: float = 0.0) -> list[str]:
    out = []
    with _h5(a) as fa, _h5(b) as fb:
        names_a, names_b = set(), set()
        fa.visititems(lambda n, o: names_a.add(n) if isinstance(o, h5py.Dataset) else None)
        fb.visititems(lambda n, o: names_b.add(n) if isinstance(o, h5py.Dataset) else None)
        for n in sorted(names_a ^ names_b):
            out.append(f"{a.name}: dataset {n} only in {'A' if n in names_a else 'B'}")
        for n in sorted(names_a & names_b):
            if not _close(fa[n][()], fb[n][()], _tolerance(n, atol, image_atol)):
                out.append(f"{a.name}: dataset {n} differs")
    return out


def _same(x, y) -> bool:
    """Python values equal, NaN equal to NaN (Arrow's ``equals`` holds NaN unequal to itself)."""
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (x != x and y != y)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


def _h5(path: Path) -> h5py.File:
    """Shard HDF5 file ``path`` opened read-only, whatever its schema version."""
    return Shard.of_file(path).open_h5(check=False)


def _table(path: Path):
    """The Parquet table of shard file ``path`` (``videos-*`` or ``clips-*``), any schema version."""
    return Shard.of_file(path).read_table(path.name.split("-", 1)[0], check_version=False)


def compare_parquet(a: Path, b: Path) -> list[str]:
    ta, tb = _table(a), _table(b)
    if ta.schema != tb.schema:
        return [f"{a.name}: schemas differ"]
    out = []
    for c in ta.column_names:
        ca, cb = ta.column(c).combine_chunks(), tb.column(c).combine_chunks()
        if not ca.equals(cb) and not _same(ca.to_pylist(), cb.to_pylist()):
            out.append(f"{a.name}: column {c} differs")
    return out


def diff_stats(a: Path, b: Path) -> list[str]:
    """Per numeric HDF5 dataset that differs: the largest absolute difference, the mean one and
    the number of NaN mismatches (e.g. keypoints found on one device only)."""
    out = []
    for h5 in sorted(p.name for p in a.glob("*.h5")):
        with _h5(a / h5) as fa, _h5(b / h5) as fb:
            names = []
            fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            ids = [f[n][()].tolist() if n in f else None for f in (fa, fb) for n in ("videos/sample_id",)]
            out.append(f"{h5} rows: {'same ' + str(len(ids[0])) + ' samples' if ids[0] == ids[1] else 'DIFFERENT samples'}")
            for n in names:
                x, y = fa[n][()], fb[n][()] if n in fb else None
                if y is None or x.dtype.kind not in "fiub" or x.shape != y.shape or x.size == 0:
                    continue
                x64, y64 = x.astype(np.float64), y.astype(np.float64)
                nan = int(np.sum(np.isnan(x64) != np.isnan(y64)))
                d = np.abs(np.nan_to_num(x64) - np.nan_to_num(y64))[~(np.isnan(x64) | np.isnan(y64))]
                if nan or (d.size and d.max() > 0):
                    out.append(f"{h5} {n}: max |diff| {d.max() if d.size else 0:.4g}, mean {d.mean() if d.size else 0:.3g}, "
                               f"NaN mismatches {nan} of {x.size}")
    return out


def compare_runs(a: Path, b: Path, atol: float = 0.0, image_atol: float = 0.0) -> list[str]:
    """Differences between the outputs in folders ``a`` and ``b`` (empty: same content)."""
    ma, mb = (ShardSet(p, check_version=False).manifest for p in (a, b))
    out = []
    for key in sorted(set(ma) | set(mb)):
        if key in RUN_KEYS or key in ("config", "shards"):
            continue
        if ma.get(key) != mb.get(key):
            out.append(f"manifest: {key} differs")
    if _config_without_execution(ma) != _config_without_execution(mb):
        out.append("manifest: config differs (content fields)")
    files_a = sorted(p.name for p in a.glob("*") if p.suffix in (".h5", ".parquet"))
    files_b = sorted(p.name for p in b.glob("*") if p.suffix in (".h5", ".parquet"))
    if files_a != files_b:
        out.append(f"shard files differ: {sorted(set(files_a) ^ set(files_b))}")
    for name in sorted(set(files_a) & set(files_b)):
        if name.endswith(".h5"):
            out += compare_h5(a / name, b / name, atol, image_atol)
        elif atol == 0:
            out += compare_parquet(a / name, b / name)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compare_shards", description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="first extraction output folder")
    ap.add_argument("b", type=Path, help="second extraction output folder")
    ap.add_argument("--atol", type=float, default=0.0, help="pixel tolerance for coordinates (GPU vs CPU)")
    ap.add_argument("--image-atol", type=float, default=0.0, help="grey-level tolerance for stored crops")
    ap.add_argument("--stats", action="store_true", help="print the size of each numeric difference instead")
    args = ap.parse_args(argv)
    if args.stats:
        print("\n".join(diff_stats(args.a, args.b)) or "no numeric difference")
        return 0
    diffs = compare_runs(args.a, args.b, args.atol, args.image_atol)
    for d in diffs:
        print(d)
    print("same content" if not diffs else f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
