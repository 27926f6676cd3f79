"""3-D PoseNet of pose_emotion (extractors/posenet3d.py): keys, shapes, decoding, loading."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from extractors import posenet3d as P
from extractors import weights as W


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return P.PoseResNet3D().eval()


def test_state_dict_key_names_and_sizes(model):
    sd = model.state_dict()
    for key, shape in {
        "conv1.weight": (64, 3, 7, 7), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer2.0.conv2.weight": (128, 128, 3, 3), "layer4.2.bn3.running_var": (2048,),
        "deconv_layers.0.weight": (2048, 256, 4, 4), "deconv_layers.1.running_mean": (256,),
        "deconv_layers.3.weight": (256, 256, 4, 4), "deconv_layers.7.num_batches_tracked": (),
        "hm.weight": (16, 256, 1, 1), "hm.bias": (16,), "depth.weight": (16, 256, 1, 1), "depth.bias": (16,),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith(("fc.", "avgpool")) for k in sd)
    assert "deconv_layers.0.bias" not in sd  # deconv_with_bias = False
    assert len(sd) == 318 + 18 + 4  # ResNet-50 without fc, 3 x (deconv + 5 BN), 2 heads
    # trunk 23,508,032 (ResNet-50 without fc) + deconvs + 3 BN + 2 heads = 34,003,552
    assert sum(p.numel() for p in model.parameters()) == 23_508_032 + 2048 * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 512 + 2 * (256 * 16 + 16)


def test_output_shapes_small_batch(model):
    with torch.no_grad():
        hm, depth = model(torch.randn(2, 3, 128, 96))
    assert hm.shape == depth.shape == (2, 16, 32, 24)


def test_decode_hand_made_heatmap():
    hm = np.zeros((1, 16, 64, 64), np.float32)
    depth = np.zeros((1, 16, 64, 64), np.float32)
    for j in range(16):
        x, y = 2 * j + 1, 63 - 3 * j
        hm[0, j, y, x] = 1.0
        depth[0, j, y, x] = 0.1 * j
    hm[0, 3, 5, 7] = hm[0, 3, 5, 9] = 2.0  # tie: first maximum in row-major order wins (x = 7)
    out = P.decode_3d(hm, depth)
    assert out.dtype == np.float32 and out.shape == (1, 16, 3)
    x = np.array([2 * j + 1 for j in range(16)], np.float32)
    y = np.array([63 - 3 * j for j in range(16)], np.float32)
    z = np.array([0.1 * j for j in range(16)], np.float32)
    x[3], y[3], z[3] = 7, 5, 0.0
    want = np.stack([x / 64, y / 64, z], -1)
    want = want - want[6]
    want[:, 1] *= -1
    np.testing.assert_allclose(out[0], want, atol=1e-7)
    assert np.all(out[0, 6] == 0)
    # torch input, absolute coordinates, one depth channel (the seed's min(j, D-1) rule)
    raw = P.decode_3d(torch.from_numpy(hm), torch.from_numpy(depth[:, 15:16]), root=None, flip_y=False)
    assert raw[0, 0, 0] == np.float32(1 / 64) and raw[0, 0, 1] == np.float32(63 / 64)
    np.testing.assert_allclose(raw[0, :, 2], depth[0, 15, y.astype(int), x.astype(int)])
    with pytest.raises(ValueError, match="does not match"):
        P.decode_3d(hm, depth[:, :, :32])


def test_preprocess_matches_the_seed_formula():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)  # landscape: side 160
    x, trans = P.preprocess(frame)
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    np.testing.assert_allclose(trans, [[1.6, 0, 0], [0, 1.6, 128 - 45 * 1.6]], atol=1e-4)
    # centre pixel of the source lands on the centre; channel 0 is blue with mean 0.485
    bgr = cv2.warpAffine(np.ascontiguousarray(frame[..., ::-1]), trans, (256, 256), flags=cv2.INTER_LINEAR)
    np.testing.assert_allclose(x[0], (bgr[..., 0] / 255 - 0.485) / 0.229, atol=1e-5)
    np.testing.assert_allclose(x[2], (bgr[..., 2] / 255 - 0.406) / 0.225, atol=1e-5)
    assert np.allclose(x[:, :20, :], ((0 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225])[:, None, None])
    back = P.heatmap_to_source(np.array([32.0, 32.0]), trans)
    np.testing.assert_allclose(back, [80, 45], atol=1e-3)
    with pytest.raises(ValueError, match="uint8"):
        P.preprocess(frame.astype(np.float32))


def test_rotate_vertical_equals_transpose_then_flip():
    f = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(P.rotate_vertical(f), cv2.flip(cv2.transpose(f), 1))


def test_registry_entry():
    e = W.REGISTRY[P.WEIGHTS_NAME]
    assert e.filename == "fusion_3d_var.pth" and not e.may_ship and e.sha256 is None
    assert "1_2CCb_qsA1egT5c2s0ABuW3rQCDOLvPq" in e.url


def test_missing_weights_error(isolated):
    with pytest.raises(W.WeightsNotFoundError, match="fusion_3d_var.pth.*install posenet3d-resnet50"):
        P.load_posenet3d()


@pytest.mark.parametrize("prefix", ["", "module."])
def test_strict_load_of_a_checkpoint(isolated, monkeypatch, model, prefix):
    folder = isolated / "w"
    folder.mkdir()
    monkeypatch.setenv(W.ENV_DIR, str(folder))
    g = torch.Generator().manual_seed(3)
    sd = {prefix + k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone())
          for k, v in model.state_dict().items()}
    torch.save({"epoch": 10, "state_dict": sd}, folder / "fusion_3d_var.pth")
    with pytest.warns(UserWarning, match="no sha256"):
        loaded = P.load_posenet3d()
    assert not loaded.training
    got = loaded.state_dict()
    assert all(torch.equal(got[k.removeprefix(prefix)], v) for k, v in sd.items())
    # a wrong file fails loudly (strict)
    del sd[prefix + "depth.bias"]
    torch.save({"epoch": 10, "state_dict": sd}, folder / "fusion_3d_var.pth")
    W._VERIFIED.clear()
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="depth.bias"):
        P.load_posenet3d()
