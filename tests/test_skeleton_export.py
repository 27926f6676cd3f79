"""MMAction2 / PySKL skeleton annotations (pipelines/represent/skeleton.py) and the shard export
(pipelines/export.py) on hand-made tracks and a small shard written by the real shard writer."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pipelines import export as E
from pipelines.represent.skeleton import annotation, annotation_file, validate_annotation
from pipelines.shards import write_shard
from schemas.shards import SCHEMA_VERSION, ShardShapes
from shard_fixtures import clip_identity_columns, identity_columns


def _tracks():
    tr = np.full((2, 4, 3, 3), np.nan, np.float32)
    tr[0, :, :, :2] = np.arange(24, dtype=np.float32).reshape(4, 3, 2)  # small person, seen 4 frames
    tr[0, :, :, 2] = 0.5
    tr[0, 2, 1] = np.nan                                                 # one missing joint
    tr[1, 1:3] = [[10, 0, 0.9], [10, 100, 0.9], [20, 200, 0.9]]          # tall person, 2 frames
    return tr


def test_annotation_fields_dtypes_and_missing_joints():
    ann = annotation(_tracks(), "vid_001", 3, (240, 320))
    validate_annotation(ann)
    assert ann["frame_dir"] == "vid_001" and ann["label"] == 3 and ann["total_frames"] == 4
    assert ann["img_shape"] == ann["original_shape"] == (240, 320)
    assert ann["keypoint"].shape == (2, 4, 3, 2) and ann["keypoint"].dtype == np.float32
    assert ann["keypoint_score"].shape == (2, 4, 3) and ann["keypoint_score"].dtype == np.float32
    np.testing.assert_array_equal(ann["keypoint"][0, 2, 1], [0, 0])
    assert ann["keypoint_score"][0, 2, 1] == 0 and ann["keypoint_score"][0, 2, 0] == 0.5
    np.testing.assert_array_equal(ann["keypoint"][0, 3, 2], [22, 23])
    assert (ann["keypoint"][1, 0] == 0).all() and (ann["keypoint_score"][1, 3] == 0).all()
    assert np.isfinite(ann["keypoint"]).all()
    kept = annotation(_tracks(), "v", 0, (240, 320), original_shape=(480, 640), fill_missing=None)
    assert np.isnan(kept["keypoint"][0, 2, 1]).all() and kept["original_shape"] == (480, 640)


def test_max_persons_keeps_the_most_prominent():
    # prominence: person 0 = 4 frames x 0.5 x height 4 = 8; person 1 = 2 x 0.9 x 200 = 360
    ann = annotation(_tracks(), "v", 0, (240, 320), max_persons=1)
    assert ann["keypoint"].shape == (1, 4, 3, 2)
    np.testing.assert_array_equal(ann["keypoint"][0, 1, 1], [10, 100])


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"v: tracks must be \[M, T, V, 3\]"):
        annotation(np.zeros((4, 3, 3)), "v", 0, (2, 2))
    with pytest.raises(ValueError, match="img_shape"):
        annotation(_tracks(), "v", 0, (240,))
    with pytest.raises(ValueError, match="label"):
        annotation(_tracks(), "v", "happy", (240, 320))
    a = annotation(_tracks(), "v", 0, (240, 320))
    with pytest.raises(ValueError, match="duplicate"):
        annotation_file([a, a], {})
    with pytest.raises(ValueError, match="unknown frame_dir"):
        annotation_file([a], {"train": ["w"]})
    broken = dict(a, total_frames=5)
    with pytest.raises(ValueError, match="total_frames"):
        validate_annotation(broken)


def test_annotation_file_pickle_round_trip(tmp_path):
    anns = [annotation(_tracks(), f"v{i}", i, (240, 320)) for i in range(3)]
    obj = annotation_file(anns, {"train": ["v0", "v2"], "test": ["v1"]})
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(obj))
    back = pickle.loads(path.read_bytes())
    assert back["split"] == {"train": ["v0", "v2"], "test": ["v1"]}
    for a, b in zip(anns, back["annotations"]):
        assert a.keys() == b.keys()
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])
        np.testing.assert_array_equal(a["keypoint_score"], b["keypoint_score"])
        assert (a["img_shape"], a["label"], a["total_frames"]) == (b["img_shape"], b["label"], b["total_frames"])


T, V = 5, 18
SHAPES = ShardShapes(frames=T, joints=V, clips=1, frames_per_clip=2, face_size=8, timeline_size=4, timeline_length=3,
                     classes=3)


def _video_row(sample_id, split, label, uri, num_frames, seed):
    rng = np.random.default_rng(seed)
    kp = np.full((T, V, 3), np.nan, np.float32)
    kp[:num_frames] = rng.uniform(0, 100, (num_frames, V, 3)).astype(np.float32)
    kp[:num_frames, 14:, :] = np.nan  # eyes / ears unseen
    return {"corpus": "toy", "sample_id": sample_id, "video_id": sample_id, "uri": uri, "split": split,
            "label": label, "label_name": f"c{label}", "start_s": 0.0, "end_s": 1.0, "fps": 5.0,
            "num_frames": num_frames, "frame_indices": np.r_[np.arange(num_frames), -np.ones(T - num_frames)],
            "timestamps_s": np.zeros(T), "keypoints": kp, "persons": np.ones(T),
            "timeline": np.zeros((2 * V, 4, 3)), "frame_shape": np.zeros(2, np.int32),
            "tracks": np.full((2, T, 17, 3), np.nan, np.float32), "pose_features": np.zeros((64, 238), np.float32),
            "targets": [], "valence": None, "arousal": None, "fold": None, "fold_index": -1,
            "targets_vector": np.eye(3, dtype=np.float32)[label], **identity_columns(T)}


def _clip_row(video):
    ids = {k: video[k] for k in ("corpus", "sample_id", "video_id", "uri", "split", "label", "label_name")}
    return {**ids, "clip_index": 0, "frame_indices": np.zeros(2), "timestamps_s": np.zeros(2),
            "face_boxes": np.full((2, 4), np.nan), "face_scores": np.zeros(2), "face_found": [False, False],
            "keypoints": np.full((2, V, 3), np.nan), "superimage_png": b"", "superimage_layout": "{}",
            "faces": np.zeros((2, 8, 8, 3), np.uint8), "fullbody": np.zeros((2, 8, 8, 3), np.uint8),
            "body": np.zeros((2, 8, 8, 3), np.uint8),
            "body_boxes": np.full((2, 4), np.nan), "fullbody_png": b"", "fold_index": -1, **clip_identity_columns(2)}


def _write(out, rows):
    marker = write_shard(out, 0, 1, SHAPES, [(r, [_clip_row(r)]) for r in rows], "hash", {})
    (out / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "shards": [marker]}))


@pytest.fixture
def toy_shards(tmp_path, repo):
    out = tmp_path / "shards"
    out.mkdir()
    clip = str(repo / "samples/videos/hikers_walking.mp4")
    rows = [_video_row("b", "test", 1, clip, 3, 1), _video_row("a", "train", 0, clip, 5, 0),
            _video_row("c", "train", 2, "/nonexistent/video.mp4", 4, 2)]
    _write(out, rows)
    return out, rows


def test_export_cli_round_trip(toy_shards, tmp_path, capsys):
    out, rows = toy_shards
    pkl = tmp_path / "x" / "mm.pkl"
    assert E.main(["mmaction", str(out), str(pkl), "--img-shape", "120", "160"]) == 0
    assert "3 annotations (train 2, test 1)" in capsys.readouterr().out
    obj = pickle.loads(pkl.read_bytes())
    assert obj["split"] == {"train": ["a", "c"], "test": ["b"]}  # shard rows are sorted by sample_id
    by_id = {a["frame_dir"]: a for a in obj["annotations"]}
    for row in rows:
        ann = by_id[row["sample_id"]]
        validate_annotation(ann)
        n = row["num_frames"]
        assert ann["total_frames"] == n and ann["keypoint"].shape == (1, n, V, 2)
        assert ann["label"] == row["label"] and ann["img_shape"] == (120, 160)
        np.testing.assert_array_equal(ann["keypoint"][0, :, :14], row["keypoints"][:n, :14, :2])
        np.testing.assert_array_equal(ann["keypoint_score"][0, :, :14], row["keypoints"][:n, :14, 2])
        assert (ann["keypoint"][0, :, 14:] == 0).all() and (ann["keypoint_score"][0, :, 14:] == 0).all()


def test_export_reads_the_frame_size_from_the_video(toy_shards):
    import decord

    out, rows = toy_shards
    with pytest.raises(E.ExportError, match="nonexistent.*--img-shape"):
        E.mmaction_annotations(out)
    # drop the unreadable row's video by giving only readable ones: rewrite the shard
    readable = [r for r in rows if "nonexistent" not in r["uri"]]
    _write(out, readable)
    obj = E.mmaction_annotations(out)
    h, w = decord.VideoReader(readable[0]["uri"])[0].shape[:2]
    assert {a["img_shape"] for a in obj["annotations"]} == {(h, w)}


def test_export_errors(tmp_path, capsys):
    assert E.main(["mmaction", str(tmp_path), str(tmp_path / "o.pkl")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99, "shards": []}))
    assert E.main(["mmaction", str(tmp_path), "--out", str(tmp_path / "o.pkl")]) == 2
    assert "schema version 99" in capsys.readouterr().err
    assert E.main(["mmaction", str(tmp_path), "--out", str(tmp_path / "manifest.json" / "o.pkl")]) == 2
    assert "manifest.json is a file" in capsys.readouterr().err


def test_export_of_pipeline_shards_has_every_tracked_person(extracted, tmp_path):
    """Schema-2 shards: COCO-17 tracks of the tracked people and the stored frame shape."""
    import pyarrow.parquet as pq

    from pipelines.export import main

    out = tmp_path / "ann.pkl"
    assert main(["mmaction", str(extracted["out"]), str(out)]) == 0
    with open(out, "rb") as f:
        obj = pickle.load(f)
    rows = {r["sample_id"]: r for r in pq.read_table(sorted(extracted["out"].glob("videos-*.parquet"))).to_pylist()}
    assert len(obj["annotations"]) == len(rows) == 6
    for ann in obj["annotations"]:
        row = rows[ann["frame_dir"]]
        tracks = np.asarray(row["tracks"], np.float32).reshape(2, -1, 17, 3)[:, : row["num_frames"]]
        m = int(np.isfinite(tracks[..., 0]).any(axis=(1, 2)).sum()) or 1
        assert ann["keypoint"].shape == (m, row["num_frames"], 17, 2)
        assert ann["img_shape"] == tuple(row["frame_shape"]) and min(ann["img_shape"]) > 0
        seen = np.isfinite(tracks[0, ..., 0])
        np.testing.assert_array_equal(ann["keypoint"][0][seen], tracks[0][seen][:, :2])
