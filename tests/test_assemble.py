"""Unit tests of the pure pieces of the pipeline: plans, tracking, keypoint mapping, faces."""
from __future__ import annotations

import numpy as np
import pytest

from extractors.tracking import main_track, track_poses
from pipelines.crops import crop_box_resized, crop_to_source
from pipelines.faces import head_box
from pipelines.sampling import clip_positions, plan_window
from schemas.keypoints import coco17_to_openpose18


def test_plan_window_takes_the_frame_shown_at_each_time():
    idx = plan_window(1.0, 0.4, 10.0, 25.0, 1000)
    assert idx.tolist() == [25, 27, 30, 32]  # floor((1.0 + i/10) * 25)
    assert plan_window(39.9, 0.2, 10.0, 25.0, 1000).tolist() == [997]  # 1000 is past the end


def test_clip_positions_deterministic_seed_rule():
    # 30 frames, C=3, K=2: inter = 10, seg = 5 -> 0, 5 | 10, 15 | 20, 25
    assert clip_positions(30, 3, 2).tolist() == [[0, 5], [10, 15], [20, 25]]
    # 31 frames: last clip runs to the end (11 frames, seg 5.5 -> 20, 25)
    assert clip_positions(31, 3, 2).tolist() == [[0, 5], [10, 15], [20, 25]]
    # 4 frames < C*K: all frames then the last repeated
    assert clip_positions(4, 3, 2).tolist() == [[0, 1], [2, 3], [3, 3]]
    with pytest.raises(ValueError):
        clip_positions(0, 3, 2)


def _pose(x, y, score=0.9):
    p = np.zeros((17, 3), np.float32)
    p[:, 0] = x + np.arange(17)
    p[:, 1] = y + 3 * np.arange(17)
    p[:, 2] = score
    return p


def test_tracking_follows_two_people_crossing_order():
    a, b = _pose(10, 10), _pose(200, 20)
    frames = [np.stack([a, b]), np.stack([b + 2, a + 2]), np.stack([a + 4]), np.zeros((0, 17, 3), np.float32)]
    tracks = track_poses(frames)
    assert tracks.shape == (2, 4, 17, 3)
    np.testing.assert_allclose(tracks[0, :3, 0, 0], [10, 12, 14])
    np.testing.assert_allclose(tracks[1, :2, 0, 0], [200, 202])
    assert np.isnan(tracks[1, 2:]).all() and np.isnan(tracks[:, 3]).all()
    # the person seen in 3 frames is the main one
    np.testing.assert_array_equal(main_track(tracks)[:3], tracks[0, :3])


def test_coco_to_openpose18_neck_and_order():
    coco = _pose(0, 0)
    op = coco17_to_openpose18(coco)
    assert op.shape == (18, 3)
    np.testing.assert_allclose(op[1, :2], (coco[5, :2] + coco[6, :2]) / 2)  # neck
    np.testing.assert_array_equal(op[2], coco[6])   # right shoulder
    np.testing.assert_array_equal(op[17], coco[3])  # left ear
    coco[6, 2] = 0.1
    assert np.isnan(coco17_to_openpose18(coco, min_score=0.2)[1]).all()
    with pytest.raises(ValueError):
        coco17_to_openpose18(np.zeros((18, 3)))


def test_head_box_and_crop_mapping():
    pose = np.zeros((17, 3), np.float32)
    pose[:5, :2] = [[100, 50], [104, 46], [96, 46], [110, 48], [90, 48]]  # nose, eyes, ears
    pose[:5, 2] = 0.9
    box = head_box(pose)
    # centre = mean of head joints (100, 47.6); face side = 2 x extent (20) = 40; region = 80
    np.testing.assert_allclose(box, [60, 7.6, 140, 87.6], atol=1e-4)
    pose[:, 2] = 0.0
    assert head_box(pose) is None
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255
    crop = crop_box_resized(frame, np.array([80, 30, 120, 70], np.float32), 40)
    assert crop[10:30, 10:30].min() == 255 and crop[:9].max() == 0
    np.testing.assert_allclose(crop_to_source(np.array([10, 10, 30, 30], np.float32),
                                              np.array([80, 30, 120, 70], np.float32), 40), [90, 40, 110, 60])


