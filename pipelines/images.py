"""The one image loader of affectzoo: every photo, face crop and corpus image goes through here.

Used by the extraction's image corpora (AffectNet, RAF-DB, CK+, ... through
:func:`pipelines.readers.media.load_images`), ``python -m pipelines.corpora check``,
``python -m zoo.evaluate --images`` and the photos of ``python -m zoo.predict``
(:mod:`zoo.predict.photos`). What an image *is* is decided here, once (Pillow,
https://pillow.readthedocs.io):

* **Orientation**: the EXIF ``Orientation`` tag is honoured (``ImageOps.exif_transpose``): the
  pixels, boxes and sizes are those of the image as a viewer displays it. A phone photo taken
  upright but stored sideways gives upright faces.
* **Modes** -> uint8 RGB:

  - RGB as stored; bilevel (``1``) and grey (``L``) replicated to three channels;
  - palette (``P``) through its palette (a transparent palette entry is alpha, below);
  - alpha (``LA``, ``PA``, ``RGBA``, ``RGBa``) composited over :data:`ALPHA_BACKGROUND` (white,
    what a viewer shows behind a transparent photo), never dropped: the colour under a
    fully transparent pixel is undefined (often black or noise);
  - 16-bit grey (``I;16*``, a 16-bit PNG or TIFF) scaled to 8 bits by ``round(v * 255 / 65535)``
    (Pillow's own ``convert`` would clip everything above 255 to white); 16-bit RGB PNGs Pillow
    already reads as their high bytes; ``I`` (32-bit integer) is taken as 16-bit when its values
    fit, else refused;
  - CMYK JPEG (Adobe-inverted ones included, decoded by Pillow) and YCbCr / LAB / HSV through
    Pillow's ``convert("RGB")``; embedded ICC profiles are not applied;
  - floating-point images (``F``) are refused (no agreed range).

  Multi-frame files (GIF, animated PNG / WebP, multi-page TIFF) give their first frame.
* **Size**: width x height is read from the header before a pixel is decoded and refused above
  ``max_pixels`` (:data:`pipelines.decoders.MAX_FRAME_PIXELS` by default, the video frame cap);
  Pillow's decompression-bomb guard (``DecompressionBombWarning`` / ``Error``, also compressed
  PNG text chunks) is an error, never a warning. Images are decoded fully, so a truncated file
  fails instead of giving half an image.
* **Errors**: :class:`ImageError`, one line: the file, what was found (format, size, mode, or what
  the bytes are when Pillow cannot identify them: a video, an HEIC photo, text, nothing) and
  what to try.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from pipelines.decoders import MAX_FRAME_PIXELS

#: File suffixes (lower case) read as images by ``zoo.predict`` and ``zoo.evaluate --images``.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp",
                            ".gif", ".pgm", ".ppm", ".pbm", ".pnm", ".avif", ".heic", ".heif"})
#: RGB colour transparent pixels are composited over (white, as a viewer shows them).
ALPHA_BACKGROUND = (255, 255, 255)
#: The EXIF tag of the orientation (TIFF/EXIF 0x0112).
EXIF_ORIENTATION = 0x0112

_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_TRY = "re-save it as an 8-bit RGB PNG or JPEG"


class ImageError(RuntimeError):
    """An image that cannot be used: one line naming the file, what was found and what to try."""


@dataclass(frozen=True)
class ImageInfo:
    """What the file held, before conversion.

    Attributes:
        format: Pillow's format name (``JPEG``, ``PNG``...). mode: Pillow's mode (``RGB``,
        ``CMYK``, ``I;16``, ``P``...). width, height: stored size in pixels (before orientation).
        orientation: EXIF orientation 1-8 (1 = upright, 6 = stored rotated, shown turned 90
        degrees clockwise), 1 when absent. frames: frames in the file (only the first is read).
    """

    format: str
    mode: str
    width: int
    height: int
    orientation: int = 1
    frames: int = 1

    def describe(self) -> str:
        """E.g. ``JPEG 1024x740 CMYK, EXIF orientation 6``."""
        text = f"{self.format} {self.width}x{self.height} {self.mode}"
        if self.orientation != 1:
            text += f", EXIF orientation {self.orientation}"
        return text + (f", first of {self.frames} frames" if self.frames > 1 else "")


def load_image(path: str | Path, max_pixels: Optional[int] = MAX_FRAME_PIXELS) -> np.ndarray:
    """Decode one image as displayed (EXIF orientation applied) into RGB.

    Args:
        path: image file (any format Pillow reads).
        max_pixels: refuse images with more pixels (width x height, read from the header before
            decoding); ``None`` for no limit of ours (Pillow's bomb guard still applies).

    Returns:
        uint8 [H, W, 3] RGB, H x W the displayed size.

    Raises:
        ImageError: missing file, not an image, truncated data, an unusable mode, an image above
            ``max_pixels`` or a decompression bomb; one line naming the file.
    """
    return open_image(path, max_pixels)[0]


def open_image(path: str | Path, max_pixels: Optional[int] = MAX_FRAME_PIXELS) -> tuple[np.ndarray, ImageInfo]:
    """:func:`load_image` and the :class:`ImageInfo` of what the file held.

    Raises:
        ImageError: as :func:`load_image`.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file" if not path.exists() else f"{path}: not a file")
    info = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                info = _info(im)
                _check_size(path, info, max_pixels)
                im.load()
                return _to_rgb(path, _oriented(im), info), info
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image Pillow can read (found {describe_bytes(path)}); "
                         f"{_advice(path)}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a decompression bomb ({_found(info)}: {exc}); "
                         "if the image is genuine, downscale it below the limit") from exc
    except MemoryError as exc:
        raise ImageError(f"{path}: out of memory decoding {_found(info)}; downscale it") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        what = "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "undecodable"
        found = f"{info.describe()}, {path.stat().st_size} bytes" if info else describe_bytes(path)
        raise ImageError(f"{path}: {what} image ({found}: {exc}); re-download or re-export it, or {_TRY}") from exc


