"""Size limits (issue 14 item 8): images obey the video frame cap, a PNG decompression bomb is a
reported problem of ``corpora check`` (no traceback), and no crop allocates side^2 for a frame of
extreme aspect ratio."""
from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus_fixtures import rafdb
from pipelines.corpora import check_corpus
from pipelines.decoders import MAX_FRAME_PIXELS
from pipelines.crops import MAX_CROP_PIXELS, CropTooLarge, crop_box_resized
from pipelines.readers.media import MediaError, load_image

REPO = Path(__file__).resolve().parents[1]


def png_bomb(path: Path, width: int = 60000, height: int = 60000) -> Path:
    """A 1-bit PNG whose header declares ``width x height`` (3.6 G pixels) with a few rows of data: a
    few hundred bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_images_obey_the_video_frame_cap(tmp_path):
    big = tmp_path / "big.png"
    Image.new("L", (5000, 4000)).save(big)  # 20 M pixels > MAX_FRAME_PIXELS (16.6 M), 20 kB on disk
    assert 5000 * 4000 > MAX_FRAME_PIXELS
    with pytest.raises(MediaError, match=r"image size 5000x4000 exceeds the limit of 16588800 pixels"):
        load_image(big)
    assert load_image(big, max_pixels=None).shape == (4000, 5000, 3)  # the cap is ours, not PIL's
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(small)
    assert load_image(small).shape == (30, 40, 3)


def test_png_bomb_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="exceeds the limit|decompression bomb") as err:
        load_image(png_bomb(tmp_path / "bomb.png"))
    assert "bomb.png" in str(err.value)
    with pytest.raises(MediaError, match="decompression bomb"):  # PIL's own guard, also a MediaError
        load_image(png_bomb(tmp_path / "bomb2.png"), max_pixels=None)


def test_corpora_check_reports_a_png_bomb_without_a_traceback(tmp_path, shared):
    fx = rafdb(tmp_path / "rafdb", shared)
    victim = fx.root / "basic/Image/original/train_00002.jpg"
    png_bomb(victim)  # a PNG named .jpg: PIL reads the content
    report = check_corpus("rafdb", fx.root, counts=False)
    assert [(p.kind, Path(p.path).name) for p in report.problems] == [("truncated_media", "train_00002.jpg")]
    assert len(report.samples) == 2
    run = subprocess.run([sys.executable, "-m", "pipelines.corpora", "check", "rafdb", str(fx.root), "--no-counts"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "train_00002.jpg" in run.stdout + run.stderr


def test_whole_frame_crop_of_an_extreme_aspect_ratio_is_refused_before_allocating():
    frame = np.zeros((1, 100000, 3), np.uint8)  # 100000 pixels: within the frame cap
    side = float(max(frame.shape[:2]))
    with pytest.raises(CropTooLarge, match=r"100000x100000 crop of a 100000x1 frame is refused"):
        crop_box_resized(frame, np.array([0, 0, side, side], np.float32), int(side))  # assemble's whole-frame path
    with pytest.raises(CropTooLarge):
        crop_box_resized(frame, np.array([0, 0, 10, 10], np.float32), 100000)  # a resized crop as well
    # the largest frame within the cap at 4:1 still gets its whole-frame square
    assert 7680 * 7680 <= MAX_CROP_PIXELS
    wide = np.full((2, 8, 3), 7, np.uint8)
    out = crop_box_resized(wide, np.array([0, 0, 8, 8], np.float32), 8)
    assert out.shape == (8, 8, 3) and (out[:2] == 7).all() and (out[2:] == 0).all()


def test_one_default_decoder_and_av_is_a_declared_dependency():
    """issue 16: make_decoder / read_frames default to the pipeline's back-end (PyAV, one constant),
    and pyproject.toml declares ``av`` at the version requirements.lock pins."""
    import inspect
    import re

    from pipelines import decode, decoders

    assert decoders.DEFAULT_BACKEND == "pyav" and decode.DEFAULT_BACKEND is decoders.DEFAULT_BACKEND
    for fn in (decoders.make_decoder, decoders.read_frames, decode.open_video, decode.decode_window):
        assert inspect.signature(fn).parameters["backend"].default == "pyav", fn.__name__
    assert isinstance(decoders.make_decoder(), decoders.PyAVDecoder)
    pins = dict(re.findall(r"^([\w.-]+)==([\w.]+)", (REPO / "requirements.lock").read_text(), re.M))
    deps = re.findall(r'^\s*"([\w.-]+)==([\w.]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert ("av", pins["av"]) in deps
    assert all(pins.get(name) == version for name, version in deps), deps
