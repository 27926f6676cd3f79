"""The one image loader (pipelines.images, issue 21 item 4): EXIF orientation, modes, size limits and
one-line errors; the extraction's image corpora and zoo.evaluate read through it."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.images import ALPHA_BACKGROUND, ImageError, describe_bytes, load_image, open_image
from pipelines.readers.media import MediaError, load_images

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "samples" / "images" / "astronaut.png"

#: How a viewer shows stored pixels for each EXIF orientation (the EXIF 2.3 table, numpy only).
DISPLAYED = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
             5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, -1),
             7: lambda a: np.rot90(np.transpose(a, (1, 0, 2)), 2), 8: lambda a: np.rot90(a, 1)}


def _with_orientation(pixels: np.ndarray, orientation: int, path: Path, fmt: str = "PNG") -> Path:
    im = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_displayed_pixels(orientation, tmp_path):
    stored = np.random.default_rng(orientation).integers(0, 256, (5, 8, 3), dtype=np.uint8)  # not square
    path = _with_orientation(stored, orientation, tmp_path / f"o{orientation}.png")
    rgb, info = open_image(path)
    assert info.orientation == orientation and (info.width, info.height) == (8, 5)
    np.testing.assert_array_equal(rgb, DISPLAYED[orientation](stored))


def test_rotated_phone_jpeg_is_upright(tmp_path):
    upright = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[::4, ::4]  # 128x128
    upright = np.ascontiguousarray(upright[:, :96])  # 128 high, 96 wide: the rotation shows in the shape
    stored = np.rot90(upright, 1)  # the sensor's pixels; EXIF 6 turns them 90 degrees clockwise
    rgb = load_image(_with_orientation(np.ascontiguousarray(stored), 6, tmp_path / "phone.jpg", "JPEG"))
    assert rgb.shape == (128, 96, 3)
    err = np.abs(rgb.astype(int) - upright).mean()
    assert err < 8 and err * 3 < np.abs(rgb.astype(int) - np.rot90(upright, 2)).mean()  # JPEG loss only


def test_alpha_is_composited_over_white_not_dropped(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, :2, 3] = 255           # opaque
    rgba[:, 2:4, 3] = 0            # transparent over arbitrary colour
    rgba[:, 4:, 3] = 128           # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert (rgb[:, :2] == (10, 200, 30)).all()
    assert (rgb[:, 2:4] == ALPHA_BACKGROUND).all()
    expected = np.round((np.array([10, 200, 30]) * 128 + np.array(ALPHA_BACKGROUND) * 127) / 255)
    assert np.abs(rgb[:, 4:].astype(int) - expected).max() <= 1
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    la = load_image(tmp_path / "la.png")
    assert (la[:, :2] == 10).all() and (la[:, 2:4] == 255).all()


def test_palette_grey_bilevel_and_palette_transparency(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putdata([0, 1, 0, 1, 0, 1])
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[0], [[255, 0, 0], [0, 0, 255], [255, 0, 0]])
    pal.save(tmp_path / "pt.png", transparency=1)  # entry 1 transparent
    np.testing.assert_array_equal(load_image(tmp_path / "pt.png")[0], [[255, 0, 0], [255, 255, 255], [255, 0, 0]])
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, 2))
    Image.fromarray(grey > 100).save(tmp_path / "b.png")
    assert set(np.unique(load_image(tmp_path / "b.png"))) == {0, 255}


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 128, 257, 32768], [65535, 1000, 40000, 65279]], np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    rgb, info = open_image(tmp_path / "16.png")
    expected = np.round(values.astype(float) * 255 / 65535).astype(np.uint8)  # 257 -> 1, 65535 -> 255
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb[..., 0] == rgb[..., 2]).all() and info.mode.startswith("I")


def test_cmyk_jpeg_matches_its_rgb(tmp_path):
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[::4, ::4].copy()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    loaded, info = open_image(tmp_path / "cmyk.jpg")
    assert info.mode == "CMYK" and loaded.shape == rgb.shape
    assert np.abs(loaded.astype(int) - rgb).mean() < 6  # not inverted, not channel-swapped


def test_normal_files_load_as_before(tmp_path):
    """The extraction's corpora keep their pixels: an RGB JPEG and a grey PNG without EXIF load
    exactly as ``Image.open(p).convert("RGB")`` did."""
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=90)
    Image.fromarray(rgb[..., 1]).save(tmp_path / "g.png")
    for p in (ASTRONAUT, tmp_path / "x.jpg", tmp_path / "g.png"):
        np.testing.assert_array_equal(load_image(p), np.asarray(Image.open(p).convert("RGB")))


def test_size_limit_and_errors_name_the_file_what_was_found_and_what_to_try(tmp_path):
    Image.new("L", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"big\.png: image size 300x200 exceeds the limit of 1000 pixels .*"
                                         r"PNG 300x200 L.*downscale"):
        load_image(tmp_path / "big.png", max_pixels=1000)
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    (tmp_path / "empty.png").write_bytes(b"")
    mp4 = tmp_path / "clip.jpg"
    mp4.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 100)
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:2000])  # header whole, scan data cut
    cases = {"notes.jpg": r"not an image .*found text, 14 bytes.*give a PNG, JPEG",
             "empty.png": r"found an empty file", "clip.jpg": r"found an MP4 / MOV video.*video suffix",
             "IMG_0001.HEIC": r"found an HEIC photo.*heif-convert", "cut.jpg": r"truncated image \(JPEG 64x64 RGB.*re-"}
    for name, pattern in cases.items():
        with pytest.raises(ImageError, match=pattern) as err:
            load_image(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: ") and "\n" not in str(err.value)
    with pytest.raises(ImageError, match=r"missing\.png: no such image file"):
        load_image(tmp_path / "missing.png")
    assert describe_bytes(tmp_path / "notes.jpg") == "text, 14 bytes"


def test_corpus_loader_raises_media_errors_through_the_one_loader(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (5, 3)).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_text("x")
    with pytest.raises(MediaError, match=r"c\.png: not an image"):
        load_images([str(tmp_path / "a.png"), str(tmp_path / "c.png")])
    with pytest.raises(MediaError, match=r"different sizes .* crop or resize"):
        load_images([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    exif6 = _with_orientation(np.zeros((3, 4, 3), np.uint8), 6, tmp_path / "r.png")
    assert load_images([str(exif6)]).shape == (1, 4, 3, 3)  # corpora see the displayed orientation
