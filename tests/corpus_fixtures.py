"""Small corpus trees in each corpus's exact layout, with real media from ``../shared/data``.

The licensed corpora cannot be downloaded here, so each builder writes a few entries in the
layout, file names and annotation formats the corpus is distributed in (see the cards in
``datasets/`` and the readers in ``pipelines/readers/``), with real clips, photos and gait
arrays standing in for the media. ``broken=True`` adds the classic faults on top of the good
entries (missing annotation, unknown label, truncated media, duplicate id, ...) and the
builder returns which problems ``check`` must report.

Every builder returns a :class:`Fixture`: the root, the expected good samples
(``{sample id suffix: (split, label name)}``) and, for broken trees, the expected problems
as ``(kind, file name fragment)`` pairs.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from PIL import Image


@dataclass
class Fixture:
    """A generated tree: ``root``, good samples by id suffix, expected problems."""

    root: Path
    samples: dict[str, tuple[str, str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to its first ``keep`` fraction of bytes (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _jpeg(src: Path, dst: Path, size: tuple[int, int] | None = None) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im = im.convert("RGB")
        if size:
            im = im.resize(size)
        im.save(dst, quality=90)
    return dst


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------------------- CAER
def caer(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``train|validation|test/<Emotion>/NNNN.avi`` with the AVI face close-up as every clip."""
    clip = shared / "data" / "videos" / "face_closeup_makeup.avi"
    fx = Fixture(root)
    for split, folder, cls, name in (("train", "train", "Anger", "0001.avi"), ("train", "train", "Happy", "0002.avi"),
                                     ("val", "validation", "Neutral", "0003.avi"), ("test", "test", "Sad", "0004.avi")):
        _copy(clip, root / folder / cls / name)
        fx.samples[f"{folder}/{cls}/{name}"] = (split, cls)
    if broken:
        _copy(clip, root / "train" / "Contempt" / "0005.avi")           # not a CAER class
        truncate(_copy(clip, root / "test" / "Sad" / "0006.avi"))       # half a file
        fx.problems += [("unknown_label", "Contempt"), ("truncated_media", "0006.avi")]
    return fx


# ----------------------------------------------------------------------------------- EmoReact
EMOREACT = ["Curiosity", "Uncertainty", "Excitement", "Happiness", "Surprise", "Disgust", "Fear", "Frustration"]


