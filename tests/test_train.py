"""Training ACCM on shards extracted from the shipped clips."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

from zoo.data import ShardDataset
from zoo.train import main


def test_shard_dataset_reads_timelines(extracted):
    train = ShardDataset(extracted["out"], "timeline", "train")
    test = ShardDataset(extracted["out"], "timeline", "test")
    assert (len(train), len(test)) == (3, 3)
    x, y = train[0]
    assert x.shape == (36, 64, 30) and x.dtype == torch.float32 and 0 <= y < 3
    assert sorted(train.labels) == [0, 1, 2]


def test_accm_loss_falls_and_outputs_written(extracted, tmp_path):
    out = tmp_path / "run"
    code = main(["accm", "--shards", str(extracted["out"]), "--epochs", "8", "--out", str(out),
                 "--seed", "0", "--no-progress"])
    assert code == 0
    history = [line.split(",") for line in (out / "history.csv").read_text().splitlines()[1:]]
    losses = [float(h[1]) for h in history]
    assert losses[-1] < 0.5 * losses[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"walking_outdoors", "standing_group_indoors", "close_up_talking"}
    assert sum(map(sum, metrics["confusion_matrix"])) == 3
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    # ACCM(56, 8) has 429,248; with 36 channels (OpenPose-18) and 3 classes: 382,323
    assert ckpt["config"]["manifest_sha256"] and ckpt["config"]["parameters"] == 382_323


def test_same_seed_same_losses(extracted, tmp_path):
    runs = []
    for name in ("a", "b"):
        main(["accm-cnn", "--shards", str(extracted["out"]), "--epochs", "2", "--out", str(tmp_path / name),
              "--no-progress"])
        runs.append((tmp_path / name / "history.csv").read_text().splitlines())
    strip = [[",".join(line.split(",")[:4]) for line in r] for r in runs]
    assert strip[0] == strip[1]


def test_list_shows_parameter_counts():
    run = subprocess.run([sys.executable, "-m", "zoo.train", "--list"], capture_output=True, text=True)
    assert run.returncode == 0
    assert "429,248" in run.stdout and "213,768" in run.stdout
