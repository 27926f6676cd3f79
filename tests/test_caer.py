"""Tests for the CAER pose features (pipelines.represent.pose_features) and zoo (zoo.models.caer)."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.represent import pose_features as pf
from pipelines.represent.pose_features import (PoseKinematics, ProcCfg, SampleRejected, feature_index, kinematics,
                                               pose_feature_sequence)
from zoo import transforms as TR
from zoo.transforms import COCO17_FLIP_PAIRS
from zoo.models import caer
from zoo.optim import balanced_sampler

VECTORS = ["room2p_default_cfg", "room2p_example_cfg_interp5", "room2p_stride2_interp2"]
KIN_KEYS = ["kin_keypoints", "kin_vel", "kin_acc", "kin_time"]
#: Absolute tolerance of normalised positions (torso units) against the reference vectors.
BASE_ATOL = 1e-5
#: How many times a position error reaches each kinematic channel: time and positions 1, velocity
#: ``f``, acceleration ``f**2`` for ``interp_factor`` f (see :func:`parity_atol`).
DERIVATIVE_ORDER = {"kin_keypoints": 0, "kin_time": 0, "kin_vel": 1, "kin_acc": 2,
                    "x": 0, "y": 0, "conf": 0, "vx": 1, "vy": 1, "ax": 2, "ay": 2}


def parity_atol(key: str, interp_factor: int) -> float:
    """Tolerance of one channel against the reference, derived from where the rounding comes from.

    The algorithm is the reference's float32 flow, operation for operation; what differs between
    machines is float32 ``arctan2`` / ``cos`` / ``sin`` in ``normalize_pose``: numpy dispatches
    them to SIMD kernels (AVX512_SKX, AVX2, baseline) that may differ by an ulp or so. That makes
    a position error of about 2.4e-7 torso units (measured with ``NPY_DISABLE_CPU_FEATURES`` set
    to the AVX512 features: positions 2.4e-7 on every vector), which ``BASE_ATOL`` (1e-5) covers
    with a wide margin. Upsampling by ``f`` divides each step by ``f``: a velocity is a position
    difference over ``dt / f`` (the error grows ``f`` times), an acceleration a velocity
    difference over ``dt / f`` again (``f**2`` times). Measured without AVX512 at f = 5: velocity
    2.4e-6, acceleration 1.79e-5 (above a flat 1e-5, within 1e-5 * 25 = 2.5e-4). So the tolerance
    is ``BASE_ATOL * f ** order``, with order 0 for positions / scores / times, 1 for velocity and
    2 for acceleration; at f = 1 every channel keeps 1e-5.
    """
    return BASE_ATOL * float(interp_factor) ** DERIVATIVE_ORDER[key]


def _vector(shared, name):
    base = shared / "reference/representations/caer" / name
    return dict(np.load(f"{base}.npz")), json.loads(base.with_suffix(".json").read_text())


# ------------------------------------------------------------------------------------------------
# Stage 1 / stage 2 parity with the reference vectors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VECTORS)
def test_stage1_matches_reference(shared, name):
    ref, meta = _vector(shared, name)
    cfg = ProcCfg(**meta["stage1"]["cfg"])
    out = kinematics(ref["input_keypoints"], ref["input_frame_indices"], cfg)
    assert out["kin_keypoints"].shape[0] == meta["stage1"]["kin_T"]
    for key in KIN_KEYS:
        ours, theirs = out[key], ref[key]
        assert ours.shape == theirs.shape and ours.dtype == np.float32, key
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{key}: NaN placement")
        np.testing.assert_allclose(ours, theirs, atol=parity_atol(key, cfg.interp_factor), rtol=0, equal_nan=True,
                                   err_msg=key)
    expected = meta["stage1"]["record"]
    assert out["record"]["shapes"] == expected["shapes"]
    for ours, theirs in zip(out["record"]["track_stats"], expected["track_stats"], strict=True):
        assert ours["kept"] == theirs["kept"] and ours["track_index"] == theirs["track_index"]
        for key in ("valid_frac", "speed_p95_pre", "acc_p95_pre"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5), key
        for key, value in theirs["norm"].items():
            assert ours["norm"][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_stage1_parity_holds_without_avx512(shared):
    """The same comparison with numpy's AVX512 kernels switched off (``NPY_DISABLE_CPU_FEATURES``),
    as on an x86-64 CPU without AVX512: every channel stays within :func:`parity_atol`."""
    from numpy._core._multiarray_umath import __cpu_features__

    avx512 = [name for name, on in __cpu_features__.items() if on and name.startswith("AVX512")]
    if not avx512:
        pytest.skip("this CPU has no AVX512: test_stage1_matches_reference already runs the non-AVX512 kernels")
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from pipelines.represent.pose_features import ProcCfg, kinematics
        base = sys.argv[1]
        ref, meta = dict(np.load(base + ".npz")), json.load(open(base + ".json"))
        cfg = ProcCfg(**meta["stage1"]["cfg"])
        out = kinematics(ref["input_keypoints"], ref["input_frame_indices"], cfg)
        print(json.dumps({k: float(np.nanmax(np.abs(out[k] - ref[k]), initial=0.0)) for k in sys.argv[2:]}))
    """)
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(avx512), PYTHONWARNINGS="ignore")
    for name in VECTORS:
        base = str(shared / "reference/representations/caer" / name)
        run = subprocess.run([sys.executable, "-c", script, base, *KIN_KEYS], env=env, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1], timeout=120)
        assert run.returncode == 0, run.stderr
        errors = json.loads(run.stdout.strip().splitlines()[-1])
        factor = _vector(shared, name)[1]["stage1"]["cfg"]["interp_factor"]
        for key, err in errors.items():
            assert err <= parity_atol(key, factor), (name, key, err)


