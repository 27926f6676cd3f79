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
    from extractors import registry
    from extractors.weights import REGISTRY

    for entry in registry.entries():
        assert set(entry.weight_files) <= set(REGISTRY)
    args = extract.parse_args(["--face", "dbface", "--body", "openpose"])
    assert registry.resolve(args.face, role="face").name == "dbface-small"
    assert registry.resolve(args.body, role="pose").name == "openpose-body"
    with pytest.raises(registry.UnknownExtractorError, match="did you mean"):
        registry.resolve("dbfase", role="face")


@pytest.mark.parametrize("flag, filename, name", [(("--face", "dbface"), "dbfaceSmallH.pth", "dbface-small"),
                                                  (("--body", "openpose"), "body_pose_model.pth", "openpose-body")])
def test_missing_weights_fail_before_decoding(repo, tmp_path, flag, filename, name):
    empty = tmp_path / "no_weights"
    empty.mkdir()
    out = tmp_path / "out"
    run = run_extract(repo, tiny_card(repo, tmp_path), out, *flag, "--limit", "2", timeout=120,
                      env=_env(AFFECTZOO_WEIGHTS=str(empty), AFFECTZOO_OFFLINE="1"))
    assert run.returncode != 0
    assert f"weights file '{filename}' ({name}) not found" in run.stderr  # one-line error, no traceback
    assert "Traceback" not in run.stderr
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
    """The pipeline brings every pose extractor's output to COCO-17 through the registry:
    OpenPose-18 joints are picked by name (the neck is dropped); PoseNet passes through."""
    import numpy as np

    from extractors import registry
    from schemas.keypoints import COCO17, OPENPOSE18

    rng = np.random.default_rng(0)
    op18 = rng.uniform(0, 100, (2, 18, 3)).astype(np.float32)  # 2 people, OpenPose-18 order
    layout = registry.resolve("openpose", role="pose").keypoint_layout
    coco = registry.to_coco17(op18, layout)
    assert layout == "openpose18" and coco.shape == (2, 17, 3) and coco.dtype == np.float32
    for j, name in enumerate(COCO17):
        np.testing.assert_array_equal(coco[:, j], op18[:, OPENPOSE18.index(name)])
    posenet = rng.uniform(0, 100, (3, 17, 3)).astype(np.float32)
    assert registry.to_coco17(posenet, registry.resolve("posenet").keypoint_layout) is posenet
    with pytest.raises(ValueError, match="openpose18"):
        registry.to_coco17(posenet, "openpose18")
