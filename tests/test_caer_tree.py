"""A CAER-layout corpus as distributed: 28 clips cycled from the 6 real videos of the shared data
(every one named ``.avi``, as CAER's are, whatever its container) plus 3 planted corrupt files.
Every good clip lands, every corrupt one is reported with its path and reason, and the run's
accounting closes (planned = written + failed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caer_fixtures import build_caer_tree

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared")) / "data" / "videos"

pytestmark = pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"shared data videos not found at {VIDEOS}")


def _caer_tree(root: Path) -> tuple[list[Path], list[Path]]:
    sources = sorted(VIDEOS.iterdir())
    assert len(sources) == 6
    return build_caer_tree(root, sources, 28, n_corrupt=3, corrupt_source=sources[3])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("caer")
    good, bad = _caer_tree(tmp / "CAER")
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", "caer", "--root", str(tmp / "CAER"),
                           "--out", str(out), "--num-shards", "4", "--no-progress"], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    return {"proc": proc, "out": out, "good": good, "bad": bad}


def test_the_28_good_clips_land(run):
    assert run["proc"].returncode == 0, run["proc"].stderr[-3000:]
    manifest = json.loads((run["out"] / "manifest.json").read_text())
    written = {sid for shard in manifest["shards"] for sid in shard["sample_ids"]}
    assert {f"caer/{p.relative_to(p.parents[2])}" for p in run["good"]} <= written
    assert manifest["rows"]["videos"] == 28 and manifest["samples"]["lost"] == []


def test_the_3_corrupt_files_are_reported_with_path_and_reason(run):
    errors = [json.loads(line) for line in (run["out"] / "errors.jsonl").read_text().splitlines()]
    by_path = {Path(e["uri"]).resolve(): e for e in errors if e.get("uri")}
    for path in run["bad"]:
        assert path.resolve() in by_path, f"{path} not reported: {errors}"
        assert by_path[path.resolve()]["message"]
    assert len(errors) == 3
    manifest = json.loads((run["out"] / "manifest.json").read_text())
    samples = manifest["samples"]
    assert samples["written"] + samples["failed"] == samples["planned"]
