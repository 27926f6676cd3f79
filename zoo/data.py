"""Shard datasets: the trainer reads the HDF5 shards of an extraction run.

Shards are not trusted blindly: opening a shard set (:func:`verify_shard_set`, used by
:class:`ShardDataset`, so by ``zoo.train`` and ``zoo.evaluate``) refuses manifest entries that
are absolute paths, lead outside the run folder (``..``, a symlink) or name one file twice, and
checks every HDF5 shard against its ``*.done.json`` marker: the size always, the sha256 once per
file version (cached by path, size, mtime, ctime and inode in
``~/.cache/affectzoo/shard-sha256.json``; ``AFFECTZOO_CACHE`` or ``XDG_CACHE_HOME`` move it).
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from pipelines.shards import sha256_file
from schemas.shards import SCHEMA_VERSION, ShardSchemaError, check_h5


def load_manifest(shards: Path) -> dict:
    """Read ``manifest.json`` of a shard folder.

    Raises:
        FileNotFoundError: no manifest (the folder is not an extraction output).
        ShardSchemaError: the manifest's schema version is not the one this affectzoo reads.
    """
    path = Path(shards) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m pipelines.extract --out {shards}` first")
    manifest = json.loads(path.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ShardSchemaError(f"{path}: schema version {manifest.get('schema_version')}, expected {SCHEMA_VERSION}")
    return manifest


class ShardIntegrityError(ShardSchemaError):
    """A shard set that must not be read: a manifest entry outside the run folder, absolute or
    listed twice, a missing or unreadable done-marker, or a shard file whose size or sha256
    differs from its marker (changed after it was written). The message names the file."""


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
        raise ShardIntegrityError(f"{run / 'manifest.json'}: {what} has no usable file name ({name!r})")
    if PurePosixPath(name).is_absolute() or Path(name).is_absolute() or name.startswith("~"):
        raise ShardIntegrityError(f"{run / 'manifest.json'}: {what} names the absolute path {name!r}; shard "
                                  "files are named relative to the run folder")
    path = run / name
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ShardIntegrityError(f"{path}: {what} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(run):
        raise ShardIntegrityError(f"{run / 'manifest.json'}: {what} {name!r} leads outside the run folder "
                                  f"{run} (to {resolved})")
    return path


def _marker(path: Path, key: str, entry: dict) -> dict:
    """The done-marker record of shard file ``path`` (``files[key]``), checked against the
    manifest's copy of it."""
    # shard-00000-of-00002.h5 / videos-00000-of-00002.parquet -> shard-00000-of-00002.done.json
    marker_path = path.parent / f"shard-{path.name.split('-', 1)[-1].rsplit('.', 1)[0]}.done.json"
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


def verify_shard_set(shards: Path, manifest: dict) -> list[Path]:
    """The HDF5 files of a run's manifest, each confined to the run folder, listed once and
    verified against its done-marker (:func:`verify_file`).

    Raises:
        ShardIntegrityError: a malformed ``shards`` list, an absolute name, a name leading outside
            the run folder, a file or sample listed twice, a missing marker, a changed file.
        FileNotFoundError: a listed shard file is missing.
    """
    run = Path(shards).resolve()
    entries = manifest.get("shards")
    if not isinstance(entries, list):
        raise ShardIntegrityError(f"{run / 'manifest.json'}: 'shards' is not a list")
    seen: dict[Path, int] = {}
    owner: dict[str, Path] = {}
    files = []
    for n, entry in enumerate(entries):
        what = f"shards[{n}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict) \
                or not isinstance(entry["files"].get("h5"), dict):
            raise ShardIntegrityError(f"{run / 'manifest.json'}: {what} has no files.h5 entry")
        for key, record in entry["files"].items():
            path = confined(run, record.get("name") if isinstance(record, dict) else None, f"{what}.files.{key}")
            real = path.resolve()
            if real in seen:
                raise ShardIntegrityError(f"{run / 'manifest.json'}: {what} lists {real.name} again (first in "
                                          f"shards[{seen[real]}]); every shard file must appear once")
            seen[real] = n
        path = run / entry["files"]["h5"]["name"]
        record = verify_file(path, "h5", entry)
        for sid in record["sample_ids"] or []:
            if sid in owner:
                raise ShardIntegrityError(f"{path}: sample {sid!r} is also in {owner[sid]}; a sample must be in "
                                          "one shard")
            owner[sid] = path
        files.append(path)
    return files


