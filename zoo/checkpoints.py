"""Trained zoo checkpoints: save and read them safely, rebuild the model of a ``checkpoint.pt``
and score it on shards.

``python -m zoo.evaluate runs/accm/checkpoint.pt --shards shards/caer --split test`` uses
:func:`evaluate_on_shards`.

Checkpoints are read with ``torch.load(weights_only=True)`` only: tensors, plain containers
(dict, list, tuple), str / int / float / bool / None, and numeric numpy arrays and scalars (the
RNG state and the best epoch's scores of ``last.pt``). A pickle that names any other global (a
``__reduce__`` payload calling ``os.system``, a class instance) is refused with
:class:`CheckpointError` before anything in it runs. :func:`save_checkpoint` writes files that
this reader accepts (the config as plain JSON-able values).
"""
from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from zoo.data import ShardDataset
from zoo.loop import run_epoch
from zoo.metrics import plot_confusion
from zoo.registry import ZooModel, get_model
from zoo.tasks import Task


class CheckpointError(ValueError):
    """A checkpoint that affectzoo refuses to load (not weights-only, or not a zoo checkpoint);
    the message names the file and the reason."""


def _numpy_safe_globals() -> list:
    """The numpy globals a pickled numeric array or scalar needs (nothing that runs code)."""
    core = getattr(np, "_core", None) or np.core
    names = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              np.float16, np.float32, np.float64):
        names.append(type(np.dtype(t)))
    return names


_SAFE_NUMPY = _numpy_safe_globals()


def load_state(path: str | Path) -> Any:
    """``torch.load`` of ``path`` with ``weights_only=True`` (plus numeric numpy arrays).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file needs the full unpickler (it names a global outside the
            weights-only set, e.g. a ``__reduce__`` payload) or is not a torch file at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_SAFE_NUMPY):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError, zipfile errors ...
        noise = ("Weights only load failed", "Please file an issue", "Check the documentation", "torch.load")
        detail = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not any(n in ln for n in noise)]
        found = detail[0] if detail else type(exc).__name__
        if "GLOBAL" in found or "global" in found:
            reason = (f"refused: not a weights-only checkpoint ({found}); affectzoo loads only tensors and plain "
                      "values and never runs code from a checkpoint")
        else:
            reason = f"cannot read as a weights-only torch checkpoint ({type(exc).__name__}: {found})"
        raise CheckpointError(f"{path}: {reason}") from None


def plain_config(config: dict) -> dict:
    """``config`` as plain JSON values (paths and other objects become strings)."""
    return json.loads(json.dumps(config, default=str))


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write a checkpoint that :func:`load_state` accepts, atomically (temp file + rename).

    ``state["config"]`` (when present) is stored as plain JSON values; the rest must already be
    tensors, numeric numpy arrays and plain containers.

    Raises:
        CheckpointError: the written file would not load weights-only (nothing is left behind).
    """
    path = Path(path)
    state = dict(state)
    if isinstance(state.get("config"), dict):
        state["config"] = plain_config(state["config"])
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        torch.save(state, tmp)
        load_state(tmp)  # never write what the reader would refuse
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: Path) -> dict:
    """Read a ``zoo.train`` checkpoint (a run folder resolves to its ``checkpoint.pt``).

    Raises:
        FileNotFoundError: no such file. CheckpointError (a ValueError): not weights-only (see
        :func:`load_state`), unreadable, or not a zoo checkpoint (needs ``model``,
        ``state_dict`` and ``config`` with ``label_names``, ``in_shape``, ``input``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    state = load_state(path)
    keys = ("label_names", "in_shape", "input")
    if not isinstance(state, dict) or not {"model", "state_dict", "config"} <= set(state) \
            or not isinstance(state["config"], dict) or not all(k in state["config"] for k in keys):
        raise CheckpointError(f"{path}: not a zoo.train checkpoint (expected keys model, state_dict, config "
                              f"with {', '.join(keys)})")
    config = state["config"]
    if not isinstance(state["model"], str) or not isinstance(state["state_dict"], dict) \
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["state_dict"].items()) \
            or not isinstance(config["input"], str) or "/" not in config["input"] \
            or not all(isinstance(n, str) for n in config["label_names"]) \
            or not all(isinstance(n, int) for n in config["in_shape"]):
        raise CheckpointError(f"{path}: malformed zoo.train checkpoint (model must be a name, state_dict "
                              "tensors by name, config.input 'group/field', label_names names, in_shape ints)")
    return state


def build_trained(state: dict, device: str = "cpu") -> tuple[ZooModel, torch.nn.Module, dict]:
    """``(registry entry as trained, model in eval mode on device, resolved training config)`` of
    a checkpoint read by :func:`read_checkpoint`.

    Raises:
        KeyError: its model is not in this affectzoo's registry.
    """
    spec, config = get_model(state["model"]), state["config"]
    group, field = config["input"].split("/", 1)
    spec = dataclasses.replace(spec, group=group, field=field)  # as trained (zoo.train --input)
    model = spec.build(tuple(config["in_shape"]), Task(spec.task).outputs(len(config["label_names"])))
    model.load_state_dict(state["state_dict"])
    return spec, model.to(device).eval(), config


def load_trained(path: Path, device: str = "cpu") -> tuple[ZooModel, torch.nn.Module, dict]:
    """:func:`build_trained` of :func:`read_checkpoint` (same errors)."""
    return build_trained(read_checkpoint(path), device)


def evaluate_on_shards(checkpoint: Path, shards: Path, split: str = "test", device: str = "cpu",
                       out: Path | None = None, batch_size: int = 16) -> dict:
    """Score a checkpoint on one split of an extraction run with its task's metrics.

    Writes ``metrics.json`` (and ``confusion_matrix.png`` for single-label tasks) to ``out``
    when given.

    Raises:
        ValueError: the shards' label names differ from the checkpoint's, or the split is empty.
        ShardSchemaError: the shards lack the model's input field.
    """
    spec, model, config = load_trained(checkpoint, device)
    task = Task(spec.task)
    data = ShardDataset(shards, spec.field, split, spec.group, spec.stack_clips, task.target,
                        derive=spec.derive, views=spec.views)
    if data.label_names != list(config["label_names"]):
        raise ValueError(f"{shards}: labels {data.label_names} differ from the checkpoint's {config['label_names']}")
    if len(data) == 0:
        raise ValueError(f"{shards}: no '{split}' rows")
    result = run_epoch(model, spec, task, DataLoader(data, batch_size), device, show=False)
    metrics = task.metrics(result.y_true, result.scores, data.label_names)
    metrics.update(checkpoint=str(checkpoint), model=spec.name, shards=str(shards), split=split,
                   loss=result.loss, rows=len(data))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if "confusion_matrix" in metrics:
            plot_confusion(metrics["confusion_matrix"], data.label_names, out / "confusion_matrix.png",
                           f"{spec.name}, {split}")
    return metrics