@pytest.mark.parametrize("name", VECTORS)
def test_stage2_matches_reference(shared, name):
    ref, meta = _vector(shared, name)
    from_reference_kin = pose_feature_sequence({"keypoints": ref["kin_keypoints"], "vel": ref["kin_vel"],
                                                "acc": ref["kin_acc"]})
    assert from_reference_kin.shape == (64, 238) and from_reference_kin.dtype == np.float32
    np.testing.assert_array_equal(from_reference_kin, ref["features"])
    cfg = ProcCfg(**meta["stage1"]["cfg"])
    end_to_end = pose_feature_sequence(kinematics(ref["input_keypoints"], ref["input_frame_indices"], cfg))
    # per channel, the stage-1 tolerance (x, y, conf: positions; vx, vy: velocity; ax, ay: acceleration)
    ours, theirs = (a.reshape(64, -1, len(pf.FEATURE_NAMES)) for a in (end_to_end, ref["features"]))
    for c, name in enumerate(pf.FEATURE_NAMES):
        np.testing.assert_allclose(ours[..., c], theirs[..., c], atol=parity_atol(name, cfg.interp_factor), rtol=0,
                                   err_msg=name)
    start = (ref["kin_keypoints"].shape[0] - 64) // 2
    assert meta["stage2"]["crop"].endswith(f"={start}")
    # layout: person-major, joint, [x, y, conf, vx, vy, ax, ay]
    t, person, joint = 10, 1, 9
    row = ref["features"][t]
    assert row[feature_index(person, joint, "vy")] == np.nan_to_num(ref["kin_vel"][start + t, person, joint, 1])
    assert row[feature_index(person, joint, "conf")] == np.nan_to_num(ref["kin_keypoints"][start + t, person, joint, 2])


