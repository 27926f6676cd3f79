"""Shard sets, read side: the one module that opens an extraction run's shard files.

:class:`pipelines.shards.ShardWriter` writes a shard (``clips-*.parquet``, ``videos-*.parquet``,
``shard-*.h5``, then its ``*.done.json`` marker) and ``pipelines.report`` the run's
``manifest.json``. Everything that reads them goes through this module:

* :func:`read_manifest` / :class:`ShardSet`: the manifest, its schema version checked by
  :func:`check_schema_version` (the only place that compares a stored version with
  :data:`schemas.shards.SCHEMA_VERSION`);
* :meth:`ShardSet.verify`: every listed file confined to the run folder and listed once, each
  sample in one shard, and each file checked against its done-marker (size always, sha256 once
  per file version, cached by path, size, mtime, ctime and inode in
  ``~/.cache/affectzoo/shard-sha256.json``; ``AFFECTZOO_CACHE`` or ``XDG_CACHE_HOME`` move it);
* :class:`Shard`: one shard's files; its Parquet tables whole (:meth:`Shard.read_table`), by row
  group (:meth:`Shard.row_groups`) or by sample (:meth:`Shard.samples`), its HDF5 datasets by name
  (:meth:`Shard.dataset`) or the open file (:meth:`Shard.open_h5`), each checked for the schema
  version first (Parquet: the ``affectzoo_schema_version`` schema metadata; HDF5: the attribute
  of that name, then :func:`schemas.shards.check_h5`).

A folder of shard files without a manifest (copied Parquet files) is read with
:func:`shards_in_folder` / :meth:`Shard.of_file` (the contact sheet does that).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional, Sequence

from schemas.shards import ShardSchemaError, check_schema_version  # noqa: F401 (re-exported)

__all__ = ["MANIFEST", "TABLES", "ShardIntegrityError", "ShardSet", "Shard", "check_schema_version",
           "read_manifest", "manifest_beside", "shards_in_folder", "cached_sha256", "confined", "verify_file"]

#: The manifest's file name in a run folder.
MANIFEST = "manifest.json"
#: The Parquet tables of a shard (file prefix = table name).
TABLES = ("videos", "clips")
_FILE_NAME = re.compile(r"^(clips|videos|shard)-(\d{5}-of-\d{5})\.(parquet|h5|done\.json)$")


class ShardIntegrityError(ShardSchemaError):
    """A shard set that must not be read: a manifest entry outside the run folder, absolute or
    listed twice, a missing or unreadable done-marker, or a shard file whose size or sha256
    differs from its marker (changed after it was written). The message names the file."""


def _load_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ShardIntegrityError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise ShardIntegrityError(f"{path}: not a JSON object")
    return value


def read_manifest(root: str | Path, check_version: bool = True) -> dict:
    """``manifest.json`` of a run folder.

    Args:
        root: the extraction output folder.
        check_version: refuse another schema version (False: tools that only need the run's
            config, or compare two runs whatever their version).

    Raises:
        FileNotFoundError: no manifest (the folder is not an extraction output).
        ShardIntegrityError: the manifest is not readable JSON.
        ShardSchemaError: another schema version (:func:`check_schema_version`).
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {root} is not an extraction output folder (run "
                                f"`python -m pipelines.extract --out {root}` first)")
    manifest = _load_json(path)
    if check_version:
        check_schema_version(manifest.get("schema_version"), path)
    return manifest


