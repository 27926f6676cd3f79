"""Shard sinks: Parquet and HDF5 shards written atomically, done-markers, the manifest.

Protocol (after Beam's own file sinks): every file is written under a temporary name in the
output folder and renamed when complete; the shard's ``*.done.json`` marker (row counts, sha256
of each file, the config hash) is written last. A rerun treats a shard as finished only when its
marker exists and names the same config hash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.shards import H5_LAYOUT, H5_SOURCE, SCHEMA_VERSION, ShardShapes, clip_schema, video_schema


def shard_of(sample_id: str, num_shards: int) -> int:
    """Shard index of a sample: ``crc32(sample_id) % num_shards`` (stable across runs)."""
    return zlib.crc32(sample_id.encode("utf-8")) % num_shards


def shard_stem(index: int, num_shards: int) -> str:
    return f"{index:05d}-of-{num_shards:05d}"


def shard_files(out: Path, index: int, num_shards: int) -> dict[str, Path]:
    """Paths of one shard's files: clips, videos (Parquet), h5 and done marker."""
    stem = shard_stem(index, num_shards)
    return {"clips": out / f"clips-{stem}.parquet", "videos": out / f"videos-{stem}.parquet",
            "h5": out / f"shard-{stem}.h5", "done": out / f"shard-{stem}.done.json"}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in blocks by :func:`hashlib.file_digest`)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_NUMPY = {pa.float32(): np.float32, pa.int32(): np.int32, pa.int16(): np.int16, pa.uint8(): np.uint8}


