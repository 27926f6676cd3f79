"""Shared test fixtures.

Tests that need the reference material in ``../shared`` (beside the checkout) use the
``shared`` fixture, which skips with a clear reason when that folder is absent.
"""
from __future__ import annotations

import os
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
