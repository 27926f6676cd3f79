"""Trained zoo checkpoints: rebuild the model of a ``checkpoint.pt`` and score it on shards.

``python -m zoo.evaluate runs/accm/checkpoint.pt --shards shards/caer --split test`` uses
:func:`evaluate_on_shards`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from zoo.data import ShardDataset
from zoo.loop import run_epoch
from zoo.metrics import plot_confusion
from zoo.registry import ZooModel, get_model
from zoo.tasks import Task


def read_checkpoint(path: Path) -> dict:
    """Read a ``zoo.train`` checkpoint (a run folder resolves to its ``checkpoint.pt``).

    Raises:
        FileNotFoundError: no such file. ValueError: unreadable, or not a zoo checkpoint (needs
        ``model``, ``state_dict`` and ``config`` with ``label_names``, ``in_shape``, ``input``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:  # zoo.train writes plain dicts, lists and tensors; numpy arrays in 'best' need the full unpickler
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read as a torch checkpoint: {exc}") from exc
    keys = ("label_names", "in_shape", "input")
    if not isinstance(state, dict) or not {"model", "state_dict", "config"} <= set(state) \
            or not all(k in state["config"] for k in keys):
        raise ValueError(f"{path}: not a zoo.train checkpoint (expected keys model, state_dict, config "
                         f"with {', '.join(keys)})")
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
    target = {"multiclass": "label", "multilabel": "targets", "view_groups": "view_group"}[spec.task]
    data = ShardDataset(shards, spec.field, split, spec.group, spec.stack_clips, target,
                        derive=spec.derive, views=spec.views)
    if data.label_names != list(config["label_names"]):
        raise ValueError(f"{shards}: labels {data.label_names} differ from the checkpoint's {config['label_names']}")
    if len(data) == 0:
        raise ValueError(f"{shards}: no '{split}' rows")
    task = Task(spec.task)
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
