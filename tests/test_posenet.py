"""Tests of the PoseNet port against rwightman/posenet-pytorch reference outputs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from extractors import posenet as P
from extractors import weights as W

HEADS = ["heatmap", "offset", "displacement_fwd", "displacement_bwd"]
FRAMES = ["ntu1p_f050", "room2p_f030", "street_f100"]
# shared/reference/README.md "Recommended tolerances"
XY_TOL_PX, SCORE_TOL = 0.05, 1e-4


@pytest.fixture(scope="module")
def model():
    return P.load_posenet()


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_state_dict_loads_strictly():
    sd = W.load_state_dict("posenet-mobilenet-v1-075")
    model = P.PoseNetMobileNetV1()
    assert len(sd) == 62 and list(model.state_dict()) == list(sd)
    assert sum(p.numel() for p in model.parameters()) == 1_258_195
    model.load_state_dict(sd, strict=True)


def test_constants():
    assert len(P.COCO17_KEYPOINTS) == 17 and P.COCO17_KEYPOINTS[5] == "leftShoulder"
    assert len(P.POSE_CHAIN) == 16
    assert P.POSE_CHAIN[0] == (0, 1) and P.POSE_CHAIN[9] == (13, 15) and P.POSE_CHAIN[15] == (14, 16)


def test_network_input_size():
    assert P.network_input_size(540, 960, 0.5) == (257, 481)
    assert P.network_input_size(720, 1280, 1.0) == (721, 1281)
    assert P.network_input_size(674, 712, 0.5) == (337, 353)


def test_raw_heads_match_reference(model, shared):
    ref_dir = shared / "reference" / "posenet"
    img = _rgb(ref_dir / "ntu1p_f050.input_resized.png")
    assert img.shape == (257, 481, 3)
    x = torch.from_numpy(img.astype(np.float32) * np.float32(2 / 255) - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        heads = model(x)
    raw = np.load(ref_dir / "ntu1p_f050.raw_heads.npz")
    for name, got, tol in zip(HEADS, heads, [1e-4, 1e-2, 1e-2, 1e-2]):
        assert got.shape == raw[name].shape
        np.testing.assert_allclose(got.numpy(), raw[name], atol=tol, rtol=0, err_msg=name)


def _expected(ref):
    scores = np.array([p["score"] for p in ref["poses"]])
    kps = np.array([p["keypoints_xys"] for p in ref["poses"]])
    return scores, kps


def _assert_poses(scores, kps, ref):
    want_scores, want_kps = _expected(ref)
    assert scores.shape == (ref["num_poses"],) and kps.shape == (ref["num_poses"], 17, 3)
    assert scores.dtype == np.float32 and kps.dtype == np.float32
    np.testing.assert_allclose(scores, want_scores, atol=SCORE_TOL, rtol=0)
    np.testing.assert_allclose(kps[..., :2], want_kps[..., :2], atol=XY_TOL_PX, rtol=0)
    np.testing.assert_allclose(kps[..., 2], want_kps[..., 2], atol=SCORE_TOL, rtol=0)


def test_decode_from_reference_heads(shared):
    ref_dir = shared / "reference" / "posenet"
    raw = np.load(ref_dir / "ntu1p_f050.raw_heads.npz")
    ref = json.loads((ref_dir / "ntu1p_f050.expected.json").read_text())
    scores, kps = P.decode_multiple_poses(*(torch.from_numpy(raw[h][0]) for h in HEADS))
    sy, sx = ref["output_scale_yx"]
    kps = kps.astype(np.float64)
    kps[..., 0] *= sx
    kps[..., 1] *= sy
    _assert_poses(scores, kps.astype(np.float32), ref)


@pytest.mark.parametrize("name", FRAMES)
def test_poses_match_reference(model, shared, name):
    ref = json.loads((shared / "reference" / "posenet" / f"{name}.expected.json").read_text())
    frame = _rgb(shared / "reference" / "frames" / f"{name}.png")
    assert list(frame.shape[:2]) == ref["image_hw"]
    ((scores, kps),) = P.estimate_poses(model, [frame], scale_factor=ref["params"]["scale_factor"])
    _assert_poses(scores, kps, ref)


def test_batched_frames_equal_single(model, shared):
    frame = _rgb(shared / "reference" / "frames" / "ntu1p_f050.png")
    flipped = np.ascontiguousarray(frame[:, ::-1])
    small = cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA)
    results = P.estimate_poses(model, [frame, small, flipped], scale_factor=0.5)
    for f, (s, k) in zip([frame, small, flipped], results):
        ((s1, k1),) = P.estimate_poses(model, [f], scale_factor=0.5)
        assert s.shape == s1.shape
        np.testing.assert_allclose(s, s1, atol=1e-5)
        np.testing.assert_allclose(k, k1, atol=1e-3)


def test_decode_kwargs_and_empty_image(model):
    ((scores, kps),) = P.estimate_poses(model, [np.zeros((100, 120, 3), np.uint8)])
    assert scores.shape == (0,) and kps.shape == (0, 17, 3)
    with pytest.raises(ValueError):
        P.estimate_poses(model, [np.zeros((100, 120), np.uint8)])


def test_decode_nms_and_instance_score_on_synthetic_heads():
    """Two roots: pose 2's chain lands on pose 1's keypoints, so only its root counts; a third
    root lies within nms_radius of pose 1's nose and is skipped."""
    h = w = 5
    heat = torch.full((17, h, w), 0.01)
    heat[0, 1, 1], heat[0, 3, 3], heat[0, 1, 3] = 0.9, 0.8, 0.7
    offsets = torch.zeros(34, h, w)
    offsets[17 + 0, 1, 3] = -22.0  # third root at (x, y) = (26, 16): 10 px from pose 1's nose
    fwd, bwd = torch.zeros(32, h, w), torch.zeros(32, h, w)
    for e, (parent, _) in enumerate(P.POSE_CHAIN):
        if parent == 0:
            fwd[e, 3, 3] = fwd[16 + e, 3, 3] = -32.0  # from (48, 48) back onto cell (1, 1)
    scores, kps = P.decode_multiple_poses(heat, offsets, fwd, bwd, min_pose_score=0.0)
    np.testing.assert_allclose(scores, [(0.9 + 16 * 0.01) / 17, 0.8 / 17], rtol=1e-6)
    np.testing.assert_allclose(kps[0, :, :2], 16.0)
    np.testing.assert_allclose(kps[1, 0], [48.0, 48.0, 0.8], rtol=1e-6)
    np.testing.assert_allclose(kps[1, 1:, :2], 16.0)
    assert len(P.decode_multiple_poses(heat, offsets, fwd, bwd, min_pose_score=0.0,
                                       max_pose_detections=1)[0]) == 1
    assert len(P.decode_multiple_poses(heat, offsets, fwd, bwd)[0]) == 0  # below 0.25


