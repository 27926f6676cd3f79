"""Shot-aware tracking and person ids: one person is one person over a whole video.

:class:`PersonTracker` takes the detections of each sampled frame (face or body boxes, their
detector scores, optionally appearance descriptors of :mod:`extractors.appearance`) and the shot
index of the frame (:mod:`extractors.shots`) and returns two ids per detection:

- a **track id**: one continuous run of one person inside one shot. Motion is a constant-velocity
  Kalman filter on (centre x, centre y, aspect ratio, height) with noise scaled by the box height
  (N. Wojke, A. Bewley, D. Paulus, "Simple Online and Realtime Tracking with a Deep Association
  Metric" (DeepSORT), ICIP 2017, ``deep_sort/kalman_filter.py``), run with ``cv2.KalmanFilter``.
  Boxes are assigned to tracks by the Hungarian method (``scipy.optimize.linear_sum_assignment``)
  on 1 - IoU of the predicted boxes, in two stages on the detection score as in ByteTrack
  (Y. Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box",
  ECCV 2022): high-score boxes against every live track first, then low-score boxes against the
  tracks still unmatched that were seen in the previous frame; only high-score boxes start
  tracks. With descriptors, a pair whose cosine similarity is under ``appearance_gate`` is never
  linked, so a missed cut between two different people does not join them. A track survives
  ``max_missed`` frames without a box, and **every track ends at a shot boundary**: boxes are
  never linked by position across a cut.
- a **person id**: a gallery of persons keeps the mean descriptor of all boxes of each person
  (the running-mean gallery of re-identification, e.g. FairMOT / JDE's embedding memory). A new
  track takes the person whose mean descriptor is most similar, at least ``reid_threshold``,
  among the persons that no other track holds in this frame (Hungarian assignment over the new
  tracks of a frame), else a new person. So a person who leaves and comes back, or who is seen
  again after a cut, gets the same person id, and two boxes of one frame never share a person.
  Without descriptors every track is its own person.

Boxes are ``x1, y1, x2, y2`` in source pixels; ids are 0-based in order of creation; -1 marks a
box that is not tracked (a low-score box that continued no track).

Also: :func:`pose_boxes` (the box of a pose's confident joints) and :func:`faces_to_poses` (which
pose a face belongs to), so one person id can cover a face and its body.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["PersonTracker", "pose_boxes", "faces_to_poses", "box_iou"]

#: Default settings of :class:`PersonTracker` (all may be overridden by keyword).
DEFAULTS = {
    "high_threshold": 0.6,     # ByteTrack's track_thresh: first-stage boxes, the only ones to start tracks
    "low_threshold": 0.1,      # boxes under this are ignored
    "match_iou": 0.2,          # first stage: IoU >= this (ByteTrack match_thresh 0.8 on 1 - IoU)
    "low_match_iou": 0.5,      # second stage: IoU >= this (ByteTrack's 0.5)
    "max_missed": 5,           # frames (as given) a track may go without a box
    "appearance_gate": 0.55,   # descriptor cosine under which a box never continues a track
    "reid_threshold": 0.85,    # descriptor cosine a new track needs to take an earlier person
    "smoothing": 0.9,          # track descriptor EMA (JDE / FairMOT)
}
_WP, _WV = 1.0 / 20, 1.0 / 160   # DeepSORT's position / velocity noise weights (of the box height)
_COCO_HEAD = np.arange(5)        # nose, left/right eye, left/right ear


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` float [N, 4] with every box of ``b`` float [M, 4] -> float64 [N, M]."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _kalman(box: np.ndarray) -> cv2.KalmanFilter:
    """DeepSORT's constant-velocity filter on (cx, cy, a, h), started at ``box``."""
    kf = cv2.KalmanFilter(8, 4, 0, cv2.CV_64F)
    kf.transitionMatrix = np.eye(8) + np.eye(8, k=4)
    kf.measurementMatrix = np.eye(4, 8)
    h = max(float(box[3] - box[1]), 1.0)
    kf.statePost = np.r_[_xyah(box), np.zeros(4)].reshape(8, 1)
    std = np.array([2 * _WP * h, 2 * _WP * h, 1e-2, 2 * _WP * h, 10 * _WV * h, 10 * _WV * h, 1e-5, 10 * _WV * h])
    kf.errorCovPost = np.diag(std ** 2)
    return kf


