"""The model table of the zoo: one entry per trainable model, read by the CLI and the docs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ZooModel:
    """A trainable model and what it trains on.

    Attributes:
        name: CLI name (``python -m zoo.train NAME``).
        build: ``build(in_channels, num_classes) -> nn.Module``.
        group: HDF5 group of its input rows (``videos`` or ``clips``).
        field: HDF5 dataset of its input (e.g. ``timeline``).
        source: paper / repo of the architecture.
        defaults: the reference's training hyper-parameters.
    """

    name: str
    build: Callable[[int, int], nn.Module]
    group: str
    field: str
    source: str
    defaults: dict = field(default_factory=dict)


def _accm(in_channels: int, num_classes: int) -> nn.Module:
    from zoo.models.accm import ACCM

    return ACCM(in_channels=in_channels, num_classes=num_classes)


def _timeline_cnn(in_channels: int, num_classes: int) -> nn.Module:
    from zoo.models.accm import TimelineCNN

    return TimelineCNN(in_channels=in_channels, num_classes=num_classes)


_FER_BGER_BODY = {"optimizer": "adam", "lr": 1e-3, "step_size": 50, "gamma": 0.1, "epochs": 200, "batch_size": 8}

MODELS = {m.name: m for m in [
    ZooModel("accm", _accm, "videos", "timeline",
             "FER_BGER ACCM (Janie1996/FER_BGER@b6d53bd Gesture/src/x_y_cnn.py proposed), seed_specs 1.9",
             _FER_BGER_BODY),
    ZooModel("accm-cnn", _timeline_cnn, "videos", "timeline",
             "FER_BGER CNN baseline (same file, class CNN), seed_specs 1.9", _FER_BGER_BODY),
]}


def get_model(name: str) -> ZooModel:
    """The registry entry of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
