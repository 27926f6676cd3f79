"""Tests of the BlazeFace port against hollance/BlazeFace-PyTorch reference outputs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from extractors import blazeface as B
from extractors import weights as W

BOX_TOL_PX = 2.0  # data/README.md: boxes +-2 px, scores +-0.01 across torch/OpenCV builds
SCORE_TOL = 0.01
VIDEO_KEY = "videos/face_closeup_makeup.avi#frame0"
IMAGE_KEY = "images/astronaut.png"


@pytest.fixture(scope="module")
def models():
    return {"front": B.load_blazeface("front"), "back": B.load_blazeface("back")}


@pytest.fixture(scope="module")
def frames(shared):
    decord = pytest.importorskip("decord")
    img = cv2.cvtColor(cv2.imread(str(shared / "data" / "images" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    vr = decord.VideoReader(str(shared / "data" / "videos" / "face_closeup_makeup.avi"))
    return {IMAGE_KEY: img, VIDEO_KEY: vr[0].asnumpy()}


@pytest.fixture(scope="module")
def reference(shared):
    return json.loads((shared / "data" / "reference" / "blazeface.json").read_text())


def test_anchors_equal_shipped_file_exactly(repo):
    expected = np.load(repo / "weights" / "blazeface_anchors.npy")
    for back in (False, True):
        a = B.generate_anchors(back_model=back)
        assert a.dtype == np.float64 and a.shape == (896, 4)
        assert np.array_equal(a, expected)


@pytest.mark.parametrize("variant,n_keys", [("front", 74), ("back", 138)])
def test_state_dict_keys_match_strictly(variant, n_keys):
    sd = W.load_state_dict(f"blazeface-{variant}")
    model = B.BlazeFace(back_model=variant == "back")
    assert len(sd) == n_keys
    assert list(model.state_dict()) == list(sd)
    assert all(model.state_dict()[k].shape == v.shape for k, v in sd.items())
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize("variant,size", [("front", 128), ("back", 256)])
def test_raw_output_shapes(models, variant, size):
    boxes, scores = models[variant](torch.zeros(2, 3, size, size))
    assert boxes.shape == (2, 896, 16) and scores.shape == (2, 896, 1)


def test_letterbox_pads_bottom_right_then_area_resizes():
    frame = np.full((60, 100, 3), 200, np.uint8)
    square, scale = B.letterbox(frame, 50)
    assert square.shape == (50, 50, 3) and square.dtype == np.uint8 and scale == 2.0
    assert (square[:30] == 200).all() and (square[30:] == 0).all()
    padded = np.zeros((100, 100, 3), np.uint8)
    padded[:60] = 200
    assert np.array_equal(square, cv2.resize(padded, (50, 50), interpolation=cv2.INTER_AREA))


def test_weighted_nms_blends_with_mean_score():
    a = torch.zeros(17)
    a[:4] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    a[16] = 0.9
    b = a.clone()
    b[:4] = torch.tensor([0.0, 0.1, 1.0, 1.1])  # IoU 0.82 with a
    b[16] = 0.6
    c = a.clone()
    c[:4] = torch.tensor([2.0, 2.0, 3.0, 3.0])  # disjoint
    c[16] = 0.95
    out = B.weighted_nms(torch.stack([a, b, c]))
    assert out.shape == (2, 17)
    assert torch.allclose(out[0], c)  # highest seed first, alone
    assert out[1, 16].item() == pytest.approx(0.75)  # mean, not max
    assert out[1, 1].item() == pytest.approx(0.6 * 0.1 / 1.5)  # score-weighted xmin
    assert out[1, 3].item() == pytest.approx((0.9 * 1.0 + 0.6 * 1.1) / 1.5)


def _expected_rows(ref_dets, side):
    rows = []
    for d in ref_dets:
        kps = np.asarray(d["keypoints_xy_normalised"]) * side
        rows.append([*d["box_xyxy_pixels_in_original"], d["score"], *kps])
    return np.asarray(rows)


@pytest.mark.parametrize("variant,ref_key", [("front", "blazeface.pth"), ("back", "blazefaceback.pth")])
def test_detections_match_reference(models, frames, reference, variant, ref_key):
    keys = [IMAGE_KEY, VIDEO_KEY]
    results = B.detect_faces(models[variant], [frames[k] for k in keys])  # one batched forward
    for key, got in zip(keys, results):
        side = max(frames[key].shape[:2])
        want = _expected_rows(reference[ref_key][key]["detections"], side)
        assert got.dtype == np.float32 and got.shape == want.shape, (variant, key, got)
        assert np.abs(got[:, :4] - want[:, :4]).max() <= BOX_TOL_PX
        assert np.abs(got[:, 5:] - want[:, 5:]).max() <= BOX_TOL_PX
        assert np.abs(got[:, 4] - want[:, 4]).max() <= SCORE_TOL


def test_front_model_keeps_the_false_positive(models, frames):
    (dets,) = B.detect_faces(models["front"], [frames[VIDEO_KEY]])
    assert len(dets) == 2
    face, box = dets
    assert face[0] > 200 and box[2] < 160  # face on the right, cardboard box on the left
    assert B.detect_faces(models["front"], [frames[VIDEO_KEY]], score_threshold=0.999)[0].shape == (0, 17)


def test_batch_equals_single_frames(models, frames):
    batch = B.detect_faces(models["back"], [frames[VIDEO_KEY], frames[IMAGE_KEY]])
    for frame, got in zip([frames[VIDEO_KEY], frames[IMAGE_KEY]], batch):
        (single,) = B.detect_faces(models["back"], [frame])
        np.testing.assert_allclose(got, single, atol=1e-3)
    assert B.detect_faces(models["back"], []) == []


def test_rejects_non_uint8(models):
    with pytest.raises(ValueError):
        B.detect_faces(models["front"], [np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(ValueError):
        B.load_blazeface("side")


# --------------------------------------------------------------------------- GPU-ready path (run on CPU)

@pytest.mark.parametrize("hw,size", [((480, 640), 128), ((480, 640), 256), ((360, 640), 256),
                                     ((97, 131), 256), ((100, 60), 128), ((64, 64), 128),
                                     ((128, 77), 128), ((1080, 1920), 256),
                                     ((256, 250), 128), ((768, 700), 128), ((1536, 1400), 256)])
def test_device_letterbox_equals_cv2_letterbox(hw, size):
    from extractors import _device as D

    img = np.random.default_rng(hw[0] * size).integers(0, 256, hw + (3,), dtype=np.uint8)
    want, _ = B.letterbox(img, size)
    got = D.cv2_area_letterbox(torch.from_numpy(img)[None], size)[0].permute(1, 2, 0).numpy()
    assert got.shape == want.shape and np.array_equal(got.astype(np.uint8), want)


def test_batched_weighted_nms_equals_one_image_at_a_time():
    gen = torch.Generator().manual_seed(0)
    images = []
    for k in (7, 0, 12, 1):
        d = torch.rand(k, 17, generator=gen)
        d[:, 2:4] = d[:, 0:2] + 0.2 + 0.3 * torch.rand(k, 2, generator=gen)  # valid boxes
        images.append(d)
    k_max = max(len(d) for d in images)
    padded = torch.zeros(len(images), k_max, 17)
    valid = torch.zeros(len(images), k_max, dtype=torch.bool)
    for i, d in enumerate(images):
        padded[i, :len(d)], valid[i, :len(d)] = d, True
    out, count = B.weighted_nms_batch(padded, valid)
    for i, d in enumerate(images):
        want = B.weighted_nms(d)
        assert int(count[i]) == len(want)
        torch.testing.assert_close(out[i, :len(want)], want, atol=1e-6, rtol=1e-6)
    assert int(count[0]) < 7  # some groups were merged


def test_chunk_and_device_preprocess_give_the_same_detections(models, frames):
    frame = frames[VIDEO_KEY]
    chunk = np.stack([frame, frame[::-1].copy()])
    for variant in ("front", "back"):
        listed = B.detect_faces(models[variant], list(chunk), score_threshold=0.5)
        for other in (B.detect_faces(models[variant], chunk, score_threshold=0.5),
                      B.detect_faces(models[variant], chunk, score_threshold=0.5, device_preprocess=True)):
            for a, b in zip(listed, other):
                assert a.shape == b.shape and a.shape[0] >= 1
                np.testing.assert_allclose(a, b, atol=1e-3, rtol=0)
