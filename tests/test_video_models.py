"""Face/video models of the zoo: temporal shifts, SISTCM + TLSTM, TSN/TSM, VTT ResNet-18/34/50 TSM.

Parity with ``../shared/reference/representations/{temporal_shift,sistcm}`` and the exact
parameter counts of ``reference/param_counts.json``; forward/backward on small CPU inputs;
losses and metrics on hand-computed cases.
"""
from __future__ import annotations

import json
import math
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch import nn

from pipelines.represent.superimage import clips_from_frame_major, sistcm_views
from zoo.models.sistcm import (SISTCM, ResNet18TLSTM, SuperImageBasicBlock, TLSTMOutput, UnusedAttentionBlock,
                               joint_loss)
from zoo.models.temporal_shift import TemporalShift, causal_shift, make_temporal_shift, tsm_shift
from zoo.models.tsn import TSN, multilabel_bce_loss, torchvision_backbone
from zoo.models.vtt import ResNet18TSM, neutral_vs_rest, vtt_emo_loss

torch.set_num_threads(2)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def counts(shared):
    return json.loads((shared / "reference" / "param_counts.json").read_text())["models"]


# ---------------------------------------------------------------- temporal shift


@pytest.fixture(scope="module")
def shift_vectors(shared):
    return np.load(shared / "reference" / "representations" / "temporal_shift" / "temporal_shift.npz")


def test_shift_parity(shift_vectors):
    x = torch.from_numpy(shift_vectors["x"])  # [n_B*n_T, C, H, W] = [8, 8, 3, 2], n_T = 4
    np.testing.assert_array_equal(causal_shift(x, 4, 4).numpy(), shift_vectors["vtt_causal"])
    np.testing.assert_array_equal(causal_shift(x, 4, 4, fill_zero=True).numpy(), shift_vectors["vtt_causal_fill_zero"])
    np.testing.assert_array_equal(tsm_shift(x, 4, 8).numpy(), shift_vectors["emoreact_tsm_div8"])
    np.testing.assert_array_equal(TemporalShift(None, 4, 8).shift(x).numpy(), shift_vectors["emoreact_tsm_div8"])
    causal = TemporalShift(None, 4, 4, direction="causal")
    np.testing.assert_array_equal(causal(x).numpy(), shift_vectors["vtt_causal"])


def test_shift_moves_the_right_channels():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(6, 8, 1, 1)  # 2 clips x 3 frames, 8 channels
    out = tsm_shift(x, 3, 4).reshape(2, 3, 8)
    src = x.reshape(2, 3, 8)
    assert torch.equal(out[:, :2, :2], src[:, 1:, :2]) and torch.equal(out[:, 2, :2], torch.zeros(2, 2))
    assert torch.equal(out[:, 1:, 2:4], src[:, :2, 2:4]) and torch.equal(out[:, 0, 2:4], torch.zeros(2, 2))
    assert torch.equal(out[:, :, 4:], src[:, :, 4:])
    with pytest.raises(ValueError, match="multiple of n_segment"):
        tsm_shift(x, 4)
    with pytest.raises(ValueError, match="direction"):
        TemporalShift(None, 3, direction="sideways")


def test_residual_shift_wraps_every_block_conv1():
    net = make_temporal_shift(torchvision_backbone("resnet18"), n_segment=2, shift_div=8)
    blocks = [b for stage in (net.layer1, net.layer2, net.layer3, net.layer4) for b in stage]
    assert all(isinstance(b.conv1, TemporalShift) for b in blocks) and len(blocks) == 8
    assert n_params(net) == n_params(torchvision_backbone("resnet18"))
    x = torch.randn(4, 64, 5, 5)
    conv = blocks[0].conv1
    torch.testing.assert_close(conv(x), conv.net(tsm_shift(x, 2, 8)), rtol=0, atol=0)


# ---------------------------------------------------------------- SISTCM


