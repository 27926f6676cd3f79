"""Shot boundaries (extractors.shots) on clips cut together from the shipped clips."""
from __future__ import annotations

import numpy as np
import pytest

from bench.identity import Segment, build_frames
from extractors.shots import ShotDetector, detect_shots

pytest.importorskip("scenedetect")


@pytest.fixture(scope="module")
def videos(repo):
    return repo / "samples" / "videos"


def test_cut_between_clips_is_one_boundary_at_the_cut(videos):
    frames, source, _ = build_frames([Segment(videos / "group_event_smiling.mp4", 0, 48),
                                      Segment(videos / "tears_of_steel_excerpt.mp4", 70, 130)], size=(320, 180))
    shots = detect_shots(frames)
    assert shots.dtype == np.int32 and shots.shape == (len(frames),)
    cut = int(np.flatnonzero(np.diff(source))[0]) + 1
    assert np.flatnonzero(np.diff(shots)).tolist() == [cut - 1]  # one boundary, at the cut
    assert (shots[:cut] == 0).all() and (shots[cut:] == 1).all()


def test_sparse_frames_of_one_shot_stay_one_shot(videos):
    """5 fps samples of a handheld group shot: motion between samples is no cut."""
    frames, _, _ = build_frames([Segment(videos / "group_event_smiling.mp4", 0, 90)], size=(320, 180))
    assert detect_shots(frames).tolist() == [0] * len(frames)


def test_fade_through_black_starts_a_new_shot(videos):
    frames, source, _ = build_frames([Segment(videos / "group_event_smiling.mp4", 0, 60),
                                      Segment(videos / "tears_of_steel_excerpt.mp4", 70, 136)], fade=4,
                                     size=(320, 180))
    shots = detect_shots(frames)
    first_b = int(np.flatnonzero(source == 1)[0])
    assert shots[first_b - 5] == 0                 # A before its fade is shot 0
    assert shots[-1] > shots[first_b - 5]          # B after the fade is a later shot
    assert np.all(np.diff(shots) >= 0)


def test_black_fade_alone_without_content_change():
    """A synthetic fade out and in of the same picture: ThresholdDetector ends the shot at black."""
    rng = np.random.default_rng(0)
    pic = rng.integers(60, 200, (90, 160, 3), dtype=np.uint8)
    levels = [1.0] * 4 + [0.6, 0.3, 0.0, 0.0, 0.3, 0.6] + [1.0] * 4
    shots = detect_shots([(pic * a).astype(np.uint8) for a in levels])
    assert shots[0] == 0 and shots[-1] >= 1


def test_bad_frames_and_settings_are_refused():
    det = ShotDetector()
    with pytest.raises(ValueError, match="uint8"):
        det.update(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        ShotDetector(min_shot_frames=0)