def emoreact(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``{train,val,test}.csv`` (index column, video, 8 binary labels, Valence) + ``AllVideos/``."""
    clip = shared / "data" / "videos_shippable" / "group_event_smiling.mp4"
    header = [""] + ["video"] + EMOREACT + ["Valence"]
    rows = {"train": [["CAKE10_2.mp4", [0, 0, 1, 1, 1, 0, 1, 0], 5.6667], ["CAKE12_2.mp4", [0] * 8, 4.0]],
            "val": [["80sTOYS115_2.mp4", [0, 0, 0, 0, 1, 0, 0, 0], 3.6667]],
            "test": [["iPOD12_2.mp4", [1, 0, 1, 0, 1, 0, 0, 1], 2.6667]]}
    fx = Fixture(root)
    for split, entries in rows.items():
        for video, _, _ in entries:
            _copy(clip, root / "AllVideos" / video)
            fx.samples[f"AllVideos/{video}"] = (split, "")
    if broken:
        rows["train"].append(["CAKE19_2.mp4", [1, 0, 2, 1, 0, 0, 0, 0], 6.3333])    # label value 2
        rows["train"].append(["NOSUCH_2.mp4", [1, 0, 0, 0, 0, 0, 0, 0], 4.0])      # no video
        rows["val"].append(["80sTOYS115_2.mp4", [0, 0, 0, 0, 1, 0, 0, 0], 3.6667])  # listed twice
        _copy(clip, root / "AllVideos" / "CAKE19_2.mp4")
        truncate(_copy(clip, root / "AllVideos" / "SPAM33_2.mp4"))
        rows["val"].append(["SPAM33_2.mp4", [0, 1, 0, 1, 0, 0, 0, 0], 4.6667])
        fx.problems += [("unknown_label", "train.csv"), ("missing_file", "NOSUCH_2.mp4"),
                        ("duplicate_id", "80sTOYS115_2.mp4"), ("truncated_media", "SPAM33_2.mp4"),
                        ("missing_annotation", "test.csv")]
    for split, entries in rows.items():
        if broken and split == "test":
            fx.samples.pop("AllVideos/iPOD12_2.mp4")
            continue  # the test table is missing
        _csv(root / f"{split}.csv", header,
             [[i, video, *labels, valence] for i, (video, labels, valence) in enumerate(entries)])
    return fx


# ---------------------------------------------------------------------------------- AffectNet
def affectnet(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``training.csv`` / ``validation.csv`` + ``Manually_Annotated_Images/<dir>/<file>``."""
    images = shared / "data" / "images"
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    lm = ";".join(["100.5"] * 136)
    train = [["689/astro1.jpg", 200, 90, 130, 140, lm, 1, 0.785, 0.3], ["689/group1.jpg", 360, 180, 90, 100, lm, 0, 0.0, -0.1],
             ["12/contempt.jpg", 200, 90, 130, 140, lm, 7, -0.2, 0.2]]                         # contempt: dropped in fer7
    val = [["1003/astro2.jpg", "NULL", "NULL", "NULL", "NULL", lm, 6, -0.6, 0.7]]                 # no box: detector
    fx = Fixture(root)
    for row, src in zip(train + val, ["astronaut.png", "dbface_group.jpg", "astronaut.png", "astronaut.png"]):
        _jpeg(images / src, root / "Manually_Annotated_Images" / row[0])
    fx.samples = {"Manually_Annotated_Images/689/astro1.jpg": ("train", "happy"),
                  "Manually_Annotated_Images/689/group1.jpg": ("train", "neutral"),
                  "Manually_Annotated_Images/1003/astro2.jpg": ("val", "angry")}
    if broken:
        train.append(["689/odd.jpg", 1, 1, 50, 50, lm, 12, 0, 0])                                 # code 12
        _jpeg(images / "astronaut.png", root / "Manually_Annotated_Images" / "689" / "odd.jpg")
        train.append(["689/gone.jpg", 1, 1, 50, 50, lm, 3, 0, 0])                                 # no image
        truncate(_jpeg(images / "dbface_group.jpg", root / "Manually_Annotated_Images" / "77" / "cut.jpg"))
        train.append(["77/cut.jpg", 1, 1, 50, 50, lm, 2, 0, 0])
        fx.problems += [("unknown_label", "training.csv"), ("missing_file", "gone.jpg"), ("truncated_media", "cut.jpg"),
                        ("missing_annotation", "validation.csv")]
        fx.samples.pop("Manually_Annotated_Images/1003/astro2.jpg")
    _csv(root / "training.csv", header, train)
    if not broken:
        _csv(root / "validation.csv", header, val)
    return fx


# ------------------------------------------------------------------------------------- RAF-DB
def rafdb(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``basic/EmoLabel/list_patition_label.txt`` + box files + ``basic/Image/original/*.jpg``."""
    images = shared / "data" / "images"
    base = root / "basic"
    entries = [("train_00001.jpg", 4, "astronaut.png", (180, 60, 340, 260)),     # happiness
               ("train_00002.jpg", 7, "dbface_group.jpg", (350, 160, 460, 290)),  # neutral
               ("test_0001.jpg", 1, "astronaut.png", (180, 60, 340, 260))]        # surprise
    names = {4: "happy", 7: "neutral", 1: "surprise", 6: "angry"}
    fx = Fixture(root)
    lines = []
    for name, code, src, box in entries:
        _jpeg(images / src, base / "Image" / "original" / name)
        (base / "Annotation" / "boundingbox").mkdir(parents=True, exist_ok=True)
        (base / "Annotation" / "boundingbox" / f"{Path(name).stem}_boundingbox.txt").write_text(" ".join(f"{v:.1f}" for v in box) + " \n")
        lines.append(f"{name} {code}")
        fx.samples[f"basic/Image/original/{name}"] = ("test" if name.startswith("test") else "train", names[code])
    if broken:
        _jpeg(images / "astronaut.png", base / "Image" / "original" / "train_00003.jpg")
        lines.append("train_00003.jpg 9")                                   # not a basic code
        (base / "Annotation" / "boundingbox" / "train_00003_boundingbox.txt").write_text("1 1 50 50\n")
        _jpeg(images / "astronaut.png", base / "Image" / "original" / "train_00004.jpg")
        lines.append("train_00004.jpg 6")                                   # no box file
        truncate(_jpeg(images / "dbface_group.jpg", base / "Image" / "original" / "test_0002.jpg"))
        (base / "Annotation" / "boundingbox" / "test_0002_boundingbox.txt").write_text("1 1 50 50\n")
        lines.append("test_0002.jpg 6")
        lines.append("train_00001.jpg 4")                                   # listed twice
        fx.problems += [("unknown_label", "list_patition_label.txt"), ("missing_annotation", "train_00004_boundingbox.txt"),
                        ("truncated_media", "test_0002.jpg"), ("duplicate_id", "train_00001.jpg")]
    (base / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (base / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return fx


# ------------------------------------------------------------------------------ EWalk / ELMD
STEP_FEATURES = "gait/step_features4DCVAEGCN.h5"
STEP_LABELS = "gait/step_labels4DCVAEGCN.h5"


def step_pair(root: Path, shared: Path) -> Fixture:
    """The real STEP gait pair, renamed as distributed (``features4DCVAEGCN.h5`` / ``labels...``)."""
    _copy(shared / "data" / STEP_FEATURES, root / "features4DCVAEGCN.h5")
    _copy(shared / "data" / STEP_LABELS, root / "labels4DCVAEGCN.h5")
    fx = Fixture(root)
    order = ["Emo0", "Angry", "Neutral", "Happy", "Emo4", "Sad"]
    with h5py.File(root / "labels4DCVAEGCN.h5", "r") as f:
        for key in f:
            fx.samples[f"features4DCVAEGCN.h5#{key}"] = ("", order[int(f[key][()])])
    return fx


def ewalk(root: Path, shared: Path, broken: bool = False, features: str = "features.h5",
          labels: str = "labels.h5") -> Fixture:
    """``features.h5`` + ``labels.h5``: real ProxEmo label keys and values with real STEP gait arrays."""
    order = ["Angry", "Happy", "Sad", "Neutral"]  # the card's default ("proxemo") order
    fx = Fixture(root)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(shared / "data" / "gait" / "proxemo_labels.h5", "r") as lab, \
            h5py.File(shared / "data" / STEP_FEATURES, "r") as feat:
        keys, gaits = sorted(lab.keys())[:6], [feat[k][()] for k in sorted(feat.keys())[:6]]
        values = [int(lab[k][()]) for k in keys]
    with h5py.File(root / features, "w") as f, h5py.File(root / labels, "w") as g:
        for key, gait, value in zip(keys, gaits, values):
            f[key] = gait
            g[key] = np.int32(value)
            fx.samples[f"{features}#{key}"] = ("", order[value])
        if broken:
            f["900_nolabel.csv"] = gaits[0]                       # no label entry
            f["901_badlabel.csv"] = gaits[1]
            g["901_badlabel.csv"] = np.int32(7)                   # outside the 4-class order
            f["902_badshape.csv"] = gaits[2][:, :45]              # 15 joints
            g["902_badshape.csv"] = np.int32(0)
            fx.problems += [("missing_annotation", labels), ("unknown_label", labels), ("bad_value", features)]
    return fx


# ------------------------------------------------------------------------------------- Emilya
EMILYA = ["Anger", "Anxiety", "Joy", "Neutral", "Panic Fear", "Pride", "Sadness", "Shame"]


def _sheet_rows(gait: np.ndarray) -> list[list[str]]:
    """28-joint rows from a 16-joint STEP gait: joints 0-15 then 0-11 again, in millimetres."""
    g = np.concatenate([gait.reshape(len(gait), 16, 3), gait.reshape(len(gait), 16, 3)[:, :12]], axis=1) * 1000.0
    return [[f"{v:.3f}" for v in row] for row in g.reshape(len(g), 84)]


def emilya(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``SW/<Emotion>/<actor>_SW_<Emotion>_<n>.csv``: CSV exports of sheet 2 (header + 28 x xyz)."""
    header = [f"j{j}_{a}" for j in range(28) for a in "xyz"]
    with h5py.File(shared / "data" / STEP_FEATURES, "r") as feat:
        gaits = [feat[k][()] for k in sorted(feat.keys())[:4]]
    fx = Fixture(root)
    for gait, emotion, n in zip(gaits, ["Anger", "Joy", "Panic Fear", "Shame"], range(4)):
        rel = f"SW/{emotion}/A{n + 1}_SW_{emotion.replace(' ', '')}_{n + 1}.csv"
        _csv(root / rel, header, _sheet_rows(gait))
        fx.samples[rel] = ("train", emotion)
    if broken:
        _csv(root / "SW" / "Boredom" / "A9_SW_Boredom_1.csv", header, _sheet_rows(gaits[0]))       # names no class
        rows = _sheet_rows(gaits[1])
        rows[-1] = rows[-1][:40]                                                                     # cut short
        _csv(root / "SW" / "Joy" / "A9_SW_Joy_9.csv", header, rows)
        fx.problems += [("unknown_label", "Boredom"), ("truncated_media", "A9_SW_Joy_9.csv")]
    return fx


# ---------------------------------------------------------------------------------------- CK+
def _ck_frames(shared: Path, n: int) -> list[Image.Image]:
    with Image.open(shared / "data" / "images" / "astronaut.png") as im:
        face = im.convert("L").resize((160, 160))
    return [face.rotate(2 * i) for i in range(n)]


def ckplus(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``cohn-kanade-images/Sxxx/nnn/Sxxx_nnn_0000000k.png`` + ``Emotion/.../*_emotion.txt``."""
    fx = Fixture(root)
    seqs = [("S005", "001", 3, "Disgust"), ("S010", "004", 1, "Angry"), ("S011", "002", 5, "Happy"),
            ("S014", "003", 7, "Surprise")]
    unlabelled = ("S014", "001")
    folds = {"S005": 1, "S010": 2, "S011": 3, "S014": 4}

    def sequence(subject, seq, n=4):
        folder = root / "cohn-kanade-images" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        for k, frame in enumerate(_ck_frames(shared, n)):
            frame.save(folder / f"{subject}_{seq}_{k + 1:08d}.png")
        return folder

    def emotion(subject, seq, text, n=4):
        folder = root / "Emotion" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{subject}_{seq}_{n:08d}_emotion.txt").write_text(text)

    for subject, seq, code, name in seqs:
        sequence(subject, seq)
        emotion(subject, seq, f"   {code:.7e}\n")
        fx.samples[f"cohn-kanade-images/{subject}/{seq}"] = ("test" if folds[subject] == 1 else "train", name)
    sequence(*unlabelled)  # no emotion file: unlabelled, not a problem
    if broken:
        sequence("S022", "001")
        emotion("S022", "001", "   9.0000000e+00\n")                       # not a CK+ code
        emotion("S026", "002", "   1.0000000e+00\n")                       # no images
        sequence("S028", "001")
        emotion("S028", "001", "happy\n")                                  # not a number
        folder = sequence("S029", "001")
        emotion("S029", "001", "   5.0000000e+00\n")
        truncate(sorted(folder.glob("*.png"))[-1])
        fx.problems += [("unknown_label", "S022_001"), ("missing_file", "S026"), ("unreadable_annotation", "S028_001"),
                        ("truncated_media", "S029")]
    return fx


# ------------------------------------------------------------------------------------ Friends
def _period(num, image, people):
    return {"period_num": str(num), "start_time": "00:00:00;10", "end_time": "00:00:01;02", "image": image,
            "person": [{char: [{"emotion": emo, "face_rect": rect}] for char, emo, rect in people}]}


def friends(root: Path, shared: Path, broken: bool = False) -> Fixture:
    """``annotations/s01_epXX_tag2_visual_Final_180809.json`` + ``videos/s01_epXX.mp4``."""
    clip = shared / "data" / "videos_shippable" / "group_event_smiling.mp4"
    rect = {"min_x": 300, "min_y": "120  7", "max_x": "360", "max_y": 190}
    none = {"min_x": "none", "min_y": "none", "max_x": "none", "max_y": "none"}
    fx = Fixture(root)
    episodes = {
        "s01_ep01": [_period(1, "Fr_10.jpg", [("Monica", "Happy", rect), ("Ross", "none", rect)]),
                     _period(2, "Fr_40.jpg", [("Rachel", "Sadness", rect), ("Joey", "Neutral", none)])],
        "s01_ep12": [_period(1, "f00060.jpg", [("Chandler", "Anger", rect)])],
    }
    fx.samples = {"videos/s01_ep01.mp4#000010-Monica": ("val", "happy"), "videos/s01_ep01.mp4#000040-Rachel": ("val", "sad"),
                  "videos/s01_ep12.mp4#000060-Chandler": ("train", "angry")}
    if broken:
        episodes["s01_ep12"].append(_period(2, "Fr_70.jpg", [("Phoebe", "Bored", rect)]))      # unknown emotion
        episodes["s01_ep12"].append(_period(3, "f00060.jpg", [("Chandler", "Anger", rect)]))   # same face again
        episodes["s01_ep13"] = [_period(1, "Fr_5.jpg", [("Ross", "Happy", rect)])]              # no video
        fx.problems += [("unknown_label", "s01_ep12"), ("duplicate_id", "s01_ep12.mp4"), ("missing_file", "s01_ep13"),
                        ("unreadable_annotation", "s01_ep14")]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for ep, periods in episodes.items():
        (root / "annotations" / f"{ep}_tag2_visual_Final_180809.json").write_text(json.dumps({"visual_results": periods}))
        if ep != "s01_ep13":
            _copy(clip, root / "videos" / f"{ep}.mp4")
    if broken:
        (root / "annotations" / "s01_ep14_tag2_visual_Final_180809.json").write_text('{"visual_results": [')
    return fx


BUILDERS = {"caer": caer, "emoreact": emoreact, "affectnet": affectnet, "rafdb": rafdb, "ewalk": ewalk,
            "elmd": lambda root, shared, broken=False: ewalk(root, shared, broken, "features_ELMD.h5", "labels_ELMD.h5"),
            "emilya": emilya, "ckplus": ckplus, "friends": friends}


def edited_card(name: str, tmp_path: Path, replace: dict[str, str], shrink: bool = False) -> Path:
    """A copy of ``datasets/<name>.toml`` with each ``old -> new`` text replaced (each must occur).

    ``shrink`` first makes the representations small (32 px faces, 2 clips): CPU is scarce.
    """
    import re

    text = (Path(__file__).resolve().parents[1] / "datasets" / f"{name}.toml").read_text()
    if shrink:
        text = re.sub(r"face_size = \d+", "face_size = 32", text)
        text = re.sub(r"(?m)^clips = \d+", "clips = 2", text)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}_small.toml"
    path.write_text(text)
    return path
