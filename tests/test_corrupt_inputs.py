"""A corrupt-input suite generated here: every broken file and card entry is reported in
``errors.jsonl`` with its path and reason, the run ends with a summary (exit 0, or 1 only with
``--fail-on-error``), and every good sample (real shipped clips) lands. Also: a decoder process
that dies loses only its file, and ``--retry-failed`` reruns only the failed samples into a
retry folder without touching the done shards.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import wavfile

from conformance_files import encode, still_image
from pipelines.decode import DecodeError
from pipelines.isolated_decoder import DecoderCrashed, IsolatedDecoder
from test_runners import run_extract, shard_rows

CLIPS = Path(__file__).resolve().parents[1] / "samples" / "videos"
GOOD = {"hikers_walking.mp4": 0.0, "tears_of_steel_excerpt.mp4": 3.0, "tears_as_avi.mp4": 0.0}
#: broken file -> words its dead-letter message must contain
BAD = {"empty.mp4": "empty (0 bytes)", "truncated.mp4": "truncated file", "bitflip.mp4": "only 18 can be decoded",
       "not_a_video.mp4": "cannot open video", "audio_only.mp4": "video stream",
       "huge_frames.avi": "exceeds the decoder limit", "a_folder.mp4": "is a directory",
       "missing.mp4": "no such file", "photo.mp4": "a still image, not a video",
       "empty_video.mp4": "its video stream is empty"}


def make_corpus(root: Path) -> None:
    """Good clips (two shipped ones, and an MJPEG AVI under an .mp4 name) and the broken files."""
    root.mkdir(parents=True)
    for name in ("hikers_walking.mp4", "tears_of_steel_excerpt.mp4"):
        shutil.copyfile(CLIPS / name, root / name)
    group = (CLIPS / "group_event_smiling.mp4").read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "truncated.mp4").write_bytes(group[: len(group) // 3])  # header intact, 2/3 of the frames gone
    flipped, rng = bytearray(group), random.Random(3)
    for i in rng.sample(range(len(flipped)), 2000):
        flipped[i] ^= 0xFF
    (root / "bitflip.mp4").write_bytes(bytes(flipped))
    (root / "not_a_video.mp4").write_text("sample_id,label\n" * 100)  # a CSV under a video name
    tone = (np.sin(np.arange(32000) / 5.0) * 3000).astype(np.int16)
    wavfile.write(str(root / "audio_only.mp4"), 16000, tone)  # a WAV container: audio stream only
    writer = cv2.VideoWriter(str(root / "huge_frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (8192, 4608))
    for _ in range(3):
        writer.write(np.zeros((4608, 8192, 3), np.uint8))  # real 37.7-megapixel frames
    writer.release()
    (root / "a_folder.mp4").mkdir()
    still_image(root / "photo.png").rename(root / "photo.mp4")  # a PNG picture under a video name
    encode(root / "empty_video.mkv", "libx264", n=0, audio_s=0.5).rename(root / "empty_video.mp4")  # no frame
    cap = cv2.VideoCapture(str(CLIPS / "tears_of_steel_excerpt.mp4"))
    ok, frame = cap.read()
    # written under .avi (OpenCV picks the container from the name), then renamed
    writer = cv2.VideoWriter(str(root / "tears_as_avi.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 24,
                             (frame.shape[1], frame.shape[0]))
    for _ in range(36):  # 1.5 s of MJPEG in an AVI container named .mp4: decoded by content
        writer.write(frame)
        ok, frame = cap.read()
    writer.release()
    cap.release()
    (root / "tears_as_avi.avi").rename(root / "tears_as_avi.mp4")


def card_text(root: Path) -> str:
    segments = [(name, "walking_outdoors", start) for name, start in GOOD.items()]
    segments += [(name, "close_up_talking", 0.0) for name in BAD]
    segments += [("hikers_walking.mp4", "walking_outdoors", 0.0),  # the same window again: duplicate id
                 ("tears_of_steel_excerpt.mp4", "no_such_label", 0.0)]
    body = "".join(f'\n[[segments]]\nvideo = "{v}"\nlabel = "{label}"\nstart_s = {s}\nend_s = {s + 1.0}\n'
                   f'stride_s = 1.0\n' for v, label, s in segments)
    return f'''[corpus]
name = "corrupt"
modality = "video"
layout = "segments"
root = "{root}"

[labels]
kind = "single"
names = ["walking_outdoors", "standing_group_indoors", "close_up_talking"]

[windows]
length_s = 1.0
sample_fps = 5.0
test_every = 0
{body}
[representations]
clips = 3
frames_per_clip = 2
face_size = 112
timeline_size = 64
timeline_length = 30
timeline_pad = "repeat"

[extractors]
face = "blazeface-front"
pose = "posenet-mobilenet-v1-075"

[shards]
num_shards = 2
'''


@pytest.fixture(scope="module")
def corrupt_run(repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corrupt")
    root = tmp / "media"
    make_corpus(root)
    card = tmp / "corrupt.toml"
    card.write_text(card_text(root))
    out = tmp / "out"
    run = run_extract(repo, card, out, "--fail-on-error")
    return {"root": root, "card": card, "out": out, "run": run}


def _errors(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]


def test_every_broken_input_is_reported_and_good_samples_land(corrupt_run):
    run, out, root = corrupt_run["run"], corrupt_run["out"], corrupt_run["root"]
    assert run.returncode == 1, run.stderr[-3000:]  # --fail-on-error: errors -> status 1, after the summary
    assert "ERRORS" in run.stdout and "affectzoo extract: corpus corrupt" in run.stdout
    errors = _errors(out)
    by_uri = {Path(e["uri"]).name: e for e in errors if e["stage"] == "decode"}
    for name, reason in BAD.items():
        assert name in by_uri, f"{name} not reported"
        e = by_uri[name]
        assert e["uri"] == str(root / name) and name in e["message"] and reason in e["message"], e
        assert e["corpus"] == "corrupt" and e["video_id"] == f"corrupt/{name}" and e["error_type"] == "DecodeError"
    read = [e for e in errors if e["stage"] == "read"]
    assert sorted(e["error_type"] for e in read) == ["duplicate_id", "unknown_label"]
    unknown = next(e for e in read if e["error_type"] == "unknown_label")
    assert "no_such_label" in unknown["message"] and unknown["uri"] == str(root / "tears_of_steel_excerpt.mp4")
    dup = next(e for e in read if e["error_type"] == "duplicate_id")
    assert dup["sample_id"] == "corrupt/hikers_walking.mp4#000000-001000"
    assert len(errors) == len(BAD) + 2
    rows = shard_rows(out)
    assert sorted(rows) == sorted(f"corrupt/{name}#{int(s * 1000):06d}-{int((s + 1) * 1000):06d}"
                                  for name, s in GOOD.items())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"] == {"planned": len(GOOD) + len(BAD), "written": len(GOOD), "failed": len(BAD), "lost": []}
    assert manifest["errors"]["by_stage"] == {"decode": len(BAD), "read": 2}


def test_without_fail_on_error_the_run_exits_0_and_keeps_the_errors(repo, corrupt_run):
    run = run_extract(repo, corrupt_run["card"], corrupt_run["out"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "reused from an earlier run" in run.stdout  # nothing to redo: the done shards are reused
    errors = _errors(corrupt_run["out"])
    assert {Path(e["uri"]).name for e in errors if e["stage"] == "decode"} == set(BAD)  # carried over


def test_retry_failed_reruns_only_the_failed_samples(repo, corrupt_run):
    out, root = corrupt_run["out"], corrupt_run["root"]
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*-of-*")}
    shutil.copyfile(CLIPS / "group_event_smiling.mp4", root / "truncated.mp4")  # the broken file is replaced
    run = run_extract(repo, corrupt_run["card"], out, "--retry-failed")
    assert run.returncode == 0, run.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*-of-*")} == done_before  # done shards untouched
    retry = out / "retry-01"
    assert (retry / "errors.before.jsonl").is_file()
    rows = shard_rows(out)  # main + retry, no duplicates
    assert "corrupt/truncated.mp4#000000-001000" in rows and len(rows) == len(GOOD) + 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"]["written"] == len(GOOD) + 1
    assert [r["folder"] for r in manifest["retries"]] == ["retry-01"] and manifest["retries"][0]["samples"] == 1
    retry_shards = [s for s in manifest["shards"] if s.get("retry") == "retry-01"]
    assert len(retry_shards) == 1 and retry_shards[0]["files"]["h5"]["name"].startswith("retry-01/")
    assert (out / retry_shards[0]["files"]["h5"]["name"]).is_file()
    still = {Path(e["uri"]).name for e in _errors(out) if e["stage"] == "decode"}
    assert still == set(BAD) - {"truncated.mp4"}


def test_a_retry_with_nothing_fixed_leaves_no_empty_folder(repo, corrupt_run):
    out = corrupt_run["out"]  # after test_retry_failed_reruns_only_the_failed_samples: 9 still broken
    run = run_extract(repo, corrupt_run["card"], out, "--retry-failed")
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (out / "retry-02").exists() and "MISSING" not in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["missing_shards"] == [] and manifest["samples"]["lost"] == []
    assert manifest["samples"]["written"] + manifest["samples"]["failed"] == manifest["samples"]["planned"]


def test_unreadable_file_is_reported(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root, which can read a file whatever its permission bits (chmod 000 "
                    "cannot make it unreadable)")
    path = tmp_path / "locked.mp4"
    shutil.copyfile(CLIPS / "group_event_smiling.mp4", path)
    path.chmod(0)
    with IsolatedDecoder() as dec, pytest.raises(DecodeError, match="permission denied"):
        dec.decode_window(str(path), 0.0, 1.0, 5.0)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT])
def test_a_dying_decoder_loses_only_its_file(sig):
    clip = str(CLIPS / "hikers_walking.mp4")
    with IsolatedDecoder(chunk_frames=4) as dec:
        plan, chunks = dec.decode(clip, window=(0.0, 4.0, 15.0))
        next(chunks)
        os.kill(dec.pid, sig)  # the decoder process dies mid-file, as FFmpeg does on some corrupt input
        with pytest.raises(DecoderCrashed, match=f"signal {sig.name}"):
            list(chunks)
        window = dec.decode_window(clip, 1.0, 1.0, 5.0)  # the next file gets a fresh decoder
        assert window.frames.shape == (5, 480, 640, 3) and dec.restarts == 1


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)  # opening a FIFO with no writer would block a decoder forever
    with IsolatedDecoder() as dec, pytest.raises(DecodeError, match="not a regular file"):
        dec.decode_window(str(fifo), 0.0, 1.0, 5.0)


def test_a_hanging_decoder_times_out():
    clip = str(CLIPS / "hikers_walking.mp4")
    with IsolatedDecoder(timeout_s=3, chunk_frames=4) as dec:
        plan, chunks = dec.decode(clip, window=(0.0, 4.0, 15.0))
        next(chunks)
        os.kill(dec.pid, signal.SIGSTOP)  # the decoder stops answering, as a hung FFmpeg does
        with pytest.raises(DecodeError, match="no answer within 3 s"):
            list(chunks)
        assert dec.decode_window(str(CLIPS / "group_event_smiling.mp4"), 0.0, 1.0, 5.0).frames.shape[0] == 5
