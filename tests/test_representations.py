"""The table of stored representations (pipelines/representations.py) and the layout derived from it."""
from __future__ import annotations

from dataclasses import MISSING, fields

import numpy as np
import pytest

from pipelines.config import ExtractConfig
from pipelines.record import SampleRecord, skeleton_record
from pipelines.representations import REPRESENTATIONS, representation
from pipelines.rows import clip_rows, video_row
from schemas.shards import COLUMNS, H5_LAYOUT, H5_SOURCE, ShardShapes, clip_schema, columns_of, video_schema



def _cfg(**kw) -> ExtractConfig:
    base = dict(corpus="t", card_path="t.toml", label_names=("a", "b", "c"), window_s=1.0, sample_fps=6.0, clips=2,
                frames_per_clip=2, face_size=16, timeline_size=8, timeline_length=6, timeline_pad="faithful",
                face_extractor="blazeface-front", pose_extractor="posenet-mobilenet-v1-075", pose_scale_factor=1.0,
                num_shards=1, modality="skeleton", joints=16, max_frames=6)
    return ExtractConfig(**{**base, **kw})


def test_every_column_has_one_representation_and_every_representation_stores_something():
    names = [r.name for r in REPRESENTATIONS]
    assert len(names) == len(set(names))
    assert {c.representation for c in COLUMNS} == set(names)
    for rep in REPRESENTATIONS:
        assert rep.columns and all(c.representation == rep.name for c in rep.columns)
        tables = {c.table for c in rep.columns}
        assert ("videos" in tables) == (rep.video is not None), rep.name
        assert ("clips" in tables) == (rep.clip is not None), rep.name
    with pytest.raises(KeyError, match="unknown representation 'nope'"):
        representation("nope")


def test_declared_inputs_and_options_exist():
    record_fields = {f.name for f in fields(SampleRecord)}
    config_fields = {f.name for f in fields(ExtractConfig)}
    for rep in REPRESENTATIONS:
        assert set(rep.inputs) <= record_fields | {"faces", "clip"}, rep.name
        assert set(rep.options) <= config_fields, rep.name


#: What each record builder hands :func:`pipelines.record.build_record` (pipelines/record.py).
BUILDER_INPUTS = {"record": {"sample", "frame_indices", "timestamps_s", "fps", "decoded_shape", "poses", "frames",
                             "identity", "world"},
                  "skeleton": {"sample", "frame_indices", "timestamps_s", "fps", "joints", "keep"}}


@pytest.mark.parametrize("modality", sorted(BUILDER_INPUTS))
def test_record_steps_read_only_what_earlier_lines_add_and_fill_every_record_field(modality):
    got, added = set(BUILDER_INPUTS[modality]), set()
    for rep in REPRESENTATIONS:
        step = getattr(rep, modality)
        if step is None:
            continue
        assert set(step.needs) <= got, (rep.name, set(step.needs) - got)
        got |= set(step.adds)
        added |= set(step.adds)
    record_fields = {f.name for f in fields(SampleRecord)}
    required = {f.name for f in fields(SampleRecord) if f.default is MISSING and f.default_factory is MISSING}
    assert required <= added | BUILDER_INPUTS[modality], required - added
    assert added <= record_fields | {"head_crops"}
    # a representation's row inputs are record fields some line adds, the builder's, or defaulted ones
    available = added | (BUILDER_INPUTS[modality] & record_fields) | (record_fields - required)
    for rep in REPRESENTATIONS:
        assert set(rep.inputs) - {"faces", "clip"} <= available, rep.name


def test_a_wrong_table_line_is_named(monkeypatch):
    import pipelines.record as record
    from pipelines.representations import RecordStep, Representation

    cfg = _cfg()
    sample = {"corpus": "t", "sample_id": "t/a", "video_id": "a", "uri": "a", "split": "train", "label": 0,
              "label_name": "a", "start_s": 0.0, "end_s": None}
    lying = Representation("liar", "x", (), skeleton=RecordStep(lambda got, cfg: {"other": 1}, (), ("timeline",)))
    monkeypatch.setattr(record, "REPRESENTATIONS", (lying,))
    with pytest.raises(RuntimeError, match="'liar'.*added \\['other'\\], declared \\['timeline'\\]"):
        record.skeleton_record(sample, np.zeros((3, 16, 3)), cfg)
    early = Representation("early", "x", (), skeleton=RecordStep(lambda got, cfg: {}, ("tracks",), ()))
    monkeypatch.setattr(record, "REPRESENTATIONS", (early,))
    with pytest.raises(RuntimeError, match="'early'.*needs \\['tracks'\\]"):
        record.skeleton_record(sample, np.zeros((3, 16, 3)), cfg)


def test_layout_is_derived_from_the_columns():
    s = ShardShapes(frames=6, joints=16, clips=2, frames_per_clip=2, face_size=16, timeline_size=8,
                    timeline_length=6, classes=3, pool_frames=6, masked_frames=2, world_joints=33)
    assert video_schema(s).names == [c.name for c in columns_of("videos") if c.parquet is not None]
    assert clip_schema(s).names == [c.name for c in columns_of("clips") if c.parquet is not None]
    assert set(H5_LAYOUT) == {f"{c.table}/{c.name}" for c in COLUMNS if c.h5} == set(H5_SOURCE)
    assert {k: v for k, v in H5_SOURCE.items() if k.split("/")[1] != v} == {
        "videos/targets": "targets_vector", "videos/fold": "fold_index", "clips/fold": "fold_index"}
    assert H5_LAYOUT["videos/label"][0] == "int64" and video_schema(s).field("label").type == "int16"
    assert H5_LAYOUT["clips/faces_masked"][1](s) == (2, 16, 16, 3)
    assert video_schema(s).field("tracks").type.shape == [2, 6, 17, 3]
    assert "face_pool" not in video_schema(s).names and "superimage_png" not in {
        n.split("/")[1] for n in H5_LAYOUT if n.startswith("clips/")}


