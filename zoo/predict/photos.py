"""Photos in ``python -m zoo.predict``: every face of every image, and folders of frames read as a video.

Inputs (:func:`expand_inputs`): an image file (a suffix of :data:`pipelines.images.IMAGE_SUFFIXES`),
a folder (its image files, in natural order: ``2.jpg`` before ``10.jpg``; not recursive), or a
glob the shell did not expand (``'photos/*.jpg'``, ``**`` recursive). Anything else is a video, as
before. With ``--frames-as-video`` a folder is one video instead: its image files, in natural
order, are frames 0, 1, ... at ``--fps`` frames per second, sampled with ``--every`` (every frame
by default), tracked and summarised like a decoded video.

A photo is read by the one image loader (:func:`pipelines.images.open_image`: EXIF orientation
honoured, so boxes are in the displayed image's pixels; alpha, grey, palette, 16-bit and CMYK
converted; size cap), its faces are found on the whole image by the same face extractor as
videos (``--detector``, :class:`zoo.predict.face.FaceDetector`) and each is classified on fer's
crop (:meth:`zoo.predict.face.FacePredictor.face_inputs`). JSON lines per photo, in input order::

    {"type": "image", "image": ..., "model": ..., "detector": ..., "width": W, "height": H,
     "format": "JPEG", "mode": "RGB", "orientation": 1, "faces": n, "message": ..., "error": ...}
    {"type": "emotion", "class": "happy", "scores": {...}, "coordinates": [x1, y1, x2, y2],
     "id": 0, "confidence": 0.93, "image": ...}          # one per face, ids left to right

``--overlay OUT`` writes a PNG per photo (``OUT`` with a ``.png`` suffix for one input, else
``<OUT stem>.<image stem>.png``; ``-2``, ``-3``... added when two photos share a stem);
``--sheet OUT.png`` one contact sheet of the photos (up to 24 tiles, the ones left out counted in
its footer; ``<OUT stem>.photos.png`` when videos are given too). A folder of frames gets an mp4
overlay and a sheet of its sampled frames, named like a video's.
"""
from __future__ import annotations

import glob
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipelines.images import IMAGE_SUFFIXES, ImageError, open_image
from zoo.predict.core import CHUNK_FRAMES, Options, Sampling, VideoPrediction, round_scores
from zoo.predict.face import clip_box

#: Contact-sheet tiles of photos (width, height in pixels) and their most.
SHEET_TILE = (320, 240)
SHEET_MAX_TILES = 24
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Input:
    """One thing to predict on: ``kind`` is ``video``, ``image``, ``frames`` (a folder read as a
    video) or ``error`` (``path`` is what was typed, ``error`` why nothing can be read)."""

    kind: str
    path: str
    error: Optional[str] = None


def natural_key(path: str | Path) -> list:
    """Sort key of a file name with its numbers compared as numbers (``f2.png`` < ``f10.png``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", Path(path).name)]


def is_image(path: str | Path) -> bool:
    """Whether ``path`` has an image suffix (:data:`pipelines.images.IMAGE_SUFFIXES`)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def folder_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, in natural order (hidden files skipped)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image(p) and not p.name.startswith(".")),
                  key=natural_key)


def _no_images(folder: Path) -> str:
    files = [p for p in folder.iterdir() if p.is_file()]
    kinds = sorted({p.suffix.lower() or "(no suffix)" for p in files})
    found = f"{len(files)} files ({', '.join(kinds[:6])})" if files else "no files"
    return (f"{folder}: no image files in the folder (found {found}); give image files "
            f"({', '.join(sorted(IMAGE_SUFFIXES)[:6])}...), or videos by name")


def expand_inputs(args: Sequence[str], frames_as_video: bool = False) -> list[Input]:
    """The inputs of the command line's paths, in order (see the module docstring)."""
    out: list[Input] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            images = folder_images(path)
            if not images:
                out.append(Input("error", arg, _no_images(path)))
            elif frames_as_video:
                out.append(Input("frames", arg))
            else:
                out += [Input("image", str(p)) for p in images]
        elif not path.exists() and _GLOB_CHARS.search(arg):
            matches = sorted((m for m in glob.glob(arg, recursive=True) if Path(m).is_file()), key=natural_key)
            if not matches:
                out.append(Input("error", arg, f"{arg}: no file matches the pattern; check the folder and suffix"))
            out += [Input("image" if is_image(m) else "video", m) for m in matches]
        else:
            out.append(Input("image" if is_image(arg) else "video", arg))
    return out


