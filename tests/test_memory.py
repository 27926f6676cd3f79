"""Bounded memory on a long video: frames are streamed in chunks, never the whole video at once.

The video (2 minutes of 640x360 at 30 frames/s, 3,600 frames: 2.49 GB as uint8 RGB) is generated
here with cv2.VideoWriter. Peak resident memory is read from ``/proc/<pid>/status`` ``VmHWM`` for
the decoder and its consumer (``ru_maxrss`` survives ``exec`` on Linux, so a process started from
a large pytest process would report pytest's peak), and with ``resource.getrusage(RUSAGE_CHILDREN)``
in a small wrapper process for the whole extraction (the largest of its waited-for descendants).

Bounds:
* streaming all 3,600 frames through the isolated decoder: < 600 MB in the decoder process and
  < 400 MB in the consumer (about a quarter of the video's decoded size together);
* a whole extraction run on 3 windows of the video: < 2 GB in every process (driver, Beam
  workers, decoder children), i.e. less than the decoded video alone.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_runners import shard_rows

SECONDS, FPS, SIZE = 120, 30, (640, 360)
DECODED_BYTES = SECONDS * FPS * SIZE[0] * SIZE[1] * 3


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (SIZE[1], 2 * SIZE[0], 3), np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for i in range(SECONDS * FPS):  # a texture panning right, 4 px per frame
        x = (4 * i) % SIZE[0]
        writer.write(np.ascontiguousarray(texture[:, x: x + SIZE[0]]))
    writer.release()
    return path


def _peak_mb(code: str, cwd: Path) -> dict:
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


STREAM = """
import json, sys
from pipelines.isolated_decoder import IsolatedDecoder

def hwm_mb(pid="self"):
    # VmHWM: peak resident set of this process image (unlike ru_maxrss, not inherited across exec)
    for line in open(f"/proc/{{pid}}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

n, shapes = 0, set()
with IsolatedDecoder() as dec:
    plan, chunks = dec.decode({path!r}, window=(0.0, {seconds}, {fps}))
    for first, frames in chunks:
        assert first == n
        n += len(frames)
        shapes.add(frames.shape[1:])
    decoder_mb = hwm_mb(dec.pid)
print(json.dumps({{"frames": n, "shapes": [list(s) for s in shapes], "self_mb": hwm_mb(), "decoder_mb": decoder_mb}}))
"""


def test_decoder_streams_a_long_video_in_bounded_memory(repo, long_video):
    peak = _peak_mb(STREAM.format(path=str(long_video), seconds=float(SECONDS), fps=float(FPS)), repo)
    assert peak["frames"] == SECONDS * FPS and peak["shapes"] == [[SIZE[1], SIZE[0], 3]]
    print(f"decoded {DECODED_BYTES / 1e9:.2f} GB of frames; peak RSS decoder {peak['decoder_mb']:.0f} MB, "
          f"consumer {peak['self_mb']:.0f} MB")
    assert peak["decoder_mb"] < 600 and peak["self_mb"] < 400


EXTRACT = """
import json, resource, subprocess, sys
run = subprocess.run([sys.executable, "-m", "pipelines.extract", "--dataset", {card!r}, "--out", {out!r},
                      "--no-progress"], capture_output=True, text=True)
sys.stderr.write(run.stderr[-3000:])
print(json.dumps({{"rc": run.returncode, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def test_extraction_of_a_long_video_stays_under_the_bound(repo, long_video, tmp_path):
    text = (repo / "datasets" / "sample.toml").read_text()
    head = text[: text.index("[[segments]]")].replace('root = "samples/videos"', f'root = "{long_video.parent}"')
    head = head.replace("length_s = 2.0", "length_s = 1.0").replace("sample_fps = 15.0", "sample_fps = 5.0")
    segment = ('[[segments]]\nvideo = "long.mp4"\nlabel = "walking_outdoors"\nstart_s = 0.0\n'
               f'end_s = {SECONDS - 10}.0\nstride_s = 50.0\n\n')
    card = tmp_path / "long.toml"
    card.write_text(head + segment + text[text.index("[representations]"):])
    out = tmp_path / "out"
    peak = _peak_mb(EXTRACT.format(card=str(card), out=str(out)), repo)
    assert peak["rc"] == 0
    rows = shard_rows(out)
    assert sorted(rows) == ["sample/long.mp4#000000-001000", "sample/long.mp4#050000-051000",
                            "sample/long.mp4#100000-101000"]
    print(f"extraction peak RSS (largest process) {peak['peak_mb']:.0f} MB")
    assert peak["peak_mb"] < 2000 < DECODED_BYTES / 1e6