# ------------------------------------------------------------------------------------------------
# Stage 1: hand-computed cases
# ------------------------------------------------------------------------------------------------
def _skeleton(frames=6, wrist_step=5.0):
    """One person, [T, 17, 3] pixels: hips (90, 200), (110, 200); shoulders (110, 150), (90, 150)
    (L_SH on +x, so no rotation); mid-hip (100, 200), torso 50 px. The left wrist moves +wrist_step
    px per frame in x; every other joint sits at (100, 175). Scores 0.9."""
    kp = np.zeros((frames, 17, 3), np.float32)
    kp[..., :2] = (100.0, 175.0)
    kp[..., 2] = 0.9
    kp[:, 11, :2], kp[:, 12, :2] = (110.0, 200.0), (90.0, 200.0)
    kp[:, 5, :2], kp[:, 6, :2] = (110.0, 150.0), (90.0, 150.0)
    kp[:, 9, 0] = 130.0 + wrist_step * np.arange(frames)
    kp[:, 9, 1] = 160.0
    return kp


def test_one_person_hand_computed():
    kp = _skeleton()
    out = kinematics(kp, np.arange(6), ProcCfg())
    k = out["kin_keypoints"]
    assert k.shape == (6, 2, 17, 3)
    # normalised = (p - mid_hip) / torso; shoulders already level
    np.testing.assert_allclose(k[0, 0, 11, :2], [0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(k[0, 0, 5, :2], [0.2, -1.0], atol=1e-6)
    np.testing.assert_allclose(k[:, 0, 9, 0], (30 + 5 * np.arange(6)) / 50, atol=1e-6)
    np.testing.assert_allclose(k[..., 0, :, 2], 0.9)
    np.testing.assert_allclose(out["kin_vel"][1:, 0, 9], np.tile([0.1, 0.0], (5, 1)), atol=1e-6)
    assert (out["kin_vel"][0] == 0).all() and np.abs(out["kin_acc"]).max() < 1e-5
    # slot 1 has no track: NaN keypoints, zero kinematics, zero features
    assert np.isnan(k[:, 1]).all() and (out["kin_vel"][:, 1] == 0).all() and (out["kin_acc"][:, 1] == 0).all()
    assert out["record"]["track_stats"][1] == {"kept": False, "reason": "missing_track"}
    feats = pose_feature_sequence(out)
    assert (feats[:, 119:] == 0).all() and (feats[6:] == 0).all()      # person 2 and padded frames
    assert feats[3, feature_index(0, 9, "x")] == pytest.approx(0.9, abs=1e-6)
    assert feats[3, feature_index(0, 9, "vx")] == pytest.approx(0.1, abs=1e-6)
    # [T, 17, 3] is accepted as one track too
    np.testing.assert_array_equal(kinematics(kp[:, None])["kin_keypoints"], k)


def test_normalisation_removes_translation_scale_rotation():
    kp = _skeleton()
    angle = np.deg2rad(35.0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = kp.copy()
    moved[..., :2] = ((kp[..., :2] - 100.0) @ rot.T) * 2.5 + (400.0, -30.0)
    a, b = kinematics(kp), kinematics(moved)
    for key in ("kin_keypoints", "kin_vel", "kin_acc"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, equal_nan=True)
    assert b["record"]["track_stats"][0]["norm"]["scale_mean"] == pytest.approx(125.0)


def test_constant_acceleration_upsampling_hand_computed():
    # norm "none": x(t) = t^2 px for one valid joint; acc is exact (2) from t = 2 on.
    kp = np.full((5, 1, 17, 3), np.nan, np.float32)
    kp[:, 0, 0] = np.stack([np.arange(5.0) ** 2, np.zeros(5), np.ones(5)], axis=1)
    cfg = ProcCfg(norm_mode="none", interp_factor=2, min_valid_joint_frac=0.0, max_speed_p95=np.inf,
                  max_acc_p95=np.inf, keep_people=1)
    out = kinematics(kp, np.arange(5), cfg)
    x = out["kin_keypoints"][:, 0, 0, 0]
    np.testing.assert_allclose(out["kin_time"], np.arange(9) / 2)
    # [0,1] and [1,2]: no valid acceleration at the start -> linear; [2,3], [3,4]: exact t^2
    np.testing.assert_allclose(x, [0, 0.5, 1, 2.5, 4, 6.25, 9, 12.25, 16], atol=1e-6)
    np.testing.assert_allclose(out["kin_vel"][1:, 0, 0, 0], np.diff(x) / 0.5, atol=1e-5)
    assert np.isnan(out["kin_keypoints"][:, 0, 1]).all()           # invalid joint stays NaN
    # scores are not upsampled: first T' input scores, edge-padded (reference quirk)
    np.testing.assert_allclose(out["kin_keypoints"][:, 0, 0, 2], np.ones(9))


def test_frame_indices_set_the_time_step_and_drop_frame0():
    kp = _skeleton(frames=7)
    out = kinematics(kp, np.arange(0, 14, 2), ProcCfg(drop_frame0=True))
    np.testing.assert_array_equal(out["kin_time"], np.arange(2, 14, 2))
    np.testing.assert_allclose(out["kin_vel"][1:, 0, 9, 0], 0.05, atol=1e-6)   # 0.1 torso per 2 frames
    # a first frame index other than 0 is kept
    assert kinematics(kp, np.arange(1, 8), ProcCfg(drop_frame0=True))["kin_time"].shape == (7,)


def test_all_nan_is_rejected_and_features_are_zero():
    kp = np.full((8, 2, 17, 3), np.nan, np.float32)
    with pytest.raises(SampleRejected) as err:
        kinematics(kp, np.arange(8))
    assert err.value.reason == "all_tracks_filtered"
    assert err.value.record["track_stats"][0] == {"kept": False, "reason": "low_valid_frac", "valid_frac": 0.0}
    kin = {"keypoints": kp, "vel": np.zeros((8, 2, 17, 2)), "acc": np.full((8, 2, 17, 2), np.nan)}
    feats = pose_feature_sequence(kin)
    assert feats.shape == (64, 238) and not feats.any()


def test_quality_gates_and_track_order():
    fast = _skeleton(wrist_step=500.0)                 # 10 torso lengths per frame
    slow = _skeleton()
    slow[:2, :, 2] = 0.1                               # fewer valid joints than `fast`
    both = np.stack([slow, fast], axis=1)
    out = kinematics(both, None, ProcCfg())
    stats = out["record"]["track_stats"]
    assert stats[0]["kept"] is False and stats[0]["reason"] == "speed_p95"
    assert stats[1]["kept"] is True and stats[1]["track_index"] == 0
    assert np.isnan(out["kin_keypoints"][:, 0]).all() and not np.isnan(out["kin_keypoints"][2:, 1, :, :2]).any()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="keypoints"):
        kinematics(np.zeros((5, 2, 18, 3)))
    with pytest.raises(ValueError, match="frame_indices"):
        kinematics(_skeleton(), np.arange(3))
    with pytest.raises(ValueError, match="norm_mode"):
        ProcCfg(norm_mode="centre")
    with pytest.raises(ValueError, match="vel"):
        pose_feature_sequence({"keypoints": np.zeros((4, 2, 17, 3)), "vel": np.zeros((4, 2, 17, 3)),
                               "acc": np.zeros((4, 2, 17, 2))})


def test_short_sequence_is_zero_padded_and_long_one_cropped():
    rng = np.random.default_rng(0)
    kin = PoseKinematics(rng.random((10, 2, 17, 3), dtype=np.float32), rng.random((10, 2, 17, 2), dtype=np.float32),
                         rng.random((10, 2, 17, 2), dtype=np.float32))
    feats = pose_feature_sequence(kin, seq_len=16)
    assert feats.shape == (16, 238) and not feats[10:].any()
    np.testing.assert_array_equal(feats[:10].reshape(10, 2, 17, 7)[..., 3:5], kin.vel)
    np.testing.assert_array_equal(pose_feature_sequence(kin, seq_len=4), pose_feature_sequence(kin, 10)[3:7])
    starts = {int(np.flatnonzero((pose_feature_sequence(kin, 4, rng=rng)[0] ==
                                  pose_feature_sequence(kin, 10)[:, None]).all(-1).any(-1))[0])
              for _ in range(40)}
    assert starts == set(range(7))                               # random crop covers every start
    assert pose_feature_sequence(kin, seq_len=10, num_people=1).shape == (10, 119)


# ------------------------------------------------------------------------------------------------
# Augmentations
# ------------------------------------------------------------------------------------------------
@pytest.fixture()
def sample():
    rng = np.random.default_rng(3)
    kps = rng.normal(0.5, 0.2, (12, 2, 17, 3)).astype(np.float32)
    kps[..., 2] = rng.random((12, 2, 17))
    kps[4, 1, 7] = np.nan
    return PoseKinematics(kps, rng.normal(size=(12, 2, 17, 2)).astype(np.float32),
                          rng.normal(size=(12, 2, 17, 2)).astype(np.float32))


def _equal(a, b, atol=0.0):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0, equal_nan=True)


def test_flip_twice_is_identity_and_swaps_sides(sample):
    once = TR.flip(sample)
    _equal(TR.flip(once), sample, atol=1e-6)
    left, right = COCO17_FLIP_PAIRS[2]                             # shoulders 5, 6
    assert once.keypoints[0, 0, left, 0] == pytest.approx(1.0 - sample.keypoints[0, 0, right, 0])
    assert once.keypoints[0, 0, left, 1] == sample.keypoints[0, 0, right, 1]
    assert once.vel[0, 0, 0, 0] == -sample.vel[0, 0, 0, 0] and once.acc[0, 0, 0, 1] == sample.acc[0, 0, 0, 1]
    assert once.keypoints[0, 0, 0, 2] == sample.keypoints[0, 0, 0, 2]     # the nose stays the nose


def test_rotation_keeps_lengths_and_centre(sample):
    rotated = TR.rotate(sample, np.deg2rad(12.0))
    bone = lambda s: np.linalg.norm(s.keypoints[..., 9, :2] - s.keypoints[..., 7, :2], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bone(rotated), bone(sample), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rotated.vel, axis=-1), np.linalg.norm(sample.vel, axis=-1), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rotated.keypoints[..., :2] - 0.5, axis=-1),
                               np.linalg.norm(sample.keypoints[..., :2] - 0.5, axis=-1), atol=1e-5)
    _equal(TR.rotate(rotated, np.deg2rad(-12.0)), sample, atol=1e-5)
    np.testing.assert_array_equal(rotated.keypoints[..., 2], sample.keypoints[..., 2])


