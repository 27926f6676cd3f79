"""Hostile inputs (issue 14, items 5-7): what a hostile or clumsy user hands affectzoo must either
land, be reported with its path and reason, or be refused before any work.

Each case names its expected outcome:

* ``LANDED``: read as a sample / opened as a shard set;
* ``REPORTED``: a :class:`pipelines.readers.base.Problem` (kind, path, reason) that ends in
  ``errors.jsonl`` / ``corpora check``, while the good entries still land;
* ``REFUSED``: an error naming the file before anything of it is used (and, for pickles, before
  any code in it runs).

Corpus trees come from :mod:`corpus_fixtures` (real media from ``../shared``); shard sets from
:mod:`shard_fixtures` (the real shard writer); checkpoints from a real ``zoo.train`` run and real
``__reduce__`` payloads run through ``python -m zoo.predict / zoo.evaluate / zoo.train`` as a user
types them.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import corpus_fixtures as cf
import shard_fixtures as sf
from pipelines.cards import load_card
from pipelines.readers.base import CorpusError
from pipelines.readers import read_samples

LANDED, REPORTED, REFUSED = "landed", "reported", "refused"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_hash_cache(tmp_path, monkeypatch):
    """Shard hashes are cached in a folder of this test, not in the user's ~/.cache."""
    monkeypatch.setenv("AFFECTZOO_CACHE", str(tmp_path / "hash-cache"))
    from zoo import data

    getattr(data, "_HASHES", {}).clear()


# ------------------------------------------------------------------------------------ helpers
def read(card, root, **kw):
    problems: list = []
    samples = read_samples(card, root, problems, **kw)
    return samples, problems


def assert_reported(problems, kind: str, fragment: str):
    hits = [p for p in problems if p.kind == kind and fragment in p.path]
    assert hits, f"no {kind} problem for {fragment!r}: {[str(p) for p in problems]}"
    assert all(h.reason for h in hits)
    return hits[0]


def assert_inside(samples, root: Path):
    """No sample reads anything outside ``root``."""
    real = root.resolve()
    for s in samples:
        for uri in (s.uri, *s.frames):
            assert Path(uri).resolve().is_relative_to(real), (s.sample_id, uri)


def add_rows(table: Path, rows: list[list]):
    with open(table, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def secret(tmp_path: Path, name: str, src: Path) -> Path:
    """A real media file outside the corpus root (what must never be read)."""
    out = tmp_path / "outside" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out)
    return out


def _lm():
    return ";".join(["100.5"] * 136)


def affectnet_row(path: str, code: int = 1) -> list:
    return [path, 10, 10, 50, 50, _lm(), code, 0.1, 0.1]