@dataclass
class PhotoPrediction:
    """What one photo gave: the ``image`` header line, one ``emotion`` record per face, the
    overlay annotations (not serialised), a message (no face) or an error naming the file."""

    image: str
    header: dict = field(default_factory=dict)
    records: list = field(default_factory=list)
    annotations: list = field(default_factory=list)
    message: Optional[str] = None
    error: Optional[str] = None

    def lines(self) -> list[dict]:
        """The JSON-lines records of this photo: header, then one ``emotion`` line per face."""
        return [{"type": "image", "image": self.image, **self.header, "message": self.message,
                 "error": self.error}] + self.records

    def describe(self) -> list[str]:
        """The report lines of this photo (faces and classes, message, error)."""
        if self.error and not self.records:
            return [f"  {self.image}: ERROR {self.error}"]
        faces = ", ".join(f"{r['id']} {r['class']} {r['scores'][r['class']]:.2f}" for r in self.records)
        lines = [f"  {self.image}: {len(self.records)} face{'' if len(self.records) == 1 else 's'}"
                 + (f": {faces}" if faces else "")]
        lines += [f"    {self.message}"] if self.message else []
        lines += [f"    {k}: {self.header[k]}" for k in ("overlay",) if k in self.header]
        return lines + ([f"    ERROR {self.error}"] if self.error else [])


def predict_photo(predictor, path: str) -> tuple[PhotoPrediction, Optional[np.ndarray]]:
    """Every face of one photo. ``predictor`` is a :class:`zoo.predict.face.FacePredictor`.

    Returns:
        ``(result, image)``: the :class:`PhotoPrediction` (``error`` set when the image cannot be
        read; never raises for a bad file) and the uint8 [H, W, 3] RGB image as displayed (None on
        error).
    """
    try:
        rgb, info = open_image(path)
    except ImageError as exc:
        return PhotoPrediction(path, error=str(exc)), None
    h, w = rgb.shape[:2]
    result = PhotoPrediction(path, header={
        "model": predictor.model_name, "detector": predictor.detector_name, "classes": list(predictor.classes),
        "width": w, "height": h, "format": info.format, "mode": info.mode, "orientation": info.orientation})
    dets = predictor.detector.detect([rgb])[0]
    dets = dets[np.argsort(dets[:, 0], kind="stable")] if len(dets) else dets  # ids left to right
    inputs, kept = predictor.face_inputs(rgb, dets)
    for p, j in zip(predictor.classify(inputs), kept):
        box = clip_box(dets[j], h, w)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        face_id, cls = len(result.records), predictor.classes[int(np.argmax(p))]
        result.records.append({"type": "emotion", "class": cls, "scores": round_scores(p, predictor.classes),
                               "coordinates": box, "id": face_id, "confidence": round(float(dets[j, 4]), 4),
                               "image": path})
        result.annotations.append({"box": box, "id": face_id, "label": f"{face_id} {cls} {p.max():.2f}"})
    result.header["faces"] = len(result.records)
    if not result.records:
        result.message = (f"no face found in {path} (detector {predictor.detector_name}; try --detector "
                          f"{'blazeface-front' if predictor.detector_name == 'blazeface-back' else 'blazeface-back'}"
                          " or dbface-small)")
    return result, rgb


