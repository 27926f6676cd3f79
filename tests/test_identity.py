"""One person is one person: extractors.identity (tracks, shots, person ids, face-to-pose) and
``python -m zoo.predict`` on clips cut together from clips of different people."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.identity import SHARED_VIDEOS, Segment, build_frames, write_clip
from extractors.appearance import appearance_embeddings
from extractors.identity import PersonTracker, faces_to_poses, pose_boxes

A, B = np.eye(4, dtype=np.float32)[:2]   # two unit descriptors, cosine 0


def _box(x, y, s=40.0):
    return np.array([[x, y, x + s, y + s]], np.float32)


def test_track_survives_missed_frames_and_follows_motion():
    tr = PersonTracker()
    ids = [tr.update(0, _box(10 + 5 * t, 50), [0.9])[0][0] for t in range(4)]
    for _ in range(3):                                   # occluded for 3 frames
        tr.update(0, np.zeros((0, 4), np.float32), [])
    back = tr.update(0, _box(10 + 5 * 7, 50), [0.9])[0][0]   # where the Kalman filter predicts it
    assert ids == [0, 0, 0, 0] and back == 0


def test_no_track_crosses_a_shot_boundary():
    tr = PersonTracker()
    t0, p0 = tr.update(0, _box(100, 100), [0.9])
    t1, p1 = tr.update(1, _box(100, 100), [0.9])         # same place, next shot
    assert t0[0] != t1[0] and p0[0] != p1[0]             # no descriptors: a new track is a new person


def test_low_score_boxes_continue_tracks_but_start_none():
    tr = PersonTracker(high_threshold=0.6, low_threshold=0.1)
    tr.update(0, _box(100, 100), [0.9])
    t, _ = tr.update(0, np.concatenate([_box(102, 100), _box(300, 300)]), [0.3, 0.3])
    assert t.tolist() == [0, -1]


def test_person_comes_back_after_a_cut_and_never_twice_in_a_frame():
    tr = PersonTracker()
    pa = tr.update(0, _box(50, 50), [0.9], A[None])[1][0]
    pb = tr.update(1, _box(50, 50), [0.9], B[None])[1][0]        # cut to B at A's place
    pa2 = tr.update(2, _box(200, 80), [0.9], A[None])[1][0]      # cut back to A elsewhere
    assert pa != pb and pa2 == pa
    _, both = tr.update(3, np.concatenate([_box(0, 0), _box(200, 0)]), [0.9, 0.9], np.stack([A, A]))
    assert sorted(both.tolist()) != [pa, pa] and pa in both.tolist()


def test_frames_with_and_without_descriptors_mix():
    # a person first seen without a descriptor (a zoomed head crop), then with one, then a new
    # person with a descriptor: no crash, and the re-id gallery only holds described persons
    tr = PersonTracker()
    p0 = tr.update(0, _box(50, 50), [0.9])[1][0]
    assert tr.update(0, _box(52, 50), [0.9], A[None])[1][0] == p0
    pb = tr.update(1, _box(300, 50), [0.9], B[None])[1][0]       # cut to someone else
    pa = tr.update(2, _box(100, 80), [0.9], A[None])[1][0]       # cut back: matched by appearance
    assert pb != p0 and pa == p0
    assert tr.person_embedding(p0).shape == (4,)


def test_appearance_gate_keeps_a_missed_cut_from_joining_two_people():
    tr = PersonTracker()
    t0, p0 = tr.update(0, _box(50, 50), [0.9], A[None])
    t1, p1 = tr.update(0, _box(52, 50), [0.9], B[None])         # same shot index (cut not found)
    assert t0[0] != t1[0] and p0[0] != p1[0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="kind"):
        PersonTracker("hand")
    with pytest.raises(ValueError, match="unknown"):
        PersonTracker(iou=0.3)
    with pytest.raises(ValueError, match="scores"):
        PersonTracker().update(0, _box(0, 0), [0.9, 0.8])


def test_appearance_descriptor_tells_clothes_apart():
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:, :100] = (200, 160, 140)        # same skin tone on both faces
    frame[:, 100:] = (200, 160, 140)
    frame[80:, :100] = (200, 20, 20)        # red shirt left, blue shirt right
    frame[80:, 100:] = (20, 20, 200)
    boxes = np.array([[30, 40, 70, 80], [130, 40, 170, 80], [30, 40, 70, 80]], np.float32)
    e = appearance_embeddings(frame, boxes)
    assert e.shape == (3, 512) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[2] > 0.999 and e[0] @ e[1] < 0.8


def test_faces_join_the_pose_whose_head_keypoints_they_hold():
    poses = np.full((2, 17, 3), np.nan, np.float32)
    poses[0, :5] = [[60, 50, 0.9], [55, 45, 0.9], [65, 45, 0.9], [50, 48, 0.9], [70, 48, 0.9]]
    poses[0, 5:7] = [[40, 100, 0.9], [80, 100, 0.9]]
    poses[1, :3] = [[200, 50, 0.9], [195, 45, 0.1], [205, 45, 0.1]]       # eyes not confident
    faces = np.array([[190, 30, 215, 65], [40, 30, 80, 70], [400, 400, 420, 420]], np.float32)
    assert faces_to_poses(faces, poses).tolist() == [1, 0, -1]
    np.testing.assert_allclose(pose_boxes(poses)[0], [40, 45, 80, 100])
    poses[1, :, 2] = 0.0
    assert np.isnan(pose_boxes(poses)[1]).all()


# ------------------------------------------------------------------ the CLI as typed

def _predict(clip: Path, out: Path, *extra) -> list[dict]:
    cmd = [sys.executable, "-m", "zoo.predict", "mini-xception-fer2013", str(clip), "--every", "1",
           "--out", str(out), "--no-progress", *extra]
    ran = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def _check_aba(tmp_path, segments, person_clip: int):
    frames, segment, truth = build_frames(segments, size=(480, 270))
    clip = write_clip(tmp_path / "aba.mp4", frames, fps=5)
    lines = _predict(clip, tmp_path / "p.jsonl")
    faces = [r for r in lines if r["type"] == "emotion"]
    assert {truth[r["frame"]] for r in faces} == {0, 1}, "faces of both people are found"
    for key in ("id", "person"):   # no track and no person crosses a cut between different people
        clips = {}
        for r in faces:
            clips.setdefault(r[key], set()).add(int(truth[r["frame"]]))
        assert all(len(c) == 1 for c in clips.values()), (key, clips)
    cuts = np.flatnonzero(np.diff(segment)) + 1
    shot_of = {r["frame"]: r["shot"] for r in faces}
    assert len(set(shot_of.values())) >= 3 and all(
        shot_of[f] < shot_of[g] for f in shot_of for g in shot_of if segment[f] < segment[g])
    first = {r["person"] for r in faces if segment[r["frame"]] == 0 and truth[r["frame"]] == person_clip}
    last = {r["person"] for r in faces if segment[r["frame"]] == 2}
    assert first & last, f"A's person id comes back after B (cuts at {cuts.tolist()})"
    summary = [r for r in lines if r["type"] == "emotion_summary"]
    assert sorted(s["person"] for s in summary) == sorted({r["person"] for r in faces})
    return clip, faces


def test_predict_aba_on_shipped_clips(repo, tmp_path):
    sv = repo / "samples" / "videos"
    tears, group = sv / "tears_of_steel_excerpt.mp4", sv / "group_event_smiling.mp4"
    clip, faces = _check_aba(tmp_path, [Segment(tears, 70, 112), Segment(group, 0, 42), Segment(tears, 130, 172)],
                             person_clip=1)
    vtt = _predict(clip, tmp_path / "v.jsonl", "--format", "vtt")
    assert vtt and all(set(r) == {"type", "class", "seconds", "object"} and r["type"] == "emotion" for r in vtt)
    assert [(r["seconds"], r["object"], r["class"]) for r in vtt] == \
        [(r["seconds"], r["person"], r["class"]) for r in faces]


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason="shared clips (../shared/data/videos) absent")
def test_predict_aba_on_shared_clips(tmp_path):
    close, room = SHARED_VIDEOS / "face_closeup_makeup.avi", SHARED_VIDEOS / "two_people_room.mp4"
    _check_aba(tmp_path, [Segment(close, 0, 40, 4), Segment(room, 0, 36, 3), Segment(close, 80, 120, 4)],
               person_clip=0)


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason="shared clips (../shared/data/videos) absent")
def test_predict_cut_between_faces_at_one_place(repo, tmp_path):
    """A face of two_people_room and the first hiker's face overlap (IoU ~0.44) across the cut:
    box IoU alone (the old tracker) joined them into one id."""
    frames, segment, _ = build_frames([Segment(SHARED_VIDEOS / "two_people_room.mp4", 0, 13, 2),
                                       Segment(repo / "samples/videos/hikers_walking.mp4", 0, 36, 6)])
    lines = _predict(write_clip(tmp_path / "cut.mp4", frames, fps=5), tmp_path / "p.jsonl")
    faces = [r for r in lines if r["type"] == "emotion"]
    assert {segment[r["frame"]] for r in faces} == {0, 1}
    for key in ("id", "person"):
        sides = {}
        for r in faces:
            sides.setdefault(r[key], set()).add(int(segment[r["frame"]]))
        assert all(len(s) == 1 for s in sides.values()), (key, sides)


def test_predict_body_joins_each_face_to_its_pose(repo, tmp_path):
    """--body: the face's line carries the box of the pose whose head keypoints the face holds."""
    clip = repo / "samples/videos/group_event_smiling.mp4"
    lines = _predict(clip, tmp_path / "b.jsonl", "--max-frames", "2", "--body")
    assert lines[0]["body"] == "posenet-mobilenet-v1-075"
    faces = [r for r in lines if r["type"] == "emotion"]
    assert faces and all("body" in r for r in faces)
    joined = [r for r in faces if r["body"] is not None]
    assert len(joined) >= 2
    for r in joined:
        (fx1, fy1, fx2, fy2), (bx1, by1, bx2, by2) = r["coordinates"], r["body"]
        assert bx1 <= fx2 and fx1 <= bx2 and by1 <= fy2          # the head keypoints lie in the face
        assert by2 - by1 > 2 * (fy2 - fy1)                        # and the body reaches below it
    ran = subprocess.run([sys.executable, "-m", "zoo.predict", "mini-xception-fer2013", str(clip), "--body",
                          "blazeface-back"], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2 and "--body" in ran.stderr
