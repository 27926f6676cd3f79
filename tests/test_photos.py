"""Photos in ``python -m zoo.predict`` (issue 21 item 3), run as typed: every face of every image with
the image's name, EXIF orientation and odd modes through the one image loader, folders and globs,
``--overlay`` (a PNG per photo) and ``--sheet``, folders of numbered frames as a video, and one-line
refusals that name the file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "samples" / "images" / "astronaut.png"
SHARED = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared")) / "data"
GROUP = SHARED / "images" / "dbface_group.jpg"
FER = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def predict(*args, cwd: Path, **env_vars: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """``python -m zoo.predict mini-xception-fer2013 ARGS`` and its JSON lines (stdout)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env_vars}
    run = subprocess.run([sys.executable, "-m", "zoo.predict", "mini-xception-fer2013", *map(str, args),
                          "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return run, [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def by_image(lines: list[dict]) -> dict[str, dict]:
    """``{image file name: {"head": image line, "faces": [emotion lines]}}``."""
    out: dict[str, dict] = {}
    for line in lines:
        if line["type"] == "image":
            out[Path(line["image"]).name] = {"head": line, "faces": []}
        elif line["type"] == "emotion" and "image" in line:
            out[Path(line["image"]).name]["faces"].append(line)
    return out


def centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_group_photo_every_face_with_overlay_png_and_sheet(tmp_path):
    if not GROUP.is_file():
        pytest.skip(f"{GROUP} is absent (the shared 6-face group photo)")
    reference = json.loads((SHARED / "reference" / "dbface_small.json").read_text())["images/dbface_group.jpg"]
    run, lines = predict(GROUP, "--overlay", "faces.png", "--sheet", "sheet.png", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [line["type"] for line in lines] == ["image"] + ["emotion"] * 6
    head, faces = lines[0], lines[1:]
    assert head["image"] == str(GROUP) and (head["width"], head["height"], head["faces"]) == (1024, 740, 6)
    assert [f["id"] for f in faces] == list(range(6)) and all(f["image"] == str(GROUP) for f in faces)
    assert all(f["class"] in FER and abs(sum(f["scores"].values()) - 1) < 1e-4 for f in faces)
    xs = [f["coordinates"][0] for f in faces]
    assert xs == sorted(xs)  # ids left to right
    matched = set()
    for f in faces:  # each box centre inside a distinct face of the reference (DBFace) boxes
        c = centre(f["coordinates"])
        inside = [i for i, d in enumerate(reference["detections"])
                  if d["box_xyxy"][0] <= c[0] <= d["box_xyxy"][2] and d["box_xyxy"][1] <= c[1] <= d["box_xyxy"][3]]
        assert len(inside) == 1, (f, inside)
        matched.add(inside[0])
    assert len(matched) == 6
    overlay = np.asarray(Image.open(tmp_path / "faces.png").convert("RGB"))
    photo = np.asarray(Image.open(GROUP).convert("RGB"))
    assert overlay.shape == photo.shape
    x1, y1, x2, y2 = (int(round(v)) for v in faces[0]["coordinates"])
    assert (overlay[(y1 + y2) // 2, x1] != photo[(y1 + y2) // 2, x1]).any()  # the box is drawn...
    assert np.array_equal(overlay[-40:, -40:], photo[-40:, -40:])  # ...and nothing far from any face
    assert head["overlay"] == "faces.png" and head["sheet"] == "sheet.png"
    assert Image.open(tmp_path / "sheet.png").size[0] >= 320
    assert f"{GROUP}: 6 faces" in run.stderr


def test_group_photo_with_dbface_small_gives_its_reference_boxes(tmp_path):
    weights = SHARED / "weights"
    if not (GROUP.is_file() and (weights / "dbfaceSmallH.pth").is_file()):
        pytest.skip(f"{GROUP} or the tests-only DBFace weights in {weights} are absent")
    reference = json.loads((SHARED / "reference" / "dbface_small.json").read_text())["images/dbface_group.jpg"]
    run, lines = predict(GROUP, "--detector", "dbface-small", cwd=tmp_path, AFFECTZOO_WEIGHTS=str(weights))
    assert run.returncode == 0, run.stderr
    boxes = sorted(line["coordinates"] for line in lines if line["type"] == "emotion")
    expected = sorted(d["box_xyxy"] for d in reference["detections"])
    assert len(boxes) == len(expected) == 6
    np.testing.assert_allclose(boxes, expected, atol=1.0)  # the detector's own golden boxes, 0.1 px rounding
    assert "detector dbface-small" in run.stderr and "decoder" not in run.stderr  # no video, no decoder


def _portrait() -> np.ndarray:
    """The shipped astronaut, 384 wide x 512 high (not square, so a rotation shows in the shape)."""
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:, 64:448].copy()


def _variants(folder: Path) -> np.ndarray:
    """The same photo as an RGB PNG and JPEG, a phone JPEG stored sideways with EXIF orientation 6,
    RGBA over noise, grey, 16-bit grey, palette and CMYK JPEG."""
    folder.mkdir()
    rgb = _portrait()
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb).save(folder / "rgb.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(folder / "phone.jpg", quality=95, exif=exif.tobytes())
    rgba = np.dstack([np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8),
                      np.zeros(rgb.shape[:2], np.uint8)])
    rgba[:320, 40:344, :3], rgba[:320, 40:344, 3] = rgb[:320, 40:344], 255  # opaque head, transparent noise
    Image.fromarray(rgba, "RGBA").save(folder / "cutout.png")
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(grey).save(folder / "grey.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")  # loads back to `grey` exactly
    Image.fromarray(rgb).quantize(256).save(folder / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    return rgb


def test_orientation_and_modes_give_the_faces_of_the_plain_photo(tmp_path):
    _variants(tmp_path / "photos")
    run, lines = predict("photos", "--overlay", "ov.png", cwd=tmp_path)  # a folder of photos
    assert run.returncode == 0, run.stderr
    got = by_image(lines)
    names = ["cmyk.jpg", "cutout.png", "grey.png", "grey16.png", "palette.png", "phone.jpg", "rgb.jpg", "rgb.png"]
    assert sorted(got) == names
    modes = {n: got[n]["head"]["mode"] for n in names}
    assert modes["cmyk.jpg"] == "CMYK" and modes["cutout.png"] == "RGBA" and modes["palette.png"] == "P"
    assert modes["grey16.png"].startswith("I") and got["phone.jpg"]["head"]["orientation"] == 6
    for n in names:
        assert len(got[n]["faces"]) == 1, (n, got[n])
        assert (got[n]["head"]["width"], got[n]["head"]["height"]) == (384, 512), n  # as displayed
    box = {n: np.array(got[n]["faces"][0]["coordinates"]) for n in names}
    assert 100 < centre(box["rgb.png"])[0] < 200 and 100 < centre(box["rgb.png"])[1] < 150  # the face
    for n, tol in (("rgb.jpg", 3), ("phone.jpg", 4), ("cmyk.jpg", 4), ("palette.png", 6), ("cutout.png", 6),
                   ("grey.png", 8)):
        assert np.abs(box[n] - box["rgb.png"]).max() <= tol, (n, box[n], box["rgb.png"])
    assert np.array_equal(box["grey16.png"], box["grey.png"])  # 16-bit scaled, not clipped to white
    assert got["grey16.png"]["faces"][0]["scores"] == got["grey.png"]["faces"][0]["scores"]
    cutout = np.asarray(Image.open(tmp_path / "ov.cutout.png").convert("RGB"))
    assert (cutout[-100:, :] == 255).all()  # transparent noise composited over white
    phone = np.asarray(Image.open(tmp_path / "ov.phone.png").convert("RGB"))
    assert phone.shape == (512, 384, 3)


def test_globs_and_refusals_name_the_file(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    small = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[::2, ::2]
    for name in ("b10.png", "b2.png"):
        Image.fromarray(small).save(shots / name)
    (shots / "notes.jpg").write_text("not a photo\n")
    (shots / "empty").mkdir()
    run, lines = predict("shots/b*.png", "shots/notes.jpg", "shots/none*.png", "shots/empty", cwd=tmp_path)
    assert run.returncode == 0, run.stderr  # not every input failed
    heads = [line for line in lines if line["type"] in ("image", "video")]
    assert [Path(h.get("image") or h["video"]).name for h in heads] == ["b2.png", "b10.png", "notes.jpg",
                                                                        "none*.png", "empty"]
    assert [h["faces"] for h in heads[:2]] == [1, 1]
    errors = [h["error"] for h in heads[2:]]
    assert errors[0].startswith("shots/notes.jpg: not an image") and "found text" in errors[0]
    assert errors[1] == "shots/none*.png: no file matches the pattern; check the folder and suffix"
    assert errors[2].startswith("shots/empty: no image files in the folder (found no files)")
    assert "Traceback" not in run.stderr and "3 of 5 inputs failed" in run.stderr
    run, _ = predict("shots/notes.jpg", cwd=tmp_path)
    assert run.returncode == 1 and "shots/notes.jpg: not an image" in run.stderr


def test_folder_of_numbered_frames_as_a_video(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[::4, ::4]  # 128x128
    for i in range(1, 13):  # frame_1..frame_9 show the face, frame_10..frame_12 are black
        Image.fromarray(face if i <= 9 else np.zeros_like(face)).save(frames / f"frame_{i}.png")
    run, lines = predict("frames", "--frames-as-video", "--fps", "10", "--every", "2", "--sheet", "s.png",
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    head = lines[0]
    assert (head["type"], head["video"], head["num_frames"], head["fps"]) == ("video", "frames", 12, 10.0)
    emotions = [line for line in lines if line["type"] == "emotion"]
    assert [e["frame"] for e in emotions] == [0, 2, 4, 6, 8]  # natural order: frame_10.. are 9-11
    assert [e["seconds"] for e in emotions] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert {e["id"] for e in emotions} == {0}  # one track
    summary = [line for line in lines if line["type"] == "emotion_summary"]
    assert len(summary) == 1 and summary[0]["frames"] == 5 and summary[0]["person"] == 0  # one person
    assert (head["faces"], head["tracks"], head["persons"]) == (5, 1, 1)
    assert head["sheet"] == "s.png" and (tmp_path / "s.png").is_file()
    run, _ = predict("frames", "--frames-as-video", cwd=tmp_path)
    assert run.returncode == 2 and "--frames-as-video needs --fps" in run.stderr