def test_png_round_trip_after_decord_is_loaded():
    """decord bundles its own codec libraries; loaded before OpenCV, it breaks cv2's PNG decoding
    ("libpng error: bad parameters to zlib"). Our packages load cv2 first."""
    import subprocess
    import sys

    code = ("import pipelines.decode, decord, cv2, numpy as np\n"
            "from pipelines.rows import encode_png\n"
            "img = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)\n"
            "back = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_COLOR)\n"
            "assert back is not None and (cv2.cvtColor(back, cv2.COLOR_BGR2RGB) == img).all()\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("box,size", [((0, 0, 640, 640), 640), ((-10, -20, 630, 620), 640), ((600, 400, 700, 500), 100),
                                      ((-200, -200, -100, -100), 100), ((5, 7, 105, 107), 100)])
def test_unit_scale_crop_equals_the_resampled_one(box, size):
    import cv2

    from pipelines.crops import crop_box_resized

    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    x1, y1 = box[:2]
    resampled = cv2.warpAffine(frame, np.array([[1.0, 0, -x1], [0, 1.0, -y1]]), (size, size),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    assert np.array_equal(crop_box_resized(frame, np.array(box, np.float32), size), resampled)


def _skeleton_cfg(tmp_path):
    from pipelines.cards import load_card
    from pipelines.config import config_from_card

    return config_from_card(load_card("ewalk"), tmp_path, tmp_path)


@pytest.mark.parametrize("end_s,want", [(0.0, 0.0), (None, None), (2.5, 2.5)])
def test_video_row_keeps_an_end_of_zero(tmp_path, end_s, want):
    """Issue 16: ``sample["end_s"] or np.nan`` turned an end of 0.0 into NaN; only None is NaN."""
    from pipelines.record import skeleton_record
    from pipelines.rows import video_row

    cfg = _skeleton_cfg(tmp_path)
    sample = {"corpus": "ewalk", "sample_id": "g0", "video_id": "g0", "uri": "features.h5", "split": "train",
              "label": 0, "label_name": cfg.label_names[0], "start_s": 0.0, "end_s": end_s}
    row = video_row(skeleton_record(sample, np.zeros((10, cfg.joints, 3)), cfg), cfg)
    assert np.isnan(row["end_s"]) if want is None else row["end_s"] == want


def test_skeleton_record_sizes_come_from_shard_shapes(tmp_path):
    from pipelines.record import SampleRecord, skeleton_record

    cfg = _skeleton_cfg(tmp_path)
    sample = {"uri": "features.h5"}
    record = skeleton_record(sample, np.zeros((300, cfg.joints, 3)), cfg)
    s = cfg.shapes
    assert isinstance(record, SampleRecord)
    assert record.pose_features.shape == (s.feature_frames, s.feature_dim)
    assert record.tracks.shape == (s.persons, min(300, cfg.frames), 17, 3)
    assert record.clip_plan.shape == (s.clips, s.frames_per_clip) and not record.body_crops


def _walking_tracks(frames: int = 40) -> np.ndarray:
    """float32 [2, T, 17, 3]: one person walking right (scores 0.3), the second unseen."""
    t = np.arange(frames, dtype=np.float32)[:, None]
    out = np.full((2, frames, 17, 3), np.nan, np.float32)
    out[0, :, :, 0] = 100 + 2 * t + 4 * np.arange(17)
    out[0, :, :, 1] = 50 + 6 * np.arange(17) + np.sin(t / 3)
    out[0, :, :, 2] = 0.3
    return out


def test_pose_features_of_follows_the_config():
    """Issue 16: ``pose_features_of`` takes ``cfg.min_keypoint_score`` (0.2 by default, the seed's
    ``ProcCfg.min_score``, so stored features are unchanged) and ``cfg.shapes.feature_frames``."""
    from types import SimpleNamespace

    from pipelines.assemble import pose_features_of
    from pipelines.represent.pose_features import tracks_pose_features
    from schemas.shards import ShardShapes

    tracks, times = _walking_tracks(), np.arange(40)

    def cfg(score, frames=64):
        shapes = ShardShapes(frames=40, joints=18, clips=5, frames_per_clip=2, face_size=8, timeline_size=8,
                             timeline_length=4, feature_frames=frames)
        return SimpleNamespace(min_keypoint_score=score, shapes=shapes)

    default = pose_features_of(tracks, times, cfg(0.2))
    assert default.shape == (64, 238) and default.any()
    np.testing.assert_array_equal(default, tracks_pose_features(tracks, times))  # the seed's defaults
    assert not pose_features_of(tracks, times, cfg(0.5)).any()  # every joint (0.3) below the threshold
    assert pose_features_of(tracks, times, cfg(0.2, frames=16)).shape == (16, 238)
