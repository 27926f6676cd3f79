"""One person is one person in the shards: person tracks, the main person, the faces kept.

Unit cases use hand-made poses and detections whose answer is derived by hand; the end-to-end
case runs ``python -m pipelines.extract --dataset caer`` on a CAER clip made by cutting from one
shipped clip (a group of people indoors) to another (hikers outdoors): nobody is in both parts,
so the main person's frames, faces and super-image must all come from one part.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines import assemble
from pipelines.persons import Identity, attribute_faces
from schemas.shards import ShardShapes

REPO = Path(__file__).resolve().parents[1]
#: The ExtractConfig fields identified_tracks reads.
CFG = SimpleNamespace(min_keypoint_score=0.2, shapes=ShardShapes(frames=4, joints=18, clips=2, frames_per_clip=2,
                                                                 face_size=8, timeline_size=8, timeline_length=4))


def _pose(x: float, y: float, height: float = 100.0) -> np.ndarray:
    """COCO-17 pose standing at (x, y) (top of the head), all joints confident (score 0.9)."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0] = x + np.linspace(-10, 10, 17)
    kp[:, 1] = y + np.linspace(0, height, 17)
    kp[:, 2] = 0.9
    return kp


def _frame(*poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kp = np.stack(poses) if poses else np.zeros((0, 17, 3), np.float32)
    return np.full(len(kp), 0.9, np.float32), kp


def test_tracks_are_persons_ordered_by_screen_time():
    # person 7 (short, 4 frames) and person 3 (tall, 2 frames): 7 has more screen time -> row 0
    poses = [_frame(_pose(100, 50, 50)), _frame(_pose(100, 50, 50), _pose(400, 50, 300)),
             _frame(_pose(100, 50, 50), _pose(400, 50, 300)), _frame(_pose(100, 50, 50))]
    who = [np.array([7]), np.array([7, 3]), np.array([7, 3]), np.array([7])]
    identity = Identity(shots=np.zeros(4, np.int32), pose_person=who)
    tracks, persons, ids = assemble.identified_tracks(poses, CFG, keep=3, identity=identity)
    assert ids.tolist() == [7, 3, -1]
    assert persons.tolist() == [1, 2, 2, 1]
    assert np.isfinite(tracks[0, :, 0, 0]).all()
    assert np.isnan(tracks[1, [0, 3], 0, 0]).all() and tracks[1, 1, 0, 1] == 50
    assert np.isnan(tracks[2]).all()


def test_one_person_across_two_shots_is_one_track():
    # the same person id in shot 0 and, after another person's shot, in shot 2
    poses = [_frame(_pose(100, 50)), _frame(_pose(500, 50)), _frame(_pose(120, 60))]
    identity = Identity(shots=np.array([0, 1, 2], np.int32),
                        pose_person=[np.array([0]), np.array([1]), np.array([0])])
    tracks, _, ids = assemble.identified_tracks(poses, CFG, keep=2, identity=identity)
    assert ids.tolist() == [0, 1]
    np.testing.assert_array_equal(np.isfinite(tracks[0, :, 0, 0]), [True, False, True])
    assert tracks[0, 2, 0, 1] == 60


class _Record:
    """The record fields attribute_faces reads."""

    def __init__(self, main: np.ndarray, head_box: np.ndarray):
        self.tracks = main[None]
        self.person_ids = np.array([5], np.int32)
        self.shots = np.zeros(len(main), np.int32)
        self.head_boxes = {0: (head_box, "head")}
        self.given_faces = {}


def test_the_face_kept_is_the_one_holding_the_main_persons_head_keypoints():
    main = np.full((1, 17, 3), np.nan, np.float32)
    main[0, :5] = [[150, 120, 0.9], [140, 110, 0.9], [160, 110, 0.9], [130, 115, 0.9], [170, 115, 0.9]]
    head_box = np.array([100, 60, 200, 160], np.float32)      # 100 px -> head crop of 256 px: x2.56
    crop = np.zeros((256, 256, 3), np.uint8)
    # nose (150, 120) -> crop (128, 153.6); a higher-scoring face elsewhere must lose
    other = [10, 10, 60, 60, 0.99] + [0] * 12
    mine = [90, 100, 170, 200, 0.6] + [0] * 12
    got = attribute_faces(_Record(main, head_box), {0: (crop, np.array([other, mine], np.float32))})
    np.testing.assert_array_equal(got.faces[0][1], np.array([mine], np.float32))
    assert got.person == {0: 5}
    # only someone else's face in the crop: no face is kept at that position
    got = attribute_faces(_Record(main, head_box), {0: (crop, np.array([other], np.float32))})
    assert got.faces[0][1].shape == (0, 17) and got.person == {0: -1}


def _concat(parts: list[tuple], dest: Path, size=(640, 480), fps: int = 25) -> list[int]:
    """Write ``(source, seconds[, from_s])`` parts, resized to ``size``, into one H.264 MP4 with a
    hard cut between them (source frames taken one by one from ``from_s``, default 0); returns
    the first frame index of each part."""
    import av

    starts, n = [], 0
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for path, seconds, *skip in parts:
            starts.append(n)
            first = round((skip[0] if skip else 0.0) * fps)
            with av.open(str(path)) as src:
                for i, frame in enumerate(src.decode(video=0)):
                    if i < first:
                        continue
                    if i >= first + seconds * fps:
                        break
                    img = frame.to_ndarray(format="rgb24")
                    import cv2

                    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        out.mux(packet)
                    n += 1
        for packet in stream.encode():
            out.mux(packet)
    return starts


VIDEOS = REPO / "samples" / "videos"
GROUP, HIKERS = VIDEOS / "group_event_smiling.mp4", VIDEOS / "hikers_walking.mp4"


@pytest.fixture(scope="module")
def cut_clip_run(tmp_path_factory):
    """``make extract DATASET=caer`` over two clips: 0001 = 2.5 s of the group indoors | 1.5 s of
    the hikers (the group has the most screen time); 0002 = hikers 0-1.5 s | the group for 1 s |
    the hikers again from 1.5 s (A-B-A: the hikers come back after a shot of other people)."""
    tmp = tmp_path_factory.mktemp("cut")
    folder = tmp / "CAER" / "test" / "Happy"
    folder.mkdir(parents=True)
    cuts = {"0001": _concat([(GROUP, 2.5), (HIKERS, 1.5)], folder / "0001.avi"),
            "0002": _concat([(HIKERS, 1.5), (GROUP, 1.0), (HIKERS, 1.5, 1.5)], folder / "0002.avi")}
    out = tmp / "shards"
    proc = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", "caer", "--root",
                           str(tmp / "CAER"), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    videos = pq.read_table(sorted(out.glob("videos-*.parquet"))).to_pylist()
    clips = pq.read_table(sorted(out.glob("clips-*.parquet"))).to_pylist()
    run = {}
    for name, starts in cuts.items():
        video = next(v for v in videos if v["uri"].endswith(f"{name}.avi"))
        run[name] = {"starts": starts, "video": video,
                     "clips": [c for c in clips if c["sample_id"] == video["sample_id"]]}
    return run


def _sampled(video: dict, column: str) -> np.ndarray:
    return np.asarray(video[column])[: video["num_frames"]]


def test_a_window_across_a_cut_has_two_shots(cut_clip_run):
    run = cut_clip_run["0001"]
    frames = _sampled(run["video"], "frame_indices")
    # 10 fps sampling of a 25 fps clip: the shot changes exactly at the first frame after the cut
    np.testing.assert_array_equal(_sampled(run["video"], "shots"), (frames >= run["starts"][1]).astype(np.int32))


def test_the_main_person_and_its_faces_come_from_one_side_of_the_cut(cut_clip_run):
    run = cut_clip_run["0001"]
    v, cut = run["video"], run["starts"][1]
    frames, present = _sampled(v, "frame_indices"), _sampled(v, "main_present")
    assert present[frames < cut].sum() >= 5, "the main person is one of the group (most screen time)"
    assert not present[frames >= cut].any(), "the main person must not be found among the hikers"
    main_id = np.asarray(v["person_ids"])[0]
    faces_at = []
    for clip in run["clips"]:
        for f, found, who in zip(np.asarray(clip["frame_indices"]), clip["face_found"],
                                 np.asarray(clip["face_person"])):
            if found:
                assert who == main_id
                faces_at.append(int(f))
            else:
                assert who == -1
    assert faces_at and max(faces_at) < cut, "every face of the super-images is the main person's"


def test_a_person_who_comes_back_after_a_cut_keeps_the_person_id(cut_clip_run):
    run = cut_clip_run["0002"]
    v, (_, b, a2) = run["video"], run["starts"]
    frames, shots, present = _sampled(v, "frame_indices"), _sampled(v, "shots"), _sampled(v, "main_present")
    part = np.digitize(frames, [b, a2])                      # 0 = hikers, 1 = group, 2 = hikers again
    np.testing.assert_array_equal(shots, part)
    assert present[part == 0].any() and present[part == 2].any(), "the main hiker is one person in both shots"
    assert not present[part == 1].any()
