"""Corpus cards, readers and ``python -m pipelines.corpora check`` on generated fixture trees.

Each fixture tree (``tests/corpus_fixtures.py``) is written in the corpus's distributed layout
with real media from ``../shared/data`` standing in; broken trees carry the classic faults
(missing annotation, unknown label, truncated media, duplicate id) and ``check`` must name
every one with its file and reason while the good entries still read.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from corpus_fixtures import BUILDERS, edited_card, step_pair, truncate
from pipelines.cards import CardError, available_cards, load_card
from pipelines.corpora import check_corpus, compare_counts, count_samples
from pipelines.readers.base import CorpusError
from pipelines.readers import READERS, read_samples

CORPORA = sorted(BUILDERS)


def _tree(name, tmp_path, shared, broken=False):
    return BUILDERS[name](tmp_path / name, shared, broken=broken)


def test_every_card_loads_with_a_registered_reader():
    assert set(CORPORA) | {"sample"} <= set(available_cards())
    for name in CORPORA + ["sample"]:
        card = load_card(name)
        assert card["corpus"]["layout"] in READERS, name
        assert card["corpus"]["modality"] in ("video", "images", "skeleton"), name
        for key in ("licence", "download"):
            assert card["corpus"].get(key), f"{name}: corpus.{key} missing"


def test_label_order_is_a_card_choice():
    assert load_card("ewalk")["labels"]["names"] == ["Angry", "Happy", "Sad", "Neutral"]
    assert load_card("ewalk", label_order="step")["labels"]["names"] == ["Angry", "Neutral", "Happy", "Sad"]
    assert load_card("affectnet", label_order="affectnet8")["labels"]["names"][-1] == "contempt"
    with pytest.raises(CardError, match="unknown label order 'nope'"):
        load_card("ewalk", label_order="nope")


@pytest.mark.parametrize("name", CORPORA)
def test_good_tree_reads_with_right_labels_and_splits(name, tmp_path, shared):
    fx = _tree(name, tmp_path, shared)
    report = check_corpus(name, fx.root, counts=False)
    assert report.ok, [str(p) for p in report.problems]
    got = {s.sample_id.split("/", 1)[1]: (s.split, s.label_name) for s in report.samples}
    assert set(got) == set(fx.samples)
    for sid, (split, label) in fx.samples.items():
        if split:  # gait splits are hash-based: checked separately
            assert got[sid][0] == split, sid
        if label:  # multi-label EmoReact: checked separately
            assert got[sid][1] == label, sid
    modality = load_card(name)["corpus"]["modality"]
    assert {s.modality for s in report.samples} == {modality}


@pytest.mark.parametrize("name", CORPORA)
def test_broken_tree_reports_every_problem_and_keeps_the_rest(name, tmp_path, shared):
    fx = _tree(name, tmp_path, shared, broken=True)
    report = check_corpus(name, fx.root, counts=False)
    assert not report.ok
    for kind, fragment in fx.problems:
        hits = [p for p in report.problems if p.kind == kind and fragment in p.path]
        assert hits, f"{name}: no {kind} problem naming {fragment}: {[str(p) for p in report.problems]}"
        assert all(p.reason for p in hits)
    assert len(report.problems) == len(fx.problems), [str(p) for p in report.problems]
    assert {s.sample_id.split("/", 1)[1] for s in report.samples} == set(fx.samples)


def test_reader_raises_on_first_problem_without_a_list(tmp_path, shared):
    fx = _tree("caer", tmp_path, shared, broken=True)
    with pytest.raises(CorpusError, match="Contempt"):
        read_samples(load_card("caer"), fx.root)


def test_emoreact_multi_label_targets_and_valence(tmp_path, shared):
    fx = _tree("emoreact", tmp_path, shared)
    samples = {s.sample_id: s for s in read_samples(load_card("emoreact"), fx.root)}
    cake = samples["emoreact/AllVideos/CAKE10_2.mp4"]
    assert cake.targets == (0, 0, 1, 1, 1, 0, 1, 0)
    assert cake.labels == ("Excitement", "Happiness", "Surprise", "Fear")
    assert cake.label == 2 and cake.label_name == "Excitement" and cake.valence == pytest.approx(5.6667)
    none = samples["emoreact/AllVideos/CAKE12_2.mp4"]
    assert none.label == -1 and none.targets == (0.0,) * 8 and none.labels == ()


def test_affectnet_boxes_codes_and_valence_arousal(tmp_path, shared):
    fx = _tree("affectnet", tmp_path, shared)
    samples = {s.sample_id.rsplit("/", 1)[1]: s for s in read_samples(load_card("affectnet"), fx.root)}
    assert "contempt.jpg" not in samples  # code 7 is dropped by the 7-class order
    astro = samples["astro1.jpg"]
    assert astro.box == (200.0, 90.0, 330.0, 230.0) and astro.label_name == "happy"
    assert (astro.valence, astro.arousal) == (pytest.approx(0.785), pytest.approx(0.3))
    assert samples["astro2.jpg"].box is None  # NULL box: the face detector searches the image
    eight = {s.sample_id.rsplit("/", 1)[1]: s for s in read_samples(load_card("affectnet", "affectnet8"), fx.root)}
    assert eight["contempt.jpg"].label_name == "contempt" and eight["contempt.jpg"].label == 7


def test_rafdb_soft_targets_compound_and_multi(tmp_path, shared):
    fx = _tree("rafdb", tmp_path, shared)
    base = fx.root
    (base / "compound" / "EmoLabel").mkdir(parents=True)
    (base / "compound" / "EmoLabel" / "list_patition_label.txt").write_text("train_0001.jpg 4\n")  # sadly angry
    (base / "compound" / "Annotation" / "boundingbox").mkdir(parents=True)
    (base / "compound" / "Annotation" / "boundingbox" / "train_0001_boundingbox.txt").write_text("10 10 90 90\n")
    (base / "compound" / "Image" / "original").mkdir(parents=True)
    shutil.copyfile(base / "basic" / "Image" / "original" / "train_00001.jpg", base / "compound" / "Image" / "original" / "train_0001.jpg")
    (base / "multi" / "EmoLabel").mkdir(parents=True)
    (base / "multi" / "EmoLabel" / "distribution.txt").write_text("test_0001.jpg 0.1 0.0 0.0 0.6 0.1 0.0\n")
    (base / "multi" / "Annotation" / "manual").mkdir(parents=True)
    (base / "multi" / "Annotation" / "manual" / "test_0001_manu_ldmk.txt").write_text("100\t100\n140\t100\n120\t140\n")
    (base / "multi" / "Image" / "original").mkdir(parents=True)
    shutil.copyfile(base / "basic" / "Image" / "original" / "test_0001.jpg", base / "multi" / "Image" / "original" / "test_0001.jpg")
    card = load_card("rafdb")
    card["layout"]["subsets"] = ["basic", "compound", "multi"]
    samples = {s.sample_id: s for s in read_samples(card, base)}
    # FER order: angry, disgust, fear, happy, sad, surprise, neutral
    assert samples["rafdb/basic/Image/original/train_00001.jpg"].targets == (0, 0, 0, 1, 0, 0, 0)
    assert samples["rafdb/compound/Image/original/train_0001.jpg"].targets == (0.5, 0, 0, 0, 0.5, 0, 0)
    multi = samples["rafdb/multi/Image/original/test_0001.jpg"]
    assert multi.targets == pytest.approx((0, 0, 0, 0.6, 0.1, 0.1, 0.2)) and multi.label_name == "happy"
    assert multi.box == pytest.approx((80, 80, 160, 160))  # landmark box 40 x 40 + 0.5 x 40 each side


def test_ewalk_reader_reads_the_real_step_gaits(tmp_path, shared):
    fx = step_pair(tmp_path / "step", shared)
    card = load_card("ewalk", label_order="step_cvae")
    card["layout"]["features"] = ["features4DCVAEGCN.h5"]
    samples = read_samples(card, fx.root)
    assert len(samples) == 60
    got = {s.sample_id.split("/", 1)[1]: s.label_name for s in samples}
    assert got == {k: v for k, (_, v) in fx.samples.items()}
    assert all(k.split("#")[1].endswith(v) for k, v in got.items())  # keys name the same class
    from pipelines.readers.media import load_gait
    gait = load_gait(samples[0].uri, samples[0].key)
    assert gait.shape == (18, 16, 3)
    tests = [s for s in samples if s.split == "test"]
    assert 0 < len(tests) < 20  # about 10 % by crc32(key)


def test_ckplus_folds_are_subject_round_robin(tmp_path, shared):
    fx = _tree("ckplus", tmp_path, shared)
    card = load_card("ckplus")
    folds = {s.sample_id.split("/")[2]: s.fold for s in read_samples(card, fx.root)}
    assert folds == {"S005": 1, "S010": 2, "S011": 3, "S014": 4}
    card["splits"]["eval_fold"] = 3
    assert [s.sample_id for s in read_samples(card, fx.root) if s.split == "test"] == \
        ["ckplus/cohn-kanade-images/S011/002"]
    frames = read_samples(card, fx.root)[0].frames
    assert len(frames) == 4 and frames == tuple(sorted(frames))


def test_friends_window_and_box(tmp_path, shared):
    fx = _tree("friends", tmp_path, shared)
    s = {x.sample_id: x for x in read_samples(load_card("friends"), fx.root)}["friends/videos/s01_ep01.mp4#000010-Monica"]
    assert s.frame_indices == (8, 9, 10, 11) and s.box == (300.0, 120.0, 360.0, 190.0)
    assert s.meta["character"] == "Monica" and s.split == "val"


def test_friends_window_near_the_first_frame_is_clamped(tmp_path, shared):
    # annotated frame 1: the seed's window [p-2, p-1, p, p+1] keeps 4 frames, clamped at frame 0
    fx = _tree("friends", tmp_path, shared)
    ann = fx.root / "annotations" / "s01_ep12_tag2_visual_Final_180809.json"
    periods = json.loads(ann.read_text())["visual_results"]
    periods[0]["image"] = "Fr_1.jpg"
    ann.write_text(json.dumps({"visual_results": periods}))
    s = {x.sample_id: x for x in read_samples(load_card("friends"), fx.root)}["friends/videos/s01_ep12.mp4#000001-Chandler"]
    assert s.frame_indices == (0, 0, 1, 2)


def test_counts_are_compared_with_the_published_ones(tmp_path, shared):
    fx = _tree("caer", tmp_path, shared)
    report = check_corpus("caer", fx.root)
    assert [p.kind for p in report.problems] == ["count_mismatch"]
    assert "all/total: 4 found, 13201 published" in report.problems[0].reason
    counts = count_samples(read_samples(load_card("emoreact"), _tree("emoreact", tmp_path, shared).root))
    assert {p.reason.split(":")[0] for p in compare_counts(load_card("emoreact"), counts)} == \
        {"train/total", "val/total", "test/total"}


def test_gait_truncated_features_file(tmp_path, shared):
    fx = _tree("ewalk", tmp_path, shared)
    truncate(fx.root / "features.h5")
    report = check_corpus("ewalk", fx.root, counts=False)
    assert [p.kind for p in report.problems] == ["truncated_media"] and "features.h5" in report.problems[0].path


def test_check_cli_exit_status_and_report(repo, tmp_path, shared):
    good = _tree("rafdb", tmp_path / "good", shared)
    bad = _tree("rafdb", tmp_path / "bad", shared, broken=True)
    cmd = [sys.executable, "-m", "pipelines.corpora", "check", "rafdb"]
    ok = subprocess.run(cmd + [str(good.root), "--no-counts"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "OK" in ok.stdout
    run = subprocess.run(cmd + [str(bad.root), "--no-counts"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    for fragment in ("train_00003.jpg: label ['9'] is not a basic code", "train_00004_boundingbox.txt",
                     "test_0002.jpg", "appears again"):
        assert fragment in run.stdout
    assert subprocess.run(cmd[:-1] + ["nosuch", "."], cwd=repo, capture_output=True, text=True).returncode == 2
    helped = subprocess.run([sys.executable, "-m", "pipelines.corpora", "check", "--help"], cwd=repo,
                            capture_output=True, text=True)
    assert "--no-media" in helped.stdout and "--label-order" in helped.stdout


# ------------------------------------------------------------------ whole pipeline into shards
def _small_card(name: str, tmp_path: Path, **replace) -> Path:
    """A copy of ``datasets/<name>.toml`` with small representations (CPU is scarce)."""
    return edited_card(name, tmp_path, replace, shrink=True)


def _extract(repo, card: Path, root: Path, out: Path, *extra):
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--root", str(root), "--out", str(out),
           "--no-progress", "--num-shards", "1", *extra]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()] if (out / "errors.jsonl").exists() else []
    return run, errors


def _videos(out: Path):
    import pyarrow.parquet as pq

    return pq.read_table(sorted(out.glob("videos-*.parquet"))).to_pylist()


def test_caer_videos_through_the_pipeline(repo, tmp_path, shared):
    fx = _tree("caer", tmp_path, shared, broken=True)
    # an MP4 cut to its first 15 % keeps 8 of 90 frames: the window needs frame 14, so it is reported
    # (the half AVI of the fixture still holds its first second, which decodes)
    truncate(shutil.copyfile(shared / "data" / "videos_shippable" / "group_event_smiling.mp4",
                             fx.root / "test" / "Sad" / "0007.mp4"), keep=0.15)
    card = _small_card("caer", tmp_path, **{"length_s = 4.0": "length_s = 1.0", "sample_fps = 10.0": "sample_fps = 4.0",
                                            "timeline_length = 40": "timeline_length = 4"})
    out = tmp_path / "out"
    run, errors = _extract(repo, card, fx.root, out)
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _videos(out)}
    expected = dict(fx.samples, **{"test/Sad/0006.avi": ("test", "Sad")})  # decodable first second
    assert {k: (r["split"], r["label_name"]) for k, r in rows.items()} == expected
    names = load_card("caer")["labels"]["names"]
    assert all(names[r["label"]] == r["label_name"] for r in rows.values())
    assert all(r["num_frames"] == 4 for r in rows.values())
    kinds = {(e["stage"], e["error_type"]) for e in errors}
    assert kinds == {("read", "unknown_label"), ("decode", "DecodeError")}
    assert any("Contempt" in e["uri"] for e in errors) and any("0007.mp4" in e["message"] for e in errors)
    with h5py.File(next(out.glob("shard-*.h5")), "r") as f:
        assert sorted(f["videos/label"][()].tolist()) == sorted(r["label"] for r in rows.values())


def test_ewalk_step_gaits_through_the_pipeline(repo, tmp_path, shared):
    fx = step_pair(tmp_path / "step", shared)
    card = _small_card("ewalk", tmp_path, **{'features = ["features.h5"]': 'features = ["features4DCVAEGCN.h5"]',
                                             "coordinate_scale = 10.0": "coordinate_scale = 1000.0",
                                             "max_frames = 240": "max_frames = 24"})
    out = tmp_path / "out"
    run, errors = _extract(repo, card, fx.root, out, "--label-order", "step_cvae")
    assert errors == [] and "60/60 written" in run.stdout
    assert "decode" not in run.stdout and "load_skeleton" in run.stdout  # no decoding, no detectors
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _videos(out)}
    assert {k: r["label_name"] for k, r in rows.items()} == {k: v for k, (_, v) in fx.samples.items()}
    with h5py.File(fx.root / "features4DCVAEGCN.h5", "r") as f:
        for sid, r in list(rows.items())[:5]:
            gait = f[sid.split("#")[1]][()].reshape(18, 16, 3)
            kp = np.asarray(r["keypoints"]).reshape(24, 16, 3)
            np.testing.assert_array_equal(kp[:18], gait.astype(np.float32))
            assert np.isnan(kp[18:]).all() and r["num_frames"] == 18
            timeline = np.asarray(r["timeline"]).reshape(32, 64, 64)
            assert set(np.unique(timeline[2 * 3: 2 * 3 + 2]).tolist()) <= {0.0, 4.0}  # joint 3 writes 4
            assert (timeline > 0).any()
    with h5py.File(next(out.glob("shard-*.h5")), "r") as f:
        assert f["videos/keypoints"].shape == (60, 24, 16, 3) and f["videos/timeline"].shape == (60, 32, 64, 64)


def test_rafdb_images_through_the_pipeline_with_given_boxes(repo, tmp_path, shared):
    fx = _tree("rafdb", tmp_path, shared, broken=True)
    card = _small_card("rafdb", tmp_path)
    out = tmp_path / "out"
    run, errors = _extract(repo, card, fx.root, out)
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _videos(out)}
    assert {k: (r["split"], r["label_name"]) for k, r in rows.items()} == fx.samples
    names = load_card("rafdb")["labels"]["names"]
    for r in rows.values():
        assert r["targets"] == [1.0 if n == r["label_name"] else 0.0 for n in names]
        assert r["num_frames"] == 1 and np.isnan(np.asarray(r["keypoints"])).all()  # no pose model on images
    import pyarrow.parquet as pq

    clips = pq.read_table(sorted(out.glob("clips-*.parquet"))).to_pylist()
    astro = [c for c in clips if c["sample_id"].endswith("train_00001.jpg")][0]
    assert astro["face_found"] == [True]
    np.testing.assert_allclose(np.asarray(astro["face_boxes"]).reshape(4), [180, 60, 340, 260])
    by = {(e["stage"], e["error_type"]) for e in errors}
    assert by == {("load_images", "MediaError"), ("read", "unknown_label"), ("read", "missing_annotation"),
                  ("read", "duplicate_id")}
    assert any("test_0002.jpg" in e["message"] and "truncated" in e["message"] for e in errors)


def test_ckplus_sequences_through_the_pipeline_with_the_face_detector(repo, tmp_path, shared):
    fx = _tree("ckplus", tmp_path, shared)
    out = tmp_path / "out"
    run, errors = _extract(repo, _small_card("ckplus", tmp_path), fx.root, out)
    assert errors == []
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _videos(out)}
    assert {k: (r["split"], r["label_name"]) for k, r in rows.items()} == fx.samples
    assert {k.split("/")[1]: r["fold"] for k, r in rows.items()} == {"S005": 1, "S010": 2, "S011": 3, "S014": 4}
    import pyarrow.parquet as pq

    found = [f for c in pq.read_table(sorted(out.glob("clips-*.parquet"))).to_pylist() for f in c["face_found"]]
    assert np.mean(found) > 0.5  # the astronaut's face is found by BlazeFace in the whole frames
    # k-fold cross-validation on the corpus's folds (the seed's CK+ protocol)
    from zoo.data import ShardDataset
    from zoo.train import main as train_main

    held = ShardDataset(out, "faces", None, "clips", stack_clips=True, fold=(2, True))
    rest = ShardDataset(out, "faces", None, "clips", stack_clips=True, fold=(2, False))
    assert (len(held), len(rest)) == (1, 3)
    assert train_main(["accm-cnn", "--shards", str(out), "--fold", "2", "--epochs", "1", "--out", str(tmp_path / "k"),
                       "--no-progress", "--no-tensorboard"]) == 0
    metrics = json.loads((tmp_path / "k" / "metrics.json").read_text())
    assert (metrics["train_rows"], metrics["eval_rows"], metrics["eval_split"]) == (3, 1, "fold-2")


def test_emilya_xls_workbook_reads_sheet_two(tmp_path, shared):
    """An Emilya-style .xls workbook (3 sheets, joints on sheet index 2, header row first), written
    with xlwt as the reference vectors were, reads back exactly as float64 [T, 28, 3]."""
    import xlwt

    from pipelines.readers.media import load_sheet

    ref = np.load(shared / "reference" / "representations" / "fer_bger" / "timeline_street_walker_L300.npz")
    joints = ref["joints28_xyz"][:40]
    book = xlwt.Workbook()
    for name in ("info", "markers"):
        book.add_sheet(name).write(0, 0, name)
    sheet = book.add_sheet("positions")
    for j in range(28 * 3):
        sheet.write(0, j, f"j{j // 3}_{'xyz'[j % 3]}")
    for t, row in enumerate(joints.reshape(len(joints), -1), start=1):
        for j, v in enumerate(row):
            sheet.write(t, j, float(v))
    path = tmp_path / "Anger_SW_01.xls"
    book.save(str(path))
    np.testing.assert_array_equal(load_sheet(path), joints)


SMALL = {  # card edits that keep these runs short on 2 CPU cores
    "emoreact": {"length_s = 5.0": "length_s = 1.0", "sample_fps = 5.0": "sample_fps = 4.0",
                 "timeline_length = 25": "timeline_length = 4"},
    "affectnet": {}, "elmd": {}, "emilya": {}, "friends": {},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_other_corpora_through_the_pipeline(name, repo, tmp_path, shared):
    """Each remaining corpus's fixture tree lands in shards with the labels its reader gives."""
    fx = _tree(name, tmp_path, shared)
    card = _small_card(name, tmp_path, **SMALL[name])
    samples = {s.sample_id: s for s in read_samples(load_card(str(card)), fx.root)}
    out = tmp_path / "out"
    run, errors = _extract(repo, card, fx.root, out, "--limit", "3")
    rows = {r["sample_id"]: r["label_name"] for r in _videos(out)}
    assert errors == [] and len(rows) == min(3, len(samples))
    assert all(samples[sid].label_name == label for sid, label in rows.items())
    with h5py.File(next(out.glob("shard-*.h5")), "r") as f:
        ids = f["videos/sample_id"].asstr()[()]
        assert sorted(ids) == sorted(rows)
    # the trainer's targets, for video rows and for clip stacks: the reader's multi-hot / soft
    # targets where the corpus has them, else the one-hot label
    from zoo.data import ShardDataset

    names = load_card(str(card))["labels"]["names"]
    for group, stack in (("videos", False), ("clips", True)):
        data = ShardDataset(out, "timeline" if group == "videos" else "faces", None, group, stack, "targets")
        for sid, target in zip(sorted(ids), data.targets):
            s = samples[sid]
            want = s.targets if s.targets else np.eye(len(names))[s.label]
            np.testing.assert_allclose(target.numpy(), want, atol=1e-6)