def _xyah(box: np.ndarray) -> np.ndarray:
    w, h = max(float(box[2] - box[0]), 1e-3), max(float(box[3] - box[1]), 1e-3)
    return np.array([box[0] + w / 2, box[1] + h / 2, w / h, h], np.float64)


def _box(state: np.ndarray) -> np.ndarray:
    cx, cy, a, h = (float(v) for v in state[:4, 0])
    h = max(h, 1.0)
    w = max(a, 1e-3) * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


@dataclass
class _Track:
    track_id: int
    person: int
    kf: cv2.KalmanFilter
    embedding: Optional[np.ndarray]
    missed: int = 0

    def predict(self) -> np.ndarray:
        h = max(float(self.kf.statePost[3, 0]), 1.0)
        self.kf.processNoiseCov = np.diag(np.array([_WP * h, _WP * h, 1e-2, _WP * h,
                                                    _WV * h, _WV * h, 1e-5, _WV * h]) ** 2)
        return _box(self.kf.predict())

    def correct(self, box: np.ndarray, embedding: Optional[np.ndarray], smoothing: float) -> None:
        h = max(float(box[3] - box[1]), 1.0)
        self.kf.measurementNoiseCov = np.diag(np.array([_WP * h, _WP * h, 1e-1, _WP * h]) ** 2)
        self.kf.correct(_xyah(box).reshape(4, 1))
        self.missed = 0
        if embedding is not None and self.embedding is not None:
            e = smoothing * self.embedding + (1 - smoothing) * embedding
            self.embedding = e / max(float(np.linalg.norm(e)), 1e-12)
        elif embedding is not None:
            self.embedding = embedding


