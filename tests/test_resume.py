"""Resume under crashes: SIGKILL the whole extraction (driver, Beam workers, decoder children) at
seeded random points, rerun until it completes, and compare with an uninterrupted run.

Checked after every kill: no temporary file under a name readers glob, and every done marker's
files have the sha256 it records. Checked at the end: the same rows (sample_id and content
hashes of keypoints and timeline) as the uninterrupted run, none missing, none duplicated, and
no temporary file left at all.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from pipelines.shards import sha256_file
from test_runners import run_extract, shard_rows, tiny_card

# one torch thread everywhere: the keypoints' last float bits depend on the thread count
ARGS = ("--limit", "4", "--num-shards", "4", "--torch-threads", "1")


def _fingerprint(rows: dict[str, dict]) -> dict[str, str]:
    """sha256 of each row's timeline (joint numbers in integer bins: exact across runs)."""
    return {sid: hashlib.sha256(json.dumps(r["timeline"]).encode()).hexdigest() for sid, r in rows.items()}


def _same_keypoints(a: dict[str, dict], b: dict[str, dict]) -> None:
    for sid in a:  # float pixels: Beam may batch frames differently between runs (1e-3 px)
        np.testing.assert_allclose(np.asarray(a[sid]["keypoints"], float), np.asarray(b[sid]["keypoints"], float),
                                   rtol=1e-5, atol=1e-3, err_msg=sid)


def _check_visible_files(out) -> int:
    """Readers see no temporary file and every done shard is intact; returns the done shards."""
    visible = [p for p in out.rglob("*") if not p.name.startswith(".") and ".progress" not in p.parts]
    assert not [p for p in visible if "tmp" in p.name], visible
    done = sorted(out.glob("shard-*.done.json"))
    for marker_path in done:
        marker = json.loads(marker_path.read_text())
        for f in marker["files"].values():
            assert sha256_file(out / f["name"]) == f["sha256"], f"{f['name']} differs from its done marker"
    return len(done)


def _wait_for(proc, condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigkill_at_random_points_then_resume(repo, tmp_path):
    card = tiny_card(repo, tmp_path)
    started = time.monotonic()
    ref = run_extract(repo, card, tmp_path / "ref", *ARGS, "--direct-mode", "in_memory")
    assert ref.returncode == 0, ref.stderr[-3000:]
    duration = time.monotonic() - started
    ref_rows = shard_rows(tmp_path / "ref")
    expected = _fingerprint(ref_rows)
    assert len(expected) == 4

    out = tmp_path / "out"
    rng = random.Random(20261121)
    # kill points: a random time into the run; a random delay after the first shard file is
    # renamed into place; a random delay after the first done marker (attempts alternate
    # between the multi-process and the in-process local runner: resume must not care)
    def markers() -> int:
        return len(list(out.glob("*.done.json")))

    triggers = [None, lambda before: any(out.glob("videos-*.parquet")), lambda before: markers() > before]
    kills, done_after_kill = 0, []
    for attempt, trigger in enumerate(triggers):
        before = markers()
        mode = "multi_processing" if attempt % 2 == 0 else "in_memory"
        cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(out),
               "--no-progress", "--direct-mode", mode, *ARGS]
        proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # its own process group: driver, workers, decoders
        if attempt == 0:
            time.sleep(rng.uniform(0.3, 0.9) * duration)
        else:
            _wait_for(proc, lambda: trigger(before), 3 * duration)
            time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        done_after_kill.append(_check_visible_files(out))
    assert kills >= 2, "the runs ended before the kill points: the test did not interrupt anything"
    final = run_extract(repo, card, out, *ARGS, "--direct-mode", "in_memory")
    assert final.returncode == 0, final.stderr[-3000:]
    rows = shard_rows(out)  # asserts that no sample_id is written twice
    assert _fingerprint(rows) == expected
    _same_keypoints(rows, ref_rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"] == {"planned": 4, "written": 4, "failed": 0, "lost": []}
    assert manifest["errors"]["total"] == 0
    assert not [p for p in out.rglob("*tmp*")], "temporary files left behind"
    assert _check_visible_files(out) == len(manifest["shards"])
    print(f"kills {kills}, done shards after each kill {done_after_kill}, reused by the final run "
          f"{len(manifest['skipped_shards'])}, reference run {duration:.1f} s")
