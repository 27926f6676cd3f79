"""Export an extraction run's shards to other tools' formats.

    python -m pipelines.export mmaction SHARDS_DIR OUT.pkl [--img-shape H W] [--keep-nan]

``mmaction`` writes the MMAction2 / PySKL skeleton annotation pickle
(:mod:`pipelines.represent.skeleton`): ``{"split": {"train": [...], "val": [...], "test": [...]},
"annotations": [...]}`` with one annotation per sample (``frame_dir`` = ``sample_id``).

What the shards hold (schema version 1, ``videos-*.parquet``): the **main person's** track only,
``keypoints [T, 18, 3]`` (OpenPose-18, pixels, NaN absent) with ``num_frames`` valid rows; so every
annotation has ``M = 1``, ``V = 18`` and ``total_frames = num_frames``. The shards do not record
the frame size either: ``img_shape`` comes from ``--img-shape`` or, when absent, from the source
video named by the row's ``uri`` (``cv2.CAP_PROP_FRAME_HEIGHT / WIDTH``). Exporting every person
needs the tracker's output in the shards (e.g. a ``videos/tracks [M, T, V, 3]`` dataset) and
the frame size (``videos/frame_shape [2]``).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pyarrow.parquet as pq

from pipelines.represent.skeleton import annotation, annotation_file
from schemas.shards import SCHEMA_VERSION, ShardSchemaError

__all__ = ["ExportError", "read_videos", "video_shape", "mmaction_annotations", "write_mmaction", "main"]

SPLITS = ("train", "val", "test")


class ExportError(ValueError):
    """The shards cannot be exported (missing manifest or field, unreadable video)."""


def _manifest(shards: Path) -> dict:
    path = shards / "manifest.json"
    if not path.is_file():
        raise ExportError(f"{path} not found: {shards} is not an extraction output folder")
    manifest = json.loads(path.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ShardSchemaError(f"{path}: schema version {manifest.get('schema_version')}, "
                               f"this affectzoo reads {SCHEMA_VERSION}")
    return manifest


def read_videos(shards: Path) -> list[dict]:
    """Rows of every ``videos-*.parquet`` listed in the run's manifest, in manifest order.

    Returns:
        dicts with ``sample_id``, ``label``, ``split``, ``uri``, ``num_frames`` and ``keypoints``
        (``float32 [T, V, 3]``, the padded main-person track).
    Raises:
        ExportError: missing manifest, file or column (the message names them).
    """
    shards = Path(shards)
    rows = []
    for shard in _manifest(shards)["shards"]:
        path = shards / shard["files"]["videos"]["name"]
        if not path.is_file():
            raise ExportError(f"{path}: listed in manifest.json but missing")
        table = pq.read_table(path)
        need = ("sample_id", "label", "split", "uri", "num_frames", "keypoints")
        lacking = [c for c in need if c not in table.column_names]
        if lacking:
            raise ExportError(f"{path}: lacks columns {lacking}")
        keypoints = table.column("keypoints").combine_chunks().to_numpy_ndarray()
        cols = {c: table.column(c).to_pylist() for c in need if c != "keypoints"}
        for i in range(table.num_rows):
            rows.append({**{c: cols[c][i] for c in cols}, "keypoints": keypoints[i]})
    return rows


def video_shape(uri: str) -> tuple[int, int]:
    """``(height, width)`` of a video file, read with OpenCV.

    Raises:
        ExportError: the file cannot be opened or reports no size.
    """
    import cv2

    cap = cv2.VideoCapture(str(uri))
    try:
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        cap.release()
    if h <= 0 or w <= 0:
        raise ExportError(f"{uri}: cannot read the frame size (the shards do not store it); "
                          "pass --img-shape H W")
    return h, w


def mmaction_annotations(shards: Path, img_shape: Optional[Sequence[int]] = None,
                         fill_missing: Optional[float] = 0.0) -> dict:
    """The MMAction2 annotation-file object of a run (see the module docstring).

    Args:
        shards: the extraction output folder.
        img_shape: ``(height, width)`` for every sample; None = read from each source video.
        fill_missing: value for missing joints' x, y (score 0); None keeps NaN.

    Returns:
        ``{"split": {...}, "annotations": [...]}``; split names are the shards' (``train``,
        ``val``, ``test`` first, others after), only those present.
    Raises:
        ExportError, ShardSchemaError.
    """
    shapes: dict[str, tuple[int, int]] = {}
    anns, splits = [], {}
    for row in read_videos(shards):
        if img_shape is not None:
            shape = tuple(int(v) for v in img_shape)
        else:
            if row["uri"] not in shapes:
                shapes[row["uri"]] = video_shape(row["uri"])
            shape = shapes[row["uri"]]
        t = int(row["num_frames"])
        tracks = np.asarray(row["keypoints"], np.float32)[None, :t]
        anns.append(annotation(tracks, row["sample_id"], int(row["label"]), shape, fill_missing=fill_missing))
        splits.setdefault(row["split"], []).append(row["sample_id"])
    order = [s for s in SPLITS if s in splits] + sorted(set(splits) - set(SPLITS))
    return annotation_file(anns, {s: splits[s] for s in order})


def write_mmaction(shards: Path, out: Path, **kwargs) -> dict:
    """Write :func:`mmaction_annotations` to ``out`` as a pickle (temporary file, then rename).

    Returns the written object.
    """
    obj = mmaction_annotations(Path(shards), **kwargs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return obj


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.export", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="format", required=True)
    m = sub.add_parser("mmaction", help="MMAction2 / PySKL skeleton annotation pickle")
    m.add_argument("shards", type=Path, help="extraction output folder (with manifest.json)")
    m.add_argument("out", type=Path, help="output .pkl")
    m.add_argument("--img-shape", nargs=2, type=int, metavar=("H", "W"),
                   help="frame size for every sample (default: read from each source video)")
    m.add_argument("--keep-nan", action="store_true", help="keep NaN for missing joints (default: 0, score 0)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        obj = write_mmaction(args.shards, args.out, img_shape=args.img_shape,
                             fill_missing=None if args.keep_nan else 0.0)
    except (ExportError, ShardSchemaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{k} {len(v)}" for k, v in obj["split"].items())
    print(f"wrote {args.out}: {len(obj['annotations'])} annotations ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
