"""TSN segments, crops and face masks (pipelines/represent/segments.py)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipelines import crops as C
from pipelines import sampling as SP
from pipelines.represent import segments as S


def test_val_and_test_offsets_match_reference(shared):
    ref = json.loads((shared / "reference/representations/tsn/segment_offsets.json").read_text())
    assert len(ref["cases"]) == 32
    for case in ref["cases"]:
        n, s = case["num_frames"], case["num_segments"]
        assert SP.val_offsets(n, s).tolist() == case["val"], case
        assert SP.test_offsets(n, s).tolist() == case["test"], case
        assert SP.segment_offsets(n, s, "val").tolist() == case["val"]


def test_offsets_hand_computed():
    # 10 frames in the container -> num_frames 9 (QUIRK); tick 3 -> int(1.5 + 3x) + 1
    assert SP.record_num_frames(10) == 9 and SP.record_num_frames(10, faithful=False) == 10
    assert SP.val_offsets(9, 3).tolist() == [2, 5, 8]
    assert SP.val_offsets(10, 3).tolist() == [2, 6, 9]   # fixed variant: tick 10/3
    # fewer frames than segments: val repeats frame 1, test spreads over what exists
    assert SP.val_offsets(2, 3).tolist() == [1, 1, 1]
    assert SP.test_offsets(2, 3).tolist() == [1, 2, 2]
    # 0 frames (a 1-frame video after the QUIRK) and a negative count (an empty video)
    assert SP.val_offsets(0, 5).tolist() == [1] * 5 == SP.test_offsets(0, 5).tolist()
    assert SP.test_offsets(-1, 3).tolist() == [1, 1, 1]  # int() truncates -0.17, -0.5, -0.83 to 0
    assert SP.offsets_to_indices(SP.val_offsets(SP.record_num_frames(1), 3), 1).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="no frames"):
        SP.offsets_to_indices(SP.val_offsets(SP.record_num_frames(0), 3), 0)
    with pytest.raises(ValueError, match="outside"):
        SP.offsets_to_indices(np.array([1, 11]), 10)
    with pytest.raises(ValueError, match="phase"):
        SP.segment_offsets(10, 3, "eval")
    with pytest.raises(ValueError, match="rng"):
        SP.segment_offsets(10, 3, "train")


def test_train_offsets_seeded_and_in_their_segments():
    a = SP.train_offsets(31, 5, np.random.default_rng(7))
    b = SP.segment_offsets(31, 5, "train", rng=np.random.default_rng(7))
    assert a.tolist() == b.tolist()
    avg = 31 // 5
    for s, off in enumerate(a):
        assert s * avg + 1 <= off <= s * avg + avg  # 1-based, inside segment s
    draws = np.stack([SP.train_offsets(31, 5, np.random.default_rng(i)) for i in range(200)])
    assert set(np.unique(draws[:, 0])) == set(range(1, avg + 1))  # uniform over the segment
    assert SP.train_offsets(3, 5, np.random.default_rng(0)).tolist() == [1] * 5  # n < S -> zeros + 1
    assert SP.train_offsets(5, 5, np.random.default_rng(0)).tolist() == [1, 2, 3, 4, 5]  # avg 1


def test_expand_box_rounding_margin_clamping():
    # corners round half to even: (12, 20, 36, 60); w 24 -> margin 2, h 40 -> margin 4
    assert C.expand_box([12.4, 19.6, 36.5, 60.2], (100, 200)) == (10, 16, 38, 64)
    # w 25 -> round(2.5) = 2 (half to even), h 15 -> round(1.5) = 2
    assert C.expand_box([10, 20, 35, 35], (100, 200)) == (8, 18, 37, 37)
    assert C.expand_box([2, 3, 98, 50], (52, 100)) == (0, 0, 100, 52)  # clamped to W, H
    with pytest.raises(ValueError, match="finite"):
        C.expand_box([0, 0, np.nan, 3], (10, 10))


def test_zero_region_blacks_out_rows_top_to_bottom_and_columns_left_to_right():
    frame = np.full((4, 6, 3), 9, np.uint8)
    out = C.zero_region(frame, (1, 2, 4, 3))  # left 1, top 2, right 4, bottom 3: row 2, columns 1-3
    assert out is not frame and (frame == 9).all()
    assert out[..., 0].tolist() == [[9] * 6, [9] * 6, [9, 0, 0, 0, 9, 9], [9] * 6]
    assert C.zero_region(frame, None) is frame


def _frame():
    return np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8) | 1  # no zeros


def test_tsn_crops_by_mode():
    frame = _frame()
    face = [30, 10, 50, 30]                       # -> region (28, 8, 52, 32)
    kp = np.array([[20, 5, 0.9], [60, 55, 0.8], [70, 58, 0.1], [np.nan, np.nan, np.nan]])
    # body box from the two valid joints (20, 5)-(60, 55): margins 4, 5 -> (16, 0, 64, 60)
    crop, extra = S.tsn_crops(frame, "face", face, kp)
    assert extra is None
    np.testing.assert_array_equal(crop, frame[8:32, 28:52])
    full, _ = S.tsn_crops(frame, "fullbody", face, kp)
    np.testing.assert_array_equal(full, frame[0:60, 16:64])
    body, _ = S.tsn_crops(frame, "body", face, kp)
    assert body.shape == (60, 48, 3)
    assert (body[8:32, 12:36] == 0).all()          # face region blacked out (columns 28-16 .. 52-16)
    assert (body[:8] != 0).all() and (body[32:] != 0).all()
    fb, fface = S.tsn_crops(frame, "fusion", face, kp)
    np.testing.assert_array_equal(fb, body)
    np.testing.assert_array_equal(fface, frame[8:32, 28:52])  # from the original frame
    assert (frame != 0).all()                      # the input is not modified


def test_tsn_crops_missing_detections_give_whole_frame():
    frame = _frame()
    crop, _ = S.tsn_crops(frame, "face", None)
    np.testing.assert_array_equal(crop, frame)
    crop, _ = S.tsn_crops(frame, "face", [np.nan] * 4)
    np.testing.assert_array_equal(crop, frame)
    body, face = S.tsn_crops(frame, "fusion", None, np.full((17, 3), np.nan))
    np.testing.assert_array_equal(body, frame)    # no body, nothing blacked out
    np.testing.assert_array_equal(face, frame)
    body, _ = S.tsn_crops(frame, "body", [30, 10, 50, 30], None)
    assert body.shape == frame.shape and (body[8:32, 28:52] == 0).all()
    point, _ = S.tsn_crops(frame, "fullbody", None, np.array([[40.0, 30.0, 1.0]]))
    np.testing.assert_array_equal(point, frame)    # a one-joint body has an empty region
    with pytest.raises(ValueError, match="mode"):
        S.tsn_crops(frame, "head", None)


LANDMARKS = np.array([[40, 40], [60, 40], [50, 52], [43, 62], [57, 62]], np.float64)


def test_mask_covers_nose_and_mouth_not_eyes(tmp_path):
    poly = S.mask_polygon(LANDMARKS).astype(np.float32)
    inside = lambda p: cv2.pointPolygonTest(poly, tuple(map(float, p)), False) > 0  # noqa: E731
    assert all(inside(p) for p in LANDMARKS[2:])
    assert not any(inside(p) for p in LANDMARKS[:2])
    # swapped eye / corner order and a rotated face give the same polygon set
    np.testing.assert_allclose(S.mask_polygon(LANDMARKS[[1, 0, 2, 4, 3]])[[0, 2, 4]],
                               S.mask_polygon(LANDMARKS)[[4, 2, 0]], atol=1e-9)
    frame = np.zeros((100, 100, 3), np.uint8)
    masked = S.apply_face_mask(frame, LANDMARKS)
    assert tuple(masked[52, 50]) == S.MASK_COLOR and tuple(masked[62, 50]) == S.MASK_COLOR
    assert tuple(masked[40, 40]) == (0, 0, 0) and frame.max() == 0
    out = S.preview(frame, LANDMARKS, tmp_path / "mask.png", face_box=[35, 30, 65, 75])
    png = cv2.imread(str(out))
    assert png.shape == (100, 100, 3)
    assert tuple(png[62, 50][::-1]) == S.MASK_COLOR
    with pytest.raises(ValueError, match="5 finite"):
        S.mask_polygon(LANDMARKS[:4])
    with pytest.raises(ValueError, match="coincide"):
        S.mask_polygon(np.array([[1, 1], [1, 1], [1, 2], [0, 3], [2, 3]]))
