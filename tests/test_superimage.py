"""Tests for pipelines.represent.superimage (tiling and SISTCM interleaved views)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

from pipelines.represent.superimage import (
    clips_from_frame_major,
    clips_to_frame_major,
    sistcm_unviews,
    sistcm_views,
    tile_superimage,
    untile_superimage,
)

SISTCM = "reference/representations/sistcm"
BLOCKS = ["block_s1_c6_h7w5", "block_s2_c4to8_h9w6"]
K = 2  # the reference block hard-codes K = 2


def _crops(k=5, h=4, w=3):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(k, h, w, 3), dtype=np.uint8)


def test_tile_default_one_row():
    crops = _crops()
    image, layout = tile_superimage(crops)
    assert image.shape == (4, 15, 3) and image.dtype == np.uint8
    assert layout == {"k": 5, "rows": 1, "cols": 5, "tile_h": 4, "tile_w": 3, "order": "row-major"}
    np.testing.assert_array_equal(image[:, 6:9], crops[2])


@pytest.mark.parametrize("cols", [1, 2, 3, 5, 7])
def test_tile_round_trip(cols):
    crops = _crops()
    image, layout = tile_superimage(crops, cols=cols)
    rows = -(-5 // cols)
    assert image.shape == (rows * 4, cols * 3, 3)
    np.testing.assert_array_equal(untile_superimage(image, layout), crops)


def test_tile_row_major_and_zero_fill():
    crops = _crops()
    image, layout = tile_superimage(crops, cols=2)  # 3 rows x 2 cols, last tile empty
    np.testing.assert_array_equal(image[4:8, 3:6], crops[3])  # k = 3 -> row 1, col 1
    assert not image[8:12, 3:6].any()


def test_tile_errors():
    with pytest.raises(ValueError):
        tile_superimage(_crops().astype(np.float32))
    with pytest.raises(ValueError):
        tile_superimage(_crops(), cols=0)
    image, layout = tile_superimage(_crops(), cols=2)
    with pytest.raises(ValueError):
        untile_superimage(image[:-1], layout)


@pytest.mark.parametrize("name", BLOCKS)
def test_sistcm_views_reference_parity(shared, name):
    ref = np.load(shared / SISTCM / f"{name}.npz")
    frames = torch.from_numpy(ref["frames_F"])  # [K*N, C, H, W], frame-major
    f = clips_from_frame_major(frames, K)  # [N, C, K, H, W]
    a, b = sistcm_views(f)
    assert torch.equal(a, torch.from_numpy(ref["superimage_A"]))
    assert torch.equal(b, torch.from_numpy(ref["superimage_B"]))
    f_a, f_b = sistcm_unviews(a, b, K)
    assert torch.equal(f_a, f) and torch.equal(f_b, f)
    assert torch.equal(clips_to_frame_major(f_a), frames)


def _bn(x, ref, prefix):
    return tf.batch_norm(
        x,
        torch.from_numpy(ref[f"{prefix}.running_mean"]),
        torch.from_numpy(ref[f"{prefix}.running_var"]),
        torch.from_numpy(ref[f"{prefix}.weight"]),
        torch.from_numpy(ref[f"{prefix}.bias"]),
        training=False,
    )


@pytest.mark.parametrize("name", BLOCKS)
def test_sistcm_views_reproduce_block_output(shared, name):
    """Views + shared conv2/bn2/ReLU + un-views + sum + identity reproduce the block (spec 1.3)."""
    ref = np.load(shared / SISTCM / f"{name}.npz")
    frames = torch.from_numpy(ref["frames_F"])
    conv2 = torch.from_numpy(ref["param.conv2.weight"])
    views = [torch.relu(_bn(tf.conv2d(v, conv2, padding=1), ref, "param.bn2"))
             for v in sistcm_views(clips_from_frame_major(frames, K))]
    f_a, f_b = sistcm_unviews(*views, K)
    x = torch.from_numpy(ref["x"])
    if "param.downsample.0.weight" in ref:
        stride = x.shape[-1] // frames.shape[-1]
        x = tf.conv2d(x, torch.from_numpy(ref["param.downsample.0.weight"]), stride=stride)
        x = _bn(x, ref, "param.downsample.1")
    out = torch.relu(clips_to_frame_major(f_a + f_b) + x)
    torch.testing.assert_close(out, torch.from_numpy(ref["out"]), rtol=1e-5, atol=1e-5)


def test_sistcm_views_formula_any_k():
    f = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 3, 4, 5, 6)
    a, b = sistcm_views(f)
    assert a.shape == (2, 3, 5, 24) and b.shape == (2, 3, 6, 20)
    n, c, k, h, w = 1, 2, 3, 4, 5
    assert a[n, c, h, w * 4 + k] == f[n, c, k, h, w]
    assert b[n, c, w, h * 4 + k] == f[n, c, k, h, w]
    f_a, f_b = sistcm_unviews(a, b, 4)
    assert torch.equal(f_a, f) and torch.equal(f_b, f)
    with pytest.raises(ValueError):
        sistcm_unviews(a, b, 5)
    with pytest.raises(ValueError):
        sistcm_views(f[0])
