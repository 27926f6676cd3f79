"""The frame and clip samplers of pipelines.sampling, and who may import what (issue 16)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from pipelines import sampling as SP

REPO = Path(__file__).resolve().parents[1]


def test_window_starts_keep_a_last_window_of_at_least_half():
    assert SP.window_starts(5.0, 2.0) == [0.0, 2.0, 4.0]      # 1.0 s left: half a window, kept
    assert SP.window_starts(4.9, 2.0) == [0.0, 2.0]           # 0.9 s left: dropped
    assert SP.window_starts(0.5, 2.0) == [0.0]                # the only window is kept
    assert SP.window_starts(0.0, 2.0) == []


def test_even_positions():
    np.testing.assert_array_equal(SP.even_positions(10, 4), [0, 2, 5, 7])
    np.testing.assert_array_equal(SP.even_positions(3, 4), [0, 1, 2])


@pytest.mark.parametrize("n,c,k", [(1, 5, 2), (7, 5, 2), (10, 5, 2), (31, 3, 4), (240, 5, 3)])
def test_random_and_deterministic_clip_plans_share_their_clips(n, c, k):
    plan = SP.clip_positions(n, c, k)
    drawn = SP.random_clip_positions(n, c, k, np.random.default_rng(0))
    assert plan.shape == drawn.shape == (c, k)
    if n <= c * k:
        np.testing.assert_array_equal(plan, drawn)
        return
    inter = n // c
    for j in range(c):
        hi = n if j == c - 1 else (j + 1) * inter
        assert (plan[j] >= j * inter).all() and (plan[j] < hi).all()
        assert (drawn[j] >= j * inter).all() and (drawn[j] < hi).all() and len(set(drawn[j])) == k


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_zoo_module_imports_a_beam_stage():
    stages = {"pipelines.stages", "pipelines.extract", "pipelines.extraction"}
    for path in sorted((REPO / "zoo").rglob("*.py")):
        assert not _imports(path) & stages, f"{path.relative_to(REPO)} imports a Beam stage"


@pytest.mark.parametrize("name", ["clip_positions", "random_clip_positions", "even_positions", "plan_window",
                                  "window_frames", "val_offsets", "train_offsets", "test_offsets", "crop_square",
                                  "crop_box_resized", "crop_centred_padded", "timeline_frame_indices",
                                  "sample_frame_indices"])
def test_each_sampler_and_crop_is_defined_once(name):
    files = [p for d in ("pipelines", "zoo", "schemas", "extractors") for p in (REPO / d).rglob("*.py")]
    defined = [p.relative_to(REPO) for p in files if f"\ndef {name}(" in p.read_text()]
    assert len(defined) <= 1, f"{name} defined in {defined}"
