"""Shared test fixtures.

Tests that need the reference material in ``../shared`` (beside the checkout) use the
``shared`` fixture, which skips with a clear reason when that folder is absent.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared`` (reference outputs, test-only data); skips the test when absent."""
    if not (SHARED / "reference").is_dir():
        pytest.skip(f"reference folder {SHARED} is absent (set AFFECTZOO_SHARED to its path)")
    return SHARED


def small_card(repo, tmp):
    text = (repo / "datasets" / "sample.toml").read_text()
    text = re.sub(r'root = "samples/videos"', f'root = "{repo / "samples" / "videos"}"', text)
    text = text.replace("test_every = 3", "test_every = 2")
    # two windows per segment: stride = segment span
    text = re.sub(r"(end_s = 17.3\nstride_s = )1.0", r"\g<1>8.0", text)
    text = re.sub(r"(end_s = 3.0\nstride_s = )0.25", r"\g<1>1.0", text)
    text = re.sub(r"(end_s = 7.65\nstride_s = )0.5", r"\g<1>2.5", text)
    path = tmp / "small.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def extracted(repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extract")
    card = small_card(repo, tmp)
    out = tmp / "shards"
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(out), "--no-progress",
           "--face-pool"]  # the SISTCM redraw pool (off in the card) is tested on these shards too
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"card": card, "out": out, "stdout": run.stdout, "cmd": cmd}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A weights registry that finds nothing: no ``AFFECTZOO_WEIGHTS`` folder, an empty HOME
    cache, an empty shipped folder and no network. Returns ``tmp_path``."""
    from extractors import weights as W

    monkeypatch.delenv(W.ENV_DIR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(W, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    W._VERIFIED.clear()
    return tmp_path