# ------------------------------------------------------------------------- folders of frames
def predict_frames(predictor, folder: str, sampling: Sampling, fps: float,
                   progress: bool = False) -> VideoPrediction:
    """A folder of frame images as one video at ``fps``: its image files in natural order are
    frames 0..N-1 (frame ``i`` at ``i / fps`` s), sampled, detected, tracked (shots, tracks and
    persons: :meth:`zoo.predict.face.FacePredictor.new_tracker`) and classified like decoded frames
    (:meth:`zoo.predict.face.FacePredictor._chunk_records`), ``CHUNK_FRAMES`` at a time; one
    ``emotion_summary`` per person (:func:`zoo.predict.face.summarise_persons`).

    Returns:
        :class:`zoo.predict.core.VideoPrediction` (``video`` = the folder); ``error`` when a frame
        cannot be read or differs in size from frame 0 (names the file; records so far kept).
    """
    from tqdm import tqdm

    files = folder_images(Path(folder))
    try:
        first = open_image(files[0])[0]
    except ImageError as exc:
        return VideoPrediction(folder, error=str(exc))
    h, w = first.shape[:2]
    plan = sampling.plan(fps, len(files))
    tracker = predictor.new_tracker()  # shots, tracks and persons, as for a decoded video
    result = VideoPrediction(folder, header={
        "model": predictor.model_name, "detector": predictor.detector_name, "classes": list(predictor.classes),
        "fps": round(fps, 4), "num_frames": len(files), "width": w, "height": h, "decoder": "images",
        "sampling": sampling.describe(), "sampled_frames": 0})
    with tqdm(total=len(plan), unit="frame", desc=Path(folder).name, disable=not progress, file=sys.stderr,
              leave=False) as bar:
        try:
            for idx, frames in frame_chunks(files, plan, (h, w)):
                predictor._chunk_records(result, idx, frames, predictor.detector.detect(frames), tracker, fps, (h, w))
                result.header["sampled_frames"] += len(idx)
                bar.update(len(idx))
        except ImageError as exc:
            result.error = str(exc)
    return predictor.finish(result, tracker, folder)


def frame_chunks(files: Sequence[Path], indices: np.ndarray, size: tuple[int, int],
                 chunk: int = CHUNK_FRAMES):
    """Yield ``(indices int64 [c], frames uint8 [c, H, W, 3] RGB)`` of the frame files ``files[i]``.

    Raises:
        ImageError: a frame cannot be read, or its size is not ``size`` (H, W).
    """
    for lo in range(0, len(indices), chunk):
        idx = np.asarray(indices[lo:lo + chunk], np.int64)
        frames = []
        for i in idx:
            frame = open_image(files[i])[0]
            if frame.shape[:2] != tuple(size):
                raise ImageError(f"{files[i]}: frame {i} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is "
                                 f"{size[1]}x{size[0]}; a folder read as a video needs one frame size")
            frames.append(frame)
        yield idx, np.stack(frames)


def frames_artefacts(result: VideoPrediction, options: Options, multiple: bool) -> None:
    """``--overlay`` (an mp4 of every frame, annotations held) and ``--sheet`` of a folder of
    frames; a failure becomes the result's ``error``."""
    from zoo import overlay

    if not result.annotations:
        return
    files = folder_images(Path(result.video))
    h, w = result.header["height"], result.header["width"]
    try:
        if options.overlay:
            target = artefact_path(options.overlay, result.video, multiple, ".mp4")
            chunks = ((int(i[0]), f) for i, f in frame_chunks(files, np.arange(len(files)), (h, w)))
            result.header["overlay"] = str(overlay.encode_overlay(chunks, result.header["fps"], (h, w),
                                                                  result.annotations, target))
        if options.sheet:
            shown, left_out = overlay.sheet_frames(list(result.annotations))
            tiles = [overlay.image_tile(open_image(files[f])[0], result.annotations[f], f"frame {f}", SHEET_TILE)
                     for f in shown]
            target = artefact_path(options.sheet, result.video, multiple, ".png")
            footer = f"{len(shown)} of {len(shown) + len(left_out)} sampled frames shown" if left_out else None
            result.header["sheet"] = str(overlay.write_tile_sheet(tiles, target, footer=footer))
            if left_out:
                result.header["sheet_left_out"] = left_out
    except (ImageError, OSError, ValueError, RuntimeError) as exc:
        result.error = result.error or f"{result.video}: overlay / sheet failed: {exc}"