def test_scale_multiplies_lengths(sample):
    scaled = TR.scale(sample, 1.15)
    np.testing.assert_allclose(scaled.keypoints[..., :2] - 0.5, (sample.keypoints[..., :2] - 0.5) * 1.15, atol=1e-6)
    np.testing.assert_allclose(scaled.acc, sample.acc * 1.15, atol=1e-6)
    np.testing.assert_array_equal(scaled.keypoints[..., 2], sample.keypoints[..., 2])


def test_noise_statistics_and_conf_untouched(sample):
    big = PoseKinematics(*(np.zeros((200,) + a.shape[1:], np.float32) for a in sample))
    noisy = TR.add_noise(big, 0.01, np.random.default_rng(0))
    assert noisy.keypoints[..., :2].std() == pytest.approx(0.01, rel=0.05)
    assert noisy.vel.std() == pytest.approx(0.02, rel=0.05) and noisy.acc.std() == pytest.approx(0.04, rel=0.05)
    assert not noisy.keypoints[..., 2].any()
    assert np.isnan(TR.add_noise(sample, 0.01, np.random.default_rng(0)).keypoints[4, 1, 7, 0])


def test_time_warp(sample):
    _equal(TR.time_warp(sample, 1.0), sample)                     # speed 1 is the identity
    slow = TR.time_warp(sample, 0.8)
    assert slow.keypoints.shape[0] == 15
    _equal([slow.keypoints[[0, -1]]], [sample.keypoints[[0, -1]]])  # end points kept
    mid = np.linspace(0, 11, 15)[7]
    lo = int(mid)
    expected = sample.vel[lo] * (lo + 1 - mid) + sample.vel[lo + 1] * (mid - lo)
    np.testing.assert_allclose(slow.vel[7], expected, atol=1e-6)
    short = PoseKinematics(*(a[:3] for a in sample))
    assert TR.time_warp(short, 1.2) is short


