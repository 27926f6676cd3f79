"""The command lines as people type them: ``python -m zoo.predict / zoo.train / zoo.evaluate /
pipelines.preview / pipelines.export / extractors.weights`` in a subprocess (issue 15).

Kept cheap: 4 extracted samples (``--limit 4``), 1-epoch runs, 2 sampled frames per video.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "samples" / "videos"
CLIP = VIDEOS / "group_event_smiling.mp4"
#: Every CLI of this test module (pipelines.extract and pipelines.corpora are the lead's).
CLIS = ("zoo.predict", "zoo.train", "zoo.evaluate", "pipelines.preview", "pipelines.export", "extractors.weights")
CHATTER = ("apitools not found", "compatible bson package", "Logging handler created")


def run(*args, cwd=REPO, timeout=600):
    """``python -m ...`` as typed; returns the CompletedProcess (text)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_error_line(proc) -> str:
    """The single ``error: ...`` line of a refused command (exit 2, no traceback)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 samples of the shipped card (3 train, 1 test), extracted as typed."""
    out = tmp_path_factory.mktemp("cli") / "shards"
    proc = run("pipelines.extract", "--dataset", "sample", "--out", out, "--limit", "4", "--no-progress",
               "--direct-mode", "in_memory", "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    """``zoo.train accm`` for 1 epoch with the default run folder (cwd = a fresh folder)."""
    cwd = tmp_path_factory.mktemp("train")
    proc = run("zoo.train", "accm", "--shards", shards, "--epochs", "1", "--no-progress", "--no-tensorboard",
               cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


# --------------------------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", CLIS + ("pipelines.export mmaction", "extractors.weights install"))
def test_help_has_no_doubled_defaults_and_every_flag_explained(module):
    import re

    proc = run(*module.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "(default: None)" not in " ".join(proc.stdout.split())
    section = proc.stdout.split("options:", 1)[1]
    blocks = re.split(r"\n(?=  -)", section.strip("\n"))  # one block per option (argparse wraps its help)
    assert blocks
    for block in blocks:
        name = block.split()[0].rstrip(",")
        if name in ("-h", "--help"):
            continue
        text = " ".join(block.split())
        assert text.count("(default") + text.count("default:") <= 2 and text.count("(default") <= 1, text
        words = re.sub(r"^-\S+( \S+)*?(?= [a-z(])", "", text).split()
        assert len(words) >= 2, f"{module} {name} has no help text: {text!r}"


# --------------------------------------------------------------------------------------------
# zoo.predict
# --------------------------------------------------------------------------------------------

def test_predict_five_videos_run_through_beam_with_per_video_results(tmp_path):
    videos = [VIDEOS / n for n in ("group_event_smiling.mp4", "hikers_walking.mp4", "tears_of_steel_excerpt.mp4")]
    for i in (1, 2):
        videos.append(tmp_path / f"copy{i}.mp4")
        shutil.copy(CLIP, videos[-1])
    out = tmp_path / "preds.jsonl"
    proc = run("zoo.predict", "mini-xception-fer2013", *videos, "--every", "30", "--max-frames", "2",
               "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Beam DirectRunner" in proc.stdout and "pickle" not in proc.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    heads = [r for r in lines if r["type"] == "video"]
    assert [h["video"] for h in heads] == [str(v) for v in videos]
    assert all(h["error"] is None and h["sampled_frames"] == 2 and h["decoder"] == "pyav" for h in heads)
    for v in videos:
        assert any(r["type"] == "emotion" and r["video"] == str(v) for r in lines), v
        assert any(r["type"] == "emotion_summary" and r["video"] == str(v) for r in lines), v
    # the copies of one clip give the same records as the clip
    strip = lambda rs, v: [{k: x for k, x in r.items() if k != "video"} for r in rs if r.get("video") == str(v)
                           and r["type"] == "emotion"]
    assert strip(lines, videos[3]) == strip(lines, videos[0]) == strip(lines, videos[4])
    for chatter in CHATTER:
        assert chatter not in proc.stderr + proc.stdout


def test_predict_overlay_and_sheet_in_one_run_overlay_is_h264(tmp_path):
    import av

    overlay, sheet = tmp_path / "o.mp4", tmp_path / "s.png"
    proc = run("zoo.predict", "mini-xception-fer2013", CLIP, "--every", "30", "--overlay", overlay,
               "--sheet", sheet, "--decoder", "opencv", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with av.open(str(overlay)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.frames == 90
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[:2] == (360, 3 * 480)  # frames 0, 30, 60: every sampled frame
    head = json.loads(proc.stdout.splitlines()[0])
    assert head["decoder"] == "opencv" and head["overlay"] == str(overlay) and head["sheet"] == str(sheet)


def test_predict_refuses_bad_out_before_reading_any_video(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "preds.jsonl", "/proc/affectzoo/preds.jsonl"):
        # the video does not exist: a check after processing would report it instead
        line = one_error_line(run("zoo.predict", "mini-xception-fer2013", tmp_path / "none.mp4", "--out", out))
        assert line.startswith(f"error: --out {out}:")
    line = one_error_line(run("zoo.predict", "mini-xception-fer2013", CLIP, "--sheet", tmp_path))
    assert "is a folder" in line


def test_predict_unknown_model_and_zoo_model_name():
    line = one_error_line(run("zoo.predict", "mini-xception", str(CLIP)))
    assert line == "error: unknown model 'mini-xception'; did you mean 'mini-xception-fer2013'?"
    line = one_error_line(run("zoo.predict", "accm", str(CLIP)))
    assert "zoo.train model" in line and "python -m zoo.train accm" in line


def test_quiet_by_default_verbose_shows_library_logs(tmp_path):
    args = ["zoo.predict", "mini-xception-fer2013", CLIP, "--every", "45", "--max-frames", "1", "--beam",
            "--out", tmp_path / "p.jsonl", "--no-progress"]
    quiet = run(*args)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not any(c in quiet.stderr for c in CHATTER), quiet.stderr
    loud = run(*args, "--verbose")
    assert loud.returncode == 0 and "INFO:" in loud.stderr


# --------------------------------------------------------------------------------------------
# --device cuda without a GPU
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["zoo.train", "accm", "--device", "cuda"],
    ["zoo.evaluate", "mini-xception-fer2013", "--images", ".", "--device", "cuda"],
    ["zoo.predict", "mini-xception-fer2013", str(CLIP), "--device", "cuda"],
])
def test_device_cuda_without_gpu_is_one_line(argv):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert one_error_line(run(*argv)) == "error: --device cuda: torch sees no CUDA device"


# --------------------------------------------------------------------------------------------
# zoo.train
# --------------------------------------------------------------------------------------------

def test_train_writes_a_new_timestamped_run_with_latest_link(trained, shards):
    cwd, proc = trained
    latest = cwd / "runs" / "accm" / "latest"
    assert latest.is_symlink() and (latest / "checkpoint.pt").is_file() and (latest / "curves.png").is_file()
    assert f"outputs in runs/accm/{os.readlink(latest)}/" in proc.stdout
    first = os.readlink(latest)
    again = run("zoo.train", "accm", "--shards", shards, "--epochs", "1", "--no-progress", "--no-tensorboard", cwd=cwd)
    assert again.returncode == 0, again.stderr[-2000:]
    assert os.readlink(latest) != first and (cwd / "runs" / "accm" / first / "checkpoint.pt").is_file()


def test_train_refuses_non_empty_out_without_overwrite(trained, shards):
    cwd, _ = trained
    out = cwd / "runs" / "accm" / "latest"
    before = (out / "metrics.json").read_bytes()
    line = one_error_line(run("zoo.train", "accm", "--shards", shards, "--epochs", "1", "--out", out, cwd=cwd))
    assert "not empty" in line and "--overwrite" in line
    assert (out / "metrics.json").read_bytes() == before
    ok = run("zoo.train", "accm", "--shards", shards, "--epochs", "1", "--out", out, "--overwrite", "--no-progress",
             "--no-tensorboard", cwd=cwd)
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_train_user_errors_are_one_line(shards, tmp_path):
    line = one_error_line(run("zoo.train", "acm", "--shards", shards, cwd=tmp_path))
    assert line == "error: unknown model 'acm'; did you mean 'accm'?"
    line = one_error_line(run("zoo.train", "accm", "--shards", tmp_path / "nowhere", cwd=tmp_path))
    assert "no manifest.json" in line
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "run", "/proc/affectzoo-run"):
        assert one_error_line(run("zoo.train", "accm", "--shards", shards, "--out", out)).startswith(f"error: --out {out}")
    line = one_error_line(run("zoo.train", "accm", "--shards", shards, "--eval-split", "validation",
                              "--out", tmp_path / "r", "--no-progress"))
    assert "no rows of the eval split 'validation'" in line
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_nan_eval_metric_ranks_below_every_number():
    from zoo.train import better

    nan = float("nan")
    assert better(0.0, {"metric": nan}) and better(-1.0, {"metric": nan})
    assert not better(nan, {"metric": 0.0}) and not better(nan, {"metric": nan})
    assert better(0.5, {"metric": 0.4}) and not better(0.4, {"metric": 0.4}) and better(nan, None)


def test_train_list_and_curves(trained):
    cwd, _ = trained
    proc = run("zoo.train", "--list")
    assert proc.returncode == 0 and "accm" in proc.stdout and "sistcm" in proc.stdout
    history = (cwd / "runs" / "accm" / "latest" / "history.csv").read_text().splitlines()
    assert history[0].split(",")[:3] == ["epoch", "train_loss", "eval_loss"]


# --------------------------------------------------------------------------------------------
# zoo.evaluate
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """48x48 grey face crops (as FER-style sets keep them) of the clip's faces in happy/, and a
    face-less image in sad/."""
    from extractors.blazeface import detect_faces, load_blazeface
    from pipelines.decoders import read_frames

    root = tmp_path_factory.mktemp("crops") / "faces"
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    frames = read_frames(str(CLIP), [0, 30, 60], "pyav")
    n = 0
    for frame, dets in zip(frames, detect_faces(load_blazeface("back"), list(frames))):
        for d in dets:
            x1, y1, x2, y2 = (int(v) for v in d[:4])
            crop = cv2.cvtColor(frame[max(0, y1):y2, max(0, x1):x2], cv2.COLOR_RGB2GRAY)
            cv2.imwrite(str(root / "happy" / f"{n}.png"), cv2.resize(crop, (48, 48)))
            n += 1
    cv2.imwrite(str(root / "sad" / "wall.png"), np.full((48, 48), 128, np.uint8))
    assert n >= 5
    return root


def test_evaluate_crops_and_n_a_for_classes_without_images(crops, tmp_path):
    proc = run("zoo.evaluate", "mini-xception-fer2013", "--images", crops, "--out", tmp_path / "e", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["num_samples"] == len(list(crops.rglob("*.png")))
    assert metrics["per_class"]["angry"]["recall"] is None  # no angry folder: undefined, not 0
    assert "recall n/a" not in proc.stdout  # both folders have scored images


def test_evaluate_detect_faces_on_small_crops_warns_with_reasons(crops, tmp_path):
    proc = run("zoo.evaluate", "mini-xception-fer2013", "--images", crops, "--detect-faces", "--out",
               tmp_path / "e", "--torch-threads", "1")
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text()) if (tmp_path / "e" / "metrics.json").exists() else None
    total = len(list(crops.rglob("*.png")))
    if metrics is not None and len(metrics["left_out"]) <= total / 2:
        pytest.skip("BlazeFace found most faces on these crops: nothing to warn about")
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    assert "no face found" in proc.stderr and "--detector blazeface-front" in proc.stderr
    assert f"of {total} images left out" in proc.stderr
    if metrics is not None:
        assert "recall n/a (0 images)" in proc.stdout or all(
            metrics["per_class"][c]["support"] for c in ("happy", "sad"))


def test_evaluate_face_model_on_shards_and_unknown_model(shards, trained, tmp_path):
    line = one_error_line(run("zoo.evaluate", "mini-xception-fer2013", "--shards", shards))
    assert "face-image model" in line and "--images" in line
    line = one_error_line(run("zoo.evaluate", "mini-xception-fer", "--images", tmp_path))
    assert line == "error: unknown model 'mini-xception-fer'; did you mean 'mini-xception-fer2013'?"
    ckpt = trained[0] / "runs" / "accm" / "latest" / "checkpoint.pt"
    line = one_error_line(run("zoo.evaluate", ckpt, "--shards", shards, "--out", "/proc/affectzoo-eval"))
    assert line.startswith("error: --out /proc/affectzoo-eval")
    ok = run("zoo.evaluate", ckpt, "--shards", shards, "--out", tmp_path / "ev")
    assert ok.returncode == 0 and (tmp_path / "ev" / "metrics.json").is_file(), ok.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# predict on a checkpoint: the pipeline's window and timeline
# --------------------------------------------------------------------------------------------

def test_predict_timeline_of_a_window_equals_the_stored_one(shards, trained):
    import pyarrow.parquet as pq

    from zoo.predict.checkpoint import CheckpointPredictor

    ckpt = trained[0] / "runs" / "accm" / "latest" / "checkpoint.pt"
    predictor = CheckpointPredictor(ckpt, shards=str(shards))
    rows = [r for f in sorted(shards.glob("videos-*.parquet"))
            for r in pq.read_table(f, columns=["uri", "start_s", "frame_indices", "timeline"]).to_pylist()]
    assert rows
    for row in rows[:2]:
        record, win = predictor.window_record(row["uri"], row["start_s"])
        assert np.array_equal(win.frame_indices, np.asarray(row["frame_indices"]))
        stored = np.asarray(row["timeline"], np.float32)  # fixed_shape_tensor rows come back flat
        assert record.timeline.size == stored.size > 0
        stored = stored.reshape(record.timeline.shape)
        np.testing.assert_allclose(record.timeline, stored, atol=1e-4)


def test_predict_checkpoint_through_cli(trained, tmp_path):
    ckpt = trained[0] / "runs" / "accm" / "latest" / "checkpoint.pt"
    proc = run("zoo.predict", ckpt, VIDEOS / "tears_of_steel_excerpt.mp4", "--out", tmp_path / "p.jsonl",
               "--no-progress", cwd=trained[0])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    video = [r for r in lines if r["type"] == "video_prediction"]
    assert len(video) == 1 and math.isclose(sum(video[0]["scores"].values()), 1, abs_tol=1e-4)


# --------------------------------------------------------------------------------------------
# pipelines.export, pipelines.preview, extractors.weights
# --------------------------------------------------------------------------------------------

def test_export_takes_out_like_every_cli(shards, tmp_path):
    import pickle

    out = tmp_path / "ann" / "mm.pkl"
    proc = run("pipelines.export", "mmaction", shards, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out, "rb") as fh:
        assert len(pickle.load(fh)["annotations"]) == 4
    assert f"wrote {out}: 4 annotations" in proc.stdout
    line = one_error_line(run("pipelines.export", "mmaction", shards, "--out", "/proc/affectzoo/mm.pkl"))
    assert line.startswith("error: --out /proc/affectzoo/mm.pkl")


def test_preview_names_the_pose_model_of_the_stored_skeleton(shards, tmp_path):
    from pipelines import preview as P

    assert P.pose_source(P.resolve_shard(shards)[0]) == "from PoseNet"
    proc = run("pipelines.preview", shards, "--out", tmp_path / "p.png", "--rows", "1")
    assert proc.returncode == 0 and cv2.imread(str(tmp_path / "p.png")) is not None, proc.stderr[-2000:]


def test_weights_list_shows_licence_and_source_columns():
    proc = run("extractors.weights", "list")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["name", "file", "licence", "copy", "found", "source"]
    mini = next(r for r in rows if r.startswith("mini-xception-fer2013"))
    assert " MIT " in mini and "https://" in mini and ("ships" in mini)