def manifest_beside(path: str | Path) -> Optional[dict]:
    """The manifest of the run folder holding shard file ``path`` (or of folder ``path``), read
    as is (no version check); None when there is none or it cannot be read."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        return read_manifest(folder, check_version=False)
    except (FileNotFoundError, ShardIntegrityError):
        return None


# ------------------------------------------------------------------------------ integrity
def _cache_file() -> Path:
    base = os.environ.get("AFFECTZOO_CACHE")
    if base:
        return Path(base).expanduser() / "shard-sha256.json"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(xdg) / "affectzoo" / "shard-sha256.json"


_HASHES: dict[str, str] = {}
_CACHE_LIMIT = 4096


def cached_sha256(path: Path) -> str:
    """sha256 of a file, computed once per file version: cached (in memory and in the user's
    cache folder, never in the run folder a shard set came with) under the resolved path, size,
    mtime, ctime and inode, so an edited or replaced file is hashed again."""
    from pipelines.shards import sha256_file  # the writer's hash; imports h5py, so only when hashing

    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    if key in _HASHES:
        return _HASHES[key]
    cache_file = _cache_file()
    try:
        cache = json.loads(cache_file.read_text())
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        cache = {}
    digest = cache.get(key)
    if not (isinstance(digest, str) and len(digest) == 64):
        digest = sha256_file(path)
        cache = {k: v for k, v in cache.items() if not k.startswith(f"{path}|")}
        cache[key] = digest
        cache = dict(list(cache.items())[-_CACHE_LIMIT:])
        try:  # a cache that cannot be written only costs a rehash next time
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
        except OSError:
            pass
    _HASHES[key] = digest
    return digest


def confined(run: Path, name, what: str) -> Path:
    """``run / name`` for a file name from a manifest, refused unless it stays in the run folder.

    Raises:
        ShardIntegrityError: not a non-empty relative name, holds a NUL byte, or resolves (after
            ``..`` and symlinks) outside ``run``.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ShardIntegrityError(f"{run / MANIFEST}: {what} has no usable file name ({name!r})")
    if PurePosixPath(name).is_absolute() or Path(name).is_absolute() or name.startswith("~"):
        raise ShardIntegrityError(f"{run / MANIFEST}: {what} names the absolute path {name!r}; shard "
                                  "files are named relative to the run folder")
    path = run / name
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ShardIntegrityError(f"{path}: {what} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(run):
        raise ShardIntegrityError(f"{run / MANIFEST}: {what} {name!r} leads outside the run folder "
                                  f"{run} (to {resolved})")
    return path


def _marker_of(path: Path) -> Path:
    """``shard-NNNNN-of-MMMMM.done.json`` beside any file of that shard."""
    match = _FILE_NAME.match(path.name)
    stem = match.group(2) if match else path.name.split("-", 1)[-1].rsplit(".", 1)[0]
    return path.parent / f"shard-{stem}.done.json"


def _marker(path: Path, key: str, entry: dict) -> dict:
    """The done-marker record of shard file ``path`` (``files[key]``), checked against the
    manifest's copy of it."""
    marker_path = _marker_of(path)
    try:
        marker = json.loads(marker_path.read_text())
        record = marker["files"][key]
        expected = (int(record["bytes"]), str(record["sha256"]))
    except FileNotFoundError:
        raise ShardIntegrityError(f"{path}: no done-marker {marker_path.name} beside it (an unfinished or "
                                  "foreign shard)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShardIntegrityError(f"{marker_path}: unreadable done-marker ({type(exc).__name__}: {exc})") from None
    listed = (entry.get("files") or {}).get(key) or {}
    if listed.get("sha256") not in (None, expected[1]) or listed.get("bytes") not in (None, expected[0]):
        raise ShardIntegrityError(f"{path}: the manifest and the done-marker {marker_path.name} disagree on "
                                  "its size or sha256")
    return {"bytes": expected[0], "sha256": expected[1], "marker": marker_path, "sample_ids": marker.get("sample_ids")}


def verify_file(path: Path, key: str, entry: dict) -> dict:
    """Check one shard file against its done-marker: size always, sha256 (cached per version).

    Returns:
        ``{"bytes", "sha256", "marker", "sample_ids"}`` of the marker.

    Raises:
        ShardIntegrityError: no marker, or the size or sha256 differs.
        FileNotFoundError: the file is missing.
    """
    record = _marker(path, key, entry)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard file listed in the manifest is missing")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise ShardIntegrityError(f"{path}: {size} bytes, its done-marker {record['marker'].name} says "
                                  f"{record['bytes']}: the file changed after it was written; re-extract it")
    if cached_sha256(path) != record["sha256"]:
        raise ShardIntegrityError(f"{path}: sha256 differs from its done-marker {record['marker'].name}: the "
                                  "file changed after it was written; re-extract it")
    return record


# ----------------------------------------------------------------------------------- shard
@dataclass(frozen=True)
class Shard:
    """The files of one shard (``stem`` = ``NNNNN-of-MMMMM``) and its manifest entry.

    Attributes:
        stem: ``NNNNN-of-MMMMM``.
        videos, clips: the Parquet tables (one row per sample / per clip).
        h5: the HDF5 file (:data:`schemas.shards.H5_LAYOUT`).
        entry: the manifest's record of the shard (its done-marker's content); {} without one.
    """

    stem: str
    videos: Path
    clips: Path
    h5: Path
    entry: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of_file(cls, path: str | Path) -> "Shard":
        """The shard a file belongs to (``clips-``/``videos-NNNNN-of-MMMMM.parquet``,
        ``shard-NNNNN-of-MMMMM.h5`` or ``.done.json``).

        Raises:
            ValueError: not a shard file name.
        """
        path = Path(path)
        match = _FILE_NAME.match(path.name)
        if match is None or (match.group(1) == "shard") == (match.group(3) == "parquet"):
            raise ValueError(f"{path}: not an affectzoo shard file (expected clips-NNNNN-of-MMMMM.parquet, "
                             "videos-NNNNN-of-MMMMM.parquet or shard-NNNNN-of-MMMMM.h5, or a run folder)")
        stem, folder = match.group(2), path.parent
        return cls(stem, folder / f"videos-{stem}.parquet", folder / f"clips-{stem}.parquet",
                   folder / f"shard-{stem}.h5")

    def path(self, table: str) -> Path:
        """The file of ``table`` (``videos``, ``clips`` or ``h5``)."""
        if table not in (*TABLES, "h5"):
            raise ValueError(f"unknown shard table {table!r} (videos, clips, h5)")
        return getattr(self, table)

    # ---- Parquet
    def schema(self, table: str, check_version: bool = True):
        """The Arrow schema of ``table`` after checking that the file is this version's shard
        of that table (``check_version=False``: any version, for tools that compare runs).

        Raises:
            ShardSchemaError: another schema version; ValueError: not a Parquet file, not an
            affectzoo shard or another table (message names the file).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(table)
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{path}: not a Parquet file ({exc})") from exc
        meta = schema.metadata or {}
        if b"affectzoo_schema_version" not in meta:
            raise ValueError(f"{path}: not an affectzoo shard (its Parquet schema has no affectzoo_schema_version)")
        if check_version:
            check_schema_version(meta[b"affectzoo_schema_version"], path)
        if meta.get(b"table", b"").decode() != table:
            raise ValueError(f"{path}: holds the {meta.get(b'table', b'?').decode()!r} table, expected {table!r}")
        return schema

    def _columns(self, table: str, columns: Optional[Sequence[str]], check_version: bool = True):
        schema = self.schema(table, check_version)
        missing = [c for c in columns or () if c not in schema.names]
        if missing:
            raise KeyError(f"{self.path(table)}: lacks columns {missing} ({table} table)")
        return list(columns) if columns is not None else None

    def read_table(self, table: str, columns: Optional[Sequence[str]] = None,
                   sample_ids: Optional[Sequence[str]] = None, check_version: bool = True):
        """``table`` as one ``pyarrow.Table`` (only ``columns`` when given; only the rows of
        ``sample_ids`` when given), after :meth:`schema`.

        Raises:
            KeyError: a column the file lacks (the message names the file and columns); the
            errors of :meth:`schema`.
        """
        import pyarrow.parquet as pq

        columns = self._columns(table, columns, check_version)
        filters = [("sample_id", "in", list(sample_ids))] if sample_ids is not None else None
        return pq.read_table(self.path(table), columns=columns, filters=filters)

    def row_groups(self, table: str, columns: Optional[Sequence[str]] = None) -> Iterator:
        """``table`` one Parquet row group at a time (``pyarrow.Table`` each; a shard's writer
        flushes one per :data:`pipelines.shards.FLUSH_ROWS` samples), after :meth:`schema`."""
        import pyarrow.parquet as pq

        columns = self._columns(table, columns)
        with pq.ParquetFile(self.path(table)) as f:
            for i in range(f.num_row_groups):
                yield f.read_row_group(i, columns=columns)

    def samples(self, table: str = "videos", columns: Optional[Sequence[str]] = None) -> Iterator[dict]:
        """Rows of ``table`` as dicts (tensor columns as numpy arrays of their shape), row group
        by row group."""
        import pyarrow as pa

        for group in self.row_groups(table, columns):
            cols = {}
            for name in group.column_names:
                col = group.column(name).combine_chunks()
                cols[name] = (list(col.to_numpy_ndarray()) if isinstance(col.type, pa.FixedShapeTensorType)
                              else col.to_pylist())
            for i in range(group.num_rows):
                yield {name: values[i] for name, values in cols.items()}

    # ---- HDF5
    def open_h5(self, check: bool = True):
        """The HDF5 file, read-only (``h5py.File``; the caller closes it). With ``check``, its
        schema version (:func:`check_schema_version`) and layout (:func:`schemas.shards.check_h5`)
        are checked first.

        Raises:
            ShardSchemaError: another version, a missing dataset or a wrong per-row shape.
            OSError: not an HDF5 file.
        """
        import h5py

        from schemas.shards import check_h5

        f = h5py.File(self.h5, "r")
        if check:
            try:
                check_h5(f, str(self.h5))  # the schema version first, then the layout
            except BaseException:
                f.close()
                raise
        return f

    def dataset(self, name: str, rows=None):
        """HDF5 dataset ``name`` (e.g. ``videos/tracks``) as a numpy array, all rows or ``rows``
        (an index or slice); strings decoded to ``str``.

        Raises:
            KeyError: no such dataset (the message names the file); the errors of :meth:`open_h5`.
        """
        with self.open_h5() as f:
            if name not in f:
                raise KeyError(f"{self.h5}: no dataset {name!r}")
            ds = f[name]
            if ds.dtype.kind in "OS":
                ds = ds.asstr()
            return ds[()] if rows is None else ds[rows]


def shards_in_folder(folder: str | Path) -> list[Shard]:
    """Every shard of a folder by its ``videos-NNNNN-of-MMMMM.parquet`` files, sorted by name
    (no manifest needed)."""
    return [Shard.of_file(p) for p in sorted(Path(folder).glob("videos-?????-of-?????.parquet"))]


# -------------------------------------------------------------------------------- shard set
class ShardSet:
    """The shards of one extraction run, as its manifest lists them (main shards, then retry
    folders), read-only.

    Args:
        root: the run folder (with ``manifest.json``).
        verify: run :meth:`verify` at once (done-markers, sha256, confinement).
        check_version: refuse another schema version (:func:`read_manifest`).

    Attributes:
        root: the run folder; ``manifest``: the manifest dict; ``shards``: :class:`Shard` per
        manifest entry, each file confined to the run folder.

    Raises:
        FileNotFoundError: no manifest. ShardSchemaError: another schema version.
        ShardIntegrityError: a malformed ``shards`` list or a file name leading outside the run.
    """

    def __init__(self, root: str | Path, verify: bool = False, check_version: bool = True):
        self.root = Path(root)
        self.manifest = read_manifest(self.root, check_version)
        self.shards = self._shards()
        if verify:
            self.verify()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def config(self) -> dict:
        """The extraction config the run recorded (``manifest["config"]``; {} when absent)."""
        return dict(self.manifest.get("config") or {})

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.get("label_names") or ())

    def manifest_sha256(self) -> str:
        """Hex sha256 of ``manifest.json`` as stored (recorded by ``zoo.train`` checkpoints)."""
        return hashlib.sha256(self.manifest_path.read_bytes()).hexdigest()

    def _shards(self) -> list[Shard]:
        run = self.root.resolve()
        entries = self.manifest.get("shards")
        if not isinstance(entries, list):
            raise ShardIntegrityError(f"{run / MANIFEST}: 'shards' is not a list")
        out = []
        for n, entry in enumerate(entries):
            what = f"shards[{n}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict) \
                    or not isinstance(entry["files"].get("h5"), dict):
                raise ShardIntegrityError(f"{run / MANIFEST}: {what} has no files.h5 entry")
            paths = {}
            for key, record in entry["files"].items():
                name = record.get("name") if isinstance(record, dict) else None
                paths[key] = confined(run, name, f"{what}.files.{key}")
            h5 = paths["h5"]
            stem = _FILE_NAME.match(h5.name).group(2) if _FILE_NAME.match(h5.name) else h5.stem
            out.append(Shard(stem, paths.get("videos", h5.parent / f"videos-{stem}.parquet"),
                             paths.get("clips", h5.parent / f"clips-{stem}.parquet"), h5, entry))
        return out

    def verify(self, tables: Sequence[str] = ("h5",)) -> "ShardSet":
        """Check the set before reading it: no file listed twice, no sample in two shards, and
        each file of ``tables`` (``h5``, ``videos``, ``clips``) against its done-marker
        (:func:`verify_file`). Returns ``self``.

        Raises:
            ShardIntegrityError: a file or sample listed twice, a missing marker, a changed file.
            FileNotFoundError: a listed shard file is missing.
        """
        run = self.root.resolve()
        seen: dict[Path, int] = {}
        for n, shard in enumerate(self.shards):
            for key in shard.entry["files"]:
                real = shard.path(key).resolve() if key in (*TABLES, "h5") else None
                if real is None:
                    continue
                if real in seen:
                    raise ShardIntegrityError(f"{run / MANIFEST}: shards[{n}] lists {real.name} again (first in "
                                              f"shards[{seen[real]}]); every shard file must appear once")
                seen[real] = n
        owner: dict[str, Path] = {}
        for shard in self.shards:
            for key in tables:
                record = verify_file(shard.path(key), key, shard.entry)
                if key != "h5":
                    continue
                for sid in record["sample_ids"] or []:
                    if sid in owner:
                        raise ShardIntegrityError(f"{shard.h5}: sample {sid!r} is also in {owner[sid]}; a sample "
                                                  "must be in one shard")
                    owner[sid] = shard.h5
        return self

    def h5_files(self) -> list[Path]:
        """The HDF5 file of each shard, in manifest order."""
        return [s.h5 for s in self.shards]

    def tables(self, table: str, columns: Optional[Sequence[str]] = None) -> Iterator[tuple[Shard, Any]]:
        """``(shard, pyarrow.Table)`` of ``table`` per shard, in manifest order.

        Raises:
            FileNotFoundError: a listed file is missing; the errors of :meth:`Shard.read_table`.
        """
        for shard in self.shards:
            if not shard.path(table).is_file():
                raise FileNotFoundError(f"{shard.path(table)}: listed in {MANIFEST} but missing")
            yield shard, shard.read_table(table, columns)

    def row_groups(self, table: str, columns: Optional[Sequence[str]] = None) -> Iterator[Any]:
        """Every Parquet row group of ``table`` across the shards, in manifest order."""
        for shard in self.shards:
            yield from shard.row_groups(table, columns)

    def samples(self, columns: Optional[Sequence[str]] = None, table: str = "videos") -> Iterator[dict]:
        """Every row of ``table`` (default one per sample) as a dict, in manifest order."""
        for shard in self.shards:
            yield from shard.samples(table, columns)

    def dataset(self, name: str):
        """HDF5 dataset ``name`` of every shard, concatenated along rows (manifest order)."""
        import numpy as np

        parts = [s.dataset(name) for s in self.shards]
        return np.concatenate(parts) if parts else np.zeros((0,))
