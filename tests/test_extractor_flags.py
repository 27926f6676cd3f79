"""``--face`` / ``--body``: the extractor in use is a flag, recorded in the manifest, and missing
weights stop the run before any decoding with the registry's instructions (never a fallback)."""
from __future__ import annotations

import json
import os

import pytest

from pipelines import extract
from test_runners import run_extract, tiny_card


def _env(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("AFFECTZOO_WEIGHTS", "AFFECTZOO_OFFLINE")}
    env.update(values)
    return env


def test_flag_names_map_to_registry_entries():
    from extractors.weights import REGISTRY

    for name in {**extract.FACE_EXTRACTORS, **extract.BODY_EXTRACTORS}.values():
        assert name in REGISTRY
    args = extract.parse_args(["--face", "dbface", "--body", "openpose"])
    assert extract.FACE_EXTRACTORS[args.face] == "dbface-small"
    assert extract.BODY_EXTRACTORS[args.body] == "openpose-body"


@pytest.mark.parametrize("flag, filename, name", [(("--face", "dbface"), "dbfaceSmallH.pth", "dbface-small"),
                                                  (("--body", "openpose"), "body_pose_model.pth", "openpose-body")])
def test_missing_weights_fail_before_decoding(repo, tmp_path, flag, filename, name):
    empty = tmp_path / "no_weights"
    empty.mkdir()
    out = tmp_path / "out"
    run = run_extract(repo, tiny_card(repo, tmp_path), out, *flag, "--limit", "2", timeout=120,
                      env=_env(AFFECTZOO_WEIGHTS=str(empty), AFFECTZOO_OFFLINE="1"))
    assert run.returncode != 0
    assert "WeightsNotFoundError" in run.stderr and filename in run.stderr
    assert f"python -m extractors.weights install {name} {filename}" in run.stderr
    assert "Official source: https://" in run.stderr
    assert not out.exists()  # stopped before any decoding or output


def test_dbface_runs_and_is_recorded(repo, tmp_path, shared):
    weights = shared / "data" / "weights"
    if not (weights / "dbfaceSmallH.pth").is_file():
        pytest.skip(f"{weights}/dbfaceSmallH.pth (test-only DBFace weights) is absent")
    out = tmp_path / "out"
    run = run_extract(repo, tiny_card(repo, tmp_path), out, "--face", "dbface", "--limit", "2",
                      env=_env(AFFECTZOO_WEIGHTS=str(weights)))
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extractors"]["face"]["name"] == "dbface-small"
    assert manifest["extractors"]["face"]["file"] == "dbfaceSmallH.pth"
    assert manifest["config"]["face_extractor"] == "dbface-small"
    assert manifest["samples"]["written"] == 2 and manifest["errors"]["total"] == 0
    assert "face dbface-small" in run.stdout


def test_openpose_keypoints_enter_the_assembly_as_coco17():
    import numpy as np
    from apache_beam.ml.inference.base import PredictionResult

    from pipelines.stages import pose_by_sample
    from schemas.keypoints import COCO17, OPENPOSE18

    rng = np.random.default_rng(0)
    op18 = rng.uniform(0, 100, (2, 18, 3)).astype(np.float32)  # 2 people, OpenPose-18 order
    frame = np.zeros((4, 4, 3), np.uint8)
    item = (("s", 3, True), PredictionResult(frame, (np.array([0.9, 0.5], np.float32), op18)))
    sid, (pos, (scores, coco), kept) = pose_by_sample(item, to_coco=True)
    assert (sid, pos) == ("s", 3) and kept is frame and coco.shape == (2, 17, 3)
    for j, name in enumerate(COCO17):
        np.testing.assert_array_equal(coco[:, j], op18[:, OPENPOSE18.index(name)])
    _, (_, (_, same), _) = pose_by_sample(item)  # PoseNet output is passed through
    assert same is op18
