"""Seed 000 in the extraction: ``--body blazepose-ghum`` stores 3-D joints and the gait, and
``zoo.train vsgcnn`` trains on them as on EWalk (issue 22 step 4), all through the CLIs.

The corpus is a 4-class walking card (a copy of the CAER card with the gait labels) over four
3.2 s cuts of the shipped ``hikers_walking.mp4``. No labelled walking video exists here, so the
labels are placeholders: the test checks shapes, frames and the training run, not accuracy.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipelines.represent.embedding import gait_embedding
from schemas.keypoints import PROXEMO16

REPO = Path(__file__).resolve().parents[1]
CLIPS = {"train/Happy/0001.mp4": 0.0, "train/Angry/0002.mp4": 4.0, "validation/Sad/0003.mp4": 8.0,
         "test/Neutral/0004.mp4": 12.0}


def _cut(dest: Path, start_s: float, seconds: float = 3.2, fps: int = 10) -> None:
    """``seconds`` of the hikers from ``start_s``, every third frame (10 fps), 320 x 240 H.264."""
    import av
    import cv2

    src = REPO / "samples" / "videos" / "hikers_walking.mp4"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as s, av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i, frame in enumerate(s.decode(video=0)):
            if i < start_s * 30 or i % 3:
                continue
            if i >= (start_s + seconds) * 30:
                break
            img = cv2.resize(frame.to_ndarray(format="rgb24"), (320, 240), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _card(dest: Path) -> Path:
    text = (REPO / "datasets" / "caer.toml").read_text()
    text = re.sub(r'(?m)^name = "caer"', 'name = "walks"', text)
    text = re.sub(r'(?m)^names = \["Anger".*$', 'names = ["Angry", "Happy", "Neutral", "Sad"]', text)
    text = re.sub(r"(?m)^length_s = .*$", "length_s = 3.1", text)
    text = re.sub(r"(?ms)^\[counts\].*?^all = .*?$", "", text)
    dest.write_text(text)
    return dest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("walks")
    for rel, start in CLIPS.items():
        _cut(tmp / "W" / rel, start)
    card = _card(tmp / "walks.toml")
    out = tmp / "shards"
    proc = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--root", str(tmp / "W"),
                           "--out", str(out), "--body", "blazepose-ghum"], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, out


def _rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("shard-*.h5")):
        with h5py.File(path) as h5:
            for i in range(len(h5["videos/num_frames"])):
                rows.append({k: h5[f"videos/{k}"][i] for k in ("joints3d", "gait", "gait_embedding", "num_frames",
                                                                 "person_ids")})
    return rows


def test_3d_joints_and_the_seed_gait_are_stored(run):
    _, out = run
    rows = _rows(out)
    assert len(rows) == 4
    root, head = PROXEMO16.index("root"), PROXEMO16.index("head")
    feet = [PROXEMO16.index("left_foot"), PROXEMO16.index("right_foot")]
    for row in rows:
        n = int(row["num_frames"])
        assert row["joints3d"].shape == (2, 31, 33, 8)
        main = row["joints3d"][0, :n]
        seen = np.isfinite(main[..., 5:8]).all(axis=(1, 2))
        assert seen.sum() >= 10 and row["person_ids"][0] >= 0
        # metric world coordinates: a walker's hips-to-head span is a fraction of a metre to 2 m
        span = np.nanmax(main[seen, :, 6], axis=1) - np.nanmin(main[seen, :, 6], axis=1)
        assert 0.3 < float(np.median(span)) < 2.5
        gait = row["gait"][:n].astype(np.float64)
        np.testing.assert_allclose(gait[:, root], 0.0, atol=1e-6)          # root-centred per frame
        height = np.median(gait[:, head, 1] - gait[:, feet, 1].min(axis=1))
        assert height == pytest.approx(0.92, abs=1e-3)                     # y up, the fixtures' height
        np.testing.assert_allclose(row["gait_embedding"], gait_embedding(gait), atol=1e-3)


def test_zoo_train_vsgcnn_trains_on_the_stored_gaits(run):
    tmp, out = run
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "vsgcnn", "--input", "gait", "--shards", str(out),
                           "--epochs", "1", "--out", str(tmp / "run"), "--no-progress"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert "accuracy" in json.dumps(metrics)