# ------------------------------------------------------------------------------ the command
def artefact_path(base: str, name: str, multiple: bool, suffix: str) -> str:
    """Where the overlay / sheet of input ``name`` goes: ``base`` (its suffix set to ``suffix``)
    for one input, else ``<base stem>.<name's stem>{suffix}`` next to ``base``."""
    b = Path(base)
    if not multiple:
        return str(b.with_suffix(suffix)) if b.suffix.lower() != suffix else base
    return str(b.with_name(f"{b.stem}.{Path(name).stem}{suffix}"))


def _unique(path: str, used: set) -> str:
    stem, n = path, 2
    while path in used:
        path, n = f"{Path(stem).with_suffix('')}-{n}.png", n + 1
    used.add(path)
    return path


def predict_stills(predictor, inputs: Sequence[Input], options: Options, fps: Optional[float],
                   with_videos: bool = False) -> list:
    """Results of the non-video inputs, in order: a :class:`PhotoPrediction` per photo (overlay
    PNG each, one contact sheet for all), a :class:`zoo.predict.core.VideoPrediction` per folder of
    frames, an error result per input that names nothing readable. Never raises for a bad file.

    Args:
        predictor: a :class:`zoo.predict.face.FacePredictor` (anything else gets an error per input).
        fps: the frame rate of folders of frames (``--fps``).
        with_videos: videos are predicted in the same run (the photos' sheet is then
            ``<sheet stem>.photos.png``).
    """
    from zoo import overlay

    photos = [i for i in inputs if i.kind == "image"]
    on_sheet = set(overlay.sheet_frames(range(len(photos)), SHEET_MAX_TILES)[0]) if options.sheet else set()
    tiles, used, out, k = [], set(), [], -1
    for inp in inputs:
        if inp.kind == "error":
            out.append(VideoPrediction(inp.path, error=inp.error))
        elif getattr(predictor, "kind", None) != "face":
            what = "photos" if inp.kind == "image" else "folders of frames"
            out.append(PhotoPrediction(inp.path, error=(
                f"{inp.path}: the model {getattr(predictor, 'model_name', '')} predicts on videos only, {what} "
                "are read by face models; use a face model such as mini-xception-fer2013, or give a video")))
        elif inp.kind == "frames":
            result = predict_frames(predictor, inp.path, _frame_sampling(options.sampling), fps, options.progress)
            frames_artefacts(result, options, options.multiple)
            out.append(result)
        else:
            result, rgb = predict_photo(predictor, inp.path)
            k += 1
            if rgb is not None and k in on_sheet:
                tiles.append(overlay.image_tile(rgb, result.annotations, Path(inp.path).name, SHEET_TILE))
            if rgb is not None and options.overlay:
                _photo_overlay(result, rgb, _unique(artefact_path(options.overlay, inp.path, options.multiple,
                                                                  ".png"), used))
            out.append(result)
    if tiles:
        alone = not with_videos and not any(i.kind == "frames" for i in inputs)
        target = options.sheet if alone else artefact_path(options.sheet, "photos", True, ".png")
        _photo_sheet([r for r in out if isinstance(r, PhotoPrediction)], tiles, len(photos), target)
    return out


def _frame_sampling(sampling: Sampling) -> Sampling:
    """Sampling of a folder of frames: every ``--every``-th frame, every frame by default."""
    return Sampling(every=sampling.every or 1, fps=None, max_frames=sampling.max_frames)


def _photo_overlay(result: PhotoPrediction, rgb: np.ndarray, target: str) -> None:
    from zoo import overlay

    try:
        result.header["overlay"] = str(overlay.write_image_overlay(rgb, result.annotations, target))
    except (OSError, RuntimeError) as exc:
        result.error = result.error or f"{result.image}: overlay failed: {exc}"


def _photo_sheet(results: list, tiles: list, total: int, target: str) -> None:
    """One contact sheet of the photos at ``target``; its path goes into every photo's header."""
    from zoo import overlay

    footer = f"{len(tiles)} of {total} photos shown" if len(tiles) < total else None
    try:
        path = str(overlay.write_tile_sheet(tiles, target, footer=footer))
    except (OSError, ValueError, RuntimeError) as exc:
        results[0].error = results[0].error or f"{target}: contact sheet failed: {exc}"
        return
    for r in results:
        r.header["sheet"] = path
