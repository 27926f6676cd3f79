"""The shared core of ``python -m zoo.predict``: options, results and one video.

* :class:`Sampling` (which frames a face model sees) and :class:`Options` (sampling, progress,
  overlay / contact-sheet targets);
* :class:`VideoPrediction`, what one video gave (header, records, summary, overlay annotations);
* :func:`open_video` / :func:`frame_chunks`: the pipeline's decoder interface
  (:class:`pipelines.decoders.FrameDecoder`: file checks, pixel limit, corrupt-frame refusal),
  in chunks, never the whole video;
* :func:`predict_one`: one predictor on one video, overlay and sheet included; a bad video is an
  ``error`` result, never an exception.

A *predictor* is anything with ``predict_video(path, sampling, progress) -> VideoPrediction``
(:class:`zoo.predict.face.FacePredictor`, :class:`zoo.predict.checkpoint.CheckpointPredictor`;
:func:`zoo.predict.load.load_predictor` picks one by model name or file). This module imports
none of them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from pipelines.decode import DEFAULT_BACKEND, VideoPlan, iter_chunks
from pipelines.decoders import BackendUnavailable, DecodeError, FrameDecoder, VideoInfo
from pipelines.sampling import plan_window

DEFAULT_FPS = 5.0
CHUNK_FRAMES = 32
SCORE_DIGITS = 6


class PredictError(ValueError):
    """A model, checkpoint or option that zoo.predict cannot use; the message says why."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class VideoPrediction:
    """What one video gave.

    Attributes:
        video: the path as given.
        header: the ``{"type": "video", ...}`` line (model, detector, fps, frames, counts).
        records: ``emotion`` (face models) or ``window`` (checkpoints) lines.
        summary: ``emotion_summary`` per person or one ``video_prediction`` line.
        annotations: ``{frame index: [annotation]}`` for :mod:`zoo.overlay` (not serialised
            to the JSON lines).
        message: a note such as "no face found" (not an error), or None.
        error: why the video failed (names the file), or None.
    """

    video: str
    header: dict = field(default_factory=dict)
    records: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    annotations: dict = field(default_factory=dict)
    message: Optional[str] = None
    error: Optional[str] = None

    def lines(self) -> list[dict]:
        """The JSON-lines records of this video: header, then records, then summary."""
        head = {"type": "video", "video": self.video, **self.header, "message": self.message, "error": self.error}
        return [head] + self.records + self.summary

    def vtt_lines(self, with_video: bool = False) -> list[dict]:
        """The VTT form of the face lines: ``{"type": "emotion", "class", "seconds", "object"}``
        per face per sampled frame, ``object`` = the person id (``"video"`` added when
        ``with_video``); nothing for checkpoint results (no faces)."""
        return [{"type": "emotion", "class": r["class"], "seconds": r["seconds"], "object": r["person"],
                 **({"video": self.video} if with_video else {})}
                for r in self.records if r.get("type") == "emotion" and "person" in r]

    def to_json(self) -> str:
        """Serialise everything but ``annotations`` keys' numpy arrays (lists instead)."""
        d = asdict(self)
        d["annotations"] = {str(k): [_jsonable_annotation(a) for a in v] for k, v in self.annotations.items()}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "VideoPrediction":
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        d["annotations"] = {int(k): v for k, v in d["annotations"].items()}
        return cls(**d)


def _jsonable_annotation(a: dict) -> dict:
    return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in a.items()}


