"""``python -m zoo.predict`` on the shipped clips, a face-less video, corrupt / missing videos
and a zoo checkpoint."""
from __future__ import annotations

import json
from collections import defaultdict

import cv2
import numpy as np
import pytest
import torch

from zoo.predict import main

CLIP = "samples/videos/group_event_smiling.mp4"
EVERY, MAX_FRAMES = 5, 5  # frames 0-20: one shot (the camera jumps at frame ~25)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_video(path, frames_bgr, fps):
    h, w = frames_bgr[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames_bgr:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def face_run(repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    out, sheet = tmp / "preds.jsonl", tmp / "sheet.png"
    code = main(["mini-xception-fer2013", str(repo / CLIP), "--every", str(EVERY), "--max-frames", str(MAX_FRAMES),
                 "--out", str(out), "--sheet", str(sheet), "--no-progress"])
    return {"code": code, "lines": _read(out), "sheet": sheet}


@pytest.fixture(scope="module")
def clip_frames(repo):
    decord = pytest.importorskip("decord")
    vr = decord.VideoReader(str(repo / CLIP))
    return vr.get_batch(list(range(0, EVERY * MAX_FRAMES, EVERY))).asnumpy()


def test_one_line_per_detected_face_per_sampled_frame(face_run, clip_frames):
    from extractors.blazeface import detect_faces, load_blazeface

    assert face_run["code"] == 0
    head = face_run["lines"][0]
    assert head["type"] == "video" and head["detector"] == "blazeface-back" and head["error"] is None
    assert head["sampled_frames"] == MAX_FRAMES and (head["width"], head["height"]) == (640, 480)
    emotions = [r for r in face_run["lines"] if r["type"] == "emotion"]
    dets = detect_faces(load_blazeface("back"), list(clip_frames))
    assert sum(map(len, dets)) >= MAX_FRAMES  # the clip shows faces in every frame
    for i, d in enumerate(dets):
        rows = sorted((r for r in emotions if r["frame"] == i * EVERY), key=lambda r: r["coordinates"][0])
        assert len(rows) == len(d)
        expected = sorted(np.clip(d[:, :4], 0, [640, 480, 640, 480]).tolist(), key=lambda b: b[0])
        np.testing.assert_allclose([r["coordinates"] for r in rows], expected, atol=0.051)
        assert all(abs(r["seconds"] - r["frame"] / 29.97003) < 1e-3 for r in rows)
        assert len({r["id"] for r in rows}) == len(rows)


def test_boxes_inside_frame_and_scores_are_probabilities(face_run):
    for r in (r for r in face_run["lines"] if r["type"] == "emotion"):
        x1, y1, x2, y2 = r["coordinates"]
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        assert set(r["scores"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        assert abs(sum(r["scores"].values()) - 1) < 1e-5
        assert r["class"] == max(r["scores"], key=r["scores"].get)


def test_scores_equal_mini_xception_on_fer_crop(face_run, clip_frames):
    """Recompute one face's scores: fer's crop of the BGR frame around the int-truncated box."""
    from extractors.blazeface import detect_faces, load_blazeface
    from zoo.face_preprocess import fer_face_input
    from zoo.models.mini_xception import FER2013_CLASSES, load_mini_xception

    frame = clip_frames[0]
    det = detect_faces(load_blazeface("back"), [frame])[0]
    det = det[np.argmax(det[:, 2] - det[:, 0])]
    x1, y1, x2, y2 = (int(v) for v in det[:4])
    x, _ = fer_face_input(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (x1, y1, x2 - x1, y2 - y1))
    with torch.no_grad():
        probs = torch.softmax(load_mini_xception()(torch.from_numpy(x)[None, None]), 1)[0].numpy()
    rows = [r for r in face_run["lines"] if r["type"] == "emotion" and r["frame"] == 0]
    row = min(rows, key=lambda r: abs(r["coordinates"][0] - max(det[0], 0)))
    np.testing.assert_allclose([row["scores"][c] for c in FER2013_CLASSES], probs, atol=2e-6)


def test_summary_agrees_with_lines(face_run):
    emotions = [r for r in face_run["lines"] if r["type"] == "emotion"]
    summary = [r for r in face_run["lines"] if r["type"] == "emotion_summary"]
    by_person = defaultdict(list)
    for r in emotions:
        by_person[r["person"]].append(r)
    assert sorted(by_person) == [s["person"] for s in summary]  # one summary per person (issue 20)
    head = face_run["lines"][0]
    assert head["persons"] == len(summary) and head["faces"] == len(emotions)
    assert head["tracks"] == len({r["id"] for r in emotions}) >= len(summary)
    for s in summary:
        rows = by_person[s["person"]]
        assert s["tracks"] == sorted({r["id"] for r in rows})
        assert s["frames"] == len(rows)
        assert (s["first_frame"], s["last_frame"]) == (rows[0]["frame"], rows[-1]["frame"])
        mean = {c: np.mean([r["scores"][c] for r in rows]) for c in s["scores"]}
        np.testing.assert_allclose(list(s["scores"].values()), list(mean.values()), atol=1e-6)
        assert s["class"] == max(mean, key=mean.get)
        assert sum(s["votes"].values()) == len(rows)
    # the frontal woman on the left is tracked through all sampled frames
    assert max(s["frames"] for s in summary) == MAX_FRAMES


def test_contact_sheet_is_written(face_run):
    img = cv2.imread(str(face_run["sheet"]))
    # 5 sampled frames of a 640x480 clip: 480 px tiles, 4 per row, every frame shown
    assert img is not None and img.shape[:2] == (2 * 360, 4 * 480)
    assert face_run["lines"][0]["sheet"] == str(face_run["sheet"])
    assert "sheet_left_out" not in face_run["lines"][0]
    assert img[360:, 480:].max() == 0 and img[360:, :480].max() > 0  # tile 5 drawn, the rest black


def test_contact_sheet_of_1080p_sized_by_content_and_names_left_out_frames(tmp_path):
    from zoo.overlay import sheet_frames, write_contact_sheet

    frames = [np.full((1080, 1920, 3), 30 * i, np.uint8) for i in range(8)]
    video = _write_video(tmp_path / "hd.mp4", frames, 10.0)
    anns = {i: [{"box": [800, 300, 1100, 700], "id": 0, "label": f"0 happy 0.9{i}"}] for i in range(8)}
    shown, left = sheet_frames(anns, max_tiles=6)
    assert len(shown) == 6 and len(left) == 2 and sorted(shown + left) == list(range(8))
    img = cv2.imread(str(write_contact_sheet(video, anns, tmp_path / "s.png", max_tiles=6)))
    # tiles 480 px wide (1920 / 4): the label drawn at tile scale is >= 10 px tall, not 5 px
    assert img.shape[1] == 4 * 480 and img.shape[0] == 2 * 270 + 28
    box_rows = np.flatnonzero((np.abs(img[:270, 200:300].astype(int) - img[5:6, 5:6].astype(int)).sum(2) > 60).any(1))
    assert box_rows.size >= 10
    assert write_contact_sheet(video, anns, tmp_path / "all.png").is_file()
    assert cv2.imread(str(tmp_path / "all.png")).shape[0] == 2 * 270  # all 8 shown, no footer


def test_overlay_has_every_frame_and_drawn_boxes(repo, tmp_path):
    import decord

    short = tmp_path / "short.mp4"
    src = decord.VideoReader(str(repo / CLIP)).get_batch(list(range(12))).asnumpy()
    _write_video(short, [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in src], 29.97)
    overlay, out = tmp_path / "overlay.mp4", tmp_path / "p.jsonl"
    assert main(["mini-xception-fer2013", str(short), "--every", "6", "--overlay", str(overlay),
                 "--out", str(out), "--no-progress"]) == 0
    vr = decord.VideoReader(str(overlay))
    assert len(vr) == 12 and vr[0].shape == (480, 640, 3)
    first = [r for r in _read(out) if r["type"] == "emotion" and r["frame"] == 0][0]
    x1, y1, x2, y2 = (int(v) for v in first["coordinates"])
    drawn = vr[3].asnumpy().astype(int)  # held from frame 0
    plain = decord.VideoReader(str(short))[3].asnumpy().astype(int)
    edge = np.abs(drawn[y1:y2 + 1, x1:x1 + 2] - plain[y1:y2 + 1, x1:x1 + 2]).mean()
    inside = np.abs(drawn[y1 + 10:y2 - 10, x1 + 10:x2 - 10] - plain[y1 + 10:y2 - 10, x1 + 10:x2 - 10]).mean()
    assert edge > 20 and edge > 3 * inside  # the box line is drawn, the face inside is not painted over


def test_video_without_face_gives_empty_result_and_message(tmp_path, capsys):
    plain = _write_video(tmp_path / "plain.mp4", [np.full((120, 160, 3), (40, 120, 200), np.uint8)] * 10, 10.0)
    out = tmp_path / "p.jsonl"
    assert main(["mini-xception-fer2013", str(plain), "--out", str(out), "--no-progress"]) == 0
    lines = _read(out)
    assert len(lines) == 1 and lines[0]["error"] is None and lines[0]["faces"] == 0
    assert "no face found" in lines[0]["message"] and str(plain) in lines[0]["message"]
    assert "no face found" in capsys.readouterr().out


def test_corrupt_and_missing_videos_are_named_others_predicted(repo, tmp_path, capsys):
    """Through the Beam pipeline (--beam): one good clip, a truncated mp4 and a missing file."""
    data = (repo / CLIP).read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "p.jsonl"
    args = ["mini-xception-fer2013", str(bad), str(repo / CLIP), str(missing), "--every", "30",
            "--max-frames", "2", "--out", str(out), "--no-progress"]
    assert main(args + ["--beam"]) == 0
    lines = _read(out)
    heads = [r for r in lines if r["type"] == "video"]
    assert [h["video"] for h in heads] == [str(bad), str(repo / CLIP), str(missing)]
    # the cut-off file: the frames that decode are predicted and the note says what is missing
    # (frames are what FFmpeg shows; the header's count is only a hint)
    assert heads[0]["error"] is None and str(bad) in heads[0]["message"] and "truncated" in heads[0]["message"]
    assert "header declares 90 frames" in heads[0]["message"]
    assert str(missing) in heads[2]["error"] and "no such file" in heads[2]["error"]
    assert heads[1]["error"] is None and heads[1]["message"] is None
    assert {r["video"] for r in lines if r["type"] == "emotion"} <= {str(bad), str(repo / CLIP)}
    assert str(repo / CLIP) in {r["video"] for r in lines if r["type"] == "emotion"}
    assert "1 of 3 videos failed" in capsys.readouterr().out
    # exit 1 with --fail-on-error, and when every video failed (in-process path)
    assert main(args + ["--fail-on-error"]) == 1
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert main(["mini-xception-fer2013", str(empty), str(missing), "--out", str(out), "--no-progress"]) == 1


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    assert main(["no-such-model", str(tmp_path / "x.mp4"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'no-such-model'") and "Traceback" not in err


@pytest.mark.parametrize("model", ["accm", "caer-deepresidual"])
def test_checkpoint_gives_video_probabilities(model, repo, extracted, tmp_path):
    import decord

    from zoo.train import main as train_main

    run = tmp_path / "run"
    assert train_main([model, "--shards", str(extracted["out"]), "--epochs", "1", "--out", str(run),
                       "--no-progress", "--no-tensorboard"]) == 0
    clip = tmp_path / "two_seconds.mp4"  # 2 s of a shipped clip: one window of the card
    src = decord.VideoReader(str(repo / CLIP)).get_batch(list(range(60))).asnumpy()
    _write_video(clip, [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in src], 29.97003)
    out = tmp_path / "p.jsonl"
    assert main([str(run / "checkpoint.pt"), str(clip), "--out", str(out), "--no-progress"]) == 0
    lines = _read(out)
    names = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["config"]["label_names"]
    video = [r for r in lines if r["type"] == "video_prediction"]
    windows = [r for r in lines if r["type"] == "window"]
    assert len(video) == 1 and len(windows) == 1 and lines[0]["error"] is None
    assert list(video[0]["scores"]) == names
    assert abs(sum(video[0]["scores"].values()) - 1) < 1e-5
    assert video[0]["scores"] == windows[0]["scores"] and video[0]["class"] in names
