"""A small shard set written by the real shard writer (:func:`pipelines.shards.write_shard`):
hand-made rows of the full HDF5 / Parquet layout, cheap enough to build per test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.shards import write_shard
from schemas.shards import SCHEMA_VERSION, ShardShapes

T, V = 5, 18
SHAPES = ShardShapes(frames=T, joints=V, clips=1, frames_per_clip=2, face_size=8, timeline_size=4, timeline_length=3,
                     classes=3)
LABELS = ["c0", "c1", "c2"]


def identity_columns(frames: int, persons: int = 2) -> dict:
    """The schema-4 person and shot columns of a videos row with nobody tracked."""
    return {"shots": np.zeros(frames, np.int32), "person_ids": np.full(persons, -1, np.int32),
            "main_present": np.zeros(frames, bool)}


def clip_identity_columns(k: int) -> dict:
    """The schema-4 person and shot columns of a clips row without faces."""
    return {"face_person": np.full(k, -1, np.int32), "shots": np.zeros(k, np.int32)}


def video_row(sample_id: str, split: str, label: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 100, (T, V, 3)).astype(np.float32)
    return {"corpus": "toy", "sample_id": sample_id, "video_id": sample_id, "uri": "/nowhere.mp4", "split": split,
            "label": label, "label_name": LABELS[label], "start_s": 0.0, "end_s": 1.0, "fps": 5.0,
            "num_frames": T, "frame_indices": np.arange(T), "timestamps_s": np.zeros(T), "keypoints": kp,
            "persons": np.ones(T), "timeline": rng.uniform(0, 1, (2 * V, 4, 3)).astype(np.float32),
            "frame_shape": np.zeros(2, np.int32), "tracks": np.full((2, T, 17, 3), np.nan, np.float32),
            "pose_features": np.zeros((64, 238), np.float32), "targets": [], "valence": None, "arousal": None,
            "fold": None, "fold_index": -1, "targets_vector": np.eye(3, dtype=np.float32)[label],
            **identity_columns(T)}


def clip_row(video: dict) -> dict:
    ids = {k: video[k] for k in ("corpus", "sample_id", "video_id", "uri", "split", "label", "label_name")}
    return {**ids, "clip_index": 0, "frame_indices": np.zeros(2), "timestamps_s": np.zeros(2),
            "face_boxes": np.full((2, 4), np.nan), "face_scores": np.zeros(2), "face_found": [False, False],
            "keypoints": np.full((2, V, 3), np.nan), "superimage_png": b"", "superimage_layout": "{}",
            "faces": np.zeros((2, 8, 8, 3), np.uint8), "fullbody": np.zeros((2, 8, 8, 3), np.uint8),
            "body": np.zeros((2, 8, 8, 3), np.uint8), "body_boxes": np.full((2, 4), np.nan), "fullbody_png": b"",
            "fold_index": -1, **clip_identity_columns(2)}


def toy_run(out: Path, shards: int = 2, rows: int = 8, prefix: str = "toy/v") -> dict:
    """Write ``shards`` shards of ``rows`` samples (train and test, 3 classes) and the manifest
    into ``out``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    items = [video_row(f"{prefix}{i}", "train" if i % 2 else "test", i % 3, i) for i in range(rows)]
    markers = [write_shard(out, k, shards, SHAPES, [(r, [clip_row(r)]) for r in items[k::shards]], "hash", {})
               for k in range(shards)]
    manifest = {"schema_version": SCHEMA_VERSION, "label_names": LABELS, "config": None, "shards": markers}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def restamp(h5: Path) -> None:
    """Record an edited shard file's new size and sha256 in its done-marker and the manifest
    (for tests that edit a shard on purpose to reach a later check, e.g. the schema validator)."""
    from pipelines.shards import sha256_file

    run = h5.parent
    marker_path = run / f"shard-{h5.name.split('-', 1)[-1].rsplit('.', 1)[0]}.done.json"
    marker = json.loads(marker_path.read_text())
    marker["files"]["h5"].update(bytes=h5.stat().st_size, sha256=sha256_file(h5))
    marker_path.write_text(json.dumps(marker, indent=1))
    manifest = json.loads((run / "manifest.json").read_text())
    for entry in manifest["shards"]:
        if entry["files"]["h5"]["name"] == h5.name:
            entry["files"]["h5"].update(marker["files"]["h5"])
    (run / "manifest.json").write_text(json.dumps(manifest, indent=1))