def _column(values: list, field: pa.Field) -> pa.Array:
    if isinstance(field.type, pa.FixedShapeTensorType):
        stacked = np.stack([np.asarray(v) for v in values]).astype(_NUMPY[field.type.value_type])
        return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(stacked))
    return pa.array(values, type=field.type)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Arrow table of ``rows`` (dicts keyed by column name) with ``schema``.

    Raises:
        KeyError: a row lacks a column of the schema.
    """
    columns = [_column([r[f.name] for r in rows], f) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _h5_value(value, dtype: str):
    return value if dtype == "str" else np.asarray(value, dtype=dtype)


def h5_arrays(shapes: ShardShapes, videos: list[dict], clips: list[dict]) -> dict[str, np.ndarray]:
    """The dense arrays of one HDF5 shard, ``name -> [rows, *shape]`` (layout
    :data:`schemas.shards.H5_LAYOUT`; strings as object arrays).

    A switched-off field (a zero-length frame axis, e.g. ``videos/face_pool`` with the pool off)
    is all-empty and rows need not carry it.

    Raises:
        KeyError: a row lacks a field it must carry.
    """
    tables = {"videos": videos, "clips": clips}
    out = {}
    for name, (dtype, shape_of) in H5_LAYOUT.items():
        rows = tables[name.split("/")[0]]
        source = H5_SOURCE[name]
        if dtype == "str":
            out[name] = np.array([r[source] for r in rows], dtype=object)
            continue
        shape = (len(rows),) + shape_of(shapes)
        if 0 in shape_of(shapes) and any(source not in r for r in rows):
            out[name] = np.zeros(shape, dtype)
        else:
            out[name] = np.stack([_h5_value(r[source], dtype) for r in rows]).astype(dtype) if rows else np.zeros(shape, dtype)
    return out


class ShardWriteError(OSError):
    """A shard could not be written (disk full, read-only folder, ...); names the file."""


#: Buffered clip/video rows are flushed to the files when they hold this many bytes of arrays
#: (or :data:`FLUSH_ROWS` video rows): a shard's rows are never all in memory at once.
FLUSH_BYTES = 32 << 20
FLUSH_ROWS = 64


def _row_bytes(row: dict) -> int:
    return sum(v.nbytes if isinstance(v, np.ndarray) else len(v) if isinstance(v, (bytes, str)) else 8
               for v in row.values())


class ShardWriter:
    """Write one shard incrementally: Parquet row groups and resizable HDF5 datasets.

    Rows are appended sample by sample (:meth:`add`) and flushed every :data:`FLUSH_BYTES` /
    :data:`FLUSH_ROWS`, so memory stays flat in the shard's size. Every file is written under a
    hidden temporary name in the output folder; :meth:`finish` renames them into place, hashes
    them and writes the done marker last (Beam's file-sink protocol); :meth:`abort` (also on any
    write error) deletes the temporary files, so a failed write leaves nothing a rerun trusts.

    Content is a function of the rows added and their order: callers add samples sorted by
    ``sample_id`` (:func:`pipelines.plan.shard_plan`), so a rerun writes the same arrays.

    Raises:
        ShardWriteError: a file could not be created or written (the message names it).
    """

    def __init__(self, out: Path, index: int, num_shards: int, shapes: ShardShapes, config_hash: str,
                 attrs: dict):
        self.out, self.index, self.num_shards, self.shapes = Path(out), index, num_shards, shapes
        self.config_hash = config_hash
        self.paths = shard_files(self.out, index, num_shards)
        tag = uuid.uuid4().hex[:8]
        self.tmp = {k: p.with_name(f".{p.name}.tmp-{tag}") for k, p in self.paths.items() if k != "done"}
        self.videos: list[dict] = []
        self.clips: list[dict] = []
        self.sample_ids: list[str] = []
        self.counts = {"videos": 0, "clips": 0}
        self._buffered = 0
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._h5 = None
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._h5 = h5py.File(self.tmp["h5"], "w")
            self._h5.attrs["affectzoo_schema_version"] = SCHEMA_VERSION
            self._h5.attrs["shapes"] = json.dumps(dataclasses.asdict(shapes), sort_keys=True)
            for key, value in attrs.items():
                self._h5.attrs[key] = value
            for key, schema in (("videos", video_schema(shapes)), ("clips", clip_schema(shapes))):
                self._parquet[key] = pq.ParquetWriter(self.tmp[key], schema)
        except Exception as exc:
            self.abort()
            raise ShardWriteError(f"cannot create shard {index} in {self.out}: {exc}") from exc

    def add(self, video_row: dict, clip_rows: list[dict]) -> None:
        """Append one sample's rows (flushed to the files when the buffer is full)."""
        self.videos.append(video_row)
        self.clips.extend(clip_rows)
        self.sample_ids.append(video_row["sample_id"])
        self._buffered += _row_bytes(video_row) + sum(_row_bytes(c) for c in clip_rows)
        if self._buffered >= FLUSH_BYTES or len(self.videos) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows: one Parquet row group per table, appended HDF5 rows."""
        if not self.videos:
            return
        try:
            for key, rows, schema in (("videos", self.videos, video_schema(self.shapes)),
                                      ("clips", self.clips, clip_schema(self.shapes))):
                if rows:
                    self._parquet[key].write_table(rows_to_table(rows, schema))
            self._append_h5(h5_arrays(self.shapes, self.videos, self.clips))
        except Exception as exc:
            self.abort()
            raise ShardWriteError(f"writing shard {self.index} in {self.out} failed: {exc}") from exc
        self.counts["videos"] += len(self.videos)
        self.counts["clips"] += len(self.clips)
        self.videos, self.clips, self._buffered = [], [], 0

    def _append_h5(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            if arr.size == 0 and arr.ndim > 1:
                continue  # a switched-off representation: created with its final row count in finish()
            if name not in self._h5:
                self._h5.create_dataset(name, **_resizable(arr))
            ds = self._h5[name]
            start = ds.shape[0]
            ds.resize(start + len(arr), axis=0)
            ds[start:] = arr

    def _close_h5(self) -> None:
        for name, (dtype, shape_of) in H5_LAYOUT.items():
            group = name.split("/")[0]
            if name not in self._h5:  # empty shard, or a zero-size per-row shape
                rows = self.counts[group]
                if dtype == "str":
                    self._h5.create_dataset(name, shape=(rows,), dtype=h5py.string_dtype())
                else:
                    self._h5.create_dataset(name, shape=(rows,) + shape_of(self.shapes), dtype=dtype)
        self._h5.close()
        self._h5 = None

    def finish(self, failed_ids: Iterable[str] = ()) -> dict:
        """Flush, rename the files into place, then write the done marker; returns the marker.

        Args:
            failed_ids: the shard's planned samples that failed (reported in errors.jsonl); the
                marker lists them so that a rerun knows the shard's plan was complete.
        """
        self.flush()
        try:
            for w in self._parquet.values():
                w.close()
            self._parquet = {}
            self._close_h5()
            files = {}
            for key in ("h5", "videos", "clips"):
                os.replace(self.tmp[key], self.paths[key])
                p = self.paths[key]
                files[key] = {"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            marker = {"shard": self.index, "num_shards": self.num_shards, "config_hash": self.config_hash,
                      "schema_version": SCHEMA_VERSION, "videos": self.counts["videos"],
                      "clips": self.counts["clips"], "sample_ids": self.sample_ids,
                      "failed_ids": sorted(failed_ids), "files": files}
            _atomic(self.paths["done"], lambda p: p.write_text(json.dumps(marker, indent=1)))
            return marker
        except Exception as exc:
            self.abort()
            raise ShardWriteError(f"finishing shard {self.index} in {self.out} failed: {exc}") from exc

    def abort(self) -> None:
        """Close and delete the temporary files (nothing of this shard is left to trust)."""
        for w in self._parquet.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001 - closing a broken writer may fail too
                pass
        self._parquet = {}
        if self._h5 is not None:
            try:
                self._h5.close()
            except Exception:  # noqa: BLE001
                pass
            self._h5 = None
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


def _resizable(arr: np.ndarray) -> dict:
    """``create_dataset`` arguments of an appendable dataset seeded with ``arr``: one chunk per
    row for per-row tensors (LZF for numbers, uncompressed uint8 images), 1024-row chunks for
    scalars and strings."""
    maxshape = (None,) + arr.shape[1:]
    if arr.dtype == object:
        return dict(shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
    if arr.ndim == 1:
        return dict(shape=(0,), maxshape=maxshape, dtype=arr.dtype, chunks=(1024,))
    compress = arr.dtype != np.uint8
    return dict(shape=(0,) + arr.shape[1:], maxshape=maxshape, dtype=arr.dtype, chunks=(1,) + arr.shape[1:],
                compression="lzf" if compress else None)


def write_shard(out: Path, index: int, num_shards: int, shapes: ShardShapes,
                samples: Iterable[tuple[dict, list[dict]]], config_hash: str, attrs: dict,
                failed_ids: Iterable[str] = ()) -> dict:
    """Write one shard from ``(video_row, clip_rows)`` items in one call (a :class:`ShardWriter`).

    The items are sorted by ``sample_id`` first, so a shard's content does not depend on the
    order they arrive in.

    Returns:
        The done marker's content.

    Raises:
        ShardWriteError: a file could not be written (no temporary file is left behind).
    """
    writer = ShardWriter(out, index, num_shards, shapes, config_hash, attrs)
    for video, clips in sorted(samples, key=lambda s: s[0]["sample_id"]):
        writer.add(video, clips)
    return writer.finish(failed_ids)


def finished_shards(out: Path, num_shards: int, config_hash: str) -> dict[int, dict]:
    """Done markers of shards already finished with the same config (for resumable runs)."""
    done = {}
    for i in range(num_shards):
        marker_path = shard_files(Path(out), i, num_shards)["done"]
        if marker_path.is_file():
            try:
                marker = json.loads(marker_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if marker.get("config_hash") == config_hash:
                done[i] = marker
    return done
