"""Gait emotion of every walking person of a video (seed 000): BlazePose 3-D joints -> ProxEmo
embedding -> VS-GCNN (``python -m zoo.predict proxemo-vsgcnn VIDEO``).

Per video:

1. frames decoded in chunks of 32 through :mod:`zoo.predict.core` (every frame: a gait window is
   31 *consecutive* frames; ``--every N`` takes every N-th, ``--max-frames`` the first K);
2. :mod:`extractors.blazepose` (``blazepose-ghum``) on each chunk: every person's 33 landmarks
   with metric world coordinates;
3. one person id per walker: :class:`extractors.identity.PersonTracker` (``kind="body"``) on the
   boxes of the landmarks (visibility >= 0.5), one shot;
4. per person, consecutive non-overlapping windows of :data:`pipelines.represent.gait.GAIT_WINDOW`
   = 31 sampled frames in which the person is seen in at least 80 % (gaps interpolated):
   :func:`pipelines.represent.gait.gait_from_blazepose` (16 ProxEmo joints, y up, root-centred,
   height-normalised), pose_emotion's tiling of short gaits, its four inference views
   (0 / 90 / 180 / 270 degrees) and ProxEmo's image embedding;
5. VS-GCNN scores of the four views -> emotion probabilities
   (:func:`zoo.models.vsgcnn.predict_emotion`: softmax over the 16 outputs, summed over the view
   groups, averaged over the views).

Lines: ``{"type": "window", "person", "start_frame", "end_frame", "seconds", "end_seconds",
"frames_seen", "class", "scores": {angry, happy, sad, neutral}}`` per person per window, then
``{"type": "emotion_summary", "person", "class", "scores" (mean over the windows), "windows",
"first_frame", "last_frame"}`` per person. No labelled walking video exists here: these are the
model's outputs, not validated emotions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipelines.decode import DEFAULT_BACKEND
from pipelines.represent.gait import GAIT_WINDOW, MIN_VISIBLE_FRAMES, gait_from_blazepose, tile_short_gait
from zoo.predict.core import Sampling, VideoPrediction, frame_chunks, open_video, round_scores

__all__ = ["GaitPredictor", "EXTRACTOR", "MIN_VISIBILITY", "is_gait_checkpoint", "load_gait_predictor"]

EXTRACTOR = "blazepose-ghum"
MIN_VISIBILITY = 0.5


@dataclass
class _Walker:
    """One person's landmarks by sampled position (index into the sampled frames)."""

    keypoints: dict = field(default_factory=dict)


