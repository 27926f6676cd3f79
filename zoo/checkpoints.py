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


def load_trained(path: Path, device: str = "cpu") -> tuple[ZooModel, torch.nn.Module, dict]:
    """``(registry entry, model in eval mode on device, resolved training config)`` of a checkpoint
    written by ``zoo.train``.

    Raises:
        FileNotFoundError: no such file. ValueError: not a zoo checkpoint. KeyError: its model is
        not in this affectzoo's registry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    # zoo.train writes plain dicts, lists and tensors; numpy arrays in 'best' need the full unpickler
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "state_dict" not in state or "config" not in state:
        raise ValueError(f"{path}: not a zoo.train checkpoint (no state_dict / config)")
    spec, config = get_model(state["model"]), state["config"]
    group, field = config.get("input", f"{spec.group}/{spec.field}").split("/", 1)
    spec = dataclasses.replace(spec, group=group, field=field)  # as trained (zoo.train --input)
    task = Task(spec.task)
    model = spec.build(tuple(config["in_shape"]), task.outputs(len(config["label_names"])))
    model.load_state_dict(state["state_dict"])
    return spec, model.to(device).eval(), config


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
