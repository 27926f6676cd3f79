"""VS-GCNN in the zoo: view-augmented inputs derived from stored gaits, training from ProxEmo."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from zoo.data import ShardDataset
from zoo.registry import gait_view
from zoo.train import main


def test_gait_view_equals_the_reference_embeddings(shared):
    ref = np.load(shared / "reference" / "representations" / "proxemo" / "embedding_00001_Angry.npz")
    gait = ref["gait"].reshape(len(ref["gait"]), 16, 3)
    for v in range(4):
        image, group = gait_view(gait.astype(np.float32), len(gait), v)
        assert group == v
        np.testing.assert_allclose(image, ref["embeddings"][v + 1], atol=0.05)  # float32-stored gait
        image64, _ = gait_view(gait, len(gait), v)
        np.testing.assert_allclose(image64, ref["embeddings"][v + 1], atol=1e-3)
    with pytest.raises(ValueError, match="16-joint ProxEmo gaits"):
        gait_view(np.zeros((10, 18, 3)), 10, 0)


@pytest.fixture(scope="module")
def step_shards(repo, shared, tmp_path_factory):
    from corpus_fixtures import step_pair
    from test_corpora import _small_card

    tmp = tmp_path_factory.mktemp("step")
    fx = step_pair(tmp / "step", shared)
    card = _small_card("ewalk", tmp, **{'features = ["features.h5"]': 'features = ["features4DCVAEGCN.h5"]',
                                        "max_frames = 240": "max_frames = 24"})
    out = tmp / "out"
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--root", str(fx.root), "--out",
           str(out), "--no-progress", "--num-shards", "1", "--limit", "12"]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_vsgcnn_items_are_four_views_per_gait(step_shards):
    data = ShardDataset(step_shards, "keypoints", None, target="view_group", derive=gait_view, views=4)
    assert len(data) >= 4 * 4 and len(data) % 4 == 0 and data.label_names == ["Angry", "Happy", "Sad", "Neutral"]
    names = data.label_names
    for i in range(4):
        x, target = data[i]
        assert x.shape == (244, 244, 3) and 0 <= float(x.min()) and float(x.max()) <= 255
        assert target == 4 * data.labels[i] + i and names[data.labels[i]]


def test_vsgcnn_fine_tunes_from_proxemo(step_shards, tmp_path):
    out = tmp_path / "vsgcnn"
    code = main(["vsgcnn", "--shards", str(step_shards), "--pretrained", "--epochs", "1", "--batch-size", "8",
                 "--lr", "1e-4", "--train-split", "train", "--eval-split", "train", "--out", str(out),
                 "--no-progress", "--no-tensorboard"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == metrics["eval_rows"] and len(metrics["confusion_matrix"]) == 4


def test_vsgcnn_needs_four_labels():
    from zoo.registry import MODELS

    with pytest.raises(ValueError, match="4 emotions x 4 view groups; this corpus has 6 labels"):
        MODELS["vsgcnn"].build((244, 244, 3), 24)