def _info(im) -> ImageInfo:
    try:
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: Pillow's exif_transpose skips it too
        orientation = 1
    return ImageInfo(str(im.format), im.mode, *im.size, orientation if 1 <= orientation <= 8 else 1,
                     int(getattr(im, "n_frames", 1) or 1))


def _found(info: Optional[ImageInfo]) -> str:
    return info.describe() if info is not None else "an image"


def _check_size(path: Path, info: ImageInfo, max_pixels: Optional[int]) -> None:
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise ImageError(f"{path}: image size {info.width}x{info.height} exceeds the limit of {max_pixels} pixels "
                         f"(the same cap as video frames; found {info.describe()}); downscale it, e.g. "
                         f"ffmpeg -i {path.name} -vf scale=3840:-1 smaller.png")


def _oriented(im):
    """The image as displayed: Pillow's ``ImageOps.exif_transpose`` (orientations 2-8)."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(im) or im


def _to_rgb(path: Path, im, info: ImageInfo) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a loaded Pillow image of any mode (the module's rules)."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("1", "L"):
        return np.repeat(np.asarray(im.convert("L"), np.uint8)[..., None], 3, axis=2)
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _sixteen_bit_grey(path, np.asarray(im), info)
    if mode == "F":
        raise ImageError(f"{path}: 32-bit floating-point image ({info.describe()}) has no agreed 8-bit range; "
                         f"{_TRY}")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in _ALPHA_MODES:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGBA", im.size, ALPHA_BACKGROUND + (255,))
        im = Image.alpha_composite(background, im)
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ValueError as exc:
        raise ImageError(f"{path}: image mode {mode} cannot be converted to RGB ({info.describe()}); {_TRY}") from exc


def _sixteen_bit_grey(path: Path, values: np.ndarray, info: ImageInfo) -> np.ndarray:
    """uint8 [H, W, 3] of 16-bit grey values (``round(v * 255 / 65535)``)."""
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageError(f"{path}: 32-bit integer image ({info.describe()}) with values outside 0-65535; {_TRY}")
    grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


# ----------------------------------------------------------------------------------- messages
_SIGNATURES = (  # (offset, magic bytes, what the file is)
    (4, b"ftypheic", "an HEIC photo"), (4, b"ftypheix", "an HEIC photo"), (4, b"ftypmif1", "an HEIF photo"),
    (4, b"ftypavif", "an AVIF image"), (4, b"ftyp", "an MP4 / MOV video"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska / WebM video"), (8, b"AVI ", "an AVI video"), (8, b"WAVE", "a WAV audio file"),
    (0, b"ID3", "an MP3 audio file"), (0, b"OggS", "an Ogg media file"), (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"), (0, b"\x1f\x8b", "a gzip archive"), (0, b"8BPS", "a Photoshop PSD"),
    (0, b"\x89PNG", "a damaged PNG"), (0, b"\xff\xd8\xff", "a damaged JPEG"),
)


def describe_bytes(path: str | Path) -> str:
    """What a file Pillow cannot identify holds, from its first bytes: ``an empty file``,
    ``an HEIC photo``, ``an MP4 / MOV video``, ``text``... or ``N bytes of unknown data``."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "an empty file"
    with open(path, "rb") as f:
        head = f.read(64)
    for offset, magic, what in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return f"{what}, {size} bytes"
    if head[0:1] == b"\x47" and size >= 376 and _byte_at(path, 188) == b"\x47":
        return f"an MPEG-TS video, {size} bytes"
    try:
        head.decode("utf-8")
        return f"text, {size} bytes"
    except UnicodeDecodeError:
        return f"{size} bytes of unknown data"


def _byte_at(path: Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(1)


def _advice(path: Path) -> str:
    """What to try for a file Pillow cannot identify."""
    found = describe_bytes(path)
    if found.startswith(("an HEIC", "an HEIF", "an AVIF")):
        return (f"convert it to JPEG first, e.g. heif-convert {path.name} {path.stem}.jpg "
                "(libheif-examples), or export it as JPEG")
    if "video" in found:
        return "give it a video suffix (.mp4, .mkv, .avi...) so it is read as a video"
    return f"give a PNG, JPEG, BMP, TIFF, WebP or GIF file, or {_TRY}"
