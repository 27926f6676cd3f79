"""One pass over a DataLoader, shared by ``zoo.train`` and ``zoo.evaluate``."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from zoo.registry import ZooModel
from zoo.tasks import Task


@dataclass
class EpochResult:
    """Mean loss, the targets' classes (int [N] or {0,1} [N, L]) and the scores [N, C]."""

    loss: float
    y_true: np.ndarray
    scores: np.ndarray


def run_epoch(model: torch.nn.Module, spec: ZooModel, task: Task, loader, device: str,
              optimizer=None, scaler=None, clip: float = 0.0, desc: str = "", show: bool = True) -> EpochResult:
    """Train (when ``optimizer`` is given) or evaluate ``model`` for one pass.

    AMP: when ``scaler`` is a ``torch.amp.GradScaler`` (CUDA runs), forward passes run under
    ``torch.autocast`` in float16. Gradients are clipped to ``clip`` (max norm) when > 0.
    """
    model.train(optimizer is not None)
    total, count, ys, scores = 0.0, 0, [], []
    amp = scaler is not None
    with torch.set_grad_enabled(optimizer is not None):
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not show, file=sys.stderr):
            x, y = spec.prepare(x.to(device)), y.to(device)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                output = model(x)
                logits = spec.logits(output) if spec.logits else output
                loss = spec.loss(output, y) if spec.loss else task.loss(logits.float(), y)
            if optimizer is not None:
                _step(model, optimizer, scaler, loss, clip)
            total += loss.item() * len(y)
            count += len(y)
            ys.append(task.class_of(y).cpu().numpy())
            scores.append(task.scores(logits.detach()).float().cpu().numpy())
    y_true = np.concatenate(ys) if ys else np.zeros(0, int)
    return EpochResult(total / max(count, 1), y_true, np.concatenate(scores) if scores else np.zeros((0, 0)))


def _step(model, optimizer, scaler, loss, clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