def test_joint_drop(sample):
    dropped = TR.drop_joints(sample, [3, 10])
    assert not dropped.keypoints[:, :, [3, 10]].any() and not dropped.vel[:, :, [3, 10]].any()
    keep = [j for j in range(17) if j not in (3, 10)]
    _equal([dropped.keypoints[:, :, keep]], [sample.keypoints[:, :, keep]])


def test_composed_augmentation_is_seeded_and_composable(sample):
    chain = TR.seed_augmentation(aug_prob=0.5)
    a = chain(sample, np.random.default_rng(7))
    _equal(a, chain(sample, np.random.default_rng(7)))
    _equal(TR.seed_augmentation(aug_prob=0.0)(sample, np.random.default_rng(7)), sample)
    always = TR.Compose((TR.RandomApply(TR.RandomFlip(), 1.0), TR.RandomApply(TR.RandomFlip(), 1.0)))
    _equal(always(sample, np.random.default_rng(1)), sample, atol=1e-6)
    outputs = {TR.seed_augmentation(1.0)(sample, np.random.default_rng(s)).keypoints.shape[0] for s in range(6)}
    assert len(outputs) > 1                                       # time warp changes T
    assert pose_feature_sequence(a, rng=np.random.default_rng(0)).shape == (64, 238)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
