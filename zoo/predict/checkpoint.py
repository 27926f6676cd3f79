"""Checkpoint prediction of ``python -m zoo.predict``: a ``zoo.train`` checkpoint on the
pipeline's windows.

The video is cut into the windows of the extraction config the checkpoint was trained on; each
window is decoded (:func:`pipelines.decode.decode_window`, the pipeline's window plan), its
poses estimated, tracked and turned into the representation the model takes
(:func:`pipelines.record.video_record`, the pipeline's own functions); the model classifies each
window and the window probabilities are averaged into the video's.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pipelines.decode import DEFAULT_BACKEND, DecodedWindow
from pipelines.sampling import window_starts
from zoo.predict.core import PredictError, Sampling, VideoPrediction, open_video, round_scores


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
    from pipelines.config import ExtractConfig
    from pipelines.shardset import ShardSet

    config = checkpoint["config"]
    embedded = config.get("manifest_config") or config.get("extract_config")
    if embedded:
        values = dict(embedded)
        note = None
    else:
        folder = _find_manifest_dir(config, path, shards)
        try:  # only the config is needed: the shards' schema version does not matter here
            shard_set = ShardSet(folder, check_version=False)
            values = dict(shard_set.manifest["config"])
            sha = shard_set.manifest_sha256()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PredictError(f"{folder}/manifest.json: no readable extraction config: {exc}") from exc
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
        from extractors.handlers import ExtractorHandler
        from extractors.registry import UnknownExtractorError, resolve
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
        try:
            pose = resolve(self.cfg.pose_extractor, role="pose")
        except UnknownExtractorError as exc:
            raise PredictError(f"{self.path}: pose extractor {self.cfg.pose_extractor!r} is not available: {exc}") from None
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
        self.pose = ExtractorHandler(pose.name, device=device, max_batch_size=self.cfg.max_batch_size,
                                     **pose.options_from(self.cfg))
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
        from pipelines.persons import identify
        from pipelines.record import video_record
        from pipelines.decode import decode_window
        from extractors.registry import to_coco17

        win = decode_window(path, start, self.cfg.window_s, self.cfg.sample_fps, backend=self.decoder)
        frames = list(win.frames)
        poses = {}
        for s in range(0, len(frames), self.cfg.max_batch_size):
            batch = frames[s:s + self.cfg.max_batch_size]
            for i, res in enumerate(self.pose.run_inference(batch, self.pose_model), start=s):
                scores, keypoints = res.inference
                poses[i] = (scores, to_coco17(keypoints, self.pose.entry.keypoint_layout))
        sample = {"sample_id": f"{path}@{start:g}", "video_id": Path(path).stem, "uri": path, "box": None}
        meta = {"sample": sample, "frame_indices": win.frame_indices, "timestamps_s": win.timestamps_s,
                "fps": win.fps}
        identity = identify([poses[i] for i in range(len(frames))], frames, self.cfg.min_keypoint_score)
        record, _ = video_record(meta, poses, {}, self.cfg, identity)
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
                "last_frame": int(win.frame_indices[-1]), "class": cls, "scores": round_scores(probs, self.classes),
                "persons_max": int(record.persons.max(initial=0))})
            for f, kp in zip(win.frame_indices, record.keypoints):
                result.annotations[int(f)] = [{"box": None, "id": 0, "keypoints": kp,
                                               "label": f"window {i}: {cls} {probs.max():.2f}"}]
        mean = np.mean(all_probs, axis=0)
        result.summary = [{"type": "video_prediction", "video": path, "class": self.classes[int(np.argmax(mean))],
                           "scores": round_scores(mean, self.classes), "windows": len(all_probs)}]
        return result


def load_checkpoint(path: Path) -> dict:
    """:func:`zoo.checkpoints.read_checkpoint` with its errors as :class:`PredictError`."""
    from zoo.checkpoints import read_checkpoint

    try:
        return read_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise PredictError(str(exc)) from exc

