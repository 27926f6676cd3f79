"""End-to-end extraction on real shipped clips (a reduced copy of the sample card), and shards.

The extraction runs once per test session (Beam DirectRunner, CPU) on 6 windows, 2 per class.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.cards import load_card
from pipelines.readers import read_samples

from conftest import small_card as _small_card


def test_small_card_has_two_windows_per_class(repo, tmp_path):
    samples = read_samples(load_card(_small_card(repo, tmp_path)), repo / "samples" / "videos")
    assert [s.label for s in samples] == [0, 0, 1, 1, 2, 2]
    assert [s.split for s in samples] == ["train", "test"] * 3


def test_manifest_counts_and_extractors(extracted):
    manifest = json.loads((extracted["out"] / "manifest.json").read_text())
    assert manifest["rows"] == {"videos": 6, "clips": 18, "videos_per_split": {"train": 3, "test": 3}}
    assert manifest["errors"]["total"] == 0
    assert manifest["extractors"]["pose"]["sha256"] == \
        "5920c765a9184e4f514eda293f9de0a225ba91dc48841092c105c1c0aceedf73"
    assert manifest["extractors"]["face"]["sha256"] == \
        "54ecff653feaaaf1f7d44b6aff28fd2fc50e483a4e847563b6dd261369c43ba4"
    assert set(manifest["timings"]["stages"]) >= {"decode_wait", "pose", "assemble", "face", "represent", "write"}
    assert "6/6 written" in extracted["stdout"]


def test_parquet_and_h5_agree(extracted):
    out = extracted["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    for shard in manifest["shards"]:
        videos = pq.read_table(out / shard["files"]["videos"]["name"])
        clips = pq.read_table(out / shard["files"]["clips"]["name"])
        with h5py.File(out / shard["files"]["h5"]["name"], "r") as f:
            assert f["videos/sample_id"].asstr()[()].tolist() == videos.column("sample_id").to_pylist()
            timeline = videos.column("timeline").combine_chunks().to_numpy_ndarray()
            np.testing.assert_array_equal(f["videos/timeline"][()], timeline)
            kp = videos.column("keypoints").combine_chunks().to_numpy_ndarray()
            np.testing.assert_array_equal(f["videos/keypoints"][()], kp)
            boxes = clips.column("face_boxes").combine_chunks().to_numpy_ndarray()
            np.testing.assert_array_equal(f["clips/face_boxes"][()], boxes)
            assert f["clips/faces"].shape[1:] == (2, 112, 112, 3)
        assert videos.num_rows == shard["videos"] and clips.num_rows == shard["clips"]


def _all(out, table, column):
    files = sorted(out.glob(f"{table}-*.parquet"))
    return pq.read_table(files).column(column)


def test_main_person_is_found_in_walking_windows(extracted):
    out = extracted["out"]
    ids = _all(out, "videos", "sample_id").to_pylist()
    kp = _all(out, "videos", "keypoints").combine_chunks().to_numpy_ndarray()
    persons = _all(out, "videos", "persons").combine_chunks().to_numpy_ndarray()
    for sid, k, n in zip(ids, kp, persons):
        if "hikers" in sid:
            # a group of hikers: several poses per frame, the main one tracked in most frames
            assert np.median(n) >= 3
            assert np.isfinite(k[:, 1, 0]).mean() > 0.8  # neck (mid-shoulders) present


def test_timelines_encode_joint_numbers(extracted):
    timeline = _all(extracted["out"], "videos", "timeline").combine_chunks().to_numpy_ndarray()
    assert timeline.shape[1:] == (36, 64, 30)
    for t in timeline:
        for j in range(18):  # channel 2j (x track) and 2j+1 (y track) hold j + 1 where present
            values = np.unique(t[2 * j: 2 * j + 2])
            assert set(values.tolist()) <= {0.0, float(j + 1)}
        # one bin per column and track where the joint is present
        assert ((t > 0).sum(axis=1) <= 1).all()


def test_faces_found_and_superimage_round_trip(extracted):
    out = extracted["out"]
    import cv2

    from pipelines.represent.superimage import untile_superimage
    ids = _all(out, "clips", "sample_id").to_pylist()
    found = np.array(_all(out, "clips", "face_found").to_pylist())
    boxes = _all(out, "clips", "face_boxes").combine_chunks().to_numpy_ndarray()
    group = np.array(["group_event" in s for s in ids])
    # the group event shows a frontal face in every frame: all clip frames find one
    assert found[group].all()
    widths = boxes[group][..., 2] - boxes[group][..., 0]
    assert np.all((widths > 20) & (widths < 120))  # faces are 20-62 px wide in that clip
    pngs = _all(out, "clips", "superimage_png").to_pylist()
    layouts = _all(out, "clips", "superimage_layout").to_pylist()
    tiles = untile_superimage(cv2.cvtColor(cv2.imdecode(np.frombuffer(pngs[0], np.uint8), 1), cv2.COLOR_BGR2RGB),
                              json.loads(layouts[0]))
    assert tiles.shape == (2, 112, 112, 3)


def test_rerun_reuses_done_shards(repo, extracted):
    run = subprocess.run(extracted["cmd"], cwd=repo,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "reused from an earlier run" in run.stdout
    manifest = json.loads((extracted["out"] / "manifest.json").read_text())
    assert manifest["rows"]["videos"] == 6


def test_missing_video_goes_to_errors(repo, tmp_path):
    card = _small_card(repo, tmp_path).read_text().replace('video = "group_event_smiling.mp4"',
                                                            'video = "no_such_clip.mp4"')
    path = tmp_path / "broken.toml"
    path.write_text(card)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", str(path), "--out", str(out),
                          "--no-progress", "--limit", "4", "--fail-on-error"],
                         cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in errors} == {"decode"} and len(errors) == 2
    assert all("no_such_clip.mp4" in e["uri"] and "no_such_clip.mp4" in e["message"] for e in errors)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"]["written"] == 2  # the two good hikers windows still land