@pytest.fixture
def affectnet(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.affectnet(root, shared)
    secret(tmp_path, "secret.png", shared / "data" / "images" / "astronaut.png")
    return root, fx


@pytest.fixture
def emoreact(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.emoreact(root, shared)
    secret(tmp_path, "secret.mp4", shared / "data" / "videos_shippable" / "group_event_smiling.mp4")
    return root, fx


@pytest.fixture
def caer(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.caer(root, shared)
    secret(tmp_path, "secret.avi", shared / "data" / "videos" / "face_closeup_makeup.avi")
    return root, fx


# ------------------------------------------------------------------- CSV tables (AffectNet)
@pytest.mark.parametrize("name, kind, fragment, outcome", [
    ("../../outside/secret.png", "outside_root", "secret.png", REPORTED),   # climbs out of ROOT
    ("/etc/hostname", "outside_root", "hostname", REPORTED),                # absolute path
    ("689/../../../outside/secret.png", "outside_root", "secret.png", REPORTED),
    ("689/a\x00b.jpg", "bad_value", "training.csv", REPORTED),             # NUL byte
    ("689/" + "x" * 300 + ".jpg", "bad_value", "xxxxxxxx", REPORTED),       # longer than NAME_MAX
])
def test_affectnet_row_paths(affectnet, name, kind, fragment, outcome):
    root, fx = affectnet
    add_rows(root / "training.csv", [affectnet_row(name)])
    samples, problems = read(load_card("affectnet"), root)
    assert outcome == REPORTED
    p = assert_reported(problems, kind, fragment)
    assert "line 5" in p.reason                                  # where the path came from
    assert len(samples) == len(fx.samples)                      # the good rows still land
    assert_inside(samples, root)


def test_affectnet_row_outside_raises_without_problem_list(affectnet):
    """REFUSED: with ``problems=None`` the first escape stops the read (naming the file)."""
    root, _ = affectnet
    add_rows(root / "training.csv", [affectnet_row("../../outside/secret.png")])
    with pytest.raises(CorpusError, match=r"outside_root.*secret\.png.*outside the corpus root"):
        read_samples(load_card("affectnet"), root)


@pytest.mark.parametrize("allow, outcome", [(False, REPORTED), (True, LANDED)])
def test_affectnet_symlink_out_of_root(affectnet, tmp_path, allow, outcome):
    root, fx = affectnet
    link = root / "Manually_Annotated_Images" / "689" / "linked.jpg"
    link.symlink_to(tmp_path / "outside" / "secret.png")
    add_rows(root / "training.csv", [affectnet_row("689/linked.jpg")])
    samples, problems = read(load_card("affectnet"), root, allow_outside_root=allow)
    ids = {s.sample_id.rsplit("/", 1)[1] for s in samples}
    if outcome == REPORTED:
        p = assert_reported(problems, "outside_root", "linked.jpg")
        assert "symbolic link" in p.reason and "allow_outside_root" in p.reason
        assert "linked.jpg" not in ids
        assert_inside(samples, root)
    else:
        assert not problems and "linked.jpg" in ids
        s = next(s for s in samples if s.sample_id.endswith("linked.jpg"))
        assert s.sample_id == "affectnet/Manually_Annotated_Images/689/linked.jpg"  # its name in ROOT
    assert len(samples) == len(fx.samples) + (outcome == LANDED)


def test_affectnet_allow_flag_never_allows_dotdot(affectnet):
    """REPORTED: the flag is for links; a ``../`` name in a table stays refused."""
    root, _ = affectnet
    add_rows(root / "training.csv", [affectnet_row("../../outside/secret.png")])
    samples, problems = read(load_card("affectnet"), root, allow_outside_root=True)
    assert_reported(problems, "outside_root", "secret.png")
    assert_inside(samples, root)


def test_affectnet_broken_link(affectnet):
    root, fx = affectnet
    (root / "Manually_Annotated_Images" / "689" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    add_rows(root / "training.csv", [affectnet_row("689/gone.jpg")])
    samples, problems = read(load_card("affectnet"), root)
    p = assert_reported(problems, "broken_link", "gone.jpg")                  # REPORTED, not skipped
    assert "nowhere.jpg" in p.reason
    assert len(samples) == len(fx.samples)


def test_affectnet_looping_link(affectnet):
    root, fx = affectnet
    folder = root / "Manually_Annotated_Images" / "689"
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    add_rows(root / "training.csv", [affectnet_row("689/loop_a.jpg")])
    samples, problems = read(load_card("affectnet"), root)
    assert_reported(problems, "link_loop", "loop_a.jpg")
    assert len(samples) == len(fx.samples)


def test_affectnet_media_folder_linked_out(affectnet, tmp_path):
    """REPORTED: the whole media folder is a link to another disk; refused without the flag."""
    root, _ = affectnet
    media = root / "Manually_Annotated_Images"
    shutil.move(str(media), str(tmp_path / "outside" / "images"))
    media.symlink_to(tmp_path / "outside" / "images")
    samples, problems = read(load_card("affectnet"), root)
    assert samples == [] and problems
    assert {p.kind for p in problems} == {"outside_root"}
    assert len(read(load_card("affectnet"), root, allow_outside_root=True)[0]) == 3   # LANDED with the flag


@pytest.mark.parametrize("old, new, fragment", [
    ('media_dir = "Manually_Annotated_Images"', 'media_dir = "../outside"', "outside"),
    ('train = "training.csv"', 'train = "../outside/training.csv"', "training.csv"),
    ('train = "training.csv"', 'train = "/etc/passwd"', "/etc/passwd"),
])
def test_affectnet_card_paths_out_of_root(affectnet, tmp_path, old, new, fragment):
    """REPORTED: a card whose [layout] paths leave ROOT reads nothing there."""
    root, _ = affectnet
    shutil.copyfile(root / "training.csv", tmp_path / "outside" / "training.csv")
    card = load_card(str(cf.edited_card("affectnet", tmp_path, {old: new})))
    samples, problems = read(card, root)
    assert_reported(problems, "outside_root", fragment)
    assert_inside(samples, root)


# --------------------------------------------------------------------- CSV tables (EmoReact)
@pytest.mark.parametrize("name", ["../../outside/secret.mp4", "/etc/hostname", "../AllVideos/../../outside/secret.mp4"])
def test_emoreact_row_paths(emoreact, name):
    root, fx = emoreact
    add_rows(root / "train.csv", [[9, name, 1, 0, 0, 0, 0, 0, 0, 0, 4.0]])
    samples, problems = read(load_card("emoreact"), root)
    assert_reported(problems, "outside_root", name.rsplit("/", 1)[1])       # REPORTED
    assert len(samples) == len(fx.samples)
    assert_inside(samples, root)


def test_emoreact_symlink_out(emoreact, tmp_path):
    root, fx = emoreact
    (root / "AllVideos" / "LINK_1.mp4").symlink_to(tmp_path / "outside" / "secret.mp4")
    add_rows(root / "train.csv", [[9, "LINK_1.mp4", 1, 0, 0, 0, 0, 0, 0, 0, 4.0]])
    samples, problems = read(load_card("emoreact"), root)
    assert_reported(problems, "outside_root", "LINK_1.mp4")
    assert_inside(samples, root)
    samples, problems = read(load_card("emoreact"), root, allow_outside_root=True)    # LANDED
    assert not problems and len(samples) == len(fx.samples) + 1


# --------------------------------------------------------------------- class folders (CAER)
@pytest.mark.parametrize("allow, outcome", [(False, REPORTED), (True, LANDED)])
def test_caer_clip_linked_out(caer, tmp_path, allow, outcome):
    root, fx = caer
    (root / "train" / "Anger" / "0099.avi").symlink_to(tmp_path / "outside" / "secret.avi")
    samples, problems = read(load_card("caer"), root, allow_outside_root=allow)
    if outcome == REPORTED:
        assert_reported(problems, "outside_root", "0099.avi")
        assert_inside(samples, root)
        assert len(samples) == len(fx.samples)
    else:
        assert not problems and len(samples) == len(fx.samples) + 1


def test_caer_class_folder_linked_out(caer, tmp_path):
    root, fx = caer
    (tmp_path / "outside" / "Fear").mkdir()
    shutil.copyfile(tmp_path / "outside" / "secret.avi", tmp_path / "outside" / "Fear" / "0100.avi")
    (root / "train" / "Fear").symlink_to(tmp_path / "outside" / "Fear")
    samples, problems = read(load_card("caer"), root)
    assert_reported(problems, "outside_root", "Fear")
    assert len(samples) == len(fx.samples)
    assert_inside(samples, root)


def test_caer_subfolder_linked_out(caer, tmp_path):
    """A link to a folder deeper in a class folder (rglob used to skip it silently)."""
    root, fx = caer
    (root / "train" / "Happy" / "more").symlink_to(tmp_path / "outside")
    samples, problems = read(load_card("caer"), root)
    assert_reported(problems, "outside_root", "more")
    assert_inside(samples, root)


def test_caer_broken_link(caer):
    root, fx = caer
    (root / "train" / "Anger" / "0007.avi").symlink_to(root / "deleted.avi")
    samples, problems = read(load_card("caer"), root)
    assert_reported(problems, "broken_link", "0007.avi")                     # REPORTED, not silent
    assert len(samples) == len(fx.samples)


def test_caer_looping_file_links(caer):
    root, fx = caer
    folder = root / "train" / "Anger"
    (folder / "0008.avi").symlink_to(folder / "0009.avi")
    (folder / "0009.avi").symlink_to(folder / "0008.avi")
    samples, problems = read(load_card("caer"), root)
    assert_reported(problems, "link_loop", "0008.avi")
    assert_reported(problems, "link_loop", "0009.avi")
    assert len(samples) == len(fx.samples)


def test_caer_folder_link_cycle(caer):
    """REPORTED: a folder that links to its own parent is walked once, the cycle reported."""
    root, fx = caer
    (root / "train" / "Anger" / "again").symlink_to(root / "train" / "Anger")
    samples, problems = read(load_card("caer"), root)
    assert_reported(problems, "link_loop", "again")
    assert len(samples) == len(fx.samples)


def test_caer_link_inside_root_lands_under_its_own_name(caer):
    """LANDED: a link to another file inside ROOT is fine; its id is its own path."""
    root, fx = caer
    (root / "train" / "Happy" / "0010.avi").symlink_to(root / "train" / "Anger" / "0001.avi")
    samples, problems = read(load_card("caer"), root)
    assert not problems and "caer/train/Happy/0010.avi" in {s.sample_id for s in samples}


def test_caer_split_dir_out_of_root(caer, tmp_path):
    root, _ = caer
    card = load_card(str(cf.edited_card("caer", tmp_path, {'test = "test" }': 'test = "../outside" }'})))
    samples, problems = read(card, root)
    assert_reported(problems, "outside_root", "outside")
    assert_inside(samples, root)


# ------------------------------------------------------------------------ label lists (RAF-DB)
def test_rafdb_list_line_climbs_out(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.rafdb(root, shared)
    secret(tmp_path, "secret.jpg", shared / "data" / "images" / "astronaut.png")
    listing = root / "basic" / "EmoLabel" / "list_patition_label.txt"
    listing.write_text(listing.read_text() + "../../../../outside/secret.jpg 4\n")
    samples, problems = read(load_card("rafdb"), root)
    assert [p.kind for p in problems] == ["outside_root"] and "secret.jpg" in problems[0].path
    assert len(samples) == len(fx.samples)
    assert_inside(samples, root)


def test_rafdb_image_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.rafdb(root, shared)
    target = secret(tmp_path, "secret.jpg", shared / "data" / "images" / "astronaut.png")
    image = root / "basic" / "Image" / "original" / "train_00001.jpg"
    image.unlink()
    image.symlink_to(target)
    samples, problems = read(load_card("rafdb"), root)
    assert_reported(problems, "outside_root", "train_00001.jpg")
    assert len(samples) == len(fx.samples) - 1
    assert_inside(samples, root)


def test_rafdb_box_file_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.rafdb(root, shared)
    box = root / "basic" / "Annotation" / "boundingbox" / "train_00002_boundingbox.txt"
    (tmp_path / "outside").mkdir()
    shutil.move(str(box), str(tmp_path / "outside" / box.name))
    box.symlink_to(tmp_path / "outside" / box.name)
    samples, problems = read(load_card("rafdb"), root)
    assert_reported(problems, "outside_root", "train_00002_boundingbox.txt")


# ------------------------------------------------------------------ image sequences (CK+)
def test_ckplus_frame_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.ckplus(root, shared)
    target = secret(tmp_path, "secret.png", shared / "data" / "images" / "astronaut.png")
    frame = sorted((root / "cohn-kanade-images" / "S010" / "004").glob("*.png"))[-1]
    frame.unlink()
    frame.symlink_to(target)
    samples, problems = read(load_card("ckplus"), root)
    assert_reported(problems, "outside_root", frame.name)
    assert "ckplus/cohn-kanade-images/S010/004" not in {s.sample_id for s in samples}   # no partial sequence
    assert len(samples) == len(fx.samples) - 1
    assert_inside(samples, root)


def test_ckplus_emotion_file_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.ckplus(root, shared)
    (tmp_path / "outside").mkdir()
    emotion = next((root / "Emotion" / "S011" / "002").glob("*_emotion.txt"))
    (tmp_path / "outside" / "e.txt").write_text("   5.0000000e+00\n")
    emotion.unlink()
    emotion.symlink_to(tmp_path / "outside" / "e.txt")
    samples, problems = read(load_card("ckplus"), root)
    assert_reported(problems, "outside_root", emotion.name)
    assert "ckplus/cohn-kanade-images/S011/002" not in {s.sample_id for s in samples}


def test_ckplus_card_images_out_of_root(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.ckplus(root, shared)
    card = load_card(str(cf.edited_card("ckplus", tmp_path, {'images = "cohn-kanade-images"': 'images = "../../etc"'})))
    samples, problems = read(card, root)
    assert samples == [] and problems[0].kind == "outside_root"


# --------------------------------------------------------------------- VTT JSON (Friends)
def test_friends_video_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.friends(root, shared)
    target = secret(tmp_path, "secret.mp4", shared / "data" / "videos_shippable" / "group_event_smiling.mp4")
    video = root / "videos" / "s01_ep12.mp4"
    video.unlink()
    video.symlink_to(target)
    samples, problems = read(load_card("friends"), root)
    assert_reported(problems, "outside_root", "s01_ep12.mp4")
    assert samples and all("s01_ep12" not in s.sample_id for s in samples)
    assert_inside(samples, root)


def test_friends_annotation_pattern_out_of_root(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.friends(root, shared)
    (tmp_path / "outside").mkdir()
    shutil.copyfile(root / "annotations" / "s01_ep12_tag2_visual_Final_180809.json",
                    tmp_path / "outside" / "s01_ep12_tag2_visual_Final_180809.json")
    card = load_card(str(cf.edited_card("friends", tmp_path, {'annotations = "annotations/*_visual_*.json"':
                                                             'annotations = "../outside/*_visual_*.json"'})))
    samples, problems = read(card, root)
    assert samples == []
    assert_reported(problems, "outside_root", "s01_ep12_tag2")


def test_friends_annotation_broken_link(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.friends(root, shared)
    (root / "annotations" / "s01_ep20_tag2_visual_Final_180809.json").symlink_to(root / "missing.json")
    samples, problems = read(load_card("friends"), root)
    assert_reported(problems, "broken_link", "s01_ep20")
    assert len(samples) == 3


# ------------------------------------------------------------------ gait files (EWalk)
def test_ewalk_features_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.ewalk(root, shared)
    (tmp_path / "outside").mkdir()
    shutil.move(str(root / "features.h5"), str(tmp_path / "outside" / "features.h5"))
    (root / "features.h5").symlink_to(tmp_path / "outside" / "features.h5")
    samples, problems = read(load_card("ewalk"), root)
    assert samples == []
    assert_reported(problems, "outside_root", "features.h5")
    assert len(read(load_card("ewalk"), root, allow_outside_root=True)[0]) == 6     # LANDED with the flag


def test_ewalk_labels_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.ewalk(root, shared)
    (tmp_path / "outside").mkdir()
    shutil.move(str(root / "labels.h5"), str(tmp_path / "outside" / "labels.h5"))
    (root / "labels.h5").symlink_to(tmp_path / "outside" / "labels.h5")
    samples, problems = read(load_card("ewalk"), root)
    assert samples == []
    assert_reported(problems, "outside_root", "labels.h5")


def test_ewalk_features_pattern_out_of_root(tmp_path, shared):
    root = tmp_path / "corpus"
    root.mkdir()
    cf.ewalk(tmp_path / "outside", shared)
    card = load_card(str(cf.edited_card("ewalk", tmp_path, {'features = ["features.h5"]':
                                                           'features = ["../outside/features.h5"]'})))
    samples, problems = read(card, root)
    assert samples == [] and problems and problems[0].kind == "outside_root"


# ------------------------------------------------------------------ mocap sheets (Emilya)
def test_emilya_sheet_linked_out(tmp_path, shared):
    root = tmp_path / "corpus"
    fx = cf.emilya(root, shared)
    (tmp_path / "outside").mkdir()
    sheet = next((root / "SW" / "Joy").glob("*.csv"))
    shutil.move(str(sheet), str(tmp_path / "outside" / sheet.name))
    sheet.symlink_to(tmp_path / "outside" / sheet.name)
    samples, problems = read(load_card("emilya"), root)
    assert_reported(problems, "outside_root", sheet.name)
    assert len(samples) == len(fx.samples) - 1
    assert_inside(samples, root)


def test_emilya_action_out_of_root(tmp_path, shared):
    root = tmp_path / "corpus"
    cf.emilya(root, shared)
    card = load_card(str(cf.edited_card("emilya", tmp_path, {'action = "SW"': 'action = "../../etc"'})))
    samples, problems = read(card, root)
    assert samples == [] and problems[0].kind == "outside_root" and "etc" in problems[0].path


# ------------------------------------------------------------------ segments (shipped card)
def test_segments_video_out_of_root(tmp_path):
    text = (REPO / "datasets" / "sample.toml").read_text()
    text = text.replace('root = "samples/videos"', f'root = "{REPO / "samples" / "videos"}"')
    text = text.replace('video = "hikers_walking.mp4"', 'video = "../../../../etc/hostname"', 1)
    card_path = tmp_path / "sample.toml"
    card_path.write_text(text)
    card = load_card(str(card_path))
    samples, problems = read(card, REPO / "samples" / "videos")
    assert_reported(problems, "outside_root", "hostname")
    assert samples and all("hostname" not in s.uri for s in samples)
    with pytest.raises(CorpusError, match="hostname"):                              # REFUSED without a list
        read_samples(card, REPO / "samples" / "videos")


# ------------------------------------------------------------------ confine() directly
@pytest.mark.parametrize("rel, kind", [
    ("a/../../x", "outside_root"), ("/etc/passwd", "outside_root"), ("a\x00b", "bad_value"),
    ("y" * 256, "bad_value"), ("a/" * 2100 + "z", "bad_value"),
])
def test_confine_refuses(tmp_path, rel, kind):
    from pipelines.readers.base import confine

    problems: list = []
    assert confine(tmp_path, tmp_path / rel if not rel.startswith("/") else Path(rel), problems) is None
    assert [p.kind for p in problems] == [kind] and problems[0].reason


def test_confine_keeps_missing_and_inside(tmp_path):
    """LANDED: a path inside ROOT (existing or not) comes back; the caller reports missing files."""
    from pipelines.readers.base import confine

    (tmp_path / "a").mkdir()
    problems: list = []
    assert confine(tmp_path, tmp_path / "a" / ".." / "a", problems) == tmp_path / "a" / ".." / "a"
    assert confine(tmp_path, tmp_path / "nope.jpg", problems) == tmp_path / "nope.jpg"
    assert problems == []


# ------------------------------------------------------------------ corpora check, end to end
def test_corpora_check_reports_escapes(affectnet, tmp_path):
    """REPORTED end to end: ``python -m pipelines.corpora check`` names every escape, exit 1."""
    root, _ = affectnet
    (root / "Manually_Annotated_Images" / "689" / "linked.jpg").symlink_to(tmp_path / "outside" / "secret.png")
    (root / "Manually_Annotated_Images" / "689" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    add_rows(root / "training.csv", [affectnet_row("../../outside/secret.png"), affectnet_row("/etc/hostname"),
                                     affectnet_row("689/linked.jpg"), affectnet_row("689/gone.jpg")])
    run = subprocess.run([sys.executable, "-m", "pipelines.corpora", "check", "affectnet", str(root), "--no-counts",
                          "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]
    report = json.loads(run.stdout)
    kinds = {(p["kind"], Path(p["path"]).name) for p in report["problems"]}
    assert {("outside_root", "secret.png"), ("outside_root", "hostname"), ("outside_root", "linked.jpg"),
            ("broken_link", "gone.jpg")} <= kinds
    assert report["samples"] == 3 and not report["ok"]


# ==================================================================== checkpoints (item 5)
class Payload:
    """Runs ``touch MARKER`` when unpickled by the full unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A toy shard set and a real ``zoo.train`` run on it (checkpoint.pt, last.pt)."""
    base = tmp_path_factory.mktemp("trained")
    sf.toy_run(base / "shards")
    run = subprocess.run([sys.executable, "-m", "zoo.train", "accm", "--shards", str(base / "shards"), "--epochs", "1",
                          "--eval-split", "test", "--out", str(base / "run"), "--no-progress", "--no-tensorboard"],
                         cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "AFFECTZOO_CACHE": str(base / "cache")})
    assert run.returncode == 0, run.stderr[-3000:]
    return base


def evil_checkpoint(path: Path, marker: Path, how: str = "config") -> Path:
    """A checkpoint with the keys zoo.train writes and a ``__reduce__`` payload inside."""
    state = {"model": "accm", "state_dict": {"w": torch.zeros(1)},
             "config": {"label_names": ["a"], "in_shape": [1], "input": "videos/timeline"}, "epoch": 1,
             "history": [], "optimizer": {}, "scheduler": {}, "rng": {}, "best": None}
    if how == "config":
        state["config"]["hook"] = Payload(marker)
    elif how == "top":
        state = Payload(marker)
    elif how == "legacy":
        state["config"]["hook"] = Payload(marker)
        torch.save(state, path, _use_new_zipfile_serialization=False)
        return path
    elif how == "raw":
        path.write_bytes(pickle.dumps({"model": "accm", "x": Payload(marker)}))
        return path
    torch.save(state, path)
    return path


@pytest.mark.parametrize("how", ["config", "top", "legacy", "raw"])
def test_read_checkpoint_refuses_pickle_payloads(tmp_path, how):
    """REFUSED: every form of payload (in the config, the whole file, the legacy format, a
    plain pickle) is refused by name and its code never runs."""
    from zoo.checkpoints import CheckpointError, read_checkpoint

    marker = tmp_path / "PWNED"
    path = evil_checkpoint(tmp_path / "evil.pt", marker, how)
    with pytest.raises(CheckpointError, match=r"evil\.pt: .*(weights-only|GLOBAL)"):
        read_checkpoint(path)
    assert not marker.exists()


def test_payload_proves_itself_with_the_full_unpickler(tmp_path):
    """The payload is real: the old ``weights_only=False`` load runs it."""
    marker = tmp_path / "PWNED"
    torch.load(evil_checkpoint(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AFFECTZOO_CACHE": str(tmp_path / "cache")})


@pytest.mark.parametrize("command", ["predict", "evaluate-images", "evaluate-shards", "train-resume"])
def test_cli_never_runs_a_checkpoint_payload(trained, tmp_path, command):
    """REFUSED through each command a user types; exit status 2 (1 for predict), the file named,
    no marker file."""
    marker = tmp_path / "PWNED"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    shards = str(trained / "shards")
    args = {"predict": ["zoo.predict", str(evil), str(REPO / "samples" / "videos" / "hikers_walking.mp4"),
                        "--out", str(tmp_path / "p.jsonl")],
            "evaluate-images": ["zoo.evaluate", str(evil), "--images", str(tmp_path)],
            "evaluate-shards": ["zoo.evaluate", str(evil), "--shards", shards, "--out", str(tmp_path / "ev")],
            "train-resume": ["zoo.train", "accm", "--shards", shards, "--epochs", "2", "--eval-split", "test",
                             "--out", str(tmp_path / "r"), "--no-progress", "--no-tensorboard", "--resume", str(evil)]}
    run = _cli(args[command], tmp_path)
    assert run.returncode != 0
    assert "evil.pt" in run.stderr and "weights-only" in run.stderr, run.stderr[-2000:]
    assert not marker.exists()


def test_trained_checkpoints_round_trip(trained, tmp_path):
    """LANDED: what zoo.train writes loads weights-only, rebuilds, scores and resumes."""
    from zoo.checkpoints import evaluate_on_shards, load_state, read_checkpoint, save_checkpoint

    state = read_checkpoint(trained / "run")
    assert state["model"] == "accm" and state["config"]["label_names"] == sf.LABELS
    last = load_state(trained / "run" / "last.pt")
    assert {"optimizer", "rng", "best"} <= set(last)
    metrics = evaluate_on_shards(trained / "run" / "checkpoint.pt", trained / "shards", "test")
    assert metrics["rows"] == 4
    shutil.copytree(trained / "run", tmp_path / "run")
    run = _cli(["zoo.train", "accm", "--shards", str(trained / "shards"), "--epochs", "2", "--eval-split", "test",
                "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard", "--resume",
                str(tmp_path / "run" / "last.pt")], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert load_state(tmp_path / "run" / "last.pt")["epoch"] == 2
    # save_checkpoint writes plain config values and the file loads weights-only
    save_checkpoint({**state, "config": {**state["config"], "shards": tmp_path}}, tmp_path / "again.pt")
    assert read_checkpoint(tmp_path / "again.pt")["config"]["shards"] == str(tmp_path)


@pytest.mark.parametrize("content, match", [
    (b"not a checkpoint\n", "cannot read as a weights-only"),
    (None, "not a zoo.train checkpoint"),
])
def test_read_checkpoint_refuses_foreign_files(tmp_path, content, match):
    from zoo.checkpoints import CheckpointError, read_checkpoint

    path = tmp_path / "x.pt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)


def test_save_checkpoint_refuses_objects(tmp_path):
    """REFUSED before writing: a state the reader would refuse is never saved."""
    from zoo.checkpoints import CheckpointError, save_checkpoint

    with pytest.raises(CheckpointError):
        save_checkpoint({"model": "m", "extra": Payload(tmp_path / "m")}, tmp_path / "c.pt")
    assert not list(tmp_path.glob("*c.pt*"))


# ==================================================================== shard sets (item 7)
@pytest.fixture
def run_dir(tmp_path):
    out = tmp_path / "run"
    sf.toy_run(out)
    return out


def open_set(run):
    from zoo.data import ShardDataset

    return ShardDataset(run, "timeline", "train")


def edit_manifest(run: Path, change):
    manifest = json.loads((run / "manifest.json").read_text())
    change(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_clean_shard_set_opens(run_dir):
    """LANDED: an untouched run opens, every train row present."""
    assert len(open_set(run_dir)) == 4


def test_zeroed_and_relabelled_row_refused(run_dir):
    from zoo.data import ShardIntegrityError

    h5 = run_dir / "shard-00000-of-00002.h5"
    with h5py.File(h5, "r+") as f:
        f["videos/label"][0] = (f["videos/label"][0] + 1) % 3
        f["videos/timeline"][0] = np.zeros_like(f["videos/timeline"][0])
    with pytest.raises(ShardIntegrityError, match=r"shard-00000-of-00002\.h5: .*changed after it was written"):
        open_set(run_dir)


def test_grown_file_refused_by_size(run_dir):
    from zoo.data import ShardIntegrityError

    with open(run_dir / "shard-00001-of-00002.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ShardIntegrityError, match=r"bytes, its done-marker .* says"):
        open_set(run_dir)


def test_tamper_with_restored_mtime_after_cached_hash(run_dir):
    """REFUSED: a byte changed in place (same size, mtime put back) after a cached hash."""
    from zoo.data import ShardIntegrityError

    assert len(open_set(run_dir)) == 4                                   # the hash is now cached
    h5 = run_dir / "shard-00000-of-00002.h5"
    st = h5.stat()
    data = bytearray(h5.read_bytes())
    data[len(data) // 2] ^= 0xFF
    h5.write_bytes(bytes(data))
    os.utime(h5, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ShardIntegrityError, match="sha256 differs"):
        open_set(run_dir)


def test_manifest_lists_a_shard_twice(run_dir):
    from zoo.data import ShardIntegrityError

    edit_manifest(run_dir, lambda m: m["shards"].append(m["shards"][0]))
    with pytest.raises(ShardIntegrityError, match="again"):
        open_set(run_dir)


def test_manifest_lists_a_shard_again_by_absolute_path(run_dir):
    from zoo.data import ShardIntegrityError

    def dup(m):
        entry = json.loads(json.dumps(m["shards"][0]))
        for f in entry["files"].values():
            f["name"] = str(run_dir / f["name"])
        m["shards"].append(entry)
    edit_manifest(run_dir, dup)
    with pytest.raises(ShardIntegrityError, match="absolute path"):
        open_set(run_dir)


def test_manifest_names_a_shard_outside_the_run(run_dir, tmp_path):
    from zoo.data import ShardIntegrityError

    sf.toy_run(tmp_path / "other", prefix="other/v")

    def out(m):
        entry = json.loads((tmp_path / "other" / "shard-00000-of-00002.done.json").read_text())
        for f in entry["files"].values():
            f["name"] = f"../other/{f['name']}"
        m["shards"].append(entry)
    edit_manifest(run_dir, out)
    with pytest.raises(ShardIntegrityError, match="outside the run folder"):
        open_set(run_dir)


def test_shard_file_linked_out_of_the_run(run_dir, tmp_path):
    from zoo.data import ShardIntegrityError

    sf.toy_run(tmp_path / "other")
    h5 = run_dir / "shard-00000-of-00002.h5"
    h5.unlink()
    h5.symlink_to(tmp_path / "other" / h5.name)
    with pytest.raises(ShardIntegrityError, match="outside the run folder"):
        open_set(run_dir)


def test_missing_done_marker(run_dir):
    from zoo.data import ShardIntegrityError

    (run_dir / "shard-00001-of-00002.done.json").unlink()
    with pytest.raises(ShardIntegrityError, match="no done-marker"):
        open_set(run_dir)


def test_manifest_and_marker_disagree(run_dir):
    from zoo.data import ShardIntegrityError

    def forge(m):
        m["shards"][0]["files"]["h5"]["sha256"] = "0" * 64
    edit_manifest(run_dir, forge)
    with pytest.raises(ShardIntegrityError, match="disagree"):
        open_set(run_dir)


@pytest.mark.parametrize("name", ["shard\x00.h5", "", "~/shard.h5"])
def test_manifest_unusable_names(run_dir, name):
    from zoo.data import ShardIntegrityError

    def bad(m):
        m["shards"][0]["files"]["h5"]["name"] = name
    edit_manifest(run_dir, bad)
    with pytest.raises(ShardIntegrityError):
        open_set(run_dir)


def test_sample_in_two_shards(run_dir, tmp_path):
    """REFUSED: a second copy of the same samples (a retry folder that repeats a shard)."""
    from zoo.data import ShardIntegrityError

    sf.toy_run(run_dir / "retry-01")

    def add(m):
        entry = json.loads((run_dir / "retry-01" / "shard-00000-of-00002.done.json").read_text())
        for f in entry["files"].values():
            f["name"] = f"retry-01/{f['name']}"
        m["shards"].append(entry)
    edit_manifest(run_dir, add)
    with pytest.raises(ShardIntegrityError, match="also in"):
        open_set(run_dir)


def test_evaluate_refuses_tampered_shards_end_to_end(trained, tmp_path):
    """REFUSED end to end: ``python -m zoo.evaluate CKPT --shards`` on a relabelled shard."""
    shutil.copytree(trained / "shards", tmp_path / "shards")
    with h5py.File(tmp_path / "shards" / "shard-00000-of-00002.h5", "r+") as f:
        f["videos/label"][:] = 0
    run = _cli(["zoo.evaluate", str(trained / "run" / "checkpoint.pt"), "--shards", str(tmp_path / "shards"),
                "--out", str(tmp_path / "ev")], tmp_path)
    assert run.returncode == 2 and "changed after it was written" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "ev" / "metrics.json").exists()


def test_restamped_shard_reaches_the_schema_check(run_dir):
    """An edited shard whose marker is restamped (a deliberate edit) opens up to the schema
    validator, which names the file and field (what test_train's validator test relies on)."""
    from schemas.shards import ShardSchemaError
    from zoo.data import ShardIntegrityError

    h5 = run_dir / "shard-00000-of-00002.h5"
    with h5py.File(h5, "a") as f:
        rows = f["videos/pose_features"].shape[0]
        del f["videos/pose_features"]
        f["videos/pose_features"] = np.zeros((rows, 64, 100), np.float32)
    with pytest.raises(ShardIntegrityError):
        open_set(run_dir)
    sf.restamp(h5)
    with pytest.raises(ShardSchemaError, match=r"videos/pose_features rows have shape \(64, 100\)") as err:
        open_set(run_dir)
    assert not isinstance(err.value, ShardIntegrityError)
