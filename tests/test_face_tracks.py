"""Face tracking by greedy IoU matching (extractors.face_tracks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from extractors.face_tracks import FaceTracker, track_faces


def _det(x1, y1, x2, y2, score=0.9):
    return [x1, y1, x2, y2, score]


def _frames(*rows):
    return [np.asarray(r, np.float32).reshape(-1, 5) for r in rows]


def test_two_faces_moving_keep_their_ids_and_dense_arrays_agree():
    # two faces drifting right by 4 px per frame, detections listed in changing order
    a = [_det(10 + 4 * t, 10, 50 + 4 * t, 50, 0.9) for t in range(4)]
    b = [_det(200 + 4 * t, 20, 240 + 4 * t, 60, 0.8) for t in range(4)]
    frames = _frames([a[0], b[0]], [b[1], a[1]], [a[2]], [b[3], a[3]])
    tracks = track_faces(frames)
    assert tracks.num_tracks == 2
    assert [ids.tolist() for ids in tracks.ids] == [[0, 1], [1, 0], [0], [1, 0]]
    assert tracks.found.tolist() == [[True] * 4, [True, True, False, True]]
    np.testing.assert_allclose(tracks.confidence[1], [0.8, 0.8, 0.0, 0.8], rtol=1e-6)
    assert np.isnan(tracks.boxes[1, 2]).all()
    np.testing.assert_array_equal(tracks.boxes[0, 3], np.float32(a[3][:4]))


def test_iou_threshold_and_gap_start_new_tracks():
    box = _det(0, 0, 100, 100)
    moved = _det(70, 0, 170, 100)  # IoU with box = 30/170 = 0.176 < 0.3
    tracks = track_faces(_frames([box], [moved]))
    assert tracks.num_tracks == 2
    tracks = track_faces(_frames([box], [moved]), iou_threshold=0.1)
    assert tracks.num_tracks == 1
    # seen in frame 0, missed in frames 1-2: gap 2 <= max_gap 2 continues, gap 3 does not
    empty = np.zeros((0, 5), np.float32)
    assert track_faces([np.float32([box]), empty, empty, np.float32([box])], max_gap=2).num_tracks == 1
    assert track_faces([np.float32([box]), empty, empty, empty, np.float32([box])], max_gap=2).num_tracks == 2


def test_greedy_takes_highest_iou_first():
    tracker = FaceTracker(iou_threshold=0.2)
    tracker.update(np.float32([_det(0, 0, 100, 100), _det(60, 0, 160, 100)]))
    # one detection overlapping both tracks: it goes to the one with the higher IoU (track 1)
    ids = tracker.update(np.float32([_det(55, 0, 155, 100)]))
    assert ids.tolist() == [1]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="iou_threshold"):
        FaceTracker(iou_threshold=1.5)
    with pytest.raises(ValueError, match="frame 0"):
        track_faces([np.zeros((2, 3), np.float32)])


def test_real_clip_tracks_are_spatially_consistent(repo):
    """BlazeFace back detections on consecutive sampled frames of a shipped clip."""
    decord = pytest.importorskip("decord")
    from extractors.blazeface import detect_faces, load_blazeface

    vr = decord.VideoReader(str(repo / "samples/videos/group_event_smiling.mp4"))
    frames = vr.get_batch(list(range(0, 24, 3))).asnumpy()
    dets = detect_faces(load_blazeface("back"), list(frames))
    tracks = track_faces(dets)
    total = sum(len(d) for d in dets)
    assert total >= 8 and tracks.num_tracks < total  # faces are linked across frames
    assert int(tracks.found.sum()) == total
    for ids in tracks.ids:
        assert len(set(ids.tolist())) == len(ids)  # one detection per track per frame
    # every link joins boxes whose IoU reaches the threshold
    for m in range(tracks.num_tracks):
        seen = np.flatnonzero(tracks.found[m])
        for t0, t1 in zip(seen[:-1], seen[1:]):
            iou = box_iou(torch.from_numpy(tracks.boxes[m, t0][None]), torch.from_numpy(tracks.boxes[m, t1][None]))
            assert float(iou) >= 0.3
    # the woman on the left (largest face of frame 0) is one track over all 8 frames
    first = int(tracks.ids[0][np.argmax((dets[0][:, 2] - dets[0][:, 0]))])
    assert tracks.found[first].all()