class PersonTracker:
    """Tracks and person ids of face or body boxes over one video (one :meth:`update` per frame).

    Args:
        kind: ``"face"`` or ``"body"`` (what the boxes and descriptors are; recorded, the
            method is the same).
        thresholds: any of :data:`DEFAULTS` (``high_threshold``, ``low_threshold``, ``match_iou``,
            ``low_match_iou``, ``max_missed``, ``appearance_gate``, ``reid_threshold``,
            ``smoothing``).

    Raises:
        ValueError: unknown ``kind`` or keyword, or a threshold out of range.
    """

    def __init__(self, kind: str = "face", **thresholds):
        if kind not in ("face", "body"):
            raise ValueError(f"kind must be 'face' or 'body', got {kind!r}")
        unknown = sorted(set(thresholds) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown PersonTracker setting(s) {unknown}; known: {sorted(DEFAULTS)}")
        self.kind = kind
        self.settings = {**DEFAULTS, **thresholds}
        s = self.settings
        if not 0 <= s["low_threshold"] <= s["high_threshold"] or s["max_missed"] < 0:
            raise ValueError(f"need 0 <= low_threshold <= high_threshold and max_missed >= 0, got {s}")
        self._tracks: list[_Track] = []
        self._persons: list[Optional[np.ndarray]] = []   # per person: sum of its unit descriptors (None: none yet)
        self._shot: Optional[int] = None
        self.num_tracks = 0

    @property
    def num_persons(self) -> int:
        """Persons created so far (the next new person id)."""
        return len(self._persons)

    def person_embedding(self, person: int) -> np.ndarray:
        """Unit mean descriptor float32 [D] of a person (float32 [0] before its first descriptor)."""
        v = self._persons[person]
        if v is None:
            return np.zeros(0, np.float32)
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)

    def update(self, shot: int, boxes: np.ndarray, scores: np.ndarray,
               embeddings: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """Track ids and person ids of the boxes of the next frame.

        Args:
            shot: shot index of this frame (:class:`extractors.shots.ShotDetector`); a new value
                ends every track.
            boxes: float32 ``[N, 4]`` x1, y1, x2, y2 source pixels (N may be 0).
            scores: float32 ``[N]`` detector scores.
            embeddings: float32 ``[N, D]`` unit descriptors (:mod:`extractors.appearance`) or None;
                frames with and without descriptors may be mixed (a person is matched by
                appearance once one of its boxes came with a descriptor).

        Returns:
            ``(track_ids int32 [N], person_ids int32 [N])``, -1 for a box not tracked.

        Raises:
            ValueError: shapes that disagree.
        """
        boxes, scores, emb = self._check(boxes, scores, embeddings)
        if shot != self._shot:
            self._tracks, self._shot = [], shot
        predicted = np.array([t.predict() for t in self._tracks]).reshape(-1, 4)
        s = self.settings
        high = np.flatnonzero(scores >= s["high_threshold"])
        low = np.flatnonzero((scores >= s["low_threshold"]) & (scores < s["high_threshold"]))
        assigned = np.full(len(boxes), -1, np.int64)          # index into self._tracks
        all_tracks = np.arange(len(self._tracks))
        self._associate(all_tracks, high, predicted, boxes, emb, s["match_iou"], assigned)
        recent = np.array([i for i in all_tracks if self._tracks[i].missed == 0 and i not in assigned], np.int64)
        self._associate(recent, low, predicted, boxes, emb, s["low_match_iou"], assigned)
        track_ids = np.full(len(boxes), -1, np.int32)
        person_ids = np.full(len(boxes), -1, np.int32)
        for j in np.flatnonzero(assigned >= 0):
            tr = self._tracks[assigned[j]]
            tr.correct(boxes[j], None if emb is None else emb[j], s["smoothing"])
            track_ids[j], person_ids[j] = tr.track_id, tr.person
        matched = set(assigned[assigned >= 0].tolist())
        for i, tr in enumerate(self._tracks):
            if i not in matched:
                tr.missed += 1
        new = [j for j in high if assigned[j] < 0]
        self._start_tracks(new, boxes, emb, person_ids, track_ids)
        self._tracks = [t for t in self._tracks if t.missed <= s["max_missed"]]
        if emb is not None:
            for j in np.flatnonzero(person_ids >= 0):
                p = person_ids[j]
                self._persons[p] = emb[j].copy() if self._persons[p] is None else self._persons[p] + emb[j]
        return track_ids, person_ids

    def _check(self, boxes, scores, embeddings):
        boxes = np.asarray(boxes, np.float32)
        boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
        scores = np.asarray(scores, np.float32).reshape(-1)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(scores) != len(boxes):
            raise ValueError(f"boxes must be [N, 4] and scores [N], got {boxes.shape} and {scores.shape}")
        if embeddings is None:
            return boxes, scores, None
        emb = np.asarray(embeddings, np.float32)
        emb = emb.reshape(0, emb.shape[-1] if emb.ndim == 2 else 0) if emb.size == 0 else emb
        if emb.ndim != 2 or len(emb) != len(boxes):
            raise ValueError(f"embeddings must be [N, D] with N = {len(boxes)}, got {emb.shape}")
        return boxes, scores, emb

    def _associate(self, tracks, dets, predicted, boxes, emb, min_iou, assigned) -> None:
        """Hungarian assignment of ``dets`` to ``tracks`` on 1 - IoU, gated by IoU and appearance."""
        if len(tracks) == 0 or len(dets) == 0:
            return
        iou = box_iou(predicted[tracks], boxes[dets])
        ok = iou >= min_iou
        if emb is not None:
            track_emb = [self._tracks[i].embedding for i in tracks]
            for a, e in enumerate(track_emb):
                if e is not None:
                    ok[a] &= emb[dets] @ e >= self.settings["appearance_gate"]
        cost = np.where(ok, 1.0 - iou, 1e6)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if ok[r, c]:
                assigned[dets[c]] = tracks[r]

    def _start_tracks(self, new, boxes, emb, person_ids, track_ids) -> None:
        """New tracks for the unmatched high-score boxes ``new``; persons from the gallery."""
        persons = self._match_persons(new, emb, set(person_ids[person_ids >= 0].tolist()))
        for j, person in zip(new, persons):
            if person < 0:
                person = len(self._persons)
                self._persons.append(None)
            else:   # the person is back: an unmatched (occluded) track of theirs ends here
                self._tracks = [t for t in self._tracks if t.person != person]
            tr = _Track(self.num_tracks, person, _kalman(boxes[j]), None if emb is None else emb[j])
            self._tracks.append(tr)
            self.num_tracks += 1
            track_ids[j], person_ids[j] = tr.track_id, person

    def _match_persons(self, new, emb, taken: set) -> list[int]:
        """Earlier person of each new box (Hungarian on descriptor cosine >= reid_threshold), or -1."""
        out = [-1] * len(new)
        free = [p for p in range(len(self._persons)) if p not in taken and self._persons[p] is not None]
        if emb is None or not new or not free:
            return out
        gallery = np.stack([self.person_embedding(p) for p in free])
        sim = emb[new] @ gallery.T
        rows, cols = linear_sum_assignment(-sim)
        for r, c in zip(rows, cols):
            if sim[r, c] >= self.settings["reid_threshold"]:
                out[r] = free[c]
        return out


def pose_boxes(poses: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """Box of each pose's confident joints.

    Args:
        poses: float32 ``[P, V, 3]`` (x, y, score) source pixels; NaN for missing joints.
        min_score: joints with a score under this are left out.

    Returns:
        float32 ``[P, 4]`` (x1, y1, x2, y2); a NaN row for a pose without a confident joint.

    Raises:
        ValueError: ``poses`` is not ``[P, V, >=3]``.
    """
    poses = np.asarray(poses, np.float32)
    if poses.ndim != 3 or poses.shape[2] < 3:
        raise ValueError(f"poses must be [P, V, 3] (x, y, score), got shape {poses.shape}")
    ok = (poses[..., 2] >= min_score) & np.isfinite(poses[..., :2]).all(axis=-1)
    xy = poses[..., :2]
    lo = np.where(ok[..., None], xy, np.inf).min(axis=1)
    hi = np.where(ok[..., None], xy, -np.inf).max(axis=1)
    out = np.concatenate([lo, hi], axis=1).astype(np.float32)
    out[~ok.any(axis=1)] = np.nan
    return out


def faces_to_poses(face_boxes: np.ndarray, poses: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """The pose each face belongs to: the one whose head keypoints fall inside the face box.

    A (face, pose) pair scores the number of the pose's confident COCO head keypoints (nose,
    eyes, ears = COCO-17 joints 0-4) inside the face box; pairs with at least one are assigned
    one to one by the Hungarian method on that count (ties: the nearer nose / head centre).

    Args:
        face_boxes: float32 ``[F, 4]`` x1, y1, x2, y2 source pixels.
        poses: float32 ``[P, 17, 3]`` COCO-17 (x, y, score) in the same pixels.
        min_score: keypoints with a lower score are not counted.

    Returns:
        int32 ``[F]``: index of the pose of each face, -1 when none.

    Raises:
        ValueError: ``face_boxes`` not ``[F, 4]`` or ``poses`` not ``[P, 17, 3]``.
    """
    faces = np.asarray(face_boxes, np.float32)
    faces = faces.reshape(0, 4) if faces.size == 0 else faces
    poses = np.asarray(poses, np.float32)
    poses = poses.reshape(0, 17, 3) if poses.size == 0 else poses
    if faces.ndim != 2 or faces.shape[1] < 4 or poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise ValueError(f"need face_boxes [F, 4] and COCO-17 poses [P, 17, 3], got {faces.shape}, {poses.shape}")
    out = np.full(len(faces), -1, np.int32)
    if not len(faces) or not len(poses):
        return out
    head = poses[:, _COCO_HEAD]                                          # [P, 5, 3]
    ok = (head[..., 2] >= min_score) & np.isfinite(head[..., :2]).all(-1)
    x, y = head[None, ..., 0], head[None, ..., 1]                        # [1, P, 5]
    f = faces[:, None, None, :4]
    inside = ok[None] & (x >= f[..., 0]) & (x <= f[..., 2]) & (y >= f[..., 1]) & (y <= f[..., 3])
    count = inside.sum(-1).astype(np.float64)                            # [F, P]
    centre = np.stack([(faces[:, 0] + faces[:, 2]) / 2, (faces[:, 1] + faces[:, 3]) / 2], -1)
    with np.errstate(invalid="ignore"):
        head_xy = np.nanmean(np.where(ok[..., None], head[..., :2], np.nan), axis=1)   # [P, 2]
    dist = np.linalg.norm(centre[:, None] - head_xy[None], axis=-1)
    size = np.maximum(faces[:, 2] - faces[:, 0], 1.0)[:, None]
    score = count - np.nan_to_num(dist / size, nan=1.0) * 0.1            # count first, nearness breaks ties
    rows, cols = linear_sum_assignment(-np.where(count > 0, score, -1e6))
    for r, c in zip(rows, cols):
        if count[r, c] > 0:
            out[r] = c
    return out
