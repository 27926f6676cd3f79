"""``python -m zoo.predict MODEL_OR_CHECKPOINT VIDEO...``: predict emotions on videos.

Two kinds of model:

* **face models** (``mini-xception-fer2013``): decode sampled frames through the pipeline's
  decoder interface (:class:`pipelines.decoders.FrameDecoder`, PyAV by default, ``--decoder``;
  in chunks, never the whole video; the pipeline's pixel limit and corrupt-frame refusal apply), detect faces on the whole frame with BlazeFace (back model, 256 px,
  by default: it finds the small faces of whole scenes that the front model misses), track them
  (:mod:`extractors.face_tracks`), classify each tracked face with mini-Xception on ``fer``'s
  exact crop (:func:`zoo.face_preprocess.fer_face_input`) and write one JSON line per face per
  sampled frame in the VTT format, then one summary line per track.
* **zoo checkpoints** (``checkpoint.pt`` of ``python -m zoo.train``): cut the video into the
  windows of the extraction config the checkpoint was trained on, run that config's decode
  (:func:`pipelines.decode.decode_window`, the pipeline's window plan),
  pose estimation, tracking and representation (the pipeline's own functions), classify each
  window and write per-window and per-video class probabilities.

JSON lines (``--out`` file, else stdout), per video in input order::

    {"type": "video", "video": ..., "model": ..., "detector": ..., "fps": ..., ...,
     "message": null | "no face found ...", "error": null | "..."}
    {"type": "emotion", "class": "happy", "scores": {...}, "frame": 12, "seconds": 0.4,
     "coordinates": [x1, y1, x2, y2], "id": 0, "confidence": 0.93, "video": ...}
    {"type": "emotion_summary", "video": ..., "id": 0, "class": ..., "scores": {mean}, "frames": n, ...}
    {"type": "window", ...} / {"type": "video_prediction", "class": ..., "scores": {...}, ...}

One video runs in-process; several (``--beam`` or more than ``BEAM_MIN_VIDEOS``) go through a
small Apache Beam pipeline (DirectRunner, :mod:`zoo.predict_beam`) that calls the same per-video
function. A video with no
face is a result with a message (exit 0); a missing or corrupt video is an error record naming
it, the other videos still run; the exit status is 1 only when every video failed (or any, with
``--fail-on-error``), 2 for a bad command line, model, device or output path (checked before
any video is read).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from pipelines import cli
from pipelines.decode import DEFAULT_BACKEND, DecodedWindow, VideoPlan, iter_chunks
from pipelines.decoders import BackendUnavailable, DecodeError, FrameDecoder, VideoInfo
from pipelines.sampling import plan_window, window_starts

FACE_MODELS = ("mini-xception-fer2013",)
DETECTORS = ("blazeface-back", "blazeface-front")
DEFAULT_DETECTOR = "blazeface-back"
DEFAULT_FPS = 5.0
CHUNK_FRAMES = 32
BEAM_MIN_VIDEOS = 4
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
        summary: ``emotion_summary`` per track or one ``video_prediction`` line.
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


def _scores(probs: np.ndarray, names: Sequence[str]) -> dict[str, float]:
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
# Face models
# --------------------------------------------------------------------------------------------

def fer_box(det: np.ndarray) -> tuple[int, int, int, int]:
    """Integer (x, y, w, h) of a detection, the way ``fer.FER.find_faces`` converts MTCNN boxes:
    ``[int(x1), int(y1), int(x2) - int(x1), int(y2) - int(y1)]`` (truncation toward zero)."""
    x1, y1, x2, y2 = (int(v) for v in det[:4])
    return x1, y1, x2 - x1, y2 - y1


def clip_box(det: np.ndarray, height: int, width: int) -> list[float]:
    """Box (x1, y1, x2, y2) clipped to ``[0, width] x [0, height]`` pixels, rounded to 0.1 px."""
    x1, x2 = np.clip(det[[0, 2]], 0, width)
    y1, y2 = np.clip(det[[1, 3]], 0, height)
    return [round(float(v), 1) for v in (x1, y1, x2, y2)]


class FacePredictor:
    """Face detection + tracking + mini-Xception expression classification on video frames.

    Args:
        device: torch device (``cpu``, ``cuda``).
        detector: ``blazeface-back`` (256 px input, whole scenes, default) or
            ``blazeface-front`` (128 px, faces filling much of the frame).
        iou_threshold, max_gap: face tracking settings (:class:`extractors.face_tracks.FaceTracker`).
        weights: optional path of a Keras HDF5 mini-Xception file (default: the registry's
            ``mini-xception-fer2013``).

    Raises:
        PredictError: unknown detector. Weights errors from :mod:`extractors.weights`.
    """

    kind = "face"

    def __init__(self, device: str = "cpu", detector: str = DEFAULT_DETECTOR, iou_threshold: float = 0.3,
                 max_gap: int = 5, weights: Optional[str] = None, decoder: str = DEFAULT_BACKEND):
        from extractors.blazeface import load_blazeface
        from zoo.models.mini_xception import FER2013_CLASSES, MiniXception, load_keras_hdf5, load_mini_xception

        if detector not in DETECTORS:
            raise PredictError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
        self.device, self.detector_name, self.decoder = device, detector, decoder
        self.iou_threshold, self.max_gap = iou_threshold, max_gap
        self.detector = load_blazeface(detector.split("-")[-1], device)
        if weights:
            self.model = load_keras_hdf5(MiniXception(len(FER2013_CLASSES)), weights).to(device).eval()
            self.model_name = str(weights)
        else:
            self.model = load_mini_xception(device)
            self.model_name = FACE_MODELS[0]
        self.classes = FER2013_CLASSES

    def face_inputs(self, frame_rgb: np.ndarray, dets: np.ndarray) -> tuple[list, list]:
        """fer-exact mini-Xception inputs of the faces ``dets`` [D, >=4] of one RGB frame.

        Returns:
            ``(inputs, kept)``: float32 [64, 64] arrays in [-1, 1] and the row indices of the
            detections whose crop is valid (degenerate / out-of-image boxes are dropped).
        """
        import cv2

        from zoo.face_preprocess import fer_face_input

        grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)  # = BGR2GRAY of the BGR frame
        inputs, kept = [], []
        for j, det in enumerate(dets):
            try:
                inputs.append(fer_face_input(grey, fer_box(det))[0])
                kept.append(j)
            except ValueError:
                continue
        return inputs, kept

    def classify(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """Softmax float32 [N, 7] (:data:`FER2013_CLASSES` order) of N face inputs [64, 64],
        one batched forward."""
        import torch

        if len(inputs) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        with torch.no_grad():
            x = torch.from_numpy(np.stack(inputs))[:, None].to(self.device)
            return torch.softmax(self.model(x), dim=1).cpu().numpy()

    def predict_video(self, path: str, sampling: Sampling, progress: bool = False) -> VideoPrediction:
        """Predict on the sampled frames of one video.

        Returns:
            :class:`VideoPrediction` with one ``emotion`` record per classified face per sampled
            frame and one ``emotion_summary`` per track; ``message`` set when no face was found.

        Raises:
            DecodeError: the video cannot be opened (nothing predicted). A decoding failure
            after the first chunk is returned as ``error`` with the records so far.
        """
        from tqdm import tqdm

        from extractors.blazeface import detect_faces
        from extractors.face_tracks import FaceTracker

        reader, info = open_video(path, self.decoder)
        fps, n, h, w = info.fps, info.num_frames, info.height, info.width
        plan = sampling.plan(fps, n)
        tracker = FaceTracker(self.iou_threshold, self.max_gap)
        result = VideoPrediction(path, header={
            "model": self.model_name, "detector": self.detector_name, "classes": list(self.classes),
            "fps": round(fps, 4), "num_frames": n, "width": w, "height": h, "decoder": self.decoder,
            "sampling": sampling.describe(), "sampled_frames": 0})
        with reader, tqdm(total=len(plan), unit="frame", desc=Path(path).name, disable=not progress,
                          file=sys.stderr, leave=False) as bar:
            try:
                for idx, frames in frame_chunks(reader, path, plan):
                    dets = detect_faces(self.detector, list(frames), device=self.device)
                    self._chunk_records(result, idx, frames, dets, tracker, fps, (h, w))
                    result.header["sampled_frames"] += len(idx)
                    bar.update(len(idx))
            except DecodeError as exc:
                if result.header["sampled_frames"] == 0:
                    raise
                result.error = str(exc)
        result.summary = summarise_tracks(result.records, self.classes)
        result.header.update(faces=len(result.records), tracks=len(result.summary))
        if not result.records and result.error is None:
            result.message = (f"no face found in {result.header['sampled_frames']} sampled frames of {path} "
                              f"(detector {self.detector_name})")
        return result

    def _chunk_records(self, result, idx, frames, dets, tracker, fps, hw) -> None:
        """Track, classify (one forward for the chunk) and record the faces of a chunk."""
        per_frame, inputs = [], []
        for frame, d in zip(frames, dets):
            ids = tracker.update(d)
            x, kept = self.face_inputs(frame, d)
            per_frame.append((d, ids, kept, len(inputs)))
            inputs += x
        probs = self.classify(inputs)
        for f, (d, ids, kept, first) in zip(idx, per_frame):
            f, anns = int(f), []
            for p, j in zip(probs[first:first + len(kept)], kept):
                box = clip_box(d[j], *hw)
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue
                cls = self.classes[int(np.argmax(p))]
                result.records.append({
                    "type": "emotion", "class": cls, "scores": _scores(p, self.classes), "frame": f,
                    "seconds": round(f / fps, 4), "coordinates": box, "id": int(ids[j]),
                    "confidence": round(float(d[j, 4]), 4), "video": result.video})
                anns.append({"box": box, "id": int(ids[j]), "label": f"{ids[j]} {cls} {p.max():.2f}"})
            result.annotations[f] = anns


def summarise_tracks(records: Sequence[dict], classes: Sequence[str]) -> list[dict]:
    """One ``emotion_summary`` line per track id of the ``emotion`` records of one video.

    ``scores`` is the mean of the per-frame scores, ``class`` its argmax (the dominant class),
    ``frames`` the number of sampled frames the track was seen in, ``votes`` the per-frame
    argmax counts. Tracks are listed by id.
    """
    by_id: dict[int, list[dict]] = {}
    for r in records:
        by_id.setdefault(r["id"], []).append(r)
    out = []
    for tid in sorted(by_id):
        rs = by_id[tid]
        mean = np.mean([[r["scores"][c] for c in classes] for r in rs], axis=0)
        votes = {c: sum(r["class"] == c for r in rs) for c in classes}
        out.append({"type": "emotion_summary", "video": rs[0]["video"], "id": tid,
                    "class": classes[int(np.argmax(mean))], "scores": _scores(mean, classes),
                    "frames": len(rs), "first_frame": rs[0]["frame"], "last_frame": rs[-1]["frame"],
                    "first_seconds": rs[0]["seconds"], "last_seconds": rs[-1]["seconds"],
                    "votes": {c: v for c, v in votes.items() if v}})
    return out


# --------------------------------------------------------------------------------------------
# Zoo checkpoints
# --------------------------------------------------------------------------------------------

def _find_manifest_dir(config: dict, checkpoint: Path, shards: Optional[str]) -> Path:
    repo = Path(__file__).resolve().parents[1]
    raw = shards or config.get("shards")
    if not raw:
        raise PredictError(f"{checkpoint}: the checkpoint names no shard folder; pass --shards DIR")
    for base in (Path.cwd(), checkpoint.parent, repo):
        cand = (base / raw) if not Path(raw).is_absolute() else Path(raw)
        if (cand / "manifest.json").is_file():
            return cand
    raise PredictError(
        f"{checkpoint}: the extraction config it was trained on lives in {raw}/manifest.json, which was "
        "not found (looked in the working folder, beside the checkpoint and in the repository); "
        "pass --shards DIR of that extraction run")


def extraction_config(checkpoint: dict, path: Path, shards: Optional[str] = None):
    """The :class:`pipelines.config.ExtractConfig` a zoo checkpoint was trained on.

    ``zoo.train`` stores the shard manifest's ``config`` in the checkpoint as
    ``config["manifest_config"]``; that is used when present. Older checkpoints only record their
    shard folder and the sha256 of its ``manifest.json``: the manifest is then read from
    ``shards`` (or the recorded folder, looked up from the working folder, beside the checkpoint
    and in the repository).

    Returns:
        ``(ExtractConfig, note)``; ``note`` is a warning (manifest changed since training) or None.

    Raises:
        PredictError: no manifest can be found.
    """
    import hashlib

    from pipelines.config import ExtractConfig

    config = checkpoint["config"]
    embedded = config.get("manifest_config") or config.get("extract_config")
    if embedded:
        values = dict(embedded)
        note = None
    else:
        folder = _find_manifest_dir(config, path, shards)
        try:  # only the config is needed: the shards' schema version does not matter here
            values = dict(json.loads((folder / "manifest.json").read_text())["config"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PredictError(f"{folder}/manifest.json: no readable extraction config: {exc}") from exc
        sha = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
        note = None if sha == config.get("manifest_sha256") else (
            f"{folder}/manifest.json is not the one {path} was trained on (sha256 differs); using its config")
    import dataclasses

    known = {f.name for f in dataclasses.fields(ExtractConfig)}
    values["label_names"] = tuple(values.get("label_names", ()))
    try:
        return ExtractConfig(**{k: v for k, v in values.items() if k in known}), note
    except TypeError as exc:
        raise PredictError(f"{path}: its extraction config does not fit this affectzoo: {exc}") from exc


#: Shard inputs a checkpoint may have for zoo.predict to rebuild them from a video.
BODY_INPUTS = ("videos/timeline", "videos/pose_features")


class CheckpointPredictor:
    """Per-video class probabilities of a ``zoo.train`` checkpoint on body representations
    (``videos/timeline``: ACCM; ``videos/pose_features``: the CAER pose zoo).

    The video is cut into consecutive windows of the extraction config's ``window_s`` (the last,
    shorter window is kept when it is at least half a window long, or when it is the only one);
    each window is decoded at ``sample_fps`` (:func:`pipelines.decode.decode_window`), poses are
    estimated by the pipeline's PoseNet handler, and :func:`pipelines.record.video_record`
    tracks them, picks the main person and builds the representations; the model's softmax per window
    is averaged into the video's probabilities.

    Args:
        path: ``checkpoint.pt`` (or its run folder).
        device: torch device.
        shards: the extraction folder, when the checkpoint's recorded one has moved.

    Raises:
        PredictError: not a zoo checkpoint, an input other than those above, or no
            extraction config.
    """

    kind = "checkpoint"

    def __init__(self, path: str | Path, device: str = "cpu", shards: Optional[str] = None,
                 decoder: str = DEFAULT_BACKEND):
        from extractors.handlers import PoseNetHandler
        from zoo.checkpoints import build_trained

        self.path = Path(path)
        ckpt = load_checkpoint(self.path)
        config = ckpt["config"]
        if config.get("input") not in BODY_INPUTS:
            raise PredictError(f"{self.path}: model input {config.get('input')!r} is not supported by zoo.predict "
                               f"yet (supported: {', '.join(BODY_INPUTS)})")
        self.field = config["input"].split("/", 1)[1]
        self.cfg, self.note = extraction_config(ckpt, self.path, shards)
        if getattr(self.cfg, "modality", "video") != "video":
            raise PredictError(f"{self.path}: trained on a {self.cfg.modality!r} corpus; zoo.predict runs "
                               "checkpoints of video corpora on videos")
        if self.cfg.pose_extractor != "posenet-mobilenet-v1-075":
            raise PredictError(f"{self.path}: pose extractor {self.cfg.pose_extractor!r} is not available")
        self.device, self.classes, self.decoder = device, tuple(config["label_names"]), decoder
        self.in_shape = tuple(config["in_shape"])
        try:
            spec, self.model, _ = build_trained(ckpt, device)
        except KeyError as exc:
            raise PredictError(f"{self.path}: {exc.args[0]}") from exc
        if spec.task != "multiclass":
            raise PredictError(f"{self.path}: task {spec.task!r} is not supported by zoo.predict (multiclass only)")
        self.prepare = spec.prepare
        self.model_name = f"{ckpt['model']} ({self.path})"
        self.pose = PoseNetHandler(scale_factor=self.cfg.pose_scale_factor, device=device,
                                   max_batch_size=self.cfg.max_batch_size)
        self.pose_model = self.pose.load_model()

    def windows(self, duration_s: float) -> list[float]:
        """Start times (s) of the windows of a video ``duration_s`` long."""
        return window_starts(duration_s, self.cfg.window_s)

    def window_record(self, path: str, start: float) -> tuple[dict, DecodedWindow]:
        """The pipeline's sample record of the window of ``path`` starting at ``start`` seconds.

        The window is planned and decoded as the pipeline's Decode stage does
        (:func:`pipelines.decode.decode_window`: :func:`pipelines.sampling.plan_window` over
        ``cfg.window_s`` at ``cfg.sample_fps``), poses come from the pipeline's PoseNet handler
        and :func:`pipelines.record.video_record` builds the representations, so the record's
        ``timeline`` / ``pose_features`` equal the ones the extraction stored for that window.

        Returns:
            ``(record, window)``.

        Raises:
            DecodeError: the window cannot be decoded.
        """
        from pipelines.record import video_record
        from pipelines.decode import decode_window

        win = decode_window(path, start, self.cfg.window_s, self.cfg.sample_fps, backend=self.decoder)
        frames = list(win.frames)
        poses = {}
        for s in range(0, len(frames), self.cfg.max_batch_size):
            batch = frames[s:s + self.cfg.max_batch_size]
            for i, res in enumerate(self.pose.run_inference(batch, self.pose_model), start=s):
                poses[i] = res.inference
        sample = {"sample_id": f"{path}@{start:g}", "video_id": Path(path).stem, "uri": path, "box": None}
        meta = {"sample": sample, "frame_indices": win.frame_indices, "timestamps_s": win.timestamps_s,
                "fps": win.fps}
        record, _ = video_record(meta, poses, {}, self.cfg)
        return record, win

    def _window(self, path: str, start: float) -> tuple[np.ndarray, dict, Any]:
        import torch

        with torch.no_grad():
            record, win = self.window_record(path, start)
            x = self.prepare(torch.from_numpy(np.asarray(getattr(record, self.field)))[None])
            if tuple(x.shape[1:]) != self.in_shape:
                raise PredictError(f"{self.path}: {self.field} shape {tuple(x.shape[1:])} differs from the "
                                   f"checkpoint's input {self.in_shape}")
            probs = torch.softmax(self.model(x.to(self.device)), dim=1)[0].cpu().numpy()
        return probs, record, win

    def predict_video(self, path: str, sampling: Sampling, progress: bool = False) -> VideoPrediction:
        """Per-window and per-video class probabilities of one video (``sampling`` is not used:
        the checkpoint's extraction config fixes it).

        Raises:
            DecodeError: the video cannot be opened or a window cannot be decoded.
        """
        from tqdm import tqdm

        reader, info = open_video(path, self.decoder)
        reader.close()
        fps, n, h, w = info.fps, info.num_frames, info.height, info.width
        starts = self.windows(n / fps)
        result = VideoPrediction(path, header={
            "model": self.model_name, "classes": list(self.classes), "pose": self.cfg.pose_extractor,
            "representation": f"videos/{self.field}", "window_s": self.cfg.window_s, "sample_fps": self.cfg.sample_fps,
            "fps": round(fps, 4), "num_frames": n, "width": w, "height": h, "windows": len(starts),
            "decoder": self.decoder})
        all_probs = []
        for i, start in enumerate(tqdm(starts, unit="window", desc=Path(path).name, disable=not progress,
                                       file=sys.stderr, leave=False)):
            probs, record, win = self._window(path, start)
            all_probs.append(probs)
            cls = self.classes[int(np.argmax(probs))]
            result.records.append({
                "type": "window", "video": path, "window": i, "start_s": round(start, 4),
                "end_s": round(start + self.cfg.window_s, 4), "first_frame": int(win.frame_indices[0]),
                "last_frame": int(win.frame_indices[-1]), "class": cls, "scores": _scores(probs, self.classes),
                "persons_max": int(record.persons.max(initial=0))})
            for f, kp in zip(win.frame_indices, record.keypoints):
                result.annotations[int(f)] = [{"box": None, "id": 0, "keypoints": kp,
                                               "label": f"window {i}: {cls} {probs.max():.2f}"}]
        mean = np.mean(all_probs, axis=0)
        result.summary = [{"type": "video_prediction", "video": path, "class": self.classes[int(np.argmax(mean))],
                           "scores": _scores(mean, self.classes), "windows": len(all_probs)}]
        return result


def load_checkpoint(path: Path) -> dict:
    """:func:`zoo.checkpoints.read_checkpoint` with its errors as :class:`PredictError`."""
    from zoo.checkpoints import read_checkpoint

    try:
        return read_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise PredictError(str(exc)) from exc


def unknown_model_message(model: str) -> str:
    """Why ``model`` names no face model and no file, with a "did you mean" hint: a zoo.train
    model name is told to train first (zoo.predict takes the checkpoint it writes)."""
    looks_like_path = any(sep in model for sep in ("/", "\\")) or Path(model).suffix.lower() in (".pt", ".hdf5", ".h5")
    if looks_like_path:
        return f"{model}: no such checkpoint or model file"
    from zoo.registry import MODELS as MODEL_NAMES  # only on this error path (imports torch)

    if model in MODEL_NAMES:
        return (f"{model!r} is a zoo.train model: train it first (python -m zoo.train {model}), then predict with "
                f"its checkpoint (python -m zoo.predict runs/{model}/latest/checkpoint.pt VIDEO)")
    msg = cli.unknown("model", model, FACE_MODELS + tuple(MODEL_NAMES),
                      listing=f"face models: {', '.join(FACE_MODELS)}, or a zoo.train checkpoint.pt / run folder")
    return msg


def load_predictor(model: str, device: str = "cpu", detector: str = DEFAULT_DETECTOR,
                   shards: Optional[str] = None, decoder: str = DEFAULT_BACKEND):
    """A :class:`FacePredictor` or :class:`CheckpointPredictor` for a model name or file.

    Args:
        model: ``mini-xception-fer2013``; a Keras ``.hdf5`` mini-Xception file; a
            ``checkpoint.pt`` of ``zoo.train`` or its run folder.
        decoder: decoder back-end (:data:`pipelines.decoders.DECODER_BACKENDS`).

    Raises:
        PredictError: unknown name / missing file / unusable checkpoint / CUDA asked for but
            absent.
    """
    problem = cli.check_device(device)
    if problem:
        raise PredictError(problem)
    path = Path(model)
    if model in FACE_MODELS:
        return FacePredictor(device, detector, decoder=decoder)
    if path.suffix.lower() in (".hdf5", ".h5") and path.is_file():
        return FacePredictor(device, detector, weights=str(path), decoder=decoder)
    if path.exists():
        return CheckpointPredictor(path, device, shards, decoder=decoder)
    raise PredictError(unknown_model_message(model))


# --------------------------------------------------------------------------------------------
# One video, many videos
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """Per-video options: sampling, progress, and where overlays / sheets go (None = none)."""

    sampling: Sampling = Sampling()
    overlay: Optional[str] = None
    sheet: Optional[str] = None
    progress: bool = False
    multiple: bool = False

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


def predict_one(predictor, video: str, options: Options) -> VideoPrediction:
    """Predict one video and write its overlay / contact sheet; failures become ``error``.

    With several videos, ``--overlay out.mp4`` becomes ``out.<video stem>.mp4`` per video (same
    for ``--sheet``). Overlay and sheet can both be asked for in one run.

    Returns:
        :class:`VideoPrediction` (never raises for a bad video: ``error`` names the file).
    """
    from zoo import overlay

    try:
        result = predictor.predict_video(video, options.sampling, options.progress)
    except (DecodeError, BackendUnavailable, OSError, ValueError, RuntimeError) as exc:
        msg = str(exc) if video in str(exc) else f"{video}: {exc}"
        return VideoPrediction(video, error=msg)
    decoder = getattr(predictor, "decoder", DEFAULT_BACKEND)
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


def predict_many_beam(model: str, videos: Sequence[str], options: Options, device: str = "cpu",
                      detector: str = DEFAULT_DETECTOR, shards: Optional[str] = None,
                      decoder: str = DEFAULT_BACKEND) -> list[VideoPrediction]:
    """Predict several videos through an Apache Beam pipeline (DirectRunner), one element per
    video, with :func:`predict_one` (:func:`zoo.predict_beam.predict_many`). Results come back in
    input order.

    Raises:
        PredictError: the model cannot be loaded (checked once in the driver first).
    """
    from zoo.predict_beam import predict_many

    load_predictor(model, device, detector, shards, decoder)  # fail fast on a bad model, before Beam starts
    return predict_many(model, videos, options, device, detector, shards, decoder)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

#: Decoder back-ends offered on the command line (as ``pipelines.extract --decoder``).
DECODERS = ("pyav", "decord", "opencv")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m zoo.predict", description=__doc__.split("\n")[0],
                                 formatter_class=cli.HelpFormatter)
    ap.add_argument("model", help=f"face model ({', '.join(FACE_MODELS)}), a Keras .hdf5 mini-Xception file, "
                                  "or a zoo.train checkpoint.pt / run folder")
    ap.add_argument("videos", nargs="+", help="video files")
    ap.add_argument("--out", default=None, help="JSON-lines output file (default: stdout)")
    ap.add_argument("--overlay", default=None, metavar="MP4",
                    help="write an annotated video (H.264 when FFmpeg has an encoder; several videos: MP4.<video>.mp4)")
    ap.add_argument("--sheet", default=None, metavar="PNG",
                    help="write a contact sheet of the annotated sampled frames (several videos: PNG.<video>.png)")
    samp = ap.add_mutually_exclusive_group()
    samp.add_argument("--every", type=int, default=None, metavar="N", help="predict on every N-th frame")
    samp.add_argument("--fps", type=float, default=None,
                      help=f"predict on F frames per second (default {DEFAULT_FPS:g})")
    ap.add_argument("--max-frames", type=int, default=None, metavar="N",
                    help="at most N sampled frames per video (default: all)")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    ap.add_argument("--torch-threads", type=int, default=None, metavar="N",
                    help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                    help="face detector of face models: back = whole scenes, front = close-ups")
    ap.add_argument("--decoder", default=DEFAULT_BACKEND, choices=DECODERS,
                    help="video decoder back-end (pipelines.decoders; the same frames from each)")
    ap.add_argument("--shards", default=None, help="extraction folder of a checkpoint, if it has moved")
    ap.add_argument("--beam", action="store_true",
                    help=f"use the Beam pipeline (automatic above {BEAM_MIN_VIDEOS} videos)")
    ap.add_argument("--fail-on-error", action="store_true", help="exit 1 if any video failed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    cli.add_verbose(ap)
    args = ap.parse_args(argv)
    if args.every is not None and args.every < 1:
        ap.error("--every must be >= 1")
    if args.fps is not None and args.fps <= 0:
        ap.error("--fps must be > 0")
    if args.max_frames is not None and args.max_frames < 1:
        ap.error("--max-frames must be >= 1")
    if args.torch_threads is not None and args.torch_threads < 1:
        ap.error("--torch-threads must be >= 1")
    return args


def _describe(result: VideoPrediction) -> list[str]:
    h = result.header
    if result.error and not result.records:
        return [f"  {result.video}: ERROR {result.error}"]
    lines = []
    if "detector" in h:
        lines.append(f"  {result.video}: {h['sampled_frames']} of {h['num_frames']} frames sampled, "
                     f"{_count(h['faces'], 'face')}, {_count(h['tracks'], 'track')}")
        for s in result.summary:
            lines.append(f"    track {s['id']}: {s['class']} ({s['scores'][s['class']]:.2f} mean), "
                         f"{_count(s['frames'], 'frame')}, frames {s['first_frame']}-{s['last_frame']}")
    else:
        lines.append(f"  {result.video}: {_count(h['windows'], 'window')} of {h['window_s']:g} s")
        for s in result.summary:
            top = sorted(s["scores"].items(), key=lambda kv: -kv[1])
            lines.append("    " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    if result.message:
        lines.append(f"    {result.message}")
    if result.error:
        lines.append(f"    ERROR (partial result) {result.error}")
    for key in ("overlay", "sheet"):
        if key in h:
            lines.append(f"    {key}: {h[key]}")
    if h.get("sheet_left_out"):
        lines.append(f"    sheet leaves out frames {', '.join(map(str, h['sheet_left_out']))}")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def check_outputs(args) -> Optional[str]:
    """The first problem with ``--out`` / ``--overlay`` / ``--sheet`` (None when all can be written)."""
    for flag in ("out", "overlay", "sheet"):
        problem = cli.check_writable_file(getattr(args, flag), f"--{flag}")
        if problem:
            return problem
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.quiet_library_logs(args.verbose)
    from pipelines.decoders import backend_status

    problem = (cli.check_device(args.device) or check_outputs(args)
               or (f"--decoder {args.decoder}: {backend_status()[args.decoder]}"
                   if backend_status()[args.decoder] else None))
    if problem:
        return cli.fail(problem)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    sampling = Sampling(every=args.every, fps=None if args.every else (args.fps or DEFAULT_FPS),
                        max_frames=args.max_frames)
    options = Options(sampling, args.overlay, args.sheet, not args.no_progress, len(args.videos) > 1)
    use_beam = args.beam or len(args.videos) > BEAM_MIN_VIDEOS
    try:
        if use_beam:
            results = predict_many_beam(args.model, args.videos, options, args.device, args.detector, args.shards,
                                        args.decoder)
            note = None
        else:
            predictor = load_predictor(args.model, args.device, args.detector, args.shards, args.decoder)
            note = getattr(predictor, "note", None)
            results = [predict_one(predictor, v, options) for v in args.videos]
    except PredictError as exc:
        return cli.fail(str(exc))
    except KeyboardInterrupt:
        return cli.interrupted()
    lines = [json.dumps(line) for r in results for line in r.lines()]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("".join(line + "\n" for line in lines))
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))
    report = sys.stdout if args.out else sys.stderr
    head = next((r.header for r in results if "detector" in r.header), {})
    detector = f" (detector {head['detector']}, {head['sampling']})" if head else ""
    print(f"zoo.predict {args.model}" + detector
          + f", device {args.device}, decoder {args.decoder}" + (", Beam DirectRunner" if use_beam else ""),
          file=report)
    if note:
        print(f"  warning: {note}", file=report)
    for r in results:
        print("\n".join(_describe(r)), file=report)
    failed = [r for r in results if r.error]
    if args.out:
        print(f"wrote {_count(len(lines), 'line')} to {args.out}", file=report)
    if failed:
        print(f"{len(failed)} of {_count(len(results), 'video')} failed", file=report)
    if failed and (len(failed) == len(results) or args.fail_on_error):
        return 1
    return 0


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: everything a Beam worker unpickles
    # must refer to ``zoo.predict``, never to ``__main__``.
    from zoo.predict import main as _main

    sys.exit(_main())