@pytest.mark.parametrize("name, cin, cout, stride", [("block_s1_c6_h7w5", 6, 6, 1), ("block_s2_c4to8_h9w6", 4, 8, 2)])
def test_superimage_block_parity(shared, name, cin, cout, stride):
    ref = np.load(shared / "reference" / "representations" / "sistcm" / f"{name}.npz")
    down = None if stride == 1 else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    block = SuperImageBasicBlock(cin, cout, stride, down, frames=2).eval()
    block.load_state_dict({k[len("param."):]: torch.from_numpy(ref[k]) for k in ref.files if k.startswith("param.")},
                          strict=True)
    conv2_inputs = []
    block.conv2.register_forward_pre_hook(lambda _m, inputs: conv2_inputs.append(inputs[0].clone()))
    x = torch.from_numpy(ref["x"])
    with torch.no_grad():
        out = block(x)
        frames_f = block.relu(block.bn1(block.conv1(x)))
    np.testing.assert_allclose(frames_f.numpy(), ref["frames_F"], rtol=0, atol=1e-5)
    # the reference calls conv2 on B ("W x H.K") first, then on A ("H x W.K")
    np.testing.assert_allclose(conv2_inputs[0].numpy(), ref["superimage_B"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(conv2_inputs[1].numpy(), ref["superimage_A"], rtol=0, atol=1e-5)
    view_a, view_b = sistcm_views(clips_from_frame_major(torch.from_numpy(ref["frames_F"]), 2))
    np.testing.assert_array_equal(view_a.numpy(), ref["superimage_A"])
    np.testing.assert_array_equal(view_b.numpy(), ref["superimage_B"])
    np.testing.assert_allclose(out.numpy(), ref["out"], rtol=0, atol=1e-5)


def test_sistcm_parameter_counts(counts):
    ref = counts["FER_BGER/SISTCM resnet18 + TLSTM"]
    model = SISTCM(num_classes=7, frames=2)
    assert n_params(model) == ref["parameters"] == 22_044_885
    assert len(model.state_dict()) == ref["state_dict_tensors"]
    assert sum(b.numel() for b in model.buffers()) == ref["buffers_incl_bn_stats"]
    parts = {k: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))
             for k, prefix in [("fc1", "tlstm.fc1."), ("rnn", "tlstm.rnn."), ("rnn1", "tlstm.rnn1.")]}
    parts["unused_attentionblocks"] = sum(n_params(m) for m in model.modules() if isinstance(m, UnusedAttentionBlock))
    for key, value in parts.items():
        assert value == ref["breakdown"][key], key
    lean = SISTCM(num_classes=7, frames=2, faithful_unused_attention=False)
    assert n_params(lean) == ref["parameters_without_unused_attentionblocks"] == 18_557_525
    baseline = ResNet18TLSTM(num_classes=7, frames=3)
    ref_base = counts["FER_BGER/ResNet18 + TLSTM baseline"]
    assert n_params(baseline) == ref_base["parameters"] == 18_557_525
    assert len(baseline.state_dict()) == ref_base["state_dict_tensors"]


def test_sistcm_forward_backward_and_video_independence():
    torch.manual_seed(0)
    model = SISTCM(num_classes=7, frames=2)
    x = torch.rand(2, 3, 2, 3, 32, 32)  # N=2 videos, C=3 clips, K=2 frames
    out = model(x)
    assert all(t.shape == (2, 7) for t in out)
    torch.testing.assert_close(out.probs.sum(1), torch.ones(2))
    torch.testing.assert_close(out.fused, 0.2 * out.probs + 0.8 * out.emotion)
    loss = joint_loss(out, torch.tensor([1, 4]))
    loss.backward()
    assert model.layer4[1].conv2.weight.grad.abs().sum() > 0 and model.conv1.weight.grad.abs().sum() > 0
    assert model.layer1[0].attenblock.linear.weight.grad is None  # never called, as in the reference
    model.eval()
    with torch.no_grad():
        ref = model(x).fused
        y = x.clone()
        y[1] = torch.rand_like(y[1])
        changed = model(y).fused
        swapped = x.clone()
        swapped[0, :, [0, 1]] = x[0, :, [1, 0]]  # swap the two frames of every clip of video 0
        frame_order = model(swapped).fused
    torch.testing.assert_close(changed[0], ref[0], rtol=0, atol=1e-6)  # videos do not mix
    assert (changed[1] - ref[1]).abs().max() > 1e-6
    assert (frame_order[0] - ref[0]).abs().max() > 1e-6  # super-images see frame order
    with pytest.raises(ValueError, match="K=2"):
        model(torch.rand(1, 3, 3, 3, 32, 32))


