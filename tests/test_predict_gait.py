"""Seed 000 end to end: BlazePose joints -> ProxEmo gait frame -> VS-GCNN through
``python -m zoo.predict proxemo-vsgcnn VIDEO`` (zoo/predict/gait.py, pipelines/represent/gait.py).

No labelled walking video exists here, so nothing below claims accuracy: the CLI runs end to end
on the shipped clip and its outputs are deterministic (two runs, same lines); the mapped gaits
have the frame and statistics of the shared gait fixtures.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.represent import gait as G
from schemas.keypoints import PROXEMO16

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "videos" / "hikers_walking.mp4"
STEP = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared")) / "data" / "gait" / "step_features4DCVAEGCN.h5"
ROOT, HEAD = PROXEMO16.index("root"), PROXEMO16.index("head")
FEET = [PROXEMO16.index("left_foot"), PROXEMO16.index("right_foot")]


@pytest.fixture(scope="module")
def walker_keypoints() -> np.ndarray:
    """BlazePose keypoints [31, 33, 8] of the main hiker in the first 31 frames."""
    import av

    from extractors.blazepose import estimate_poses, load_blazepose

    frames = []
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == G.GAIT_WINDOW:
                break
    results = estimate_poses(load_blazepose(), np.stack(frames))
    return np.stack([kps[0] for _, kps in results])


def _heights(gaits) -> np.ndarray:
    return np.array([np.median(g[:, HEAD, 1] - g[:, FEET, 1].min(axis=1)) for g in gaits])


def test_mapped_gait_matches_the_fixture_frame(walker_keypoints):
    h5py = pytest.importorskip("h5py")
    if not STEP.is_file():
        pytest.skip(f"shared gait fixtures absent ({STEP})")
    with h5py.File(STEP, "r") as f:
        fixtures = [np.asarray(f[k], np.float64).reshape(-1, 16, 3) for k in f]
    gait = G.gait_from_blazepose(walker_keypoints)
    assert gait.shape == (G.GAIT_WINDOW, 16, 3)
    # root-centred: the fixtures keep the root within 0.08 of the origin, ours is at it
    fixture_root = max(np.abs(g[:, ROOT]).max() for g in fixtures)
    assert fixture_root < 0.1 and np.abs(gait[:, ROOT]).max() <= fixture_root
    # body height within the fixtures' range, y up (head above root above the feet) as there
    lo, hi = _heights(fixtures).min(), _heights(fixtures).max()
    assert lo - 0.01 <= _heights([gait])[0] <= hi + 0.01, (lo, hi, _heights([gait]))
    for g in (fixtures[0], gait):
        assert (g[:, HEAD, 1] > g[:, ROOT, 1]).all() and (g[:, FEET, 1].max(axis=1) < g[:, ROOT, 1]).all()


def test_gait_frame_flips_y_and_z_and_scales_metres(walker_keypoints):
    joints = G.blazepose_to_proxemo16(walker_keypoints)
    # BlazePose world: y down, so the head is at negative y in metres, 1.2-2 m above the ankles
    metres = np.median(joints[:, FEET, 1].max(axis=1) - joints[:, HEAD, 1])
    assert 1.0 < metres < 2.0
    gait = G.to_gait_frame(joints)
    scale = G.GAIT_BODY_HEIGHT / np.median(joints[:, FEET, 1].max(axis=1) - joints[:, HEAD, 1])
    centred = (joints - joints[:, ROOT:ROOT + 1]) * np.array([1, -1, -1]) * scale
    np.testing.assert_allclose(gait, centred, rtol=0, atol=1e-5)


def test_gaps_are_interpolated_and_short_gaits_tiled():
    joints = np.zeros((5, 16, 3))
    joints[:, :, 0] = np.arange(5)[:, None]
    joints[2] = np.nan
    filled = G.fill_gaps(joints)
    np.testing.assert_allclose(filled[2, :, 0], 2.0)
    assert G.tile_short_gait(np.zeros((31, 16, 3))).shape == (248, 16, 3)
    assert G.tile_short_gait(np.zeros((60, 16, 3))).shape == (60, 16, 3)
    with pytest.raises(ValueError, match="no frame"):
        G.fill_gaps(np.full((3, 16, 3), np.nan))
    with pytest.raises(ValueError, match=r"\[\.\.\., 33, 8\]"):
        G.blazepose_to_proxemo16(np.zeros((3, 17, 3)))


def _predict(tmp_path: Path, name: str, *extra: str) -> list[dict]:
    out = tmp_path / f"{name}.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "zoo.predict", "proxemo-vsgcnn", str(CLIP), "--max-frames",
                          str(G.GAIT_WINDOW), "--out", str(out), "--no-progress", *extra],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_cli_predicts_a_walker_deterministically_with_overlay(tmp_path):
    lines = _predict(tmp_path, "a", "--overlay", str(tmp_path / "walk.mp4"))
    again = _predict(tmp_path, "b")
    head, windows, summary = lines[0], [r for r in lines if r["type"] == "window"], lines[-1]
    assert head["model"] == "proxemo-vsgcnn" and head["extractor"] == "blazepose-ghum"
    assert head["window_frames"] == 31 and head["sampled_frames"] == 31 and head["error"] is None
    assert len(windows) >= 1 and windows[0]["start_frame"] == 0 and windows[0]["end_frame"] == 30
    assert set(windows[0]["scores"]) == {"angry", "happy", "sad", "neutral"}
    assert abs(sum(windows[0]["scores"].values()) - 1) < 1e-4
    assert windows[0]["class"] == max(windows[0]["scores"], key=windows[0]["scores"].get)
    assert summary["type"] == "emotion_summary" and summary["person"] == windows[0]["person"]
    assert (tmp_path / "walk.mp4").stat().st_size > 10_000
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("overlay",)} for r in rs]  # noqa: E731
    assert strip(lines[1:]) == strip(again[1:])


def test_pretrained_list_shows_the_gait_model():
    run = subprocess.run([sys.executable, "-m", "zoo.train", "--list"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0
    row = next(line for line in run.stdout.splitlines() if line.startswith("proxemo-vsgcnn"))
    assert "walking-video" in row and " 4 " in row


@pytest.fixture(scope="module")
def gait_checkpoint(tmp_path_factory):
    """A ``zoo.train vsgcnn`` checkpoint: one epoch from ProxEmo's weights on 12 STEP gaits."""
    if not STEP.is_file():
        pytest.skip(f"shared gait fixtures absent ({STEP})")
    sys.path.insert(0, str(REPO / "tests"))
    from corpus_fixtures import step_pair
    from test_corpora import _small_card

    from zoo.train import main

    tmp = tmp_path_factory.mktemp("gait_ckpt")
    fx = step_pair(tmp / "step", STEP.parents[2])
    card = _small_card("ewalk", tmp, **{'features = ["features.h5"]': 'features = ["features4DCVAEGCN.h5"]',
                                        "max_frames = 240": "max_frames = 24"})
    shards = tmp / "shards"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--root",
                          str(fx.root), "--out", str(shards), "--no-progress", "--num-shards", "1", "--limit", "12"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp / "run"
    assert main(["vsgcnn", "--shards", str(shards), "--pretrained", "--epochs", "1", "--batch-size", "8",
                 "--lr", "1e-3", "--train-split", "train", "--eval-split", "train", "--out", str(out),
                 "--no-progress", "--no-tensorboard"]) == 0
    return out / "checkpoint.pt"


def test_trained_gait_checkpoint_predicts_like_the_pretrained_model(gait_checkpoint, walker_keypoints):
    import torch

    from zoo.predict.gait import GaitPredictor
    from zoo.predict.load import load_predictor

    trained = load_predictor(str(gait_checkpoint))
    pretrained = load_predictor("proxemo-vsgcnn")
    assert isinstance(trained, GaitPredictor) and isinstance(pretrained, GaitPredictor)
    assert trained.names == ("Angry", "Happy", "Sad", "Neutral")
    a, b = trained.network.state_dict(), pretrained.network.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # fine-tuned, not ProxEmo's weights
    gait = G.gait_from_blazepose(walker_keypoints)
    p_trained, p_pretrained = trained._classify(gait), pretrained._classify(gait)
    assert p_trained.shape == p_pretrained.shape == (4,) and abs(p_trained.sum() - 1) < 1e-6
    np.testing.assert_array_equal(p_trained, trained._classify(gait))  # deterministic