_REFERENCE_CLASSES = {
    "BiLSTMEmotionClassifier": (caer.RecurrentAttentionClassifier, {"cell": "lstm"}),
    "GRUClassifier": (caer.RecurrentAttentionClassifier, {"cell": "gru"}),
    "TCNBiLSTMClassifier": (caer.TCNBiLSTM, {}),
    "TransformerClassifier": (caer.PoseTransformer, {}),
    "Conv1DClassifier": (caer.Conv1DClassifier, {}),
    "MultiScaleClassifier": (caer.MultiScaleClassifier, {}),
    "ConvLSTMClassifier": (caer.ConvLSTMClassifier, {}),
    "DeepResidualClassifier": (caer.DeepResidual, {"input_dropout": 0.0}),
    "GraphSkeletonClassifier": (caer.GraphSkeletonClassifier, {}),
    "DeepResidualV2": (caer.DeepResidual, {}),
    "DeepResidualPreact": (caer.DeepResidual, {"block_type": "preact", "attention_bias": True}),
}
_KWARG = re.compile(r'(\w+)\s*(?::\s*(?:int|float|str|bool))?\s*=\s*("[^"]*"|[^,()\s]+)')


def _reference_args(args):
    """(reference class name, kwargs) from a param_counts.json ``args`` entry."""
    if isinstance(args, dict):
        return "DeepResidualV2", dict(args)
    cls = re.match(r"(?:\w+\.)?(\w+)\(", args).group(1)
    kwargs = {m.group(1): ast.literal_eval(m.group(2).replace('"', "'")) if m.group(2)[0] == '"'
              else ast.literal_eval(m.group(2)) for m in _KWARG.finditer(args)}
    return cls, {("in_dim" if k == "input_dim" else k): v for k, v in kwargs.items()}


def _caer_entries(shared):
    models = json.loads((shared / "reference/param_counts.json").read_text())["models"]
    return {k: v for k, v in models.items() if k.startswith("CAER/")}


