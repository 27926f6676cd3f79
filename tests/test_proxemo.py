"""ProxEmo gait embedding (pipelines/represent/embedding.py) and VS-GCNN (zoo/models/vsgcnn.py).

Parity vectors: ``shared/reference/representations/proxemo/embedding_00001_Angry.*`` and
``shared/reference/proxemo_vsgcnn/`` (made with vijay4313/proxemo@98c4e21 and
zykev/pose_emotion@4ef3385); tolerances from ``shared/reference/README.md``. The VS-GCNN weights
are the repository's shipped ``weights/proxemo_vsgcnn_epoch134_state_dict.pth``.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from pipelines.represent import embedding as emb
from zoo.models.vsgcnn import (
    PROXEMO_EMOTIONS,
    VSGCNN,
    build_vsgcnn,
    emotion_probabilities_from_scores,
    load_proxemo_vsgcnn,
    output_side,
    predict_emotion,
)

AUG_ATOL = 1e-4
EMB_ATOL = 1e-3
LOGIT_ATOL = 1e-3
SOFTMAX_ATOL = 1e-5
PARAMS = 334_849


@pytest.fixture(scope="module")
def emb_ref(shared):
    d = np.load(shared / "reference/representations/proxemo/embedding_00001_Angry.npz")
    meta = json.loads((shared / "reference/representations/proxemo/embedding_00001_Angry.json").read_text())
    return {k: d[k] for k in d.files}, meta


@pytest.fixture(scope="module")
def vs_ref(shared):
    d = np.load(shared / "reference/proxemo_vsgcnn/vsgcnn_inputs_and_logits.npz")
    meta = json.loads((shared / "reference/proxemo_vsgcnn/vsgcnn_logits.json").read_text())
    return {k: d[k] for k in d.files}, meta


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_proxemo_vsgcnn("cpu")


@pytest.fixture(scope="module")
def step_gaits(shared):
    with h5py.File(shared / "data/gait/step_features4DCVAEGCN.h5", "r") as f:
        return {k: f[k][()] for k in f}


# ------------------------------------------------------------------------------------- embedding
def test_augment3d_training_views_parity(emb_ref):
    ref, meta = emb_ref
    views, groups = emb.training_views(ref["gait"])
    assert views.dtype == np.float64 and views.shape == (4, 18, 16, 3)
    np.testing.assert_allclose(views.reshape(4, 18, 48), ref["augmented_150"], rtol=0, atol=AUG_ATOL)
    expected = [meta["view_group_of_angle"][str(int(a))] for a in emb.PROXEMO_TRAIN_ANGLES]
    assert groups.tolist() == expected == [0, 1, 2, 3]


def test_augment3d_pose_emotion_views_parity(emb_ref):
    ref, _ = emb_ref
    gait = ref["gait"]
    for i, angle in enumerate(emb.POSE_EMOTION_ANGLES):
        out = emb.augment3d_pose_emotion(gait, angle)
        assert out.shape == (18, 48)  # layout of the input kept
        np.testing.assert_allclose(out, ref["augmented_posemotion_0"][i], rtol=0, atol=AUG_ATOL)
    views, groups = emb.inference_views(gait)
    np.testing.assert_allclose(views.reshape(4, 18, 48), ref["augmented_posemotion_0"], atol=AUG_ATOL)
    assert groups.tolist() == [0, 1, 2, 3]


def test_embedding_parity(emb_ref):
    ref, _ = emb_ref
    gait = ref["gait"]
    views, _ = emb.training_views(gait)
    ours = np.stack([emb.gait_embedding(gait)] + [emb.gait_embedding(v) for v in views])
    assert ours.dtype == np.float32 and ours.shape == (5, 244, 244, 3)
    np.testing.assert_allclose(ours, ref["embeddings"], rtol=0, atol=EMB_ATOL)


def test_embedding_layouts_and_dtypes_agree(emb_ref):
    gait = emb_ref[0]["gait"]
    a = emb.gait_embedding(gait)
    b = emb.gait_embedding(gait.reshape(18, 16, 3))
    c = emb.gait_embedding(gait.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() < 0.01
    unit = emb.gait_embedding(gait, unit_range=True)
    np.testing.assert_allclose(unit, a / 255.0, atol=1e-6)
    assert emb.gait_embedding(gait, size=224).shape == (224, 224, 3)


def test_embedding_orientation_inverted_minmax():
    t = np.linspace(0.0, 1.0, 5)
    gait = np.zeros((5, 16, 3))
    gait[:, :, 0] = t[:, None]  # x grows with time: row 0 is the minimum -> 255
    gait[:, :, 1] = np.arange(16)[None, :]  # y grows with the joint index: column 0 -> 255
    gait[:, :, 2] = t[:, None] * np.arange(16)[None, :]
    img = emb.gait_embedding(gait)
    assert img[0, 0, 0] == pytest.approx(255.0) and img[-1, 0, 0] == pytest.approx(0.0)
    assert img[0, 0, 1] == pytest.approx(255.0) and img[0, -1, 1] == pytest.approx(0.0)
    assert img[-1, -1, 2] == pytest.approx(0.0)


def test_embedding_constant_coordinate_policies(emb_ref):
    gait = emb_ref[0]["gait"].reshape(18, 16, 3).copy()
    gait[:, :, 2] = 0.25  # z constant: the reference divides by zero
    img = emb.gait_embedding(gait)
    assert np.all(img[:, :, 2] == 0.0) and np.isfinite(img).all()
    np.testing.assert_array_equal(img[:, :, :2], emb.gait_embedding(emb_ref[0]["gait"])[:, :, :2])
    faithful = emb.gait_embedding(gait, on_constant="nan")
    assert np.isnan(faithful[:, :, 2]).all() and np.isfinite(faithful[:, :, :2]).all()
    with pytest.raises(ValueError, match="coordinate z is constant"):
        emb.gait_embedding(gait, on_constant="raise")
    with pytest.raises(ValueError, match="on_constant"):
        emb.gait_embedding(gait, on_constant="clip")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 47)), r"expected \[T, 48\]"),
    (np.zeros((10, 17, 3)), r"got shape \(10, 17, 3\)"),
    (np.zeros((1, 48)), "T >= 2"),
    (np.zeros((0, 16, 3)), "T >= 2"),
])
def test_bad_gaits_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        emb.gait_embedding(bad)


def test_non_finite_gait_raises(emb_ref):
    gait = emb_ref[0]["gait"].copy()
    gait[3, 7] = np.nan
    gait[11, 0] = np.inf
    with pytest.raises(ValueError, match=r"step:00001: 2 non-finite values .* frames \[3, 11\]"):
        emb.gait_embedding(gait, name="step:00001")
    with pytest.raises(ValueError, match="non-finite"):
        emb.augment3d(gait, 30, 150, 1)


def test_view_group_and_targets():
    assert [emb.view_group(a) for a in (0, 30, 89.9, 90, 110, 200, 300, 359.9)] == [0, 0, 0, 1, 1, 2, 3, 3]
    assert emb.view_group(100, num_groups=8) == 2
    for angle in (-30, 360, 390):
        with pytest.raises(ValueError, match=r"\[0, 360\)"):
            emb.view_group(angle)
    assert emb.training_target(2, 3) == 11
    np.testing.assert_array_equal(emb.training_target(np.arange(4)[:, None], np.arange(4)[None, :]),
                                  np.arange(16).reshape(4, 4))
    with pytest.raises(ValueError, match="emotion"):
        emb.training_target(4, 0)
    with pytest.raises(ValueError, match="view group"):
        emb.training_target(0, -1)


def test_view_transform_formula():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3, 16, 3))
    theta, trans, scale = 110.0, 150.0, 1.5
    c, s = np.cos(np.radians(theta)), np.sin(np.radians(theta))
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    expected = np.stack([scale * c * x + s * z + trans * c, scale * y + trans * s, -scale * s * x + c * z], -1)
    np.testing.assert_allclose(emb.augment3d(pts, theta, trans, scale), expected, atol=1e-9)


def test_step_gait_file_embeddings_in_range(step_gaits):
    assert len(step_gaits) == 60
    for key in ("00001_Angry", "00005_Sad", "00010_Neutral"):
        gait = step_gaits[key]
        assert gait.shape == (18, 48) and gait.dtype == np.float64
        img = emb.gait_embedding(gait, name=key)
        assert img.shape == (244, 244, 3) and img.dtype == np.float32
        assert img.min() >= 0.0 and img.max() <= 255.0
        span = img.reshape(-1, 3).max(0) - img.reshape(-1, 3).min(0)
        assert np.all(span > 200)  # every coordinate channel uses most of 0..255
        images, groups = emb.view_embeddings(gait, mode="training")
        assert images.shape == (4, 244, 244, 3) and groups.tolist() == [0, 1, 2, 3]
        assert images.min() >= 0.0 and images.max() <= 255.0
    with pytest.raises(ValueError, match="mode"):
        emb.view_embeddings(step_gaits["00001_Angry"], mode="test")


# --------------------------------------------------------------------------------------- VS-GCNN
def test_parameter_count_and_state_dict_names(shared, vs_ref):
    counts = json.loads((shared / "reference/param_counts.json").read_text())["models"]
    net = VSGCNN()
    n = sum(p.numel() for p in net.parameters())
    assert n == PARAMS == counts["proxemo/VS-GCNN"]["parameters"]
    assert n == counts["pose_emotion/VS-GCNN copy"]["parameters"]
    assert sum(b.numel() for b in net.buffers()) == counts["proxemo/VS-GCNN"]["buffers_incl_bn_stats"]
    ref_keys = vs_ref[1]["state_dict"]
    ours = net.state_dict()
    assert list(ours) == list(ref_keys)
    assert all(list(ours[k].shape) == ref_keys[k]["shape"] for k in ours)
    assert "conv_stage_1.VSGCNN_stage_1_bn_.running_mean" in ours  # trailing underscore kept


def test_shipped_weights_logits_parity(model, vs_ref):
    ref, _ = vs_ref
    x = torch.from_numpy(ref["embeddings"])
    with torch.no_grad():
        logits = model(x)
        probs = model(x, apply_softmax=True)
    assert logits.shape == (3, 16) and (logits >= 0).all()
    np.testing.assert_allclose(logits.numpy(), ref["logits"], rtol=0, atol=LOGIT_ATOL)
    np.testing.assert_allclose(probs.numpy(), ref["softmax"], rtol=0, atol=SOFTMAX_ATOL)
    assert logits.argmax(1).tolist() == ref["logits"].argmax(1).tolist() == [0, 11, 5]


def test_step_keys_to_logits_end_to_end(model, vs_ref, step_gaits):
    """h5 gait -> augment3d(angle, 150, 1) -> embedding -> VS-GCNN equals the reference chain."""
    ref, meta = vs_ref
    images = []
    for i, item in enumerate(meta["input"]["items"]):
        aug = emb.augment3d(step_gaits[item["step_key"]], item["angle"], item["trans"], item["scale"])
        np.testing.assert_allclose(aug, ref["augmented_gaits"][i], rtol=0, atol=AUG_ATOL)
        assert emb.view_group(item["angle"]) == item["view_group"]
        images.append(emb.gait_embedding(aug))
    images = np.stack(images)
    np.testing.assert_allclose(images, ref["embeddings"], rtol=0, atol=EMB_ATOL)
    with torch.no_grad():
        logits = model(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(logits, ref["logits"], rtol=0, atol=LOGIT_ATOL)


def test_predict_emotion_from_four_views(model, step_gaits):
    images, _ = emb.view_embeddings(step_gaits["00003_Sad"])  # 0/90/180/270
    name, probs = predict_emotion(model, images)
    assert probs.shape == (4,) and probs.dtype == np.float64
    assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
    assert name == PROXEMO_EMOTIONS[int(probs.argmax())]
    with torch.no_grad():
        scores = model(torch.from_numpy(images))
    p16 = torch.softmax(scores.double(), 1).numpy()
    np.testing.assert_allclose(probs, p16.reshape(4, 4, 4).sum(2).mean(0), atol=1e-12)


def test_aggregation_rule():
    flat = emotion_probabilities_from_scores(torch.zeros(4, 16))
    np.testing.assert_allclose(flat, [0.25] * 4)
    scores = torch.zeros(2, 16)
    scores[0, 4 * 2 + 1] = 50.0  # view 0: sad, group 1
    scores[1, 4 * 2 + 3] = 50.0  # view 1: sad, group 3
    np.testing.assert_allclose(emotion_probabilities_from_scores(scores), [0, 0, 1, 0], atol=1e-12)
    with pytest.raises(ValueError, match=r"\[V >= 1, 16\]"):
        emotion_probabilities_from_scores(torch.zeros(4, 15))
    with pytest.raises(ValueError, match="names"):
        predict_emotion(VSGCNN(), np.zeros((1, 244, 244, 3), np.float32), names=("a", "b"))


def test_forward_backward_cpu():
    torch.manual_seed(0)
    net = build_vsgcnn(3, 4).train()
    assert net.num_outputs == 16
    x = torch.rand(2, 244, 244, 3) * 255
    target = torch.tensor([emb.training_target(0, 1), emb.training_target(3, 2)])
    out = net(x)
    assert out.shape == (2, 16)
    loss = torch.nn.functional.cross_entropy(out, target)
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_input_checks():
    net = VSGCNN().eval()
    assert [output_side(n) for n in (244, 224, 128, 60)] == [4, 4, 1, 0]
    with pytest.raises(ValueError, match="NHWC"):
        net(torch.zeros(1, 3, 244, 244))
    with pytest.raises(ValueError, match="too small"):
        net(torch.zeros(1, 60, 60, 3))
    with torch.no_grad():
        assert net(torch.zeros(1, 128, 128, 3)).shape == (1, 1)
