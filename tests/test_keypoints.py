"""Keypoint layouts and mappings (schemas/keypoints.py) on hand-made arrays."""
from __future__ import annotations

import numpy as np
import pytest

from schemas import keypoints as kp
from schemas.keypoints import (LAYOUTS, MAPPINGS, MPII16, PROXEMO16, coco17_to_openpose18,
                               coco17_to_proxemo16, get_layout, kinect25_to_openpose18,
                               map_keypoints, mpii16_to_proxemo16)

EXPECTED_COUNTS = {"coco17": 17, "openpose18": 18, "mpii16": 16, "proxemo16": 16, "kinect25": 25, "emilya28": 28}


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_layout_counts_names_edges(name):
    lay = LAYOUTS[name]
    assert lay.name == name and lay.num_joints == EXPECTED_COUNTS[name]
    assert len(set(lay.joints)) == lay.num_joints
    for a, b in lay.edges:
        assert 0 <= a < lay.num_joints and 0 <= b < lay.num_joints and a != b
    assert len({frozenset(e) for e in lay.edges}) == len(lay.edges)  # no duplicate bones


@pytest.mark.parametrize("name", ["mpii16", "proxemo16", "kinect25", "openpose18"])
def test_tree_skeletons_are_connected_trees(name):
    lay = LAYOUTS[name]
    assert len(lay.edges) == lay.num_joints - 1
    seen, todo = {0}, [0]
    while todo:
        j = todo.pop()
        for a, b in lay.edges:
            for u, v in ((a, b), (b, a)):
                if u == j and v not in seen:
                    seen.add(v)
                    todo.append(v)
    assert seen == set(range(lay.num_joints))


def test_known_indices():
    assert get_layout("mpii16").index("pelvis") == 6
    assert get_layout("kinect25").index("spine_shoulder") == 20
    assert get_layout("kinect25").index("thumb_right") == 24
    assert PROXEMO16[10] == "left_hip" and PROXEMO16[4] == "left_shoulder"
    assert kp.EMILYA28_UPPER_BODY == tuple(range(14))
    with pytest.raises(KeyError, match="no joint"):
        get_layout("coco17").index("pelvis")
    with pytest.raises(KeyError, match="unknown keypoint layout"):
        get_layout("h36m17")


def test_mappings_reference_valid_indices():
    for (src, dst), m in MAPPINGS.items():
        assert len(m.sources) == LAYOUTS[dst].num_joints
        assert all(0 <= i < LAYOUTS[src].num_joints for idx in m.sources for i in idx)


def _coco(rng, lead=(2, 3)):
    a = rng.uniform(0, 100, lead + (17, 3)).astype(np.float32)
    a[..., 2] = rng.uniform(0.1, 1.0, lead + (17,))
    return a


def test_generic_coco_to_openpose_matches_legacy_function():
    a = _coco(np.random.default_rng(0))
    a[0, 1, 5] = np.nan  # a missing left shoulder -> NaN neck
    got = map_keypoints(a, "coco17", "openpose18")
    want = coco17_to_openpose18(a)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), atol=1e-6)
    assert np.isnan(got[0, 1, 1]).all()


def test_mpii_to_proxemo_seed_order_by_hand():
    # joint j holds (j, 10 j, 100 j) so the output names its source
    a = np.stack([np.arange(16), 10 * np.arange(16), 100 * np.arange(16)], -1).astype(np.float64)
    out = mpii16_to_proxemo16(a)
    assert out.dtype == np.float64 and out.shape == (16, 3)
    np.testing.assert_array_equal(out[:, 0], [6, 7, 8, 9, 12, 11, 10, 13, 14, 15, 3, 4, 5, 2, 1, 0])
    np.testing.assert_array_equal(out[:, 2], 100 * out[:, 0])
    # QUIRK: ProxEmo's left shoulder is MPII's right shoulder, ProxEmo's left hip is MPII's left hip
    assert MPII16[int(out[4, 0])] == "right_shoulder"
    assert MPII16[int(out[10, 0])] == "left_hip"
    fixed = mpii16_to_proxemo16(a, faithful=False)
    assert [MPII16[int(i)] for i in fixed[:, 0]] == [
        "pelvis", "thorax", "upper_neck", "head_top", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle",
        "right_hip", "right_knee", "right_ankle"]
    # the seed's column list of seed_specs §2.1
    cols = np.concatenate([np.arange(3 * i, 3 * i + 3) for i in [6, 7, 8, 9, 12, 11, 10, 13, 14, 15, 3, 4, 5, 2, 1, 0]])
    assert cols.tolist() == list(range(18, 30)) + [36, 37, 38, 33, 34, 35, 30, 31, 32] + list(range(39, 48)) \
        + list(range(9, 18)) + [6, 7, 8, 3, 4, 5, 0, 1, 2]


def test_coco_to_proxemo_hand_computed():
    a = np.full((17, 3), np.nan, np.float32)
    a[5] = (10, 20, 0.9)   # left shoulder
    a[6] = (30, 20, 0.8)   # right shoulder
    a[11] = (12, 60, 0.7)  # left hip
    a[12] = (28, 64, 0.6)  # right hip
    a[0] = (20, 5, 0.95)   # nose
    out = coco17_to_proxemo16(a)
    np.testing.assert_allclose(out[0], (20, 62, 0.6))           # root = mid-hip, min score
    np.testing.assert_allclose(out[1], (20, 41, 0.6))           # spine = mean of 4
    np.testing.assert_allclose(out[2], (20, 20, 0.8))           # neck = mid-shoulder
    np.testing.assert_allclose(out[3], (20, 5, 0.95))           # head = nose
    np.testing.assert_allclose(out[4], a[5])                    # left shoulder
    assert np.isnan(out[6]).all() and np.isnan(out[15]).all()   # wrists/ankles absent -> NaN


def test_missing_joints_are_nan_and_coordinates_only_mean():
    k = np.arange(25 * 3, dtype=np.float32).reshape(25, 3)
    op = kinect25_to_openpose18(k)
    for name in ("right_eye", "left_eye", "right_ear", "left_ear"):
        assert np.isnan(op[kp.OPENPOSE18.index(name)]).all()
    np.testing.assert_array_equal(op[1], k[20])  # neck = SpineShoulder
    xyz = np.zeros((17, 3))
    xyz[11], xyz[12] = (0, 0, 2), (2, 2, 4)
    root = map_keypoints(xyz, "coco17", "proxemo16", has_score=False)[0]
    np.testing.assert_allclose(root, (1, 1, 3))  # z averaged, not min-ed


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"\[\.\.\., 16, C\]"):
        mpii16_to_proxemo16(np.zeros((17, 3)))
    with pytest.raises(KeyError, match="no keypoint mapping"):
        map_keypoints(np.zeros((16, 3)), "proxemo16", "kinect25")
    same = map_keypoints(np.ones((2, 16, 3)), "mpii16", "mpii16")
    assert same.shape == (2, 16, 3)
