"""Shard datasets: the trainer reads the HDF5 shards of an extraction run.

Shards are not trusted blindly: :class:`ShardDataset` (so ``zoo.train`` and ``zoo.evaluate``)
opens the run through :class:`pipelines.shardset.ShardSet` with ``verify=True``, which refuses
manifest entries that are absolute paths, lead outside the run folder (``..``, a symlink) or
name one file twice, and checks every HDF5 shard against its ``*.done.json`` marker (the size
always, the sha256 once per file version, cached by path, size, mtime, ctime and inode in
``~/.cache/affectzoo/shard-sha256.json``; ``AFFECTZOO_CACHE`` or ``XDG_CACHE_HOME`` move it).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from pipelines.shardset import (_HASHES, ShardIntegrityError, ShardSet, cached_sha256, confined,  # noqa: F401
                                read_manifest, verify_file)
from schemas.shards import ShardSchemaError, columns_of

if TYPE_CHECKING:
    import h5py


def load_manifest(shards: Path) -> dict:
    """Read ``manifest.json`` of a shard folder (:func:`pipelines.shardset.read_manifest`).

    Raises:
        FileNotFoundError: no manifest (the folder is not an extraction output).
        ShardSchemaError: the manifest's schema version is not the one this affectzoo reads.
    """
    return read_manifest(shards)


def verify_shard_set(shards: Path, manifest: dict | None = None) -> list[Path]:
    """The HDF5 files of a run, verified (:meth:`pipelines.shardset.ShardSet.verify`).

    Raises:
        ShardIntegrityError, FileNotFoundError: see :class:`pipelines.shardset.ShardSet`.
    """
    return ShardSet(shards, verify=True).h5_files()


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
            and ``__call__(video: dict, rng) -> ndarray`` of the stored field's row shape (every
            shard is checked to hold what it ``needs`` when the dataset opens). Items
            asked for with an ``(index, key)`` pair (:class:`zoo.optim.KeyedSampler`) are
            computed by the view from the sample's ``videos`` row with
            ``numpy.random.default_rng(key)``; plain integer indices still read the stored
            field (evaluation, ``tensors()``).

    Items: ``(torch.Tensor input, target)``; ``dataset[i]`` or ``dataset[(i, key)]``.

    Raises:
        ShardSchemaError: a shard lacks ``<group>/<field>``, the target dataset or a dataset the
            train view needs, or holds it switched off (the message names the file, the
            representation and the card option that stores it; :meth:`_require`).
    """

    def __init__(self, shards: Path, field: str = "timeline", split: str | None = "train", group: str = "videos",
                 stack_clips: bool = False, target: str = "label", num_groups: int = 4,
                 derive=None, views: int = 1, fold: tuple[int, bool] | None = None, train_view=None):
        self.shard_set = ShardSet(shards, verify=True)
        self.manifest = self.shard_set.manifest
        self.shards = Path(shards)
        self.files = self.shard_set.h5_files()
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
            with self.shard_set.shards[fi].open_h5() as f:
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
        """Record each item's ``videos`` row (and frame rate) for the train view, after checking
        that the shard holds what the view ``needs`` (:meth:`_require`: e.g. ``--redraw`` on
        shards stored without the face pool fails here, naming the card option)."""
        path = self.files[fi]
        for name in self.train_view.needs:
            if name != "fps":
                self._require(f, path, f"videos/{name}")
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
        shard = self.shard_set.shards[fi]
        path = shard.videos if "videos" in shard.entry["files"] else None
        if path is None or not path.is_file():
            raise FileNotFoundError(f"{path or self.files[fi]}: the videos Parquet table of this shard is missing "
                                    "(the CAER load-time features need its fps column)")
        verify_file(path, "videos", shard.entry)
        table = shard.read_table("videos", ["sample_id", "fps"]).to_pydict()
        return {sid: float(v) if v is not None else float("nan") for sid, v in zip(table["sample_id"], table["fps"])}

    @staticmethod
    def _require(f: h5py.File, path: Path, name: str) -> None:
        """Raise unless ``f`` holds the dataset ``group/field`` with something in it.

        Raises:
            ShardSchemaError: not a stored field of the group (the message lists the group's
                datasets, :data:`schemas.shards.COLUMNS`), absent, or switched off at extraction
                (a zero-length per-row axis; the message says how its representation is stored,
                :meth:`pipelines.representations.Representation.switched_on_by`).
        """
        from pipelines.representations import representation

        table, field = name.split("/", 1)
        column = next((c for c in columns_of(table) if c.h5 and c.name == field), None)
        if column is None:
            known = ", ".join(c.name for c in columns_of(table) if c.h5)
            raise ShardSchemaError(f"{path}: no dataset {name!r}: {field!r} is not a stored field of {table} "
                                   f"(its datasets: {known})")
        if name not in f:
            raise ShardSchemaError(f"{path}: no dataset {name!r}; re-run the extraction with this affectzoo")
        if 0 in f[name].shape[1:]:
            how = representation(column.representation).switched_on_by() or "re-run the extraction"
            raise ShardSchemaError(f"{path}: {name} holds nothing (per-row shape {f[name].shape[1:]}): representation "
                                   f"{column.representation!r} was off at extraction; to store it: {how}")

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
            self._handles[fi] = self.shard_set.shards[fi].open_h5(check=False)  # checked when the set opened
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