def round_scores(probs: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """``{class name: probability}`` rounded to :data:`SCORE_DIGITS` digits (the JSON lines' scores)."""
    return {n: round(float(p), SCORE_DIGITS) for n, p in zip(names, probs)}


# --------------------------------------------------------------------------------------------
# Decoding in chunks
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sampling:
    """Which frames of a video to predict on.

    Exactly one of ``every`` (every N-th frame: 0, N, 2N, ...) or ``fps`` (frames shown at
    ``i / fps`` seconds, :func:`pipelines.sampling.plan_window`) is used; ``every`` wins when
    both are set. ``max_frames`` keeps only the first K sampled frames.
    """

    every: Optional[int] = None
    fps: Optional[float] = DEFAULT_FPS
    max_frames: Optional[int] = None

    def plan(self, video_fps: float, num_frames: int) -> np.ndarray:
        """int64 [S] increasing 0-based frame indices to sample."""
        if self.every:
            idx = np.arange(0, num_frames, int(self.every), dtype=np.int64)
        else:
            idx = np.unique(plan_window(0.0, num_frames / video_fps, float(self.fps), video_fps, num_frames))
        idx = idx.astype(np.int64)
        return idx[: self.max_frames] if self.max_frames else idx

    def describe(self) -> str:
        """Human-readable sampling, e.g. ``every 6th frame`` or ``5 fps``."""
        rule = f"every {self.every} frames" if self.every else f"{self.fps:g} fps"
        return rule + (f", first {self.max_frames}" if self.max_frames else "")


def open_video(path: str, backend: str = DEFAULT_BACKEND) -> tuple[FrameDecoder, VideoInfo]:
    """Open ``path`` with a decoder back-end of :mod:`pipelines.decoders` (the pipeline's
    interface: file checks, the frame-size limit :data:`pipelines.decoders.MAX_FRAME_PIXELS`, and
    for PyAV the refusal of frames FFmpeg marks corrupt).

    Returns:
        ``(decoder, info)``: the open :class:`pipelines.decoders.FrameDecoder` (close it) and its
        :class:`pipelines.decoders.VideoInfo`.

    Raises:
        DecodeError: the file is missing, unreadable, too large, has no video stream or no
            usable fps. BackendUnavailable: the back-end's package is missing.
    """
    from pipelines.decoders import make_decoder

    decoder = make_decoder(backend)
    info = decoder.open(str(path))
    if not np.isfinite(info.fps) or info.fps <= 0:
        decoder.close()
        raise DecodeError(f"{path}: no usable video stream (fps={info.fps}, frames={info.num_frames})")
    return decoder, info


def frame_chunks(decoder: FrameDecoder, path: str, indices: np.ndarray,
                 chunk: int = CHUNK_FRAMES) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(indices int64 [c], frames uint8 [c, H, W, 3] RGB)`` for ``chunk`` frames at a
    time (:func:`pipelines.decode.iter_chunks` on an open decoder).

    Raises:
        DecodeError: decoding a chunk failed (the message names the file and frames).
    """
    info = decoder.info
    plan = VideoPlan(str(path), info.fps, info.num_frames, np.asarray(indices), info.width, info.height)
    for lo, frames in iter_chunks(decoder, plan, chunk):
        yield np.asarray(indices[lo:lo + len(frames)], np.int64), frames


# --------------------------------------------------------------------------------------------
# One video
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """Per-video options: sampling, progress, where overlays / sheets go (None = none), and the
    pose extractor that joins faces to bodies (``body``, face models only; None = none)."""

    sampling: Sampling = Sampling()
    overlay: Optional[str] = None
    sheet: Optional[str] = None
    progress: bool = False
    multiple: bool = False
    body: Optional[str] = None

    def to_dict(self) -> dict:
        """Plain values (for a Beam DoFn: nothing of this module's classes is pickled)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Options":
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "sampling": Sampling(**d["sampling"])})


def _artefact_path(base: str, video: str, multiple: bool) -> str:
    if not multiple:
        return base
    b = Path(base)
    return str(b.with_name(f"{b.stem}.{Path(video).stem}{b.suffix}"))


def truncation_note(video: str, backend: str = DEFAULT_BACKEND) -> Optional[str]:
    """A note when the video's header declares clearly more frames than it holds packets (a
    cut-off download): its frames that do decode were predicted, the rest is missing
    (:func:`pipelines.decoders.looks_truncated`). None otherwise, or when it does not open."""
    from pipelines.decoders import looks_truncated

    try:
        reader, info = open_video(video, backend)
    except (DecodeError, BackendUnavailable, OSError, ValueError):
        return None
    reader.close()
    if not looks_truncated(info.declared_frames, info.packets or info.num_frames):
        return None
    return (f"{video}: truncated: the header declares {info.declared_frames} frames, the file holds "
            f"{info.packets or info.num_frames} packets; predicted from the {info.num_frames} frames that decode")


def predict_one(predictor, video: str, options: Options) -> VideoPrediction:
    """Predict one video and write its overlay / contact sheet; failures become ``error``.

    With several videos, ``--overlay out.mp4`` becomes ``out.<video stem>.mp4`` per video (same
    for ``--sheet``). Overlay and sheet can both be asked for in one run.

    Returns:
        :class:`VideoPrediction` (never raises for a bad video: ``error`` names the file).
    """
    from zoo import overlay

    body = getattr(options, "body", None)
    if body and getattr(predictor, "kind", None) != "face":
        return VideoPrediction(video, error=f"{video}: --body joins faces to bodies: it needs a face model")
    try:
        result = predictor.predict_video(video, options.sampling, options.progress,
                                         **({"body": body} if body else {}))
    except (DecodeError, BackendUnavailable, OSError, ValueError, RuntimeError) as exc:
        msg = str(exc) if video in str(exc) else f"{video}: {exc}"
        return VideoPrediction(video, error=msg)
    decoder = getattr(predictor, "decoder", DEFAULT_BACKEND)
    note = truncation_note(video, decoder)
    if note:
        result.message = f"{result.message}; {note}" if result.message else note
    for key, base, write in (("overlay", options.overlay, overlay.write_overlay),
                             ("sheet", options.sheet, overlay.write_contact_sheet)):
        if not base or not result.annotations:
            continue
        try:
            target = _artefact_path(base, video, options.multiple)
            path = write(video, result.annotations, target, decoder=decoder)
            result.header[key] = str(path)
            if key == "sheet":
                left_out = overlay.sheet_frames(list(result.annotations))[1]
                if left_out:
                    result.header["sheet_left_out"] = left_out
        except (DecodeError, BackendUnavailable, OSError, ValueError, RuntimeError) as exc:
            result.error = result.error or f"{video}: {key} failed: {exc}"
    return result

