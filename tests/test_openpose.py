"""OpenPose body: network layout and loading, both decoders against the body.py reference
vectors (shared reference README §3), the Beam handler."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from extractors import openpose as op
from extractors import weights

VECTORS = ("room2p_f030_default_s184", "room2p_f030_s368", "room2p_f030_s368_missing_limb",
           "street_f100_s368", "street_f100_s368_noise003")
N_PARAMS = 52_311_446


# --------------------------------------------------------------------------- helpers

@lru_cache(maxsize=None)
def _vector(root: str, name: str):
    folder = Path(root) / "reference" / "openpose_post"
    meta = json.loads((folder / f"{name}.expected.json").read_text())
    with np.load(folder / meta["input"]["file"]) as z:
        maps = {k: z[k] for k in ("paf", "heatmap")}
    return meta, maps


@lru_cache(maxsize=None)
def _decoded(root: str, name: str):
    meta, maps = _vector(root, name)
    geoms = op.scale_geometries(meta["image_hw"], meta["scale_search"])
    ref = op.decode_reference(maps["paf"], maps["heatmap"], geoms)
    fast = op.decode_fast([torch.from_numpy(maps["paf"])], [torch.from_numpy(maps["heatmap"])], geoms)
    return ref, fast[0]


def _expected(meta):
    out = meta["outputs"]
    cand = np.asarray(out["candidate"]["values"], dtype=np.float64).reshape(-1, 4)
    subset = np.asarray(out["subset"]["values"], dtype=np.float64).reshape(-1, 20)
    return out, cand, subset


def _match_people(expected_kp: np.ndarray, got_kp: np.ndarray, tol: float) -> None:
    """Each expected person has a distinct nearest person with the same parts within tol px."""
    assert len(got_kp) == len(expected_kp)
    free = list(range(len(got_kp)))
    for person in expected_kp:
        present = ~np.isnan(person[:, 0])
        dists = [np.nanmax(np.abs(got_kp[j, :, :2] - person[:, :2])) if
                 np.array_equal(~np.isnan(got_kp[j, :, 0]), present) else np.inf for j in free]
        best = int(np.argmin(dists))
        assert dists[best] <= tol, f"person {person[present, :2].tolist()} unmatched ({dists})"
        free.pop(best)


@pytest.fixture(scope="module")
def reference_keys(shared):
    counts = json.loads((shared / "reference" / "param_counts.json").read_text())
    entry = counts["models"]["pytorch-openpose/bodypose_model"]
    assert entry["parameters"] == N_PARAMS
    return entry["state_dict"]


@pytest.fixture(scope="module")
def random_state(reference_keys):
    """The original keys and shapes with random values (small, so activations stay finite)."""
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=gen) * 0.02 for k, shape in reference_keys.items()}


@pytest.fixture(scope="module")
def model(random_state):
    m = op.BodyPoseModel()
    m.load_state_dict(random_state, strict=True)
    return m.eval()


# --------------------------------------------------------------------------- network

def test_layout_matches_bodypose_model(reference_keys):
    m = op.BodyPoseModel()
    sd = m.state_dict()
    assert list(sd) == list(reference_keys)
    assert {k: list(v.shape) for k, v in sd.items()} == reference_keys
    assert sum(p.numel() for p in m.parameters()) == N_PARAMS
    # QUIRK kept: ReLU after the last heatmap conv, none after the last PAF conv
    assert isinstance(m.model6_2[-1], torch.nn.ReLU)
    assert isinstance(m.model6_1[-1], torch.nn.Conv2d)


def test_strict_load_and_forward(model, random_state):
    for k, v in model.state_dict().items():
        assert torch.equal(v, random_state[k])
    with torch.no_grad():
        paf, heat = model(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert paf.shape == (1, 38, 8, 8) and heat.shape == (1, 19, 8, 8)
    assert torch.isfinite(paf).all() and (heat >= 0).all()


def test_caffe_key_names_are_mapped(random_state):
    caffe = {k.split(".", 1)[1]: v for k, v in random_state.items()}  # util.transfer's source
    mapped = op.to_module_state_dict(caffe)
    assert list(mapped) == list(random_state)
    assert all(mapped[k] is random_state[k] for k in mapped)
    caffe.pop("conv1_1.bias")
    caffe["conv9_9.weight"] = torch.zeros(1)
    with pytest.raises(KeyError, match="conv9_9.weight.*conv1_1.bias"):
        op.to_module_state_dict(caffe)


def test_load_openpose_missing_weights(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("AFFECTZOO_WEIGHTS", str(empty))
    monkeypatch.setenv("AFFECTZOO_OFFLINE", "1")
    monkeypatch.setattr(weights, "cache_dir", lambda: empty)
    with pytest.raises(weights.WeightsNotFoundError,
                       match=r"body_pose_model\.pth.*openpose-body.*extractors\.weights install"):
        op.load_openpose()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        op.load_openpose(path=tmp_path / "nope.pth")


def test_load_openpose_through_registry(tmp_path, monkeypatch, random_state):
    caffe = {k.split(".", 1)[1]: v for k, v in random_state.items()}  # as distributed
    torch.save(caffe, tmp_path / "body_pose_model.pth")
    monkeypatch.setenv("AFFECTZOO_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(weights, "cache_dir", lambda: tmp_path / "no-cache")
    with pytest.warns(UserWarning, match="no sha256 registered for openpose-body"):
        m = op.load_openpose()
    assert not m.training
    assert torch.equal(m.model6_2.Mconv7_stage6_L2.bias, random_state["model6_2.Mconv7_stage6_L2.bias"])


# --------------------------------------------------------------------------- preprocessing

def test_geometry_and_tables_match_vectors(shared):
    for name in VECTORS:
        meta, maps = _vector(str(shared), name)
        (g,) = op.scale_geometries(meta["image_hw"], meta["scale_search"])
        geo = meta["geometry"]
        assert [list(g.input_hw), list(g.padded_hw), list(g.pad_udlr), list(g.map_hw)] == [
            geo["net_input_hw"], geo["padded_hw"], geo["pad_udlr"], geo["map_hw"]]
        assert g.scale == pytest.approx(meta["multiplier"][0], rel=1e-15)
        assert list(meta["network_input_nchw"][2:]) == list(g.padded_hw)
        assert maps["heatmap"].shape[2:] == g.map_hw
        assert [[a + 1, b + 1] for a, b in op.LIMB_SEQ] == meta["limbSeq"]
        assert [[x + 19, y + 19] for x, y in op.PAF_CHANNELS] == meta["mapIdx"]


def test_preprocess_bgr_and_padding():
    frame = np.zeros((30, 50, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 10  # R, G, B
    (g,) = op.scale_geometries(frame.shape[:2], (0.25,))  # 92 / 30
    x = op.preprocess(frame, g)
    ih, iw = g.input_hw
    assert x.dtype == np.float32 and x.shape == (3,) + g.padded_hw and g.padded_hw[1] > iw
    np.testing.assert_array_equal(x[:, :ih, :iw].reshape(3, -1).mean(1),
                                  np.float32([10, 100, 200]) / 256 - 0.5)  # B, G, R
    assert np.all(x[:, :, iw:] == 0) and np.all(x[:, ih:, :] == 0)  # pad 128 -> 0
    with pytest.raises(ValueError, match="uint8 RGB"):
        op.preprocess(frame.astype(np.float32), g)
    with pytest.raises(ValueError, match="geometry expects"):
        op.preprocess(frame[:20], g)


def test_operator_matrices_equal_cv2_resizes():
    (g,) = op.scale_geometries((75, 101), (1.0,))
    maps = np.random.default_rng(3).normal(size=(5,) + g.map_hw).astype(np.float32)
    ref = op._image_maps_reference(maps, g).transpose(2, 0, 1)
    ops = op._operators(g, "cpu")
    got = (ops.up_y @ torch.from_numpy(maps) @ ops.up_x.T).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


# --------------------------------------------------------------------------- reference decoder

@pytest.mark.parametrize("name", VECTORS)
def test_reference_decoder_reproduces_body_py(shared, name):
    meta, _ = _vector(str(shared), name)
    ref, _ = _decoded(str(shared), name)
    out, cand, subset = _expected(meta)
    assert ref.candidate.shape == cand.shape
    np.testing.assert_array_equal(ref.candidate[:, [0, 1, 3]], cand[:, [0, 1, 3]])
    np.testing.assert_allclose(ref.candidate[:, 2], cand[:, 2], atol=1e-5, rtol=0)
    assert ref.peaks_per_part.tolist() == out["peaks_per_part"]
    assert ref.subset.shape == subset.shape
    np.testing.assert_array_equal(ref.subset[:, :18], subset[:, :18])
    np.testing.assert_array_equal(ref.subset[:, 19], subset[:, 19])
    np.testing.assert_allclose(ref.subset[:, 18], subset[:, 18], atol=1e-4, rtol=0)
    assert ref.special_k == out["special_k"]
    for k, rows in enumerate(out["connection_all"]["values"]):
        exp = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        got = ref.connection_all[k]
        assert got.shape == exp.shape, f"limb {k}"
        np.testing.assert_array_equal(got[:, [0, 1, 3, 4]], exp[:, [0, 1, 3, 4]])
        np.testing.assert_allclose(got[:, 2], exp[:, 2], atol=1e-5, rtol=0)
    kp, scores = op.subset_to_keypoints(cand, subset)
    np.testing.assert_array_equal(ref.keypoints, kp)
    np.testing.assert_allclose(ref.scores, subset[:, 18] / subset[:, 19], rtol=1e-6)
    assert np.array_equal(np.isnan(ref.keypoints[..., 0]), subset[:, :18] < 0)


# --------------------------------------------------------------------------- fast decoder

@pytest.mark.parametrize("name", VECTORS)
def test_fast_decoder_matches_people(shared, name):
    meta, _ = _vector(str(shared), name)
    _, fast = _decoded(str(shared), name)
    _, cand, subset = _expected(meta)
    expected_kp, _ = op.subset_to_keypoints(cand, subset)
    _match_people(expected_kp, fast.keypoints, tol=1.0)
    assert fast.keypoints.dtype == np.float32 and fast.scores.shape == (len(subset),)


def test_multiscale_fast_matches_reference(shared):
    """room2p at scale_search [1.0, 0.5]: the s368 and default_s184 maps are the two scales."""
    (m1, a), (m2, b) = _vector(str(shared), "room2p_f030_s368"), _vector(str(shared), "room2p_f030_default_s184")
    geoms = op.scale_geometries(m1["image_hw"], [1.0, 0.5])
    assert [g.map_hw for g in geoms] == [a["heatmap"].shape[2:], b["heatmap"].shape[2:]]
    assert op._scale_weights(2, "body.py") == ([1.0, 0.5], [0.5, 0.5])
    ref = op.decode_reference([a["paf"], b["paf"]], [a["heatmap"], b["heatmap"]], geoms)
    pafs = [torch.from_numpy(a["paf"]), torch.from_numpy(b["paf"])]
    heats = [torch.from_numpy(a["heatmap"]), torch.from_numpy(b["heatmap"])]
    fast = op.decode_fast(pafs, heats, geoms)[0]
    assert len(ref.subset) == 2
    _match_people(ref.keypoints, fast.keypoints, tol=1.0)
    mean = op.decode_fast(pafs, heats, geoms, average="mean")[0]  # same people, other weights
    _match_people(ref.keypoints, mean.keypoints, tol=1.0)
    assert not np.allclose(mean.candidate[:, 2], fast.candidate[:, 2])


def test_fast_decoder_batches_frames(shared):
    """Two different frames in one batch decode as they do alone (ids restart per frame)."""
    meta, maps = _vector(str(shared), "room2p_f030_s368")
    _, miss = _vector(str(shared), "room2p_f030_s368_missing_limb")
    geoms = op.scale_geometries(meta["image_hw"], meta["scale_search"])
    paf = torch.from_numpy(np.concatenate([maps["paf"], miss["paf"]]))
    heat = torch.from_numpy(np.concatenate([maps["heatmap"], miss["heatmap"]]))
    both = op.decode_fast([paf], [heat], geoms)
    for got, name in zip(both, ("room2p_f030_s368", "room2p_f030_s368_missing_limb")):
        _, alone = _decoded(str(shared), name)
        np.testing.assert_array_equal(got.subset[:, :18], alone.subset[:, :18])
        np.testing.assert_array_equal(got.candidate[:, [0, 1, 3]], alone.candidate[:, [0, 1, 3]])


def test_no_people():
    (g,) = op.scale_geometries((40, 56), (1.0,))
    paf = torch.zeros((2, 38) + g.map_hw)
    heat = torch.zeros((2, 19) + g.map_hw)
    for res in op.decode_fast([paf], [heat], [g]) + [op.decode_reference(paf[0], heat[0], [g])]:
        assert res.keypoints.shape == (0, 18, 3) and res.scores.shape == (0,)
        assert res.candidate.shape == (0, 4) and res.subset.shape == (0, 20)
        assert res.special_k == list(range(19))


# --------------------------------------------------------------------------- end to end, handler

def test_estimate_poses_batched_equals_single(model):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    scales = (0.05,)  # network input 18 x 25 (padded 24 x 32): a small forward
    geoms, maps = op.network_maps(model, frames, scales)
    assert maps[0][0].shape == (2, 38) + geoms[0].map_hw and maps[0][1].shape == (2, 19) + geoms[0].map_hw
    _, single = op.network_maps(model, frames[1:], scales)
    torch.testing.assert_close(maps[0][1][1:], single[0][1], atol=1e-5, rtol=1e-4)
    fast = op.estimate_poses(model, frames[1:], scales, mode="fast")
    ref = op.estimate_poses(model, frames[1:], scales, mode="reference")
    for got in (fast[0], ref[0]):
        assert got.keypoints.shape[1:] == (18, 3) and got.keypoints.dtype == np.float32
    np.testing.assert_array_equal(fast[0].candidate[:, :2], ref[0].candidate[:, :2])
    with pytest.raises(ValueError, match="mode"):
        op.estimate_poses(model, frames, mode="slow")
    with pytest.raises(ValueError, match=r"frames\[1\]"):
        op.estimate_poses(model, [frames[0], frames[1][..., 0]])


def test_handler_runs_a_batch(model):
    from extractors.handlers import OpenPoseHandler

    handler = OpenPoseHandler(scale_search=(0.05,), max_batch_size=4)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 4}
    frames = [np.full((48, 64, 3), 255, np.uint8)]
    results = list(handler.run_inference(frames, model))
    assert len(results) == 1 and results[0].model_id == "openpose-body"
    scores, keypoints = results[0].inference
    assert scores.dtype == np.float32 and keypoints.shape == (len(scores), 18, 3)
    with pytest.raises(ValueError, match="mode"):
        OpenPoseHandler(mode="slow")


# --------------------------------------------------------------------------- GPU-ready path (run on CPU)

@pytest.mark.parametrize("hw,scale", [((480, 640), 0.5), ((480, 640), 1.0), ((360, 640), 0.5), ((100, 80), 0.5)])
def test_device_preprocess_matches_cv2_within_one_grey_level(repo, hw, scale):
    cap = cv2.VideoCapture(str(repo / "samples" / "videos" / "hikers_walking.mp4"))
    ok, bgr = cap.read()
    assert ok
    frame = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), hw[::-1], interpolation=cv2.INTER_AREA)
    (g,) = op.scale_geometries(hw, (scale,))
    want = op.preprocess(frame, g)
    got = op.preprocess_batch(torch.from_numpy(frame)[None], g)[0].numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    diff = np.abs(got - want) * 256
    assert diff.max() <= 1 + 1e-4 and (diff > 0.5).mean() < 2e-3
    ih, iw = g.input_hw
    assert np.all(got[:, ih:, :] == want[:, ih:, :]) and np.all(got[:, :, iw:] == want[:, :, iw:])


def test_chunk_and_device_preprocess_estimate(model):
    rng = np.random.default_rng(0)
    chunk = rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    scales = (0.05,)
    listed = op.estimate_poses(model, list(chunk), scales)
    arr = op.estimate_poses(model, chunk, scales)
    dev = op.estimate_poses(model, chunk, scales, device_preprocess=True)
    for a, b, c in zip(listed, arr, dev):
        np.testing.assert_array_equal(a.candidate, b.candidate)
        assert c.keypoints.shape[1:] == (18, 3)
    _, maps_host = op.network_maps(model, chunk, scales)
    _, maps_dev = op.network_maps(model, chunk, scales, device_preprocess=True)
    torch.testing.assert_close(maps_host[0][1], maps_dev[0][1], atol=5e-3, rtol=0)
