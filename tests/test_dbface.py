"""Tests of the DBFace port against dlunion/DBFace@b5fc28f reference outputs (shared/reference §1).

The DBFace-Small-H weights have no licence and never enter the repository: tests point
``AFFECTZOO_WEIGHTS`` at ``shared/data/weights`` and skip when that folder is absent.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from extractors import dbface as D
from extractors import weights as W

# shared/reference/README.md "Recommended tolerances" (CPU float32)
HM_ATOL, TLRB_RTOL, LANDMARK_ATOL = 1e-4, 1e-3, 1e-3
PX_ATOL, SCORE_ATOL = 0.05, 1e-4
# shared/data/reference/dbface_small.json stores values rounded to 0.1 px and 4 decimals.
ROUNDED_PX_ATOL, ROUNDED_SCORE_ATOL = 0.05 + 1e-3, 5e-5 + 1e-4
FRAMES = ["face_closeup_f080", "face_closeup_f140", "armwrestling_f040", "astronaut", "street_f100"]


@pytest.fixture(scope="module")
def small(shared):
    folder = shared / "data" / "weights"
    if not (folder / "dbfaceSmallH.pth").is_file():
        pytest.skip(f"{folder}/dbfaceSmallH.pth is absent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(W.ENV_DIR, str(folder))
        return D.load_dbface("small")


def _rgb(path) -> np.ndarray:
    """Read as the reference did (cv2.imread gives BGR), then convert to RGB for our API."""
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _expected(detections: list[dict], box_key: str = "box_xyrb") -> np.ndarray:
    rows = [d[box_key] + [d["score"]] + [c for p in d["landmarks_xy"] for c in p] for d in detections]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 15)


def _assert_same(got: np.ndarray, want: np.ndarray, px: float, score: float, what: str):
    assert got.dtype == np.float32 and got.shape[1:] == (15,), what
    assert got.shape[0] == want.shape[0], f"{what}: {got.shape[0]} detections, expected {want.shape[0]}"
    np.testing.assert_allclose(got[:, 4], want[:, 4], rtol=0, atol=score, err_msg=f"{what} scores")
    np.testing.assert_allclose(got[:, :4], want[:, :4], rtol=0, atol=px, err_msg=f"{what} boxes")
    np.testing.assert_allclose(got[:, 5:], want[:, 5:], rtol=0, atol=px, err_msg=f"{what} landmarks")


def test_parameter_counts_and_state_dict_sizes(shared):
    counts = json.loads((shared / "reference" / "param_counts.json").read_text())["models"]
    for variant, key in (("small", "DBFace/DBFaceSmallH"), ("large", "DBFace/DBFace (large, MobileNetV3)")):
        model = D.DBFace(variant)
        assert sum(p.numel() for p in model.parameters()) == counts[key]["parameters"]
        assert len(model.state_dict()) == counts[key]["state_dict_tensors"]
    assert counts["DBFace/DBFaceSmallH"]["parameters"] == 436_307
    assert counts["DBFace/DBFace (large, MobileNetV3)"]["parameters"] == 1_794_219


def test_small_weights_load_strictly_in_file_order(small, shared):
    state = torch.load(shared / "data" / "weights" / "dbfaceSmallH.pth", map_location="cpu",
                       weights_only=True)
    assert list(D.DBFace("small").state_dict()) == list(state)
    for k, v in small.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_large_model_strict_load_of_random_state_dict_and_shapes():
    torch.manual_seed(0)
    keys = D.DBFace("large").state_dict()
    state = {k: (torch.randint(0, 5, v.shape) if v.dtype == torch.long else torch.rand(v.shape) + 0.5)
             for k, v in keys.items()}
    model = D.DBFace("large")
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert sum(p.numel() for p in model.parameters()) == 1_794_219
    model.eval()
    frames = [np.zeros((70, 100, 3), np.uint8), np.full((90, 120, 3), 128, np.uint8)]  # -> 96x128
    hm, tlrb, landmark = D.raw_heads(model, frames)
    assert hm.shape == (2, 1, 24, 32) and tlrb.shape == (2, 4, 24, 32) and landmark.shape == (2, 10, 24, 32)
    assert ((hm >= 0) & (hm <= 1)).all() and (tlrb > 0).all()
    dets = D.detect_faces(model, frames, threshold=0.0)
    assert [d.shape[1] for d in dets] == [15, 15] and all(d.dtype == np.float32 for d in dets)


def test_raw_heads_match_reference(small, shared):
    ref = np.load(shared / "reference" / "dbface" / "face_closeup_f080.raw_heads.npz")
    hm, tlrb, landmark = (t.numpy() for t in D.raw_heads(small, [_rgb(shared / "reference" / "frames" / "face_closeup_f080.png")]))
    assert hm.shape == ref["hm"].shape == (1, 1, 64, 80)
    np.testing.assert_allclose(hm, ref["hm"], rtol=0, atol=HM_ATOL)
    np.testing.assert_allclose(tlrb, ref["tlrb"], rtol=TLRB_RTOL, atol=0)
    np.testing.assert_allclose(landmark, ref["landmark"], rtol=0, atol=LANDMARK_ATOL)


def test_bgr_channel_order_gives_the_same_input(shared):
    rgb = _rgb(shared / "reference" / "frames" / "face_closeup_f080.png")
    a = D.preprocess([rgb], channel_order="rgb")
    b = D.preprocess([np.ascontiguousarray(rgb[..., ::-1])], channel_order="bgr")
    assert torch.equal(a, b) and a.shape == (1, 3, 256, 320)
    # reference arithmetic: BGR image, zero pad, float64 normalisation, float32 cast
    bgr = D.pad_to_multiple(np.ascontiguousarray(rgb[..., ::-1]))
    want = ((bgr / 255.0 - D.MEAN_BGR) / D.STD_BGR).astype(np.float32).transpose(2, 0, 1)
    assert np.array_equal(a[0].numpy(), want)


def test_decoding_stored_raw_heads_reproduces_detections(shared):
    ref = np.load(shared / "reference" / "dbface" / "face_closeup_f080.raw_heads.npz")
    expected = json.loads((shared / "reference" / "dbface" / "face_closeup_f080.expected.json").read_text())
    heads = [torch.from_numpy(ref[k]) for k in ("hm", "tlrb", "landmark")]
    p = expected["params"]
    (dets,) = D.decode_heads(*heads, threshold=p["threshold"], nms_iou=p["nms_iou"], top_k=p["topk"])
    assert isinstance(dets, torch.Tensor)
    _assert_same(dets.numpy(), _expected(expected["detections"]), 1e-3, 1e-6, "decode of raw heads")
    (no_nms,) = D.decode_heads(*heads, threshold=p["threshold"], nms_iou=2.0)
    _assert_same(no_nms.numpy(), _expected(expected["pre_nms_candidates"]), 1e-3, 1e-6, "pre-NMS")


@pytest.mark.parametrize("name", FRAMES)
def test_detections_match_reference_frames(small, shared, name):
    expected = json.loads((shared / "reference" / "dbface" / f"{name}.expected.json").read_text())
    frame = _rgb(shared / "reference" / "frames" / f"{name}.png")
    assert list(frame.shape[:2]) == expected["image_hw"]
    p = expected["params"]
    (dets,) = D.detect_faces(small, [frame], threshold=p["threshold"], nms_iou=p["nms_iou"], top_k=p["topk"])
    _assert_same(dets, _expected(expected["detections"]), PX_ATOL, SCORE_ATOL, name)


def _data_frame(shared, key: str) -> np.ndarray:
    path, _, frame = key.partition("#")
    if not frame:
        return _rgb(shared / "data" / path)
    decord = pytest.importorskip("decord")
    return decord.VideoReader(str(shared / "data" / path))[int(frame.removeprefix("frame"))].asnumpy()


def test_detections_match_data_reference_threshold_04(small, shared):
    reference = json.loads((shared / "data" / "reference" / "dbface_small.json").read_text())
    checked = 0
    for key, ref in reference.items():
        if not (shared / "data" / key.partition("#")[0]).is_file():
            continue
        frame = _data_frame(shared, key)
        assert list(frame.shape[:2]) == ref["image_hw"], key
        (dets,) = D.detect_faces(small, [frame], threshold=ref["threshold"], nms_iou=ref["nms_iou"])
        _assert_same(dets, _expected(ref["detections"], "box_xyxy"), ROUNDED_PX_ATOL, ROUNDED_SCORE_ATOL, key)
        checked += 1
    assert checked >= 2


def test_mixed_size_batch_equals_one_at_a_time(small, shared):
    frames_dir = shared / "reference" / "frames"
    a = _rgb(frames_dir / "armwrestling_f040.png")          # 340x256 -> 352x256
    b = _rgb(frames_dir / "face_closeup_f080.png")          # 320x240 -> 320x256
    c = np.ascontiguousarray(_rgb(frames_dir / "face_closeup_f140.png")[:230, :300])  # -> 320x256
    batch = D.detect_faces(small, [a, b, c])
    single = [D.detect_faces(small, [f])[0] for f in (a, b, c)]
    assert [len(d) for d in batch] == [2, 1, 1]
    whole = D.detect_faces(small, [b, a, c], forward_batch=2)  # b and c share one forward
    for got, want in zip(batch + whole, single + [single[1], single[0], single[2]]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_detect_faces_rejects_bad_frames(small):
    assert D.detect_faces(small, []) == []
    with pytest.raises(ValueError, match=r"frames\[1\].*uint8"):
        D.detect_faces(small, [np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.float32)])
    with pytest.raises(ValueError, match="forward_batch"):
        D.detect_faces(small, [np.zeros((32, 32, 3), np.uint8)], forward_batch=0)
    with pytest.raises(ValueError, match="channel_order"):
        D.detect_faces(small, [np.zeros((32, 32, 3), np.uint8)], channel_order="rgba")
    with pytest.raises(ValueError, match="variant"):
        D.DBFace("medium")


def test_nms_uses_plus_one_pixel_iou():
    # Two 10x10 boxes (x2 - x1 = 9) shifted by 5 px: +1-pixel IoU = 50/150 = 0.333 > 0.3, while
    # the plain IoU would be 36/126 = 0.286 < 0.3: only the +1 convention suppresses the second.
    hm = torch.zeros(1, 1, 8, 16)
    tlrb = torch.ones(1, 4, 8, 16)
    hm[0, 0, 4, 4], hm[0, 0, 4, 7] = 0.9, 0.8  # two peaks 3 cells (12 px) apart
    tlrb[0, :, 4, 4] = torch.tensor([0.0, 0.0, 9 / 4, 9 / 4])
    tlrb[0, :, 4, 7] = torch.tensor([7 / 4, 0.0, 2 / 4, 9 / 4])  # x 21..30 vs 16..25
    dets = D.decode_heads(hm, tlrb, torch.zeros(1, 10, 8, 16), threshold=0.5, nms_iou=0.3)[0]
    assert dets.shape[0] == 1 and dets[0, 4] == pytest.approx(0.9)
    dets = D.decode_heads(hm, tlrb, torch.zeros(1, 10, 8, 16), threshold=0.5, nms_iou=0.34)[0]
    assert dets.shape[0] == 2


def test_missing_weights_raise_registry_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(W.ENV_DIR, str(empty))
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    monkeypatch.setattr(W, "cache_dir", lambda: tmp_path / "cache")
    for variant, filename in (("small", "dbfaceSmallH.pth"), ("large", "dbface.pth")):
        with pytest.raises(W.WeightsNotFoundError) as err:
            D.load_dbface(variant)
        msg = str(err.value)
        assert filename in msg and "github.com/dlunion/DBFace" in msg
        assert f"python -m extractors.weights install dbface-{variant} {filename}" in msg


def test_beam_handler_runs_inference(shared, monkeypatch):
    folder = shared / "data" / "weights"
    if not (folder / "dbfaceSmallH.pth").is_file():
        pytest.skip(f"{folder}/dbfaceSmallH.pth is absent")
    monkeypatch.setenv(W.ENV_DIR, str(folder))
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.testing.util import assert_that

    from extractors.handlers import DBFaceHandler

    with pytest.raises(ValueError, match="variant"):
        DBFaceHandler(variant="tiny")
    frames_dir = shared / "reference" / "frames"
    frames = [_rgb(frames_dir / "armwrestling_f040.png"), _rgb(frames_dir / "face_closeup_f080.png")]
    want = [len(json.loads((shared / "reference" / "dbface" / f"{n}.expected.json").read_text())["detections"])
            for n in ("armwrestling_f040", "face_closeup_f080")]
    handler = DBFaceHandler(variant="small", max_batch_size=2)
    assert handler.batch_elements_kwargs()["max_batch_size"] == 2

    def check(results):
        got = sorted((r.example.shape, r.inference.shape, r.model_id) for r in results)
        assert got == sorted(((f.shape, (n, 15), "dbface-small") for f, n in zip(frames, want)))

    with beam.Pipeline() as p:
        out = p | beam.Create(frames) | RunInference(handler)
        assert_that(out, check)


def test_chunk_and_device_preprocess_equal_the_host_path(small, shared):
    """A uint8 [N, H, W, 3] chunk and the device-side padding (the CUDA path, run on CPU here)
    give the same network input and the same detections as the list path."""
    frames_dir = shared / "reference" / "frames"
    a = _rgb(frames_dir / "face_closeup_f080.png")
    b = np.ascontiguousarray(a[::-1])
    mixed = [a, _rgb(frames_dir / "armwrestling_f040.png"), b]
    host = D.preprocess([a, b])
    assert torch.equal(D.preprocess(np.stack([a, b]), device_preprocess=True), host)
    listed = D.detect_faces(small, mixed)
    for other in (D.detect_faces(small, mixed, device_preprocess=True),
                  D.detect_faces(small, mixed, device="cpu")):
        for x, y in zip(listed, other):
            assert np.array_equal(x, y)
    chunk = D.detect_faces(small, np.stack([a, b]))
    assert [len(d) for d in chunk] == [len(listed[0]), len(listed[2])] and len(chunk[0]) >= 1
    with pytest.raises(ValueError, match="model is on"):
        D.detect_faces(small, [a], device="meta")
