"""Tests for pipelines.represent.timeline (FER_BGER timeline and one-channel PoTion)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.represent.timeline import potion_one_channel, skeleton_timeline
from pipelines.sampling import timeline_frame_indices

FER = "reference/representations/fer_bger"
TIMELINES = [
    "timeline_step_00001_Angry_x17_L300",
    "timeline_step_00008_Angry_x17_L300",
    "timeline_street_walker_L300",
]
POTIONS = ["potion_step_00002_Happy_L32", "potion_step_00009_Neutral_L32", "potion_street_walker_L100"]


@pytest.mark.parametrize("name", TIMELINES)
def test_timeline_reference_parity(shared, name):
    ref = np.load(shared / FER / f"{name}.npz")
    joints = ref["joints28_xyz"][..., :2]  # float64 (x, y); z is unused
    out = skeleton_timeline(joints, size=64, length=300)
    assert out.dtype == np.float32 and out.shape == (56, 64, 300)
    np.testing.assert_array_equal(out, ref["timeline"])


@pytest.mark.parametrize("name", POTIONS)
def test_potion_reference_parity(shared, name):
    ref = np.load(shared / FER / f"{name}.npz")
    length = json.loads((shared / FER / f"{name}.json").read_text())["params"]["length"]
    out = potion_one_channel(ref["joints28_xyz"][..., :2], size=64, length=length)
    assert out.dtype == np.float32 and out.shape == (28, 64, 64)
    np.testing.assert_allclose(out, ref["potion"], rtol=0, atol=1e-6)


def _hand_joints():
    """2 frames x 3 joints; the expected bins are worked out in test_timeline_hand_computed."""
    return np.array(
        [
            [[0.5, 0.0], [2.0, 3.9], [6.7, 1.2]],
            [[-1.5, 2.0], [np.nan, np.nan], [3.0, 2.0]],
        ]
    )


def test_timeline_hand_computed():
    # offset (0, 0), margin 1, size 8, length 4.
    # Frame 0: px = int(.) = [0, 2, 6], py = [0, 3, 1].
    #   x box: min 0-1 = -1, max 6+1 = 7 -> range 8; y box: -1 .. 4 -> range 5.
    #   scale = min(8/8, 8/5) = 1.0 -> nx = [1, 3, 7], ny = [1, 4, 2].
    # Frame 1: joint 1 missing (NaN). px = [int(-1.5) = -1 (toward zero, not -2), 3], py = [2, 2].
    #   x box: -2 .. 4 -> range 6; y box: 1 .. 3 -> range 2; scale = min(8/6, 8/2) = 4/3.
    #   nx = [int(1 * 4/3) = 1, int(5 * 4/3) = int(6.67) = 6], ny = [int(1 * 4/3) = 1, 1].
    # Time: T = 2, nrows = 3 < 4 -> columns 0, 1 = frames 0, 1; faithful pad: column 2 = frame 1.
    out = skeleton_timeline(_hand_joints(), size=8, length=4, offset=(0.0, 0.0), margin=1)
    expected = np.zeros((6, 8, 4), dtype=np.float32)
    for col, frame_bins in ((0, {0: (1, 1), 1: (3, 4), 2: (7, 2)}),
                            (1, {0: (1, 1), 2: (6, 1)}),
                            (2, {0: (1, 1), 2: (6, 1)})):
        for j, (nx, ny) in frame_bins.items():
            expected[2 * j, nx, col] = j + 1
            expected[2 * j + 1, ny, col] = j + 1
    np.testing.assert_array_equal(out, expected)


def test_timeline_pad_modes():
    joints = _hand_joints()
    kw = dict(size=8, length=5, offset=(0.0, 0.0), margin=1)
    faithful = skeleton_timeline(joints, pad="faithful", **kw)
    repeat = skeleton_timeline(joints, pad="repeat", **kw)
    zero = skeleton_timeline(joints, pad="zero", **kw)
    filled = lambda a: [bool(a[..., c].any()) for c in range(5)]  # noqa: E731
    assert filled(faithful) == [True, True, True, False, False]
    assert filled(repeat) == [True] * 5
    assert filled(zero) == [True, True, False, False, False]
    for c in (2, 3, 4):
        np.testing.assert_array_equal(repeat[..., c], repeat[..., 1])
    np.testing.assert_array_equal(faithful[..., 2], faithful[..., 1])


def test_timeline_frame_indices_paths():
    # nrows = 10 >= 5: linspace(0, 10, 5, endpoint=False) = 0, 2, 4, 6, 8.
    np.testing.assert_array_equal(timeline_frame_indices(9, 5), [0, 2, 4, 6, 8])
    # nrows == length: the last pick (4) is the header-shifted row that does not exist -> empty.
    np.testing.assert_array_equal(timeline_frame_indices(4, 5), [0, 1, 2, 3, -1])
    np.testing.assert_array_equal(timeline_frame_indices(2, 5, "faithful"), [0, 1, 1, -1, -1])
    np.testing.assert_array_equal(timeline_frame_indices(2, 5, "repeat"), [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(timeline_frame_indices(2, 5, "zero"), [0, 1, -1, -1, -1])


def test_timeline_nan_handling():
    joints = _hand_joints()
    out = skeleton_timeline(joints, size=8, length=4, offset=(0.0, 0.0), margin=1)
    assert not out[2:4, :, 1].any()  # joint 1 missing in frame 1: no bin in either track
    # A NaN joint does not move the others: dropping joint 1 from frame 0 changes frame 0 only.
    joints[0, 1] = np.nan
    out2 = skeleton_timeline(joints, size=8, length=4, offset=(0.0, 0.0), margin=1)
    np.testing.assert_array_equal(out2[:, :, 1:], out[:, :, 1:])
    # All joints missing in a frame -> empty column.
    joints[1] = np.nan
    out3 = skeleton_timeline(joints, size=8, length=4, offset=(0.0, 0.0), margin=1, pad="zero")
    assert not out3[..., 1].any() and out3[..., 0].any()


def test_timeline_zero_range_and_clamp():
    # margin 0, all joints on one point: both ranges 0 -> no division, every bin 0.
    same = np.zeros((1, 3, 2))
    out = skeleton_timeline(same, size=8, length=2, offset=(0.0, 0.0), margin=0)
    assert out[0::2, 0, 0].tolist() == [1, 2, 3] and out[1::2, 0, 0].tolist() == [1, 2, 3]
    # margin 0, x spans 0..10, y range 0 (ignored): scale 8/10, the right joint would land on
    # int(10 * 0.8) = 8 == size (IndexError in the reference) -> clamped to 7.
    line = np.array([[[0.0, 0.0], [10.0, 0.0]]])
    out = skeleton_timeline(line, size=8, length=2, offset=(0.0, 0.0), margin=0)
    assert out[0, 0, 0] == 1 and out[2, 7, 0] == 2


def test_timeline_errors():
    with pytest.raises(ValueError):
        skeleton_timeline(np.zeros((3, 4, 3)))
    with pytest.raises(ValueError):
        skeleton_timeline(np.zeros((0, 4, 2)))
    with pytest.raises(ValueError):
        skeleton_timeline(np.zeros((3, 4, 2)), pad="mirror")
    with pytest.raises(ValueError):
        skeleton_timeline(np.zeros((3, 4, 2)), margin=-1)
    with pytest.raises(ValueError):
        potion_one_channel(np.zeros((3, 4, 2)))  # length is required


def test_potion_hand_computed():
    # 2 identical frames x 2 joints, length 3 -> nrows 3 >= 3: picks 0, 1, 2; pick 2 has no row.
    # j0 (0, 0): px = 1000 - (0 + 80) * 2 = 840, py = 1000 - (0 + 10) * 2 = 980.
    # j1 (10.9, 3.2): int -> (10, 3): px = 1000 - 90 * 2 = 820, py = 1000 - 13 * 2 = 974.
    # x box 815 .. 845 (range 30), y box 969 .. 985 (range 16); scale = min(64/30, 64/16) = 32/15.
    # j0: nx = int(25 * 32/15) = int(53.3) = 53, ny = int(11 * 32/15) = int(23.5) = 23.
    # j1: nx = int(5 * 32/15) = int(10.7) = 10, ny = int(5 * 32/15) = 10.
    # P = H[slot 0] * 0/2 + H[slot 1] * 1/2, first spatial index from x.
    frame = [[0.0, 0.0], [10.9, 3.2]]
    out = potion_one_channel(np.array([frame, frame]), size=64, length=3)
    expected = np.zeros((2, 64, 64), dtype=np.float32)
    expected[0, 53, 23] = 0.5
    expected[1, 10, 10] = 0.5
    np.testing.assert_array_equal(out, expected)


def test_potion_pad_and_nan():
    joints = np.array([[[0.0, 0.0], [10.0, 3.0]], [[1.0, 1.0], [np.nan, 2.0]]])
    faithful = potion_one_channel(joints, length=5, pad="faithful")
    repeat = potion_one_channel(joints, length=5, pad="repeat")
    zero = potion_one_channel(joints, length=5, pad="zero")
    # T = 2 < nrows 3 < 5: slots 0, 1 copied; faithful adds slot 2, repeat slots 2..4.
    # Joint 0 of frame 1 is alone in its frame (joint 1 is NaN): bin (32, 32).
    assert zero[0, 32, 32] == pytest.approx(1 / 4)
    assert faithful[0, 32, 32] == pytest.approx(1 / 4 + 2 / 4)
    assert repeat[0, 32, 32] == pytest.approx(1 / 4 + 2 / 4 + 3 / 4 + 4 / 4)
    # Joint 1 only exists in frame 0 (weight 0) -> its map is all zero.
    assert not faithful[1].any() and not repeat[1].any()
