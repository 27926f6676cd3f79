"""The model table of the zoo: one entry per trainable model, read by the CLIs and the docs.

Each entry names the architecture (a builder), the shard field it trains on, its task (loss and
metrics, :mod:`zoo.tasks`) and the reference's training hyper-parameters, which are the
defaults of ``python -m zoo.train NAME``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from zoo.inputs import as_float


@dataclass(frozen=True)
class ZooModel:
    """A trainable model and what it trains on.

    Attributes:
        name: CLI name (``python -m zoo.train NAME``).
        build: ``build(in_shape, outputs, pretrained=False) -> nn.Module``; ``in_shape`` is one
            stored item's shape without the batch axis, ``outputs`` the number of logits.
        group: HDF5 group of its input rows (``videos`` or ``clips``).
        field: HDF5 dataset of its input (e.g. ``timeline``).
        source: paper / repo of the architecture and the seed_specs section.
        task: ``multiclass``, ``multilabel`` or ``view_groups`` (:mod:`zoo.tasks`).
        stack_clips: items are all clips of a sample stacked ([C, ...]; SISTCM/TLSTM).
        prepare: maps a stored batch to the model's input on the device.
        example_shape: an item shape of the reference setup, for ``--list`` parameter counts.
        example_classes: the reference's class count, for ``--list``.
        defaults: training hyper-parameters of the reference: optimizer (adam, adamw, sgd), lr,
            weight_decay, momentum, schedule (step, cosine, none), step_size, gamma, epochs,
            batch_size, label_smoothing, sampler (None or ``balanced``).
    """

    name: str
    build: Callable[..., nn.Module]
    group: str
    field: str
    source: str
    task: str = "multiclass"
    stack_clips: bool = False
    prepare: Callable[[torch.Tensor], torch.Tensor] = as_float
    example_shape: tuple[int, ...] = ()
    example_classes: int = 8
    defaults: dict = field(default_factory=dict)


def _accm(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.accm import ACCM

    return ACCM(in_channels=in_shape[0], num_classes=outputs)


def _timeline_cnn(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.accm import TimelineCNN

    return TimelineCNN(in_channels=in_shape[0], num_classes=outputs)


_FER_BGER_BODY = {"optimizer": "adam", "lr": 1e-3, "schedule": "step", "step_size": 50, "gamma": 0.1,
                  "epochs": 200, "batch_size": 8}

_ENTRIES = [
    ZooModel("accm", _accm, "videos", "timeline",
             "FER_BGER ACCM (Janie1996/FER_BGER@b6d53bd Gesture/src/x_y_cnn.py proposed), seed_specs 1.9",
             example_shape=(56, 64, 300), defaults=_FER_BGER_BODY),
    ZooModel("accm-cnn", _timeline_cnn, "videos", "timeline",
             "FER_BGER CNN baseline (same file, class CNN), seed_specs 1.9",
             example_shape=(56, 64, 300), defaults=_FER_BGER_BODY),
]

MODELS: dict[str, ZooModel] = {m.name: m for m in _ENTRIES}


def register(entry: ZooModel) -> None:
    """Add an entry (raises ``ValueError`` on a duplicate name)."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    MODELS[entry.name] = entry


def get_model(name: str) -> ZooModel:
    """The registry entry of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def count_parameters(model: nn.Module) -> int:
    """``sum(p.numel() for p in model.parameters())``, the convention of param_counts.json."""
    return sum(p.numel() for p in model.parameters())