# --------------------------------------------------------------------------- GPU-ready path (run on CPU)

def _sample_frames(repo, n=6):
    """RGB frames of the shipped clips (OpenCV decode), 480x640 and 360x640."""
    out = []
    for name in ("hikers_walking", "group_event_smiling", "tears_of_steel_excerpt"):
        cap = cv2.VideoCapture(str(repo / "samples" / "videos" / f"{name}.mp4"))
        for i in range(n):
            ok, f = cap.read()
            assert ok, name
            if i % 3 == 0:
                out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        cap.release()
    return out


def test_cv2_linear_resize_is_bit_exact():
    from extractors import _device as D

    rng = np.random.default_rng(0)
    for _ in range(25):
        h, w = rng.integers(5, 500, 2)
        ho, wo = rng.integers(3, 700, 2)
        img = rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8)
        want = cv2.resize(img, (int(wo), int(ho)), interpolation=cv2.INTER_LINEAR)
        got = D.cv2_linear_resize(torch.from_numpy(img)[None], (int(ho), int(wo)))[0].numpy()
        assert np.array_equal(got, want), (h, w, ho, wo)


@pytest.mark.parametrize("scale_factor", [1.0, 0.5])
def test_device_preprocess_equals_host_preprocess(repo, scale_factor):
    frames = _sample_frames(repo, 3)
    for f in (frames[0], frames[-1]):
        want, want_scale = P.preprocess(f, scale_factor)
        got, scale = P.preprocess_batch(f[None], scale_factor)
        assert got.dtype == torch.float32 and got.shape == (1,) + want.shape
        assert torch.equal(got[0], torch.from_numpy(want))
        np.testing.assert_array_equal(scale, want_scale)
    with pytest.raises(ValueError, match="uint8"):
        P.preprocess_batch(frames[0][None].astype(np.float32))


def test_batched_decode_and_device_path_equal_per_frame_reference_decode(model, repo):
    """decode_batch (candidates and chain walks for the whole batch, one transfer) gives exactly
    what posenet-pytorch's per-frame decode gives; an [N, H, W, 3] chunk, the device-side
    resize and the list input all agree bit for bit."""
    frames = _sample_frames(repo)
    same_size = np.stack([f for f in frames if f.shape == frames[0].shape])
    listed = P.estimate_poses(model, list(same_size), min_pose_score=0.0)
    chunk = P.estimate_poses(model, same_size, min_pose_score=0.0)
    on_dev = P.estimate_poses(model, same_size, min_pose_score=0.0, device_preprocess=True)
    assert sum(len(s) for s, _ in listed) > 10
    for a, b, c in zip(listed, chunk, on_dev):
        for x, y in ((a, b), (a, c)):
            assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
    # per-frame decode of the same heads, frame by frame
    x = torch.from_numpy(np.stack([P.preprocess(f)[0] for f in same_size]))
    with torch.no_grad():
        heads = model(x)
    batched = P.decode_batch(*heads, min_pose_score=0.0)
    for b in range(len(same_size)):
        s1, k1 = P.decode_multiple_poses(*(h[b] for h in heads), min_pose_score=0.0)
        assert np.array_equal(batched[b][0], s1) and np.array_equal(batched[b][1], k1)


def test_chunk_input_rejects_wrong_arrays(model):
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        P.estimate_poses(model, np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        P.estimate_poses(model, np.zeros((32, 32, 3), np.uint8))
    assert P.estimate_poses(model, np.zeros((0, 32, 32, 3), np.uint8)) == []