def test_parameter_counts_match_reference(shared):
    entries = _caer_entries(shared)
    assert len(entries) >= 36  # 10 architectures, 9 class defaults, 15 variations, V2 defaults, best model
    for key, ref in entries.items():
        cls, kwargs = _reference_args(ref["args"])
        builder, extra = _REFERENCE_CLASSES[cls]
        model = builder(**kwargs, **extra)
        got = (sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers()),
               len(model.state_dict()))
        assert got == (ref["parameters"], ref["buffers_incl_bn_stats"], ref["state_dict_tensors"]), (key, kwargs)


def test_tables_match_reference_counts(shared):
    entries = _caer_entries(shared)
    for name in caer.CAER_ARCHITECTURES:
        key = ("CAER/train_best_model DeepResidualPreact" if name == "DeepResidualPreact"
               else f"CAER/train_architectures {name}")
        assert sum(p.numel() for p in caer.build_caer(name).parameters()) == entries[key]["parameters"], name
    for name in caer.DEEP_RESIDUAL_VARIATIONS:
        expected = entries[f"CAER/deep_residual_variations {name}"]["parameters"]
        assert sum(p.numel() for p in caer.build_caer(name).parameters()) == expected, name


def test_best_model_attention_bias_is_one_parameter():
    best, v2 = caer.build_caer("DeepResidualPreact"), caer.build_caer("h256_b4_preact")
    assert sum(p.numel() for p in best.parameters()) == 693_001
    assert sum(p.numel() for p in v2.parameters()) == 693_000
    best.load_state_dict({k: v for k, v in v2.state_dict().items()}, strict=False)
    x = torch.randn(2, 64, 238)
    best.eval(), v2.eval()
    with torch.no_grad():
        best.pool.score[2].bias.fill_(3.0)                         # a constant score shift: softmax ignores it
        np.testing.assert_allclose(best(x).numpy(), v2(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", list(caer.CAER_ARCHITECTURES) + ["h256_b4_bottleneck", "h256_b4_meanpool",
                                                                  "h256_b4_maxpool", "h384_b6_preact_SE"])
def test_forward_backward(name):
    torch.manual_seed(0)
    model = caer.build_caer(name)
    x = torch.randn(3, 64, 238)
    logits = model(x)
    assert logits.shape == (3, 8) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6]), label_smoothing=0.1).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) > 0 for g in grads) >= len(grads) - 1   # the best model's bias gets 0
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model(x[:1]).numpy(), model(x)[:1].numpy(), atol=1e-4)


def test_models_reject_bad_shapes_and_names():
    with pytest.raises(ValueError, match="238"):
        caer.build_caer("DeepResidual")(torch.zeros(2, 64, 237))
    with pytest.raises(KeyError, match="DeepResidual"):
        caer.build_caer("ResNet")
    with pytest.raises(ValueError, match="pooling"):
        caer.DeepResidual(pooling="median")
    with pytest.raises(ValueError, match="in_dim"):
        caer.GraphSkeletonClassifier(in_dim=240)


def test_training_defaults_and_sampler():
    t = caer.CAER_TRAINING
    assert (t["optimizer"], t["lr"], t["weight_decay"], t["epochs"], t["batch_size"], t["label_smoothing"]) == \
        ("adamw", 5e-4, 1e-4, 60, 32, 0.1)
    assert t["sampler"] == "balanced" and t["class_weights"] == "uniform" and t["scheduler"] == "cosine"
    assert caer.CAER_CLASSES[-1] == "other" and len(caer.CAER_CLASSES) == 8
    assert caer.class_weights(caer.CAER_BEST_TRAINING["class_weights"]).tolist() == [1.0] * 7 + [0.0]
    labels = [0] * 6 + [3] * 2 + [5]
    sampler = balanced_sampler(labels, torch.Generator().manual_seed(0))  # the trainer's: 1 / class count
    assert (sampler.weights * 6).tolist() == pytest.approx([1.0] * 6 + [3.0] * 2 + [6.0])
    assert len(list(sampler)) == len(labels)