class ShardDataset(Dataset):
    """Rows of one HDF5 group (``videos`` or ``clips``) across a run's shards, for one split.

    Each DataLoader worker opens its own read-only file handles on first access (h5py handles
    must not cross ``fork``).

    Args:
        shards: the extraction output folder (with ``manifest.json`` and ``shard-*.h5``).
        field: dataset inside the group to return as input, e.g. ``timeline`` (float32
            [2V, size, length]) or ``faces`` (uint8 [K, S, S, 3]); ``a+b`` stacks two
            same-shape datasets on a new first axis (TSN fusion: ``body+faces``).
        split: ``train``, ``val`` or ``test``; None = all rows.
        fold: with ``split=None``, k-fold cross-validation on the corpus's folds (CK+):
            ``(k, True)`` = the rows of fold k (held out), ``(k, False)`` = the rows of every other
            fold (rows without a fold are left out of both).
        group: ``videos`` (one row per sample) or ``clips``.
        stack_clips: with ``group="clips"``, one item per sample holding its C clips stacked in
            ``clip_index`` order ([C, ...]); the SISTCM/TLSTM input.
        target: ``label`` (int class; rows with no class, label -1, are left out), ``targets``
            (float [L] multi-hot or soft vector from ``videos/targets``, also for clip rows;
            one-hot of ``label`` in shards without it) or ``view_group`` (int ``groups * label
            + view group``, dataset ``<group>/view_group``, ProxEmo seed_specs §2.5).
        num_groups: view groups per class for ``target="view_group"``.
        derive: ``derive(stored, num_frames, view) -> (input, view_group)`` computes the input
            from a stored row on the fly (VS-GCNN: the view-augmented image embedding of a stored
            gait); with ``target="view_group"`` the group it returns makes the target, so the
            shards need no ``view_group`` dataset.
        views: items per stored row when ``derive`` is given (view 0 .. views-1).
        train_view: a load-time training view (:class:`zoo.caer_augment.CaerPoseView`,
            :class:`zoo.superimage_sampling.FaceRedraw`): an object with ``needs`` (names of
            ``videos`` datasets it reads; ``fps`` comes from the run's Parquet ``videos`` table)
            and ``__call__(video: dict, rng) -> ndarray`` of the stored field's row shape
            (optional ``check(h5file, path)``, run on every shard when the dataset opens). Items
            asked for with an ``(index, key)`` pair (:class:`zoo.optim.KeyedSampler`) are
            computed by the view from the sample's ``videos`` row with
            ``numpy.random.default_rng(key)``; plain integer indices still read the stored
            field (evaluation, ``tensors()``).

    Items: ``(torch.Tensor input, target)``; ``dataset[i]`` or ``dataset[(i, key)]``.

    Raises:
        ShardSchemaError: a shard lacks ``<group>/<field>`` or the target dataset (the message
            names the file and says which representation to extract).
    """

    def __init__(self, shards: Path, field: str = "timeline", split: str | None = "train", group: str = "videos",
                 stack_clips: bool = False, target: str = "label", num_groups: int = 4,
                 derive=None, views: int = 1, fold: tuple[int, bool] | None = None, train_view=None):
        self.manifest = load_manifest(shards)
        self.shards = Path(shards)
        self.files = verify_shard_set(shards, self.manifest)
        self.field, self.group, self.target, self.stack_clips = field, group, target, stack_clips
        self.derive, self.num_groups = derive, num_groups
        views = views if derive else 1
        self.index: list[tuple[int, list[int], int]] = []
        self.labels: list[int] = []
        self.targets: list = []
        self.train_view = train_view
        self.video_rows: list[int] = []  # per item, its sample's row in ``videos`` (train_view only)
        self.fps: list[float] = []
        for fi, path in enumerate(self.files):
            with h5py.File(path, "r") as f:
                check_h5(f, str(path))
                for name in field.split("+"):
                    self._require(f, path, f"{group}/{name}")
                rows = self._rows(f, split, stack_clips, fold)
                labels = f[f"{group}/label"][()]
                if target != "targets":
                    rows = [rs for rs in rows if labels[rs[0]] >= 0]
                extra = None if derive else self._target_data(f, path, target)
                num_frames = f[f"{group}/num_frames"][()] if derive else None
                if train_view is not None:
                    self._index_videos(f, fi, rows, views if derive else 1)
            for rs, v in ((rs, v) for rs in rows for v in range(views)):
                self.index.append((fi, rs, v if num_frames is None else (v, int(num_frames[rs[0]]))))
                lab = int(labels[rs[0]])
                self.labels.append(lab)
                if derive:
                    self.targets.append(lab)  # view_group targets are made in __getitem__
                elif target == "targets" and extra is None:  # single-label corpus: one-hot targets
                    self.targets.append(torch.nn.functional.one_hot(torch.tensor(lab), len(self.label_names)).float())
                elif target == "targets":
                    self.targets.append(torch.as_tensor(extra[rs[0]], dtype=torch.float32))
                elif target == "view_group":
                    self.targets.append(num_groups * lab + int(extra[rs[0]]))
                else:
                    self.targets.append(lab)
        self._handles: dict[int, h5py.File] = {}

    def _index_videos(self, f: h5py.File, fi: int, rows: list[list[int]], views: int) -> None:
        """Record each item's ``videos`` row (and frame rate) for the train view."""
        path = self.files[fi]
        for name in self.train_view.needs:
            if name != "fps":
                self._require(f, path, f"videos/{name}")
        if hasattr(self.train_view, "check"):
            self.train_view.check(f, path)
        video_ids = f["videos/sample_id"].asstr()[()]
        row_of = {sid: r for r, sid in enumerate(video_ids)}
        ids = f[f"{self.group}/sample_id"].asstr()[()]
        fps_of = self._frame_rates(fi) if "fps" in self.train_view.needs else {}
        for rs in rows:
            sid = ids[rs[0]]
            if sid not in row_of:
                raise ShardSchemaError(f"{path}: {self.group} row {rs[0]} (sample {sid!r}) has no videos row")
            self.video_rows += [row_of[sid]] * views
            self.fps += [fps_of.get(sid, float("nan"))] * views

    def _frame_rates(self, fi: int) -> dict[str, float]:
        """``sample_id -> fps`` from the shard's Parquet ``videos`` table (the source frame rate;
        the HDF5 layout does not carry it).

        Raises:
            FileNotFoundError: the Parquet file named by the manifest is missing.
        """
        import pyarrow.parquet as pq

        shard = self.manifest["shards"][fi]
        entry = shard["files"].get("videos")
        path = confined(Path(self.shards).resolve(), entry["name"], f"shards[{fi}].files.videos") if entry else None
        if path is None or not path.is_file():
            raise FileNotFoundError(f"{path or self.files[fi]}: the videos Parquet table of this shard is missing "
                                    "(the CAER load-time features need its fps column)")
        verify_file(path, "videos", shard)
        table = pq.read_table(path, columns=["sample_id", "fps"]).to_pydict()
        return {sid: float(v) if v is not None else float("nan") for sid, v in zip(table["sample_id"], table["fps"])}

    @staticmethod
    def _require(f: h5py.File, path: Path, name: str) -> None:
        if name not in f:
            rep = name.split("/", 1)[1]
            raise ShardSchemaError(f"{path}: no dataset {name!r}; extract with a card whose "
                                   f"[representations] include {rep!r} (see `python -m zoo.train --list`)")

    def _rows(self, f: h5py.File, split: str | None, stack_clips: bool, fold) -> list[list[int]]:
        splits = f[f"{self.group}/split"].asstr()[()]
        keep = [i for i, sp in enumerate(splits) if split is None or sp == split]
        if fold is not None:
            folds, (k, held_out) = f[f"{self.group}/fold"][()], fold
            keep = [i for i in keep if folds[i] > 0 and (folds[i] == k) == held_out]
        if not stack_clips:
            return [[i] for i in keep]
        ids = f[f"{self.group}/sample_id"].asstr()[()]
        order = f[f"{self.group}/clip_index"][()]
        by_sample: dict[str, list[int]] = {}
        for i in keep:
            by_sample.setdefault(ids[i], []).append(i)
        return [sorted(rs, key=lambda r: order[r]) for _, rs in sorted(by_sample.items())]

    def _target_data(self, f: h5py.File, path: Path, target: str):
        if target == "label":
            return None
        if target not in ("targets", "view_group"):
            raise ValueError(f"unknown target kind {target!r} (label, targets, view_group)")
        if target == "targets":
            if "videos/targets" not in f:
                return None
            by_sample = dict(zip(f["videos/sample_id"].asstr()[()], f["videos/targets"][()]))
            return [by_sample[s] for s in f[f"{self.group}/sample_id"].asstr()[()]]
        self._require(f, path, f"{self.group}/{target}")
        return f[f"{self.group}/{target}"][()]

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest["label_names"])

    def __len__(self) -> int:
        return len(self.index)

    def _file(self, fi: int) -> h5py.File:
        if fi not in self._handles:
            self._handles[fi] = h5py.File(self.files[fi], "r")
        return self._handles[fi]

    def video(self, i: int) -> dict:
        """The ``videos`` datasets the train view needs for item ``i`` (one row each), plus
        ``num_frames`` (int), ``fps`` (float, NaN when unknown) and ``source`` (file and row, for
        error messages)."""
        fi, vrow = self.index[i][0], self.video_rows[i]
        f = self._file(fi)
        out = {name: f[f"videos/{name}"][vrow] for name in self.train_view.needs if name not in ("fps", "num_frames")}
        out["num_frames"] = int(f["videos/num_frames"][vrow])
        out["fps"] = self.fps[i]
        out["source"] = f"{self.files[fi]}: videos row {vrow}"
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):
            i, draw = key
            if self.train_view is not None:
                x = self.train_view(self.video(i), np.random.default_rng(draw))
                return torch.from_numpy(np.ascontiguousarray(x)), self.targets[i]
        else:
            i = key
        fi, rows, view = self.index[i]
        parts = [self._read(self._file(fi)[f"{self.group}/{name}"], rows) for name in self.field.split("+")]
        x = parts[0] if len(parts) == 1 else np.stack(parts)
        target = self.targets[i]
        if self.derive:
            x, group = self.derive(np.asarray(x), view[1], view[0])
            if self.target == "view_group":
                target = self.num_groups * target + int(group)
        return torch.from_numpy(np.asarray(x)), target

    def _read(self, data, rows: list[int]) -> np.ndarray:
        return np.stack([data[r] for r in rows]) if self.stack_clips else data[rows[0]]

    def tensors(self) -> tuple[torch.Tensor, list]:
        """All inputs of the split in memory ([N, ...]) and their targets (for benchmarks and small runs)."""
        xs = [self[i][0] for i in range(len(self))]
        return torch.stack(xs), list(self.targets)
