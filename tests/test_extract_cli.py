"""``python -m pipelines.extract`` as a user types it: set-up errors in one line before any work,
exact resume, accounting, a lock per output folder, failed writes, Ctrl-C.

Most cases run the cheap skeleton path (an EWalk-layout corpus of synthetic gaits, generated
here), so the Beam machinery, the shard planning and the writer are real while no model runs.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_scale_memory import _gait_corpus

REPO = Path(__file__).resolve().parents[1]


def extract(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.extract", "--no-progress", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kw)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def gaits(tmp_path_factory) -> Path:
    return _gait_corpus(tmp_path_factory.mktemp("gaits") / "root", 12)


def _one_error_line(run: subprocess.CompletedProcess, *needles: str) -> str:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2, run.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA device")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path):
    _one_error_line(extract("--device", "cuda", "--out", str(tmp_path / "o")), "--device cuda", "no CUDA device")
    assert not (tmp_path / "o").exists()


def test_unwritable_out_is_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    start = time.monotonic()
    _one_error_line(extract("--out", str(blocker / "shards")), str(blocker))
    _one_error_line(extract("--out", "/proc/affectzoo"), "/proc")
    assert time.monotonic() - start < 60  # no decoding, no model


def test_unknown_dataset_suggests_the_nearest_card(tmp_path):
    line = _one_error_line(extract("--dataset", "caerr", "--out", str(tmp_path / "o")), "caer")
    assert "did you mean" in line


def test_empty_root_names_the_expected_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_error_line(extract("--dataset", "ewalk", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "o")),
                    "no samples", "gait_h5")


def test_rerun_extracts_every_planned_sample_a_trial_run_left_out(gaits, tmp_path):
    out = tmp_path / "out"
    first = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--limit", "1", "--num-shards", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert manifest(out)["samples"]["written"] == 1
    second = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--limit", "6", "--num-shards", "2")
    assert second.returncode == 0, second.stderr[-2000:]
    assert manifest(out)["samples"] == {"planned": 6, "written": 6, "failed": 0, "lost": []}
    assert "redone: its done marker lacks" in second.stderr  # the user is told why a done shard is redone
    full = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--num-shards", "2")
    m = manifest(out)
    assert full.returncode == 0 and m["samples"]["written"] == 12 and m["rows"]["videos"] == 12
    markers = [json.loads(p.read_text()) for p in sorted(out.glob("*.done.json"))]
    assert sorted(sid for mk in markers for sid in mk["sample_ids"]) == sorted(
        f"ewalk/features.h5#{i:05d}_gait_positions.csv" for i in range(12))
    again = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--num-shards", "2")
    assert again.returncode == 0 and manifest(out)["skipped_shards"] == [0, 1]  # nothing left to do


def test_second_run_into_the_same_out_is_locked(gaits, tmp_path):
    import fasteners

    out = tmp_path / "out"
    out.mkdir()
    lock = fasteners.InterProcessLock(str(out / ".lock"))
    assert lock.acquire(blocking=False)
    try:
        _one_error_line(extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out)), "in use", str(out))
    finally:
        lock.release()


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_failed_shard_write_reports_its_samples_and_leaves_nothing_to_trust(gaits, tmp_path):
    out = tmp_path / "out"
    run = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--num-shards", "1",
                  "--direct-mode", "in_memory", preexec_fn=_file_size_limit(150_000))
    assert run.returncode == 0, run.stderr[-3000:]
    m = manifest(out)
    assert m["samples"] == {"planned": 12, "written": 0, "failed": 12, "lost": []}
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in errors} == {"write"} and len(errors) == 12
    assert all("shard 0" in e["message"] and str(out) in e["message"] for e in errors)
    assert not list(out.glob(".*tmp*")) and not list(out.glob("*.done.json")) and not list(out.glob("*.h5"))
    rerun = extract("--dataset", "ewalk", "--root", str(gaits), "--out", str(out), "--num-shards", "1")
    assert rerun.returncode == 0 and manifest(out)["samples"]["written"] == 12  # nothing was trusted


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.extract", "--out", str(out), "--no-progress"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / ".progress").is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # until the Beam workers have finished their first sample
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 130, stderr[-3000:]
    assert lines == ["interrupted; rerun the same command to resume"], stderr[-3000:]
