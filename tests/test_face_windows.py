"""VTT 4-frame face windows and square face crops (pipelines/represent/face_windows.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines import sampling as SP
from pipelines.crops import crop_centred_padded, vtt_square_centre, vtt_square_side
from pipelines.represent import face_windows as F


def test_window_frames():
    assert SP.window_frames(10).tolist() == [8, 9, 10, 11]
    assert SP.window_frames(10, 100).tolist() == [8, 9, 10, 11]
    assert SP.window_frames(0, 5).tolist() == [0, 0, 0, 1]        # clamped at the start
    assert SP.window_frames(4, 5).tolist() == [2, 3, 4, 4]        # clamped at the end
    assert SP.window_frames(0, 1).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="clamp=False"):
        SP.window_frames(1, 5, clamp=False)
    with pytest.raises(ValueError, match="outside"):
        SP.window_frames(5, 5)


def test_timecode():
    assert F.timecode_to_frame("00:01:02;05") == 62 * 24 + 5
    assert F.timecode_to_frame("01:00:00;00", fps=30) == 108000
    with pytest.raises(ValueError, match="HH:MM:SS;FF"):
        F.timecode_to_frame("00:01:02.05")


def test_crop_side_and_center_hand_computed():
    box = [10, 20, 40, 60]                      # w 30, h 40
    assert vtt_square_side(box, "static") == 65     # 30 + 70 * 0.5
    assert vtt_square_side(box, "friends") == 55    # m = 21: sqrt(51 * 61) = 55.78
    assert vtt_square_centre(box) == (25, 40)
    assert vtt_square_centre([10.5, 20.5, 41.4, 61.4]) == (25, 40)  # 25.95, 40.95 truncated
    with pytest.raises(ValueError, match="rule"):
        vtt_square_side(box, "affectnet")
    with pytest.raises(ValueError, match="x2 > x1"):
        vtt_square_side([5, 5, 5, 9])


def test_crop_square_padding_zero_and_mean():
    img = np.zeros((6, 8, 3), np.uint8)
    img[0], img[1], img[2] = 0, 30, 60           # rows with constant colour
    img[3:] = 200
    # centre (1, 1), side 4 -> columns -1..2, rows -1..2: pad 1 left / top
    z = crop_centred_padded(img, 1, 1, 4, "zero")
    assert z.shape == (4, 4, 3)
    assert (z[0] == 0).all() and (z[:, 0] == 0).all()
    np.testing.assert_array_equal(z[1:, 1:], img[0:3, 0:3])
    m = crop_centred_padded(img, 1, 1, 4, "mean")
    # in-image rows 0, 1, 2 sampled at linspace(0, 3, 10) -> 4, 3, 3 times: 0.4*0 + 0.3*30 + 0.3*60 = 27
    assert (m[0] == 27).all() and (m[:, 0] == 27).all()
    np.testing.assert_array_equal(m[1:, 1:], img[0:3, 0:3])
    # side 3 is odd: columns cx-1 .. cx+1; inside the image no padding
    np.testing.assert_array_equal(crop_centred_padded(img, 4, 3, 3), img[2:5, 3:6])
    # entirely outside -> zeros
    assert (crop_centred_padded(img, 100, 100, 5, "mean") == 0).all()


def test_face_crop_and_window():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (6, 120, 160, 3), dtype=np.uint8)
    box = [60, 40, 90, 80]                       # w 30, h 40, centre (75, 60); friends side 55
    crop = F.vtt_face_crop(video[2], box, "friends", size=64)
    want = cv2.resize(video[2][60 - 27:60 + 28, 75 - 27:75 + 28], (64, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop, want)
    crops = F.window_crops(video, 1, box, size=32)
    assert crops.shape == (4, 32, 32, 3) and crops.dtype == np.uint8
    # window of frame 1 is [-1, 0, 1, 2] -> clamped [0, 0, 1, 2]
    for k, i in enumerate([0, 0, 1, 2]):
        np.testing.assert_array_equal(crops[k], F.vtt_face_crop(video[i], box, size=32))
    static = F.vtt_face_crop(video[0], [140, 100, 160, 120], "static", size=40)  # side 40, runs off the corner
    assert static.shape == (40, 40, 3)
