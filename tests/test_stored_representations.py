"""Schema-3 representations stored by the extraction: the SISTCM face redraw pool, the masked
clip faces (TSN ``--mask``) and the VTT 4-frame face windows of Friends (issue 4)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.cards import load_card
from pipelines.config import config_from_card
from pipelines.decoders import read_frames
from pipelines.crops import face_box_crop
from pipelines.represent.face_windows import window_crops
from pipelines.represent.segments import MASK_COLOR, mask_landmarks, mask_polygon
from pipelines.rows import face_at, landmarks_in_face_crop, masked_face
from pipelines.readers import read_samples
from pipelines.sampling import clip_positions
from schemas.shards import ShardShapes, check_h5

from corpus_fixtures import BUILDERS, edited_card


# --------------------------------------------------------------------------- configuration
def test_card_switches_and_cli_overrides(tmp_path):
    card = load_card("sample")
    cfg = config_from_card(card, tmp_path, tmp_path)
    assert not cfg.face_pool and not cfg.face_mask and cfg.face_crop == "given"
    assert (cfg.shapes.pool_frames, cfg.shapes.masked_frames) == (0, 0)
    on = config_from_card(card, tmp_path, tmp_path, face_pool=True, face_mask=True)
    assert (on.shapes.pool_frames, on.shapes.masked_frames) == (30, 2)
    assert config_from_card(load_card("emoreact"), tmp_path, tmp_path).face_mask
    assert config_from_card(load_card("friends"), tmp_path, tmp_path).face_crop == "vtt_friends"
    bad = {**card, "representations": {**card["representations"], "face_pool": "yes"}}
    with pytest.raises(ValueError, match=r"sample.toml: representations.face_pool must be true or false"):
        config_from_card(bad, tmp_path, tmp_path)
    bad = {**card, "representations": {**card["representations"], "face_crop": "tight"}}
    with pytest.raises(ValueError, match=r"representations.face_crop must be one of"):
        config_from_card(bad, tmp_path, tmp_path)


# --------------------------------------------------------------------------- redraw pool
def _shards(out: Path):
    for h5 in sorted(out.glob("shard-*.h5")):
        yield h5, pq.read_table(h5.with_name(h5.name.replace("shard-", "videos-").replace(".h5", ".parquet")))


def test_pool_frames_equal_clip_faces_at_the_plan(extracted):
    """The pool holds the face crop of every sampled frame; at the C x K plan positions it is the
    clip face, bit for bit, with the same found flag; padding rows are empty."""
    found_any = 0
    for h5, videos in _shards(extracted["out"]):
        with h5py.File(h5, "r") as f:
            check_h5(f, str(h5))
            shapes = ShardShapes(**json.loads(f.attrs["shapes"]))
            assert f["videos/face_pool"].shape[1:] == (30, 112, 112, 3) == (shapes.frames, 112, 112, 3)
            assert f["videos/face_pool_found"].dtype == bool and f["videos/face_pool"].chunks[0] == 1
            stamps = videos.column("timestamps_s").combine_chunks().to_numpy_ndarray()
            np.testing.assert_array_equal(f["videos/timestamps_s"][()], stamps)
            clip_ids = f["clips/sample_id"].asstr()[()]
            for i, sid in enumerate(f["videos/sample_id"].asstr()[()]):
                n = int(f["videos/num_frames"][i])
                plan = clip_positions(n, shapes.clips, shapes.frames_per_clip)
                rows = np.flatnonzero(clip_ids == sid)
                pool, found = f["videos/face_pool"][i], f["videos/face_pool_found"][i]
                np.testing.assert_array_equal(pool[plan], f["clips/faces"][rows])
                np.testing.assert_array_equal(found[plan], f["clips/face_found"][rows])
                assert not pool[n:].any() and not found[n:].any()
                assert np.isnan(f["videos/timestamps_s"][i, n:]).all()
                found_any += int(found.sum())
                # off-plan frames carry faces too (the point of the pool)
                off_plan = np.setdiff1d(np.arange(n), plan)
                if "group_event" in sid:
                    assert found[off_plan].all() and pool[off_plan].reshape(len(off_plan), -1).std(1).min() > 5
    assert found_any > 60


def test_switched_off_fields_keep_a_zero_length_frame_axis(extracted):
    """face_mask is off in the sample card: clips/faces_masked has K = 0 rows of no bytes and the
    shape check still runs."""
    for h5, _ in _shards(extracted["out"]):
        with h5py.File(h5, "r") as f:
            ds = f["clips/faces_masked"]
            assert ds.shape == (f["clips/faces"].shape[0], 0, 112, 112, 3) and ds.chunks is None
            check_h5(f, str(h5))


# --------------------------------------------------------------------------- face masks
def test_blazeface_and_dbface_keypoints_to_mask_landmarks():
    blaze = np.array([[10, 20], [30, 20], [20, 30], [20, 40], [2, 22], [38, 22]], float)
    five = mask_landmarks(blaze)
    np.testing.assert_array_equal(five, blaze[[0, 1, 2, 3, 3]])
    np.testing.assert_array_equal(five[3:].mean(0), blaze[3])  # the polygon only uses the mouth midpoint
    db = np.array([[10, 20], [30, 20], [20, 30], [14, 40], [26, 40]], float)
    np.testing.assert_array_equal(mask_landmarks(db), db)
    with pytest.raises(ValueError, match=r"\[5, 2\] \(DBFace\) or \[6, 2\] \(BlazeFace\), got shape \(4, 2\)"):
        mask_landmarks(db[:4])


@pytest.mark.parametrize("points", [6, 5])
def test_landmarks_follow_the_face_crop(points):
    """A keypoint lit in the head crop lands, after :func:`pipelines.crops.face_box_crop`, where
    :func:`landmarks_in_face_crop` maps it (intensity centroid of the resampled spot)."""
    head = np.zeros((256, 256, 3), np.uint8)
    kps = np.array([[100, 110], [140, 108], [121, 130], [122, 150], [84, 118], [158, 116]], float)[:points]
    det = np.concatenate([[90.0, 85.5, 152.25, 160.0, 0.9], kps.ravel()]).astype(np.float32)
    for size in (112, 224):  # face crops are upsampled here (INTER_LINEAR)
        mapped = landmarks_in_face_crop(det, size)
        for (x, y), (u, v) in zip(kps.astype(int), mapped):
            spot = head.copy()
            spot[y, x] = 255
            crop = face_box_crop(spot, det, size)[..., 0].astype(float)
            ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
            w = crop.sum()
            # bilinear kernel: symmetric, so the centroid is the mapped point (weights quantised
            # to 1/32 px and values to uint8)
            assert w > 0 and abs((xs * crop).sum() / w - u) < 0.1 and abs((ys * crop).sum() / w - v) < 0.1


@pytest.fixture(scope="module")
def astronaut_face(shared):
    """A real face crop, its BlazeFace keypoints in crop pixels and the detection (whole image as
    the ``frame`` head crop, as the pipeline does without head keypoints)."""
    from extractors.blazeface import detect_faces, load_blazeface

    image = cv2.cvtColor(cv2.imread(str(shared / "data" / "images" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    dets = detect_faces(load_blazeface("front", "cpu"), [image], "cpu")[0]
    assert len(dets) >= 1
    side = float(max(image.shape[:2]))
    record = SimpleNamespace(given_faces={}, head_boxes={0: (np.array([0, 0, side, side], np.float32), "frame")})
    face, box, score, found, landmarks = face_at(record, {0: (image, dets)}, 0, 112)
    assert found and score > 0.75 and landmarks.shape == (6, 2)
    return face, landmarks


def test_mask_covers_nose_and_mouth_only_inside_its_polygon(astronaut_face):
    face, landmarks = astronaut_face
    masked = masked_face(face, landmarks)
    changed = (masked != face).any(-1)
    inside = np.zeros(face.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(mask_polygon(mask_landmarks(landmarks))).astype(np.int32)], 1)
    inside = cv2.dilate(inside, np.ones((3, 3), np.uint8))  # anti-aliased edge
    assert changed.any() and not (changed & (inside == 0)).any()
    for name, (x, y) in zip(("nose", "mouth"), np.round(landmarks[2:4]).astype(int)):
        assert tuple(masked[y, x]) == MASK_COLOR, name
    for x, y in np.round(landmarks[:2]).astype(int):  # the eyes stay visible
        np.testing.assert_array_equal(masked[y, x], face[y, x])
    # 20-60 % of the face crop is covered (nose bridge to chin, cheek to cheek)
    assert 0.1 < changed.mean() < 0.6
    # no keypoints (annotated box, keypoint-predicted region): unmasked copy
    copy = masked_face(face, None)
    assert copy is not face and np.array_equal(copy, face)


# --------------------------------------------------------------------------- corpora end to end
def _extract(repo: Path, card: Path, root: Path, out: Path, *extra) -> None:
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--root", str(root), "--out", str(out),
           "--no-progress", "--num-shards", "1", "--workers", "1", *extra]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (out / "errors.jsonl").exists() or not (out / "errors.jsonl").read_text().strip()


def _train(model: str, shards: Path, out: Path, *extra) -> dict:
    from zoo.train import main

    code = main([model, "--shards", str(shards), "--epochs", "1", "--batch-size", "2", "--out", str(out),
                 "--no-progress", "--no-tensorboard", *extra])
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def test_emoreact_masked_faces_through_the_pipeline_and_tsn(repo, tmp_path, shared):
    """EmoReact's card turns face_mask on: clips/faces_masked equals clips/faces outside the mask
    and where no face was detected, differs where one was; TSN trains on it."""
    root = BUILDERS["emoreact"](tmp_path / "emoreact", shared).root
    card = edited_card("emoreact", tmp_path, {"length_s = 5.0": "length_s = 1.0",
                                              "sample_fps = 5.0": "sample_fps = 4.0",
                                              "face_size = 224": "face_size = 64", "clips = 5": "clips = 2",
                                              "timeline_length = 25": "timeline_length = 4"})
    out = tmp_path / "out"
    _extract(repo, card, root, out, "--limit", "2")
    with h5py.File(next(out.glob("shard-*.h5")), "r") as f:
        check_h5(f, "emoreact")
        faces, masked, found = f["clips/faces"][()], f["clips/faces_masked"][()], f["clips/face_found"][()]
        assert masked.shape == faces.shape == (4, 2, 64, 64, 3) and f["videos/face_pool"].shape[1] == 0
    changed = (masked != faces).any(-1)  # [rows, K, S, S]
    assert found.any() and changed[found].reshape(found.sum(), -1).any(1).all()
    assert not changed[~found].any()
    assert changed.mean() < 0.5
    metrics = _train("tsn-resnet50", out, tmp_path / "run", "--input", "faces_masked", "--eval-split", "train")
    assert metrics


def test_friends_clip_faces_are_the_seed_window_crops(repo, tmp_path, shared):
    """Friends (card face_crop = "vtt_friends"): each sample's 4 clip faces equal
    :func:`pipelines.represent.face_windows.window_crops` of the decoded video around the annotated
    frame and box, exactly; the VTT ResNet-18 TSM trains on them."""
    fx = BUILDERS["friends"](tmp_path / "friends", shared)
    card = edited_card("friends", tmp_path, {"face_size = 224": "face_size = 48"})
    out = tmp_path / "out"
    _extract(repo, card, fx.root, out)
    videos = pq.read_table(sorted(out.glob("videos-*.parquet"))).to_pylist()
    samples = {s.sample_id: s for s in read_samples(load_card(str(card)), fx.root)}
    with h5py.File(next(out.glob("shard-*.h5")), "r") as f:
        check_h5(f, "friends")
        ids = f["clips/sample_id"].asstr()[()]
        assert sorted(ids) == sorted(v["sample_id"] for v in videos) and len(ids) == 3
        for row, sid in enumerate(ids):
            s = samples[sid]
            frame = s.meta["frame"]
            frames = read_frames(s.uri, list(range(frame + 2)))
            want = window_crops(frames, frame, s.box, rule="friends", size=48)
            np.testing.assert_array_equal(f["clips/faces"][row], want)
            assert f["clips/face_found"][row].all()
            np.testing.assert_array_equal(f["clips/face_boxes"][row], np.tile(np.float32(s.box), (4, 1)))
    _train("vtt-resnet18-tsm", out, tmp_path / "run", "--train-split", "val", "--eval-split", "train")


def test_switched_off_field_is_a_clear_training_error():
    import torch

    from zoo.inputs import clips_to_segments

    assert clips_to_segments(torch.zeros(1, 2, 1, 8, 8, 3, dtype=torch.uint8)).shape == (1, 2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"no frames \(shape \(1, 2, 0, 8, 8, 3\)\).*--face-mask"):
        clips_to_segments(torch.zeros(1, 2, 0, 8, 8, 3, dtype=torch.uint8))


def test_rows_without_switched_off_fields_still_write_valid_shards(tmp_path):
    """A skeleton corpus has no pixels: its pool is zero-length, rows may omit it, the shard checks."""
    from pipelines.record import skeleton_record
    from pipelines.rows import clip_rows, video_row
    from pipelines.shards import write_shard

    cfg = config_from_card(load_card("ewalk"), tmp_path, tmp_path, face_pool=True)
    assert cfg.shapes.pool_frames == 0  # skeleton corpora never get a pool
    sample = {"corpus": "ewalk", "sample_id": "ewalk/g0", "video_id": "ewalk/g0", "uri": "features.h5", "split": "train",
              "label": 1, "label_name": cfg.label_names[1], "start_s": 0.0, "end_s": None}
    joints = np.random.default_rng(0).uniform(-1, 1, (40, cfg.joints, 3))
    record = skeleton_record(sample, joints, cfg)
    video, clips = video_row(record, cfg), clip_rows(record, {}, cfg)
    assert video["face_pool"].shape == (0, cfg.face_size, cfg.face_size, 3)
    for row in [video] + clips:
        for key in ("face_pool", "face_pool_found", "faces_masked"):
            row.pop(key, None)
    write_shard(tmp_path, 0, 1, cfg.shapes, [(video, clips)], "hash", {})
    with h5py.File(tmp_path / "shard-00000-of-00001.h5", "r") as f:
        check_h5(f, "ewalk")
        assert f["videos/face_pool"].shape == (1, 0, cfg.face_size, cfg.face_size, 3)
        assert f["clips/faces_masked"].shape[:2] == (len(clips), 0)
        np.testing.assert_array_equal(f["videos/timestamps_s"][0, :len(record.timestamps_s)], record.timestamps_s)
