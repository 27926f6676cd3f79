"""Loading the media of non-window samples: images, explicit video frames, gaits, mocap sheets.

Used by the pipeline's entry stages (images and skeleton corpora skip video decoding) and by
``python -m pipelines.corpora check`` to prove that every file opens and decodes to the end.
Videos go through the pipeline's decoding path (:func:`pipelines.decode.open_video` with
:data:`pipelines.decoders.DEFAULT_BACKEND`, in the isolated child process when one is given), so
``check`` and ``extract`` agree on what is decodable. Images go through the one image loader,
:mod:`pipelines.images` (orientation, modes, the video frame cap
:data:`pipelines.decoders.MAX_FRAME_PIXELS` read from the header before any pixel is decoded).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from pipelines.decode import DEFAULT_BACKEND, MAX_FRAME_PIXELS, DecodedWindow, DecodeError, iter_chunks, open_video
from pipelines.decoders import looks_truncated


class MediaError(RuntimeError):
    """A media file is missing, truncated or not in the expected format; names file and reason."""


def load_image(path: str | Path, max_pixels: int | None = MAX_FRAME_PIXELS) -> np.ndarray:
    """Decode one image with the one image loader, :func:`pipelines.images.load_image` (EXIF
    orientation honoured; alpha, grey, palette, 16-bit and CMYK converted; size limit and
    decompression-bomb guard; decoded fully, so a truncated file fails instead of decoding half).

    Args:
        max_pixels: refuse images larger than this (width x height, from the header, before any
            pixel is decoded; the video frame cap by default); ``None`` for no limit of ours.

    Returns:
        uint8 [H, W, 3] RGB, as displayed.

    Raises:
        MediaError: the :class:`pipelines.images.ImageError` message (missing file, not an image,
            truncated data, an unusable mode, an image larger than ``max_pixels``, or a
            decompression bomb).
    """
    from pipelines.images import ImageError, load_image as decode_image

    try:
        return decode_image(path, max_pixels)
    except ImageError as exc:
        raise MediaError(str(exc)) from exc


def load_images(paths: list[str] | tuple[str, ...]) -> np.ndarray:
    """Decode an image sequence; all images must have one size.

    Returns:
        uint8 [T, H, W, 3] RGB in the given order.

    Raises:
        MediaError: no path, an image that fails, or images of different sizes.
    """
    if not paths:
        raise MediaError("image sequence is empty")
    frames = [load_image(p) for p in paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise MediaError(f"{Path(paths[0]).parent}: images of different sizes {sorted(shapes)} in one sequence "
                         f"(first {paths[0]}); crop or resize them to one size")
    return np.stack(frames)


def decode_frames(uri: str, indices: tuple[int, ...] | list[int], backend: str = DEFAULT_BACKEND) -> DecodedWindow:
    """Decode the given 0-based frames of a video in this process (indices past the end dropped).

    The pipeline's path: :func:`pipelines.decode.open_video` (file checks, frame cap, truncation
    rule) with ``backend`` (PyAV by default).

    Returns:
        :class:`DecodedWindow` (frames uint8 [T', H, W, 3] RGB, T' requested frames inside the video).

    Raises:
        DecodeError: unreadable video, or no requested frame inside it.
    """
    decoder, plan = open_video(uri, frame_indices=list(indices), backend=backend)
    with decoder:
        frames = np.concatenate([f for _, f in iter_chunks(decoder, plan)])
    fps = plan.fps if math.isfinite(plan.fps) and plan.fps > 0 else float("nan")
    idx = plan.frame_indices
    return DecodedWindow(idx, (idx / fps).astype(np.float32), frames, fps, plan.num_video_frames)


def load_gait(uri: str, key: str, joints: int = 16) -> np.ndarray:
    """One gait of a ``features*.h5`` file (seed spec 2.2).

    Returns:
        float64 [T, joints, 3] (x, y, z per joint, the file's units).

    Raises:
        MediaError: missing / unreadable file or key, or a shape that is not [T, 3 * joints].
    """
    import h5py

    try:
        with h5py.File(uri, "r") as f:
            data = np.asarray(f[key][()], dtype=np.float64)
    except (OSError, KeyError) as exc:
        raise MediaError(f"{uri}: cannot read gait {key!r}: {exc}") from exc
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] != 3 * joints:
        raise MediaError(f"{uri}: gait {key!r} has shape {data.shape}, expected [T, {3 * joints}]")
    return data.reshape(data.shape[0], joints, 3)


def _sheet_rows(path: Path, sheet_index: int) -> list[list]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    try:
        import xlrd  # pinned in requirements.lock; only Emilya workbooks need it
    except ImportError as exc:
        raise MediaError(f"{path}: reading .xls workbooks needs the xlrd package (pip install xlrd), "
                         "or export sheet index 2 to CSV") from exc
    try:
        sheet = xlrd.open_workbook(str(path)).sheet_by_index(sheet_index)
    except Exception as exc:  # xlrd raises XLRDError / IndexError / OSError
        raise MediaError(f"{path}: cannot read sheet {sheet_index}: {exc}") from exc
    return [sheet.row_values(i) for i in range(sheet.nrows)]


def load_sheet(path: str | Path, joints: int = 28, sheet_index: int = 2) -> np.ndarray:
    """One Emilya mocap sheet (seed spec 1.6): header row, then ``joints`` x (x, y, z) per row.

    Returns:
        float64 [T, joints, 3] (the sheet's first ``3 * joints`` values of each data row).

    Raises:
        MediaError: unreadable file, no data row, or a row with fewer than ``3 * joints``
            numbers (a truncated export).
    """
    path = Path(path)
    try:
        rows = _sheet_rows(path, sheet_index)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MediaError(f"{path}: cannot read sheet: {exc}") from exc
    data = rows[1:]
    if not data:
        raise MediaError(f"{path}: sheet has no data row after the header")
    out = np.empty((len(data), joints, 3), np.float64)
    for i, row in enumerate(data):
        try:
            values = [float(v) for v in row[: 3 * joints]]
        except (TypeError, ValueError) as exc:
            raise MediaError(f"{path}: data row {i + 1} is not numeric: {exc}") from exc
        if len(values) < 3 * joints:
            raise MediaError(f"{path}: data row {i + 1} has {len(values)} values, expected {3 * joints}")
        out[i] = np.asarray(values).reshape(joints, 3)
    return out


def declared_and_packets(uri: str) -> tuple[int, int]:
    """``(declared, packets)`` of a video's first video stream, from a PyAV demux pass (no
    decoding): the frame count its header declares (``stream.frames``; 0 when it gives none) and
    the packets that hold data. A header that declares clearly more frames than there are
    packets is a truncated file; packets that give no picture (edit lists, trailing packets)
    are not a loss (:func:`pipelines.decoders.looks_truncated`).

    Raises:
        MediaError: the file does not open or has no video stream.
    """
    import av

    try:
        with av.open(uri) as container:
            if not container.streams.video:
                raise MediaError(f"{uri}: no video stream")
            stream = container.streams.video[0]
            packets = sum(1 for packet in container.demux(stream) if packet.size)
            return int(stream.frames or 0), packets
    except av.FFmpegError as exc:
        raise MediaError(f"{uri}: video does not open: {exc}") from exc


def verify_video(uri: str, decoder=None, backend: str = DEFAULT_BACKEND) -> int:
    """Decode every frame of a video the way extraction does, and compare the packets present
    with the frame count the container declares (a truncated AVI still opens and decodes: FFmpeg
    rebuilds its index from what is left, so only the declared count shows the loss; packets
    without a picture, as an edit list or a trailing packet makes, are not taken for a loss).

    The frames go through :func:`pipelines.decode.open_video` / ``iter_chunks`` with the
    pipeline's back-end: the same file checks, frame cap, corrupt-frame refusal and truncation
    rule as ``extract``. With ``decoder`` (a :class:`pipelines.isolated_decoder.IsolatedDecoder`)
    they are decoded in its child process, so a file that crashes or hangs FFmpeg is reported
    instead of taking the caller down.

    Returns:
        the number of frames decoded.

    Raises:
        MediaError: the video does not open or a frame does not decode (the decoder's reason),
            or the header declares clearly more frames than there are packets
            (:func:`pipelines.decoders.looks_truncated`: more than ``max(2, 1 %)`` missing).
    """

    def decode(indices: tuple[int, ...]) -> tuple[int, int]:
        """(frames in the video, frames decoded) for ``indices``, through the extraction's path."""
        if decoder is not None:
            plan, chunks = decoder.decode(uri, frame_indices=indices)
            return plan.num_video_frames, sum(len(frames) for _, frames in chunks)
        dec, plan = open_video(uri, frame_indices=indices, backend=backend)
        with dec:
            return plan.num_video_frames, sum(len(frames) for _, frames in iter_chunks(dec, plan))

    try:
        n, _ = decode((0,))
        n, decoded = decode(tuple(range(n)))
    except DecodeError as exc:
        raise MediaError(f"{uri}: video does not decode: {str(exc).removeprefix(f'{uri}: ')}") from exc
    if decoded < 1:
        raise MediaError(f"{uri}: no video frames")
    declared, packets = declared_and_packets(uri)  # after the (isolated) decode: the file opens safely
    if looks_truncated(declared, packets):
        raise MediaError(f"{uri}: truncated (or its header count is wrong): the container declares {declared} "
                         f"frames, only {packets} packets are present ({n} decodable)")
    return decoded


def verify_sample_media(sample, decoder=None) -> None:
    """Check that a sample's media decode completely (what the pipeline will need).

    Args:
        decoder: an open :class:`pipelines.isolated_decoder.IsolatedDecoder` for videos (the
            extraction's child process), or None to decode in this process.

    Raises:
        MediaError: the first failure, naming the file and the reason.
    """
    if sample.modality == "images":
        for path in sample.frames:
            load_image(path)
    elif sample.modality == "skeleton":
        if sample.key is not None:
            load_gait(sample.uri, sample.key, int(sample.meta.get("joints", 16)))
        else:
            load_sheet(sample.uri, int(sample.meta.get("joints", 28)))
    else:
        verify_video(sample.uri, decoder)
