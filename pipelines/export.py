"""Export an extraction run's shards to other tools' formats.

    python -m pipelines.export mmaction SHARDS_DIR OUT.pkl [--img-shape H W] [--keep-nan]

``mmaction`` writes the MMAction2 / PySKL skeleton annotation pickle
(:mod:`pipelines.represent.skeleton`): ``{"split": {"train": [...], "val": [...], "test": [...]},
"annotations": [...]}`` with one annotation per sample (``frame_dir`` = ``sample_id``).

What is exported (``videos-*.parquet``, ``num_frames`` valid rows per sample): by default every
tracked person, the schema-2 column ``tracks [P, T, 17, 3]`` (COCO-17, pixels, NaN absent; people
never seen are left out, at least one is kept), so ``V = 17`` as in PySKL's COCO files; with
``--persons main`` (or shards without ``tracks``, or skeleton corpora, whose ``frame_shape`` is 0)
the main person's ``keypoints [T, V, 3]``
(OpenPose-18 for video, the corpus's own joints for skeleton corpora), ``M = 1``.
``img_shape`` is ``--img-shape`` when given, else the stored ``frame_shape`` (schema 2), else the
size of the source video named by the row's ``uri`` (``cv2.CAP_PROP_FRAME_HEIGHT / WIDTH``).
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipelines.represent.skeleton import annotation, annotation_file
from pipelines.shardset import MANIFEST, ShardSet
from schemas.shards import ShardSchemaError

__all__ = ["ExportError", "read_videos", "video_shape", "mmaction_annotations", "write_mmaction", "main"]

SPLITS = ("train", "val", "test")


class ExportError(ValueError):
    """The shards cannot be exported (missing manifest or field, unreadable video)."""


def read_videos(shards: Path) -> list[dict]:
    """Rows of every ``videos-*.parquet`` listed in the run's manifest, in manifest order.

    Returns:
        dicts with ``sample_id``, ``label``, ``split``, ``uri``, ``num_frames``, ``keypoints``
        (``float32 [T, V, 3]``, the padded main-person track) and, in schema-2 shards,
        ``tracks`` (``float32 [P, T, 17, 3]``) and ``frame_shape`` (``(H, W)``, 0 = unknown).
    Raises:
        ExportError: missing manifest, file or column (the message names them).
        ShardSchemaError: another schema version, or a file changed after it was written
            (:class:`pipelines.shardset.ShardSet`).
    """
    try:
        shard_set = ShardSet(shards)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None
    rows = []
    need = ("sample_id", "label", "split", "uri", "num_frames", "keypoints")
    for shard in shard_set.shards:
        path = shard.videos
        if not path.is_file():
            raise ExportError(f"{path}: listed in {MANIFEST} but missing")
        table = shard.read_table("videos")
        lacking = [c for c in need if c not in table.column_names]
        if lacking:
            raise ExportError(f"{path}: lacks columns {lacking}")
        tensors = {c: table.column(c).combine_chunks().to_numpy_ndarray()
                   for c in ("keypoints", "tracks", "frame_shape") if c in table.column_names}
        cols = {c: table.column(c).to_pylist() for c in need if c != "keypoints"}
        for i in range(table.num_rows):
            rows.append({**{c: cols[c][i] for c in cols}, **{c: a[i] for c, a in tensors.items()}})
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


def _people(row: dict, persons: str) -> np.ndarray:
    """``[M, T, V, 3]`` of one row: every tracked person seen at least once, or the main person's
    keypoints (``persons="main"``, shards without tracks, skeleton corpora)."""
    t = int(row["num_frames"])
    framed = "frame_shape" in row and min(int(v) for v in row["frame_shape"]) > 0  # not a skeleton corpus
    if persons == "all" and "tracks" in row and framed:
        tracks = np.asarray(row["tracks"], np.float32)[:, :t]
        seen = np.isfinite(tracks[..., 0]).any(axis=(1, 2))
        return tracks[seen] if seen.any() else tracks[:1]  # nobody tracked: one all-missing person
    return np.asarray(row["keypoints"], np.float32)[None, :t]


def _img_shape(row: dict, img_shape, cache: dict) -> tuple[int, int]:
    if img_shape is not None:
        return tuple(int(v) for v in img_shape)
    stored = row.get("frame_shape")
    if stored is not None and min(int(v) for v in stored) > 0:
        return int(stored[0]), int(stored[1])
    if row["uri"] not in cache:
        cache[row["uri"]] = video_shape(row["uri"])
    return cache[row["uri"]]


def mmaction_annotations(shards: Path, img_shape: Optional[Sequence[int]] = None,
                         fill_missing: Optional[float] = 0.0, persons: str = "all") -> dict:
    """The MMAction2 annotation-file object of a run (see the module docstring).

    Args:
        shards: the extraction output folder.
        img_shape: ``(height, width)`` for every sample; None = the stored frame shape, else
            read from each source video.
        fill_missing: value for missing joints' x, y (score 0); None keeps NaN.
        persons: ``all`` (every tracked person, COCO-17) or ``main`` (the main-person keypoints).

    Returns:
        ``{"split": {...}, "annotations": [...]}``; split names are the shards' (``train``,
        ``val``, ``test`` first, others after), only those present.
    Raises:
        ExportError, ShardSchemaError.
    """
    shapes: dict[str, tuple[int, int]] = {}
    anns, splits = [], {}
    for row in read_videos(shards):
        shape = _img_shape(row, img_shape, shapes)
        anns.append(annotation(_people(row, persons), row["sample_id"], int(row["label"]), shape,
                               fill_missing=fill_missing))
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
    from pipelines import cli

    p = argparse.ArgumentParser(prog="python -m pipelines.export", description=__doc__.split("\n")[0],
                                formatter_class=cli.HelpFormatter)
    sub = p.add_subparsers(dest="format", required=True, help="export format")
    m = sub.add_parser("mmaction", help="MMAction2 / PySKL skeleton annotation pickle",
                       formatter_class=cli.HelpFormatter)
    m.add_argument("shards", type=Path, help="extraction output folder (with manifest.json)")
    m.add_argument("out_file", type=Path, nargs="?", default=None, metavar="OUT.pkl",
                   help="output .pkl (the same as --out)")
    m.add_argument("--out", type=Path, default=None, help="output .pkl (default: SHARDS/mmaction.pkl)")
    m.add_argument("--img-shape", nargs=2, type=int, metavar=("H", "W"),
                   help="frame size for every sample (default: the stored frame shape, else each source video's)")
    m.add_argument("--persons", choices=("all", "main"), default="all",
                   help="every tracked person (COCO-17 tracks) or the main person's keypoints only")
    m.add_argument("--keep-nan", action="store_true", help="keep NaN for missing joints (default: 0, score 0)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status (0 written, 2 bad input or output path)."""
    from pipelines import cli

    parser = _parser()
    args = parser.parse_args(argv)
    if args.out is not None and args.out_file is not None and args.out != args.out_file:
        parser.error(f"two outputs given ({args.out_file} and --out {args.out}); give one")
    out = args.out or args.out_file or Path(args.shards) / "mmaction.pkl"
    if not (Path(args.shards) / MANIFEST).is_file():
        return cli.fail(f"{args.shards}: no {MANIFEST} there (not an extraction output folder)")
    problem = cli.check_writable_file(out)
    if problem:
        return cli.fail(problem)
    try:
        obj = write_mmaction(args.shards, out, img_shape=args.img_shape,
                             fill_missing=None if args.keep_nan else 0.0, persons=args.persons)
    except (ValueError, ShardSchemaError, OSError) as exc:  # ValueError: ExportError, a bad annotation
        return cli.fail(str(exc))
    counts = ", ".join(f"{k} {len(v)}" for k, v in obj["split"].items())
    print(f"wrote {out}: {len(obj['annotations'])} annotations ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
