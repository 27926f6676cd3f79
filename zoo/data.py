"""Shard datasets: the trainer reads the HDF5 shards of an extraction run."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

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


class ShardDataset(Dataset):
    """Rows of one HDF5 group (``videos`` or ``clips``) across a run's shards, for one split.

    Each DataLoader worker opens its own read-only file handles on first access (h5py handles
    must not cross ``fork``).

    Args:
        shards: the extraction output folder (with ``manifest.json`` and ``shard-*.h5``).
        field: dataset inside the group to return as input, e.g. ``timeline`` (float32
            [2V, size, length]) or ``faces`` (uint8 [K, S, S, 3]).
        split: ``train``, ``val`` or ``test``; None = all rows.
        group: ``videos`` (one row per sample) or ``clips``.

    Items: ``(torch.Tensor input, int label)``.
    """

    def __init__(self, shards: Path, field: str = "timeline", split: str | None = "train", group: str = "videos"):
        self.manifest = load_manifest(shards)
        self.files = [Path(shards) / s["files"]["h5"]["name"] for s in self.manifest["shards"]]
        self.field, self.group = field, group
        self.index: list[tuple[int, int]] = []
        self.labels: list[int] = []
        for fi, path in enumerate(self.files):
            with h5py.File(path, "r") as f:
                check_h5(f, str(path))
                splits = f[f"{group}/split"].asstr()[()]
                labels = f[f"{group}/label"][()]
            for row, (sp, lab) in enumerate(zip(splits, labels)):
                if split is None or sp == split:
                    self.index.append((fi, row))
                    self.labels.append(int(lab))
        self._handles: dict[int, h5py.File] = {}

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest["label_names"])

    def __len__(self) -> int:
        return len(self.index)

    def _file(self, fi: int) -> h5py.File:
        if fi not in self._handles:
            self._handles[fi] = h5py.File(self.files[fi], "r")
        return self._handles[fi]

    def __getitem__(self, i: int):
        fi, row = self.index[i]
        x = self._file(fi)[f"{self.group}/{self.field}"][row]
        return torch.from_numpy(np.asarray(x)), self.labels[i]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state