def test_baseline_forward_backward_and_frame_order_invariance():
    torch.manual_seed(1)
    model = ResNet18TLSTM(num_classes=7, frames=3)
    x = torch.rand(2, 2, 3, 3, 32, 32)
    out = model(x)
    torch.testing.assert_close(out.fused, out.feature + out.probs + out.emotion)
    joint_loss(out, torch.tensor([0, 6])).backward()
    assert model.layer1[0].conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():  # plain blocks + average pooling over K: the frame order inside a clip is irrelevant
        torch.testing.assert_close(model(x.flip(2)).fused, model(x).fused, rtol=1e-4, atol=1e-5)


def test_joint_loss_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1]])
    feature = torch.tensor([[0.0, 0.0, 0.0]])
    emotion = torch.tensor([[2.0, 0.0, -1.0]])
    loss = joint_loss(TLSTMOutput(probs, emotion, feature, probs), torch.tensor([0]))
    ce = lambda z, k: -z[k] + math.log(sum(math.exp(v) for v in z))  # noqa: E731
    expected = ce([0.7, 0.2, 0.1], 0) + ce([0.0, 0.0, 0.0], 0) + ce([2.0, 0.0, -1.0], 0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- TSN / TSM


@pytest.mark.parametrize("key, kwargs", [
    ("EmoReact/TSN resnet50", dict(base_model="resnet50")),
    ("EmoReact/TSN resnet50 + TSM", dict(base_model="resnet50", shift=True, shift_div=8)),
    ("EmoReact/TSN mobilenet_v2", dict(base_model="mobilenet_v2")),
])
def test_tsn_parameter_counts(counts, key, kwargs):
    ref = counts[key]
    model = TSN(8, num_segments=5, **kwargs)
    assert n_params(model) == ref["parameters"]
    assert len(model.state_dict()) == ref["state_dict_tensors"]
    assert sum(b.numel() for b in model.buffers()) == ref["buffers_incl_bn_stats"]
    assert n_params(model.base_model) == ref["breakdown"]["base_model"]
    assert n_params(model.new_fc) == ref["breakdown"]["new_fc"]
    assert model.threshold.numel() == ref["breakdown"]["threshold"] == 1


def test_tsn_shift_forward_backward_and_partial_bn():
    torch.manual_seed(2)
    model = TSN(8, num_segments=3, base_model="resnet50", shift=True, shift_div=4).train()
    norms = [m for m in model.base_model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms[0].training and norms[0].weight.requires_grad
    assert not any(m.training or m.weight.requires_grad or m.bias.requires_grad for m in norms[1:])
    x = torch.randn(2, 3, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 8)
    multilabel_bce_loss(logits, torch.randint(0, 2, (2, 8)).float()).backward()
    assert model.base_model[0].weight.grad.abs().sum() > 0 and norms[1].weight.grad is None
    with pytest.raises(ValueError, match="segments"):
        model(torch.randn(1, 5, 3, 32, 32))


def test_tsn_average_consensus_mobilenet():
    torch.manual_seed(3)
    model = TSN(8, num_segments=3, base_model="mobilenet_v2", dropout=0.5).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        per_frame = torch.stack([model(x[:, s:s + 1]) for s in range(3)], dim=1)  # each frame alone
    torch.testing.assert_close(logits, per_frame.mean(1), rtol=1e-5, atol=1e-5)
    model.train()
    model(x).sum().backward()
    assert model.new_fc.weight.grad.shape == (8, 1280)


def test_multilabel_bce_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    softplus = lambda z: math.log1p(math.exp(z))  # noqa: E731
    expected = (softplus(-2.0) + softplus(-1.0) + softplus(0.0) + softplus(-3.0)) / 4
    assert multilabel_bce_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        multilabel_bce_loss(logits, targets[:1])


# ---------------------------------------------------------------- VTT


def test_vtt_parameter_count(counts):
    model = ResNet18TSM(num_classes=7)
    for key in ("VTT/ResNet18-TSM (causal shift)", "VTT/ResNet18 static"):
        assert n_params(model) == counts[key]["parameters"] == 11_180_103
        assert len(model.state_dict()) == counts[key]["state_dict_tensors"]


def test_vtt_forward_backward_and_causality():
    torch.manual_seed(4)
    model = ResNet18TSM(num_classes=7)
    x = torch.rand(2, 4, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 4, 7)
    vtt_emo_loss(logits, torch.eye(7)[[3, 6]]).backward()
    assert model.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        ref = model(x)
        later = x.clone()
        later[:, 2:] = torch.rand_like(later[:, 2:])
        earlier = x.clone()
        earlier[:, 0] = torch.rand_like(earlier[:, 0])
        out_later, out_earlier = model(later), model(earlier)
    torch.testing.assert_close(out_later[:, :2], ref[:, :2], rtol=0, atol=0)  # the future does not leak back
    assert (out_earlier[:, 1] - ref[:, 1]).abs().max() > 1e-6  # the past reaches frame 1 through the shift
    assert (out_earlier[:, 3] - ref[:, 3]).abs().max() > 1e-6  # 3 shifts: frame 0 reaches frame 3


@pytest.mark.parametrize("arch", ["resnet34", "resnet50"])
def test_vtt_deeper_backbones_equal_torchvision_with_the_seed_head(arch):
    """resnet_tsm.py's resnet34 / resnet50: torchvision's layout (same state-dict keys and shapes)
    with the 7-class fc; the causal shift adds no parameter and still keeps the future out."""
    import torchvision

    from zoo.models.vtt import ResNetTSM

    torch.manual_seed(5)
    model = ResNetTSM(num_classes=7, arch=arch)
    ref = getattr(torchvision.models, arch)(num_classes=7)
    assert n_params(model) == n_params(ref) == {"resnet34": 21_288_263, "resnet50": 23_522_375}[arch]
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    model.eval()
    x = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        later = x.clone()
        later[:, 3] = torch.rand_like(later[:, 3])
        moved = model(later)
    assert out.shape == (1, 4, 7)
    torch.testing.assert_close(moved[:, :3], out[:, :3], rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown VTT backbone 'resnet101'"):
        ResNetTSM(arch="resnet101")


def test_vtt_loss_by_hand():
    p = [1.0, -2.0, 0.0, 3.0, 0.0, 0.5, -1.0]
    y = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    bce = lambda z, t: math.log1p(math.exp(z)) - t * z  # noqa: E731
    neutral = (bce(-1.0, 0.0) + bce(3.0, 1.0)) / 2  # [p6, max p0..5] vs [y6, sum y0..5]
    emotion = sum(bce(z, t) for z, t in zip(p, y)) / 7
    logits, target = torch.tensor([[p]]), torch.tensor([[y]])
    assert vtt_emo_loss(logits, target).item() == pytest.approx(0.5 * neutral + 0.5 * emotion, rel=1e-6)
    assert vtt_emo_loss(logits, target, 0.8).item() == pytest.approx(0.8 * neutral + 0.2 * emotion, rel=1e-6)
    soft = torch.tensor([[0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]])  # RAF compound: two classes at 0.5
    torch.testing.assert_close(neutral_vs_rest(soft, "sum"), torch.tensor([[0.0, 1.0]]))
    window = torch.randn(2, 4, 7)  # one label per window == the label repeated on every frame
    labels = torch.eye(7)[[2, 6]]
    torch.testing.assert_close(vtt_emo_loss(window, labels), vtt_emo_loss(window, labels[:, None].expand(2, 4, 7)))


# ---------------------------------------------------------------- pretrained weights


def test_pretrained_download_failure_is_a_clear_error(monkeypatch, tmp_path):
    import torchvision.models._api as api

    def offline(*_args, **_kwargs):
        raise URLError("network unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="resnet18.*pretrained=False"):
        SISTCM(pretrained=True)
    with pytest.raises(RuntimeError, match="mobilenet_v2"):
        TSN(base_model="mobilenet_v2", pretrained=True)
