"""Tests for zoo.models.accm (ACCM and the timeline-CNN baseline)."""
from __future__ import annotations

import json

import pytest
import torch

from zoo.models.accm import ACCM, TimelineCNN

KEYS = {ACCM: "FER_BGER/ACCM proposed(56, 8)", TimelineCNN: "FER_BGER/CNN baseline CNN(56, 8)"}


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("cls", [ACCM, TimelineCNN])
def test_parameter_counts_match_reference(shared, cls):
    ref = json.loads((shared / "reference/param_counts.json").read_text())["models"][KEYS[cls]]
    model = cls(56, 8)
    assert _count(model) == ref["parameters"]
    assert {name: _count(m) for name, m in model.named_children()} == ref["breakdown"]
    assert len(model.state_dict()) == ref["state_dict_tensors"]
    assert sum(b.numel() for b in model.buffers()) == ref["buffers_incl_bn_stats"]


def test_parameter_counts_literal():
    assert _count(ACCM(56, 8)) == 429_248
    assert _count(TimelineCNN(56, 8)) == 213_768


@pytest.mark.parametrize("cls", [ACCM, TimelineCNN])
def test_output_shape_reference_input(cls):
    torch.manual_seed(0)
    model = cls(56, 8).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 56, 64, 300))
    assert out.shape == (1, 8) and out.dtype == torch.float32


def test_accm_forward_backward_small():
    torch.manual_seed(0)
    model = ACCM(in_channels=36, num_classes=3)
    x = torch.rand(2, 36, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 3)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.channel2[0].weight.grad.abs().sum() > 0  # the depthwise branch is used


def test_wrong_channels_raise():
    with pytest.raises(ValueError):
        ACCM(56, 8)(torch.rand(1, 55, 64, 64))
    with pytest.raises(ValueError):
        TimelineCNN(56, 8)(torch.rand(56, 64, 64))
