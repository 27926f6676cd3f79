"""Pose tracking (extractors/tracking.py): vectorised distances and greedy matching."""
import numpy as np

from extractors.tracking import pose_distance, pose_distances, pose_scales, track_poses


def _pose(x0, y0, score=0.9, joints=4):
    """A square-ish pose: joints at (x0 + 10 j, y0 + 20 j)."""
    j = np.arange(joints, dtype=np.float32)
    return np.stack([x0 + 10 * j, y0 + 20 * j, np.full(joints, score, np.float32)], axis=1)


def test_pose_distance_by_hand():
    a, b = _pose(0, 0), _pose(3, 4)  # every joint moved by 5 px
    scale = np.hypot(30, 60)  # box of a's joints: 30 x 60 px
    assert pose_distance(a, b) == np.float64(5 / scale)
    b[1:, 2] = 0.1  # only joint 0 is confident in both
    a[0, :2] = [-6, -8]  # 15 px from b's joint 0 at (3, 4); a's box now 36 x 68
    assert np.isclose(pose_distance(a, b), 15 / np.hypot(36, 68))
    b[0, 2] = np.nan  # no joint confident in both
    assert pose_distance(a, b) == np.inf


def test_pose_scales_of_unconfident_pose_is_one():
    p = _pose(0, 0, score=0.1)
    assert pose_scales(np.stack([p, _pose(0, 0)]), 0.2).tolist() == [1.0, np.hypot(30, 60)]


def test_pose_distances_matrix_equals_pairwise():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 300, (5, 17, 3)).astype(np.float32)
    cand = rng.uniform(0, 300, (4, 17, 3)).astype(np.float32)
    ref[..., 2], cand[..., 2] = rng.uniform(size=(5, 17)), rng.uniform(size=(4, 17))
    ref[2, :, 2] = 0.0  # no confident joint at all
    got = pose_distances(ref, cand)
    want = [[pose_distance(r, c) for c in cand] for r in ref]
    assert np.allclose(got, want) and np.isinf(got[2]).all()


def test_track_poses_greedy_order_and_new_tracks():
    # frame 0: people A (x=0) and B (x=100); frame 1: B' (x=104) listed first, A' (x=2), and a
    # newcomer C far away; frame 2: nobody; frame 3: A'' only.
    a0, b0 = _pose(0, 0), _pose(100, 0)
    frames = [np.stack([a0, b0]), np.stack([_pose(104, 0), _pose(2, 0), _pose(900, 900)]),
              np.zeros((0, 4, 3), np.float32), _pose(1, 0)[None]]
    tracks = track_poses(frames)
    assert tracks.shape == (3, 4, 4, 3)
    assert np.array_equal(tracks[0, 1], frames[1][1]) and np.array_equal(tracks[1, 1], frames[1][0])
    assert np.array_equal(tracks[2, 1], frames[1][2]) and np.isnan(tracks[2, 0]).all()
    assert np.isnan(tracks[:, 2]).all()
    assert np.array_equal(tracks[0, 3], frames[3][0]) and np.isnan(tracks[1:, 3]).all()


def test_track_poses_tie_goes_to_the_older_track():
    # two tracks at the same distance from one pose: the lower track index wins
    frames = [np.stack([_pose(0, 0), _pose(0, 0)]), _pose(1, 0)[None]]
    tracks = track_poses(frames)
    assert np.array_equal(tracks[0, 1], frames[1][0]) and np.isnan(tracks[1, 1]).all()


def test_track_gap_longer_than_max_gap_starts_a_new_track():
    frames = [_pose(0, 0)[None]] + [np.zeros((0, 4, 3), np.float32)] * 6 + [_pose(0, 0)[None]]
    assert track_poses(frames, max_gap=6).shape[0] == 2  # seen at 0, next pose at 7
    assert track_poses(frames, max_gap=7).shape[0] == 1
