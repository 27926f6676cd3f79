"""Optimizers, learning-rate schedules and samplers built from a model's training defaults."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from torch.utils.data import Sampler, WeightedRandomSampler


def build_optimizer(params, cfg: dict) -> torch.optim.Optimizer:
    """``cfg["optimizer"]``: ``adam`` (FER_BGER, ProxEmo), ``adamw`` (CAER zoo) or ``sgd``
    (TSN, VTT; ``momentum``), with ``lr`` and ``weight_decay``.

    Raises:
        ValueError: unknown optimizer name.
    """
    name, lr, wd = cfg.get("optimizer", "adam"), cfg["lr"], cfg.get("weight_decay", 0.0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, amsgrad=cfg.get("amsgrad", False))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.get("momentum", 0.9), weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r} (adam, adamw, sgd)")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict, epochs: int):
    """Per-epoch schedule: ``step`` (StepLR ``step_size``, ``gamma``), ``multistep``
    (MultiStepLR ``milestones``, ``gamma``), ``cosine`` (CosineAnnealingLR over ``epochs``) or
    ``none`` (constant).

    Raises:
        ValueError: unknown schedule name.
    """
    name = cfg.get("schedule", "none")
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.get("step_size", 30), cfg.get("gamma", 0.1))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.get("milestones", [20, 40]), cfg.get("gamma", 0.1))
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"unknown schedule {name!r} (step, multistep, cosine, none)")


def balanced_sampler(labels: Sequence[int], generator: torch.Generator) -> WeightedRandomSampler:
    """Draw every class equally often: weight ``1 / count(class)`` per sample, with
    replacement, one epoch = ``len(labels)`` draws (CAER zoo, seed_specs §5.3)."""
    counts = Counter(labels)
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=generator)


class KeyedSampler(Sampler):
    """Wrap a training sampler so that every draw carries its own augmentation key.

    Yields ``(index, key)``: ``index`` from ``sampler``, ``key = base + position`` where ``base``
    is a 62-bit integer drawn from ``generator`` when an epoch starts and ``position`` counts the
    draws of the epoch. A dataset seeds ``numpy.random.default_rng(key)`` per item
    (:class:`zoo.data.ShardDataset` with a ``train_view``), so the random augmentation of an item
    depends only on the generator's state: the same with 0 or N DataLoader workers, different in
    every epoch and for repeated draws of one row (balanced sampling with replacement), and
    restored exactly by ``--resume`` (the generator's state is in ``last.pt``).

    Args:
        sampler: any sampler of dataset indices (RandomSampler, WeightedRandomSampler, ...).
        generator: the torch.Generator of the training DataLoader.
    """

    def __init__(self, sampler: Sampler, generator: torch.Generator):
        self.sampler, self.generator = sampler, generator

    def __iter__(self):
        base = int(torch.randint(0, 2 ** 62, (), generator=self.generator))
        for position, index in enumerate(self.sampler):
            yield int(index), base + position

    def __len__(self) -> int:
        return len(self.sampler)
