"""Shards load with plain pyarrow and pandas (docs/shards.md), and agree with the HDF5 shard.

The video shards come from the shipped sample (``--limit 2``, one shard); the skeleton shards
from the real STEP gait file in ``../shared/data`` (skipped without it). Columns are discovered
from the files' schemas, never listed here, so fields added by later schema versions are checked
too.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.represent.superimage import untile_superimage

#: PNG column -> HDF5 clips dataset holding the same crops (default: the name without ``_png``).
PNG_TO_H5 = {"superimage_png": "faces"}


def extract_once(repo: Path, base: Path, name: str, args: list[str]) -> Path:
    """Run ``pipelines.extract`` into ``base/name`` unless an earlier test of this session did.

    Shared by the test files of this session (``tmp_path_factory.getbasetemp()``), so the
    sample is extracted once however many of them run.
    """
    out = base / name
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pipelines.extract", "--out", str(out), "--no-progress", "--num-shards", "1",
           "--direct-mode", "in_memory", *args]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def sample_run(repo: Path, tmp_path_factory) -> Path:
    """Shards of the first 2 windows of the shipped sample (video corpus)."""
    return extract_once(repo, tmp_path_factory.getbasetemp(), "sample_shards",
                        ["--dataset", "sample", "--limit", "2", "--no-face-pool"])


def step_run(repo: Path, shared: Path, tmp_path_factory) -> Path:
    """Shards of 4 real STEP gaits laid out as an EWalk corpus (skeleton corpus, 24 frames)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from corpus_fixtures import step_pair

    base = tmp_path_factory.getbasetemp()
    if not (base / "step_shards" / "manifest.json").is_file():
        shutil.rmtree(base / "step_tree", ignore_errors=True)
        fx = step_pair(base / "step_tree", shared)
        text = (repo / "datasets" / "ewalk.toml").read_text()
        for old, new in (('features = ["features.h5"]', 'features = ["features4DCVAEGCN.h5"]'),
                         ("max_frames = 240", "max_frames = 24")):
            assert old in text, old
            text = text.replace(old, new)
        (base / "ewalk_small.toml").write_text(text)
    return extract_once(repo, base, "step_shards",
                        ["--dataset", str(base / "ewalk_small.toml"), "--root", str(base / "step_tree"),
                         "--label-order", "step_cvae", "--limit", "4"])


@pytest.fixture(scope="module")
def sample_shards(repo, tmp_path_factory) -> Path:
    return sample_run(repo, tmp_path_factory)


@pytest.fixture(scope="module", params=["sample", "step"])
def run(request, repo, tmp_path_factory) -> Path:
    """Every corpus kind: the video sample, and the STEP gaits when ../shared is present."""
    if request.param == "sample":
        return sample_run(repo, tmp_path_factory)
    return step_run(repo, request.getfixturevalue("shared"), tmp_path_factory)


