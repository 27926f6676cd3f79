"""pipelines.shardset: the one reader of shard sets (manifest, version, integrity, tables, datasets),
and no other product module opening shard files or reading the manifest."""
from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shard_fixtures as sf
from pipelines.shardset import Shard, ShardIntegrityError, ShardSet, check_schema_version, shards_in_folder
from schemas.shards import SCHEMA_VERSION, ShardSchemaError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTZOO_CACHE", str(tmp_path / "hash-cache"))


@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    sf.toy_run(out, shards=2, rows=8)
    return out


def test_version_message_names_file_versions_and_what_to_do():
    with pytest.raises(ShardSchemaError) as err:
        check_schema_version(SCHEMA_VERSION - 1, "x/manifest.json")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"x/manifest.json: schema version {SCHEMA_VERSION - 1}, ")
    assert f"this affectzoo reads {SCHEMA_VERSION}" in msg and "re-run the extraction" in msg
    with pytest.raises(ShardSchemaError, match="no schema version"):
        check_schema_version(None, "f")
    check_schema_version(str(SCHEMA_VERSION).encode(), "f")  # Parquet metadata bytes


def test_version_constant_is_read_from_schemas(monkeypatch):
    """The check follows schemas.shards.SCHEMA_VERSION (bumped there); the reader holds no number of its own."""
    import pipelines.shardset as reader
    import schemas.shards as S

    assert "SCHEMA_VERSION" not in Path(reader.__file__).read_text().split('"""', 2)[2]
    assert reader.check_schema_version is S.check_schema_version
    monkeypatch.setattr(S, "SCHEMA_VERSION", SCHEMA_VERSION + 1)  # as after a bump
    with pytest.raises(ShardSchemaError, match=f"schema version {SCHEMA_VERSION}, this affectzoo reads {SCHEMA_VERSION + 1}"):
        S.check_schema_version(SCHEMA_VERSION, "f")


def test_old_manifest_and_old_files_are_refused_in_one_line(run):
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    with pytest.raises(ShardSchemaError, match=r"manifest\.json: schema version 1, this affectzoo reads"):
        ShardSet(run)
    assert ShardSet(run, check_version=False).manifest["schema_version"] == 1
    (run / "manifest.json").write_text(json.dumps(manifest))
    shard = ShardSet(run).shards[0]
    with h5py.File(shard.h5, "r+") as f:
        f.attrs["affectzoo_schema_version"] = 2
    with pytest.raises(ShardSchemaError, match=r"shard-00000-of-00002\.h5: schema version 2, this affectzoo reads"):
        shard.dataset("videos/label")


def test_tables_row_groups_samples_and_datasets_agree(run):
    ss = ShardSet(run, verify=True)
    assert [s.stem for s in ss.shards] == ["00000-of-00002", "00001-of-00002"]
    assert ss.label_names == sf.LABELS and len(ss.manifest_sha256()) == 64
    ids = [sid for _, t in ss.tables("videos", ["sample_id"]) for sid in t.column("sample_id").to_pylist()]
    assert sorted(ids) == sorted(f"toy/v{i}" for i in range(8))
    assert ids == [s["sample_id"] for s in ss.samples(["sample_id"])]
    assert sum(g.num_rows for g in ss.row_groups("clips", ["sample_id"])) == 8
    rows = {s["sample_id"]: s for s in ss.samples(["sample_id", "label", "keypoints"])}
    for i in range(8):
        want = sf.video_row(f"toy/v{i}", "x", i % 3, i)
        assert rows[f"toy/v{i}"]["label"] == i % 3
        np.testing.assert_array_equal(rows[f"toy/v{i}"]["keypoints"], want["keypoints"])
    h5_ids = ss.dataset("videos/sample_id").tolist()
    assert h5_ids == ids  # HDF5 rows are the Parquet rows, shard by shard
    np.testing.assert_array_equal(ss.dataset("videos/keypoints")[3], rows[ids[3]]["keypoints"])
    with pytest.raises(KeyError, match="no dataset 'videos/nothing'"):
        ss.shards[0].dataset("videos/nothing")
    with pytest.raises(KeyError, match=r"lacks columns \['nothing'\]"):
        ss.shards[0].read_table("videos", ["nothing"])


def test_folder_without_manifest_and_file_names(run, tmp_path):
    (run / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="not an extraction output folder"):
        ShardSet(run)
    found = shards_in_folder(run)
    assert [s.stem for s in found] == ["00000-of-00002", "00001-of-00002"]
    assert Shard.of_file(run / "shard-00001-of-00002.h5") == found[1]
    for bad in ("videos-00000-of-00002.h5", "shard-00000-of-00002.parquet", "notes.txt"):
        with pytest.raises(ValueError, match="not an affectzoo shard file"):
            Shard.of_file(run / bad)


def test_verify_refuses_a_changed_parquet_file_when_asked(run):
    path = run / "videos-00000-of-00002.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label",
                                    pa.array([0] * table.num_rows, pa.int16())), path)
    ShardSet(run, verify=True)  # the default check covers the HDF5 files the trainer reads
    with pytest.raises(ShardIntegrityError, match=r"videos-00000-of-00002\.parquet: .*changed after it was written"):
        ShardSet(run).verify(("h5", "videos"))


#: Modules allowed to open shard files or read the manifest: the writer side and the reader.
OWNERS = {"pipelines/shards.py", "pipelines/shardset.py", "pipelines/report.py"}
#: Corpus readers open the corpus's own HDF5 files (not shards); test fixtures, bench writers.
NOT_SHARDS = {"pipelines/readers/media.py", "pipelines/readers/gait_h5.py", "zoo/models/mini_xception.py",
              "bench/pipeline.py"}


def test_no_other_module_opens_shard_files_or_reads_the_manifest():
    opener = re.compile(r"h5py\.File\(|pq\.read_table\(|pq\.ParquetFile\(|pq\.read_schema\(|manifest\.json\"\)\.read_")
    offenders = []
    for folder in ("pipelines", "zoo", "bench", "extractors", "schemas"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in OWNERS | NOT_SHARDS:
                continue
            text = path.read_text()
            if opener.search(text) or re.search(r"[\"']manifest\.json[\"']\)?\s*\)?\.read_(text|bytes)", text):
                offenders.append(rel)
    assert offenders == [], f"open shard files / the manifest through pipelines.shardset: {offenders}"