class GaitPredictor:
    """A VS-GCNN (the pretrained ProxEmo one or a ``zoo.train vsgcnn`` network) on the walkers of
    a video (see the module docstring).

    Args:
        network: a VS-GCNN in eval mode on ``device``.
        names: emotion names in output order (ProxEmo's: angry, happy, sad, neutral).
        model_name: what the header calls the model.
        device: torch device of the network and of BlazePose.
        decoder: decoder back-end.
    """

    kind = "gait"

    def __init__(self, network, names: Sequence[str], model_name: str, device: str = "cpu",
                 decoder: str = DEFAULT_BACKEND):
        from extractors import registry

        self.network, self.names, self.model_name = network, tuple(names), model_name
        self.device, self.decoder = device, decoder
        self.extractor = registry.resolve(EXTRACTOR, role="pose")
        self.pose_model = self.extractor.load(device)
        self.note = None

    def _plan(self, sampling: Sampling, num_frames: int) -> np.ndarray:
        step = int(sampling.every) if sampling.every else 1
        idx = np.arange(0, num_frames, step, dtype=np.int64)
        return idx[: sampling.max_frames] if sampling.max_frames else idx

    def _walkers(self, path: str, indices: np.ndarray, progress: bool
                 ) -> tuple[dict[int, _Walker], dict[int, list]]:
        """Pose, track and collect landmarks: ``({person: _Walker}, {frame: [annotation]})``."""
        from extractors.identity import PersonTracker, pose_boxes

        tracker = PersonTracker(kind="body")
        walkers: dict[int, _Walker] = {}
        annotations: dict[int, list] = {}
        decoder, _ = open_video(path, self.decoder)
        pos = 0
        try:
            for idx, frames in frame_chunks(decoder, path, indices):
                for f, (scores, kps) in zip(idx, self.extractor.infer(self.pose_model, frames, self.device)):
                    boxes = pose_boxes(kps[..., :3], MIN_VISIBILITY) if len(kps) else np.zeros((0, 4))
                    ok = np.isfinite(boxes).all(axis=1)
                    _, persons = tracker.update(0, boxes[ok], scores[ok])
                    for p, kp, box in zip(persons, kps[ok], boxes[ok]):
                        if p < 0:
                            continue
                        walkers.setdefault(int(p), _Walker()).keypoints[pos] = kp
                        annotations.setdefault(int(f), []).append(
                            {"box": box.tolist(), "label": f"person {p}", "id": int(p),
                             "keypoints": kp[:, :3].copy()})
                    pos += 1
        finally:
            decoder.close()
        return walkers, annotations

    def _classify(self, gait: np.ndarray) -> np.ndarray:
        from pipelines.represent.embedding import view_embeddings
        from zoo.models.vsgcnn import predict_emotion

        views, _ = view_embeddings(tile_short_gait(gait), mode="inference")
        return predict_emotion(self.network, views, self.names)[1]

    def _windows(self, person: int, walker: _Walker, indices: np.ndarray, fps: float) -> list[dict]:
        seen = sorted(walker.keypoints)
        records = []
        start = seen[0]
        while start + GAIT_WINDOW <= len(indices):
            span = range(start, start + GAIT_WINDOW)
            count = sum(p in walker.keypoints for p in span)
            if count >= MIN_VISIBLE_FRAMES * GAIT_WINDOW:
                kp = np.stack([walker.keypoints.get(p, np.full((33, 8), np.nan, np.float32)) for p in span])
                probs = self._classify(gait_from_blazepose(kp))
                first, last = int(indices[span[0]]), int(indices[span[-1]])
                records.append({"type": "window", "person": person, "start_frame": first, "end_frame": last,
                                "seconds": round(first / fps, 3), "end_seconds": round(last / fps, 3),
                                "frames_seen": count, "class": self.names[int(np.argmax(probs))],
                                "scores": round_scores(probs, self.names)})
                start += GAIT_WINDOW
            else:
                later = [p for p in seen if p > start]
                if not later:
                    break
                start = later[0]
        return records

    def predict_video(self, path: str, sampling: Sampling, progress: bool = False) -> VideoPrediction:
        """Predict every walker's gait emotion in ``path`` (see the module docstring).

        Raises:
            DecodeError: the video cannot be decoded (the message names it).
        """
        decoder, info = open_video(path, self.decoder)
        decoder.close()
        indices = self._plan(sampling, info.num_frames)
        walkers, annotations = self._walkers(path, indices, progress)
        records, summary = [], []
        for person in sorted(walkers):
            windows = self._windows(person, walkers[person], indices, info.fps)
            records += windows
            if windows:
                summary.append(self._summary(path, person, windows))
        self._label(annotations, records)
        header = {"model": self.model_name, "extractor": EXTRACTOR, "fps": info.fps,
                  "num_frames": info.num_frames, "sampled_frames": int(len(indices)),
                  "sampling": f"every {int(sampling.every or 1)} frame(s)", "window_frames": GAIT_WINDOW,
                  "window_s": round(GAIT_WINDOW * int(sampling.every or 1) / info.fps, 3),
                  "windows": len(records), "persons": len(summary), "walkers_seen": len(walkers)}
        message = None if records else (
            f"no walking person seen for {GAIT_WINDOW} frames ({len(walkers)} person(s) detected)")
        for r in records:
            r["video"] = path
        return VideoPrediction(path, header, records, summary, annotations, message)

    def _summary(self, path: str, person: int, windows: list[dict]) -> dict:
        mean = np.mean([[w["scores"][n] for n in self.names] for w in windows], axis=0)
        return {"type": "emotion_summary", "video": path, "person": person,
                "class": self.names[int(np.argmax(mean))], "scores": round_scores(mean, self.names),
                "windows": len(windows), "first_frame": windows[0]["start_frame"],
                "last_frame": windows[-1]["end_frame"]}

    @staticmethod
    def _label(annotations: dict[int, list], records: list[dict]) -> None:
        """Put each window's class on the skeletons of its frames."""
        for r in records:
            for f, anns in annotations.items():
                if r["start_frame"] <= f <= r["end_frame"]:
                    for a in anns:
                        if a["id"] == r["person"]:
                            a["label"] = f"person {r['person']} {r['class']} {r['scores'][r['class']]:.2f}"


def is_gait_checkpoint(path) -> bool:
    """Whether ``path`` (a ``checkpoint.pt`` or run folder) is a ``zoo.train vsgcnn`` checkpoint."""
    from zoo.checkpoints import CheckpointError, read_checkpoint

    try:
        return read_checkpoint(path)["model"] == "vsgcnn"
    except (CheckpointError, OSError):
        return False


def load_gait_predictor(model: str, device: str = "cpu", decoder: str = DEFAULT_BACKEND) -> GaitPredictor:
    """The predictor of the pretrained ``proxemo-vsgcnn`` (ProxEmo's checkpoint), or of a
    ``zoo.train vsgcnn`` checkpoint (``checkpoint.pt`` or run folder: its network and label names).

    Raises:
        WeightsNotFoundError / WeightsChecksumError; CheckpointError / KeyError for a bad checkpoint.
    """
    from zoo.models.vsgcnn import PROXEMO_EMOTIONS, load_proxemo_vsgcnn

    if model == "proxemo-vsgcnn":
        return GaitPredictor(load_proxemo_vsgcnn(device), PROXEMO_EMOTIONS, model, device, decoder)
    from zoo.checkpoints import build_trained, read_checkpoint

    _, network, config = build_trained(read_checkpoint(model), device)
    return GaitPredictor(network, config["label_names"], f"vsgcnn ({model})", device, decoder)