def _shards(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"], "the run wrote no shard"
    return manifest["shards"]


def _tensor_columns(schema: pa.Schema) -> list[pa.Field]:
    return [f for f in schema if isinstance(f.type, pa.FixedShapeTensorType)]


def _h5_rows_match(table: pa.Table, h5: h5py.File, group: str) -> None:
    """The Parquet rows and the HDF5 rows of ``group`` are the same samples in the same order."""
    ids = [s.decode() if isinstance(s, bytes) else s for s in h5[f"{group}/sample_id"][()]]
    assert table.column("sample_id").to_pylist() == ids
    if group == "clips":
        assert table.column("clip_index").to_pylist() == h5["clips/clip_index"][()].tolist()


def test_row_counts_equal_the_manifest(run):
    manifest = json.loads((run / "manifest.json").read_text())
    for shard in _shards(run):
        for table in ("videos", "clips"):
            path = run / shard["files"][table]["name"]
            assert pq.read_table(path).num_rows == shard[table]
            assert len(pd.read_parquet(path)) == shard[table]
    every = sorted(str(p) for p in run.glob("videos-*.parquet"))
    assert pq.read_table(every).num_rows == manifest["rows"]["videos"]  # all shards in one call


def test_tensor_columns_come_back_with_their_shape_and_equal_the_h5(run):
    checked = set()
    for shard in _shards(run):
        with h5py.File(run / shard["files"]["h5"]["name"], "r") as h5:
            for group in ("videos", "clips"):
                path = run / shard["files"][group]["name"]
                table = pq.read_table(path)
                assert table.schema.metadata[b"affectzoo_schema_version"].decode() == str(h5.attrs["affectzoo_schema_version"])
                _h5_rows_match(table, h5, group)
                frame = pd.read_parquet(path)
                for field in _tensor_columns(table.schema):
                    shape = tuple(field.type.shape)
                    arr = table.column(field.name).combine_chunks().to_numpy_ndarray()
                    assert arr.shape == (table.num_rows, *shape), field.name
                    assert arr.dtype == field.type.value_type.to_pandas_dtype()
                    # pandas: one flat (row-major) numpy array per cell; the shape is the field's
                    flat = np.stack(frame[field.name].to_list()) if len(frame) else np.zeros((0, int(np.prod(shape))))
                    np.testing.assert_array_equal(flat.reshape(arr.shape), arr)
                    # the extension's storage (what a reader without the extension sees): the same
                    # values as one fixed-size list of prod(shape) per row
                    storage = table.column(field.name).combine_chunks().storage
                    assert pa.types.is_fixed_size_list(storage.type) and storage.type.list_size == int(np.prod(shape))
                    np.testing.assert_array_equal(storage.flatten().to_numpy(zero_copy_only=False).reshape(arr.shape), arr)
                    key = f"{group}/{field.name}"
                    if key in h5:
                        np.testing.assert_array_equal(h5[key][()], arr, err_msg=key)
                        checked.add(key)
    assert {"videos/keypoints", "videos/timeline", "clips/body_boxes"} <= checked


def test_png_columns_decode_to_the_h5_crops(sample_shards):
    checked = set()
    for shard in _shards(sample_shards):
        table = pq.read_table(sample_shards / shard["files"]["clips"]["name"])
        png_columns = [f.name for f in table.schema if f.name.endswith("_png") and pa.types.is_binary(f.type)]
        assert "superimage_png" in png_columns
        layouts = [json.loads(s) for s in table.column("superimage_layout").to_pylist()]
        with h5py.File(sample_shards / shard["files"]["h5"]["name"], "r") as h5:
            _h5_rows_match(table, h5, "clips")
            for name in png_columns:
                key = "clips/" + PNG_TO_H5.get(name, name[: -len("_png")])
                if key not in h5:
                    continue
                crops = h5[key][()]
                for i, (data, layout) in enumerate(zip(table.column(name).to_pylist(), layouts)):
                    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    np.testing.assert_array_equal(untile_superimage(rgb, layout), crops[i], err_msg=f"{name} row {i}")
                checked.add(name)
                assert crops.dtype == np.uint8 and crops.any(), key  # real pixels, not an empty slot
    assert {"superimage_png", "fullbody_png"} <= checked


def test_plain_tables_without_extension_types_keep_every_value(sample_shards):
    """The recipe of docs/shards.md for readers without Arrow's tensor extension (e.g. Hugging
    Face ``datasets``): swap each tensor column for its storage, reshape with the schema's shape."""
    path = sorted(sample_shards.glob("videos-*.parquet"))[0]
    table = pq.read_table(path)
    plain = pa.table({f.name: (table.column(f.name).combine_chunks().storage
                               if isinstance(f.type, pa.ExtensionType) else table.column(f.name))
                      for f in table.schema})
    assert not any(isinstance(f.type, pa.ExtensionType) for f in plain.schema)
    shapes = {f.name: tuple(f.type.shape) for f in _tensor_columns(table.schema)}
    assert "keypoints" in shapes
    for name, shape in shapes.items():
        rows = np.asarray(plain.column(name).to_pylist(), dtype=table.schema.field(name).type.value_type.to_pandas_dtype())
        np.testing.assert_array_equal(rows.reshape(-1, *shape), table.column(name).combine_chunks().to_numpy_ndarray())
