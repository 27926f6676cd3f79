"""Training ACCM on shards extracted from the shipped clips."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
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


def _losses(run):
    rows = (run / "history.csv").read_text().splitlines()[1:]
    return [tuple(round(float(v), 6) for v in r.split(",")[1:4]) for r in rows]


def test_resume_continues_exactly(extracted, tmp_path):
    shards = str(extracted["out"])
    main(["accm-cnn", "--shards", shards, "--epochs", "4", "--out", str(tmp_path / "full"), "--no-progress"])
    main(["accm-cnn", "--shards", shards, "--epochs", "2", "--out", str(tmp_path / "half"), "--no-progress"])
    state = torch.load(tmp_path / "half" / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 2 and "optimizer" in state
    main(["accm-cnn", "--shards", shards, "--epochs", "4", "--out", str(tmp_path / "half"), "--no-progress",
          "--resume", str(tmp_path / "half" / "last.pt")])
    assert _losses(tmp_path / "half") == _losses(tmp_path / "full")
    assert list((tmp_path / "half" / "tb").glob("events.out.tfevents.*"))


def test_early_stopping_and_wrong_resume(extracted, tmp_path, capsys):
    shards = str(extracted["out"])
    out = tmp_path / "es"
    main(["accm", "--shards", shards, "--epochs", "40", "--lr", "0", "--patience", "2", "--out", str(out),
          "--no-progress", "--no-tensorboard"])
    metrics = json.loads((out / "metrics.json").read_text())
    # lr 0: the eval metric never improves after epoch 1, so epochs 2 and 3 run and it stops
    assert metrics["epochs_run"] == 3 and metrics["best_epoch"] == 1
    assert "early stop" in capsys.readouterr().err
    code = main(["accm-cnn", "--shards", shards, "--epochs", "2", "--out", str(tmp_path / "x"), "--no-progress",
                 "--resume", str(out / "last.pt")])
    assert code == 2 and "not 'accm-cnn'" in capsys.readouterr().err


def test_clip_stacks_and_missing_field_error(extracted):
    import pytest

    from schemas.shards import ShardSchemaError

    clips = ShardDataset(extracted["out"], "faces", "train", "clips", stack_clips=True)
    videos = ShardDataset(extracted["out"], "timeline", "train")
    assert len(clips) == len(videos)
    x, y = clips[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 2, 112, 112, 3)
    assert sorted(clips.labels) == sorted(videos.labels)
    with pytest.raises(ShardSchemaError, match="no dataset 'videos/optical_flow'"):
        ShardDataset(extracted["out"], "optical_flow", "train")


def test_validator_names_file_and_field(extracted, tmp_path):
    import shutil

    import h5py
    import pytest

    from schemas.shards import ShardSchemaError

    copy = tmp_path / "shards"
    shutil.copytree(extracted["out"], copy)
    h5 = sorted(copy.glob("shard-*.h5"))[0]
    with h5py.File(h5, "a") as f:
        rows = f["videos/pose_features"].shape[0]
        del f["videos/pose_features"]
        f["videos/pose_features"] = np.zeros((rows, 64, 100), np.float32)
    from shard_fixtures import restamp

    restamp(h5)  # an edit on purpose: past the integrity check, on to the schema check
    with pytest.raises(ShardSchemaError, match=rf"{h5.name}: videos/pose_features rows have shape \(64, 100\), "
                                               r"expected \(64, 238\)"):
        ShardDataset(copy, "timeline", "train")


def test_evaluate_checkpoint_on_shards_matches_training_metrics(extracted, tmp_path):
    from zoo.evaluate import main as evaluate_main

    run = tmp_path / "run"
    main(["accm-cnn", "--shards", str(extracted["out"]), "--epochs", "3", "--out", str(run), "--no-progress",
          "--no-tensorboard"])
    trained = json.loads((run / "metrics.json").read_text())
    code = evaluate_main([str(run / "checkpoint.pt"), "--shards", str(extracted["out"]), "--split", "test",
                          "--out", str(tmp_path / "ev")])
    assert code == 0
    scored = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert scored["confusion_matrix"] == trained["confusion_matrix"] and scored["rows"] == 3
    assert evaluate_main([str(run / "nope.pt"), "--shards", str(extracted["out"])]) == 2
