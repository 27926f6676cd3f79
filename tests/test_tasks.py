"""Losses, scores and metrics of the zoo's tasks, and the trainer's samplers and schedules."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from zoo.optim import balanced_sampler, build_optimizer, build_scheduler
from zoo.tasks import Task, multilabel_metrics


def test_view_groups_sum_softmax_over_views():
    task = Task("view_groups", num_groups=4)
    assert task.outputs(4) == 16
    logits = torch.zeros(1, 16)
    logits[0, 5] = 3.0  # emotion 1, view group 1
    p = task.scores(logits)
    assert p.shape == (1, 4) and p.argmax().item() == 1
    e3 = np.exp(3.0)
    assert p[0, 1].item() == pytest.approx((e3 + 3) / (e3 + 15), rel=1e-6)
    assert task.class_of(torch.tensor([5, 15])).tolist() == [1, 3]


def test_multilabel_auc_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.3, 0.8], [0.4, 0.1], [0.2, 0.3]])
    m = multilabel_metrics(y, s, ["a", "b"])
    # label a: positives {0.9, 0.4} vs negatives {0.3, 0.2}: all 4 pairs ordered -> 1.0
    # label b: positives {0.8, 0.1} vs negatives {0.2, 0.3}: 2 of 4 pairs -> 0.5
    assert m["per_label_auc"] == {"a": 1.0, "b": 0.5}
    assert m["roc_auc_macro"] == 0.75 and m["primary"] == 0.75
    assert multilabel_metrics(np.array([[1], [1]]), np.array([[0.1], [0.2]]), ["c"])["per_label_auc"]["c"] is None


def test_label_smoothing_changes_loss():
    logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    plain = Task("multiclass").loss(logits, y).item()
    smooth = Task("multiclass", label_smoothing=0.1).loss(logits, y).item()
    lp = torch.log_softmax(logits, 1)[0]
    assert smooth == pytest.approx(-(0.95 * lp[0] + 0.05 * lp[1]).item(), rel=1e-6) and smooth > plain


def test_balanced_sampler_evens_classes():
    labels = [0] * 90 + [1] * 10
    s = balanced_sampler(labels, torch.Generator().manual_seed(0))
    drawn = Counter(labels[i] for _ in range(20) for i in s)
    assert abs(drawn[0] - drawn[1]) / sum(drawn.values()) < 0.05


def test_cosine_and_step_schedules():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(p, {"optimizer": "adamw", "lr": 1.0, "weight_decay": 0.01})
    sch = build_scheduler(opt, {"schedule": "cosine"}, epochs=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sch.step()
    assert lrs == pytest.approx([1.0, 0.853553, 0.5, 0.146447], abs=1e-5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(p, {"optimizer": "lion", "lr": 1})
