"""``python -m zoo.evaluate`` on generated image-folder trees of real face crops and pictures."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from zoo.evaluate import SYNONYMS, main, map_folders
from zoo.models.mini_xception import FER2013_CLASSES, load_mini_xception

# folder -> reference crops (shared/reference/mini_xception) put in it; names need the synonym table
CROPS = {"Happiness": ["astronaut_face0", "dbface_group_face0"], "sadness": ["group_event_f000_face1"],
         "anger": ["dbface_group_face3"], "contempt": ["dbface_group_face4"], "not_an_emotion": ["group_event_f000_face0"]}


@pytest.fixture(scope="module")
def model():
    return load_mini_xception()


def _softmax(model, x):
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(np.stack(x))[:, None]), 1).numpy()


@pytest.fixture(scope="module")
def crop_tree(shared, tmp_path_factory):
    """Reference crops plus BlazeFace-back crops (1.4 x the box, colour) of the shared images."""
    from extractors.blazeface import detect_faces, load_blazeface

    root = tmp_path_factory.mktemp("evaluate") / "faces"
    ref = shared / "reference" / "mini_xception"
    for folder, names in CROPS.items():
        (root / folder).mkdir(parents=True)
        for n in names:
            shutil.copy(ref / f"{n}.crop.png", root / folder / f"{n}.png")
    detector = load_blazeface("back")
    (root / "surprised").mkdir()
    (root / "neutral").mkdir()
    for i, name in enumerate(["astronaut.png", "dbface_group.jpg", "ski.jpg"]):
        bgr = cv2.imread(str(shared / "data" / "images" / name))
        for j, d in enumerate(detect_faces(detector, [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0]):
            cx, cy = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2
            h, w = bgr.shape[:2]
            side = int(min(1.4 * max(d[2] - d[0], d[3] - d[1]), 2 * cx, 2 * cy, 2 * (w - cx), 2 * (h - cy)))
            x1, y1 = int(cx - side / 2), int(cy - side / 2)
            crop = bgr[y1:y1 + side, x1:x1 + side]  # square, inside the image
            folder = "surprised" if (i + j) % 2 else "neutral"
            cv2.imwrite(str(root / folder / f"{name}_{j}.jpg"), crop)
    (root / "neutral" / "notes.txt").write_text("not an image")
    return root


def test_synonym_table_maps_and_skips():
    mapping, skipped = map_folders(["Anger", "sadness", "happiness", "surprised", "fear", "Disgusted", "neutral",
                                    "contempt", "7", "joy"], FER2013_CLASSES)
    assert mapping == {"Anger": "angry", "sadness": "sad", "happiness": "happy", "surprised": "surprise",
                       "fear": "fear", "Disgusted": "disgust", "neutral": "neutral", "joy": "happy"}
    assert skipped == {"contempt": "no counterpart in the model's classes", "7": "unknown class name"}
    assert set(v for v in SYNONYMS.values() if v) == set(FER2013_CLASSES)


def test_crop_folder_accuracy_equals_model_predictions(crop_tree, shared, tmp_path, model, capsys):
    out = tmp_path / "out"
    assert main(["mini-xception-fer2013", "--images", str(crop_tree), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    printed = capsys.readouterr().out
    # independent computation: grey, resize to 64 x 64 (INTER_LINEAR), (x / 255 - 0.5) * 2
    truth = {"Happiness": "happy", "sadness": "sad", "anger": "angry", "surprised": "surprise", "neutral": "neutral"}
    paths, labels = [], []
    for folder, cls in truth.items():
        for p in sorted((crop_tree / folder).glob("*")):
            if p.suffix in (".png", ".jpg"):
                paths.append(p)
                labels.append(FER2013_CLASSES.index(cls))
    x = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if grey.shape[0] == grey.shape[1]:  # all crops here are square (else fer pads to a square)
            x.append((cv2.resize(grey, (64, 64)).astype(np.float32) / 255 - 0.5) * 2)
    assert len(x) == len(paths) >= 8
    pred = _softmax(model, x).argmax(1)
    assert metrics["num_samples"] == len(paths)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(pred == np.array(labels))))
    for cls in set(truth.values()):
        idx = [i for i, y in enumerate(labels) if FER2013_CLASSES[y] == cls]
        assert metrics["per_class"][cls]["recall"] == pytest.approx(float(np.mean(pred[idx] == labels[idx[0]])))
    # the reference crops give the reference softmax (fer + Keras), argmax exact
    ref = np.load(shared / "reference" / "mini_xception" / "astronaut_face0.npz")
    rows = (out / "predictions.csv").read_text().splitlines()
    astro = next(r for r in rows if "astronaut_face0" in r).split(",")
    assert astro[3] == "happy" and abs(float(astro[4]) - float(ref["softmax"].max())) < 1e-5
    assert metrics["skipped_folders"] == {"contempt": "no counterpart in the model's classes",
                                          "not_an_emotion": "unknown class name"}
    assert "skipped folder not_an_emotion: unknown class name" in printed
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert sum(map(sum, metrics["confusion_matrix"])) == len(paths)


def test_detect_faces_classifies_the_largest_face(shared, tmp_path, model):
    from extractors.blazeface import detect_faces, load_blazeface
    from zoo.face_preprocess import fer_face_input

    root = tmp_path / "pictures"
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    shutil.copy(shared / "data" / "images" / "astronaut.png", root / "happy")
    shutil.copy(shared / "data" / "images" / "dbface_group.jpg", root / "sad")
    out = tmp_path / "out"
    assert main(["mini-xception-fer2013", "--images", str(root), "--out", str(out), "--detect-faces"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    detector, x = load_blazeface("back"), []
    for p in (root / "happy" / "astronaut.png", root / "sad" / "dbface_group.jpg"):
        bgr = cv2.imread(str(p))
        d = detect_faces(detector, [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0]
        d = d[np.argmax((d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1]))]
        x1, y1, x2, y2 = (int(v) for v in d[:4])
        x.append(fer_face_input(bgr, (x1, y1, x2 - x1, y2 - y1))[0])
    pred = _softmax(model, x).argmax(1)
    expected = np.mean(pred == np.array([FER2013_CLASSES.index("happy"), FER2013_CLASSES.index("sad")]))
    assert metrics["mode"] == "detect-faces" and metrics["num_samples"] == 2
    assert metrics["accuracy"] == pytest.approx(float(expected))
    assert FER2013_CLASSES[pred[0]] == "happy"  # the astronaut smiles (reference: happy 0.9998)


def test_checkpoint_and_bad_folder_are_clear_errors(tmp_path, capsys):
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"model": "accm", "state_dict": {}, "config": {"label_names": ["a", "b"], "in_shape": [36, 64, 30],
                                                              "input": "videos/timeline"}}, ckpt)
    (tmp_path / "imgs" / "happy").mkdir(parents=True)
    assert main([str(ckpt), "--images", str(tmp_path / "imgs")]) == 2
    err = capsys.readouterr().err
    assert "videos/timeline" in err and "not single face images" in err
    assert main(["mini-xception-fer2013", "--images", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("detector, other, suits", [("blazeface-back", "blazeface-front", "close-up crops"),
                                                    ("blazeface-front", "blazeface-back", "small faces in whole scenes"),
                                                    ("dbface-small", "blazeface-back", "small faces in whole scenes")])
def test_left_out_hint_names_the_registry_counterpart(detector, other, suits):
    """The detector to try next comes from the extractor registry's entries (no names compared)."""
    from zoo.evaluate import left_out_summary

    msg = left_out_summary({f"i{k}.jpg": "no face found" for k in range(3)}, 4, detector)
    assert msg.startswith("3 of 4 images left out (3 no face found)")
    assert f"; {detector} found no face in 3 of them: try --detector {other} ({suits})" in msg