def test_rows_carry_every_column_their_table_declares():
    """A skeleton record through the table's builders: every Parquet column and every non-empty
    HDF5 dataset has its row key, with the declared per-row shape."""
    cfg = _cfg()
    gait = np.random.default_rng(0).normal(size=(9, 16, 3))
    sample = {"corpus": "t", "sample_id": "t/a", "video_id": "a", "uri": "a", "split": "train", "label": 2,
              "label_name": "c", "start_s": 0.0, "end_s": None, "fold": 3}
    record = skeleton_record(sample, gait, cfg)
    video, clips = video_row(record, cfg, {}), clip_rows(record, {}, cfg)
    s = cfg.shapes
    for table, rows in (("videos", [video]), ("clips", clips)):
        for c in columns_of(table):
            key = H5_SOURCE[f"{table}/{c.name}"] if c.h5 and c.parquet is None else c.name
            if 0 in c.shape(s) and c.parquet is None:
                continue  # a switched-off dataset: the writer stores it empty
            for row in rows:
                assert key in row, (table, c.name)
                if c.parquet == "tensor" and c.shape(s):
                    assert np.shape(row[key]) == c.shape(s), (table, c.name)
    assert video["fold_index"] == 3 and video["targets_vector"].tolist() == [0, 0, 1]
    assert np.isnan(video["end_s"]) and video["num_frames"] == 6
    assert [c["clip_index"] for c in clips] == [0, 1]


def test_card_options_are_read_from_the_fields_table():
    """config_from_card reads each field's CardOption: values, defaults, modality and bad values."""
    from pipelines.cards import load_card
    from pipelines.config import card_options, config_from_card

    card = load_card("sample")
    card["representations"] = {**card.get("representations", {}), "clips": 3, "face_mask": True}
    card["skeleton"] = {"joints": 25}  # a skeleton key in a video card is not read
    cfg = config_from_card(card, "/r", "/o", face_size=48)
    assert (cfg.clips, cfg.face_mask, cfg.face_size, cfg.joints) == (3, True, 48, 18)
    assert cfg.label_names == tuple(card["labels"]["names"]) and cfg.corpus == card["corpus"]["name"]
    card["representations"]["face_pool"] = "yes"
    with pytest.raises(ValueError, match="representations.face_pool must be true or false, got 'yes'"):
        config_from_card(card, "/r", "/o")
    del card["labels"]
    with pytest.raises(KeyError, match="lacks labels.names"):
        config_from_card(card, "/r", "/o")
    options = card_options()
    for rep in REPRESENTATIONS:  # every option a representation names is a card option or derived
        assert set(rep.options) <= set(options) | {"world_joints", "min_keypoint_score"}, rep.name


def test_extract_flags_are_made_from_the_card_options():
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.config import card_options

    out = subprocess.run([sys.executable, "-m", "pipelines.extract", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    flagged = {o.flag: o for o in card_options().values() if o.flag}
    assert set(flagged) == {"--face-pool", "--face-mask"}
    for flag, option in flagged.items():
        assert f"{flag}, --no-{flag[2:]}" in out and option.key in out


def test_every_zoo_model_trains_on_stored_hdf5_fields():
    """Each registered model's group/field (``a+b`` = several) is an HDF5 column of the table."""
    from zoo.registry import model_cards

    stored = {(c.table, c.name) for c in COLUMNS if c.h5}
    cards = model_cards()
    assert len(cards) > 20
    for card in cards:
        for name in card.field.split("+"):
            assert (card.group, name) in stored, (card.name, card.group, name)


def test_a_switched_off_field_names_its_switch(tmp_path):
    """Opening a dataset of a representation stored switched off: the error comes from the table
    (the representation, its card option and flag), before any training."""
    import h5py

    from schemas.shards import ShardSchemaError
    from zoo.data import ShardDataset

    mask, pool = representation("faces_masked").switched_on_by(), representation("face_pool").switched_on_by()
    assert mask == "the card's representations.face_mask = true (--face-mask)"
    assert pool == "the card's representations.face_pool = true (--face-pool)"
    assert "blazepose-ghum" in representation("joints3d").switched_on_by()
    assert representation("timeline").switched_on_by() == ""
    h5 = tmp_path / "x.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("clips/faces_masked", shape=(4, 0, 8, 8, 3), dtype="uint8")
    with h5py.File(h5) as f:
        off = (r"clips/faces_masked holds nothing \(per-row shape \(0, 8, 8, 3\)\): representation 'faces_masked' "
               r"was off.*face_mask = true \(--face-mask\)")
        with pytest.raises(ShardSchemaError, match=off):
            ShardDataset._require(f, h5, "clips/faces_masked")
        with pytest.raises(ShardSchemaError, match="no dataset 'clips/optical_flow': 'optical_flow' is not a stored "
                                                   "field of clips \\(its datasets: .*faces_masked"):
            ShardDataset._require(f, h5, "clips/optical_flow")


def test_zoo_train_on_a_switched_off_field_says_how_to_store_it(extracted, repo, tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "zoo.train", "tsn-mobilenetv2", "--input", "faces_masked", "--shards",
                          str(extracted["out"]), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress",
                          "--no-tensorboard"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    assert "representation 'faces_masked' was off at extraction" in run.stderr, run.stderr[-2000:]
    assert "representations.face_mask = true (--face-mask)" in run.stderr
    assert "Traceback" not in run.stderr
