"""Face tracks across frames: greedy matching of face boxes on IoU, OpenFace-style per-frame rows.

Detections per frame come from any face detector as ``float32 [D_t, >=5]`` rows whose first
five columns are ``x1, y1, x2, y2, score`` in source pixels (the layout of
:func:`extractors.blazeface.detect_faces`). :class:`FaceTracker` links them frame by frame and
gives every detection a track id; :func:`track_faces` runs it over a whole sequence and also
returns the dense per-track arrays that OpenFace writes per frame: ``face_id``, ``confidence``
and ``success`` (here ``found``).

Method: greedy IoU association, as in the IOU tracker of E. Bochinski, V. Eiselein, T. Sikora,
"High-Speed Tracking-by-Detection Without Using Image Information", AVSS 2017 (no motion model,
no appearance); per-frame ``confidence`` / ``success`` columns follow OpenFace 2.0's output
format (T. Baltrusaitis et al., FG 2018; ``FeatureExtraction`` CSV). IoU is
``torchvision.ops.box_iou``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

__all__ = ["FaceTracker", "FaceTracks", "track_faces"]

#: Minimum IoU between a track's last box and a detection for them to be linked.
DEFAULT_IOU = 0.3
#: Frames (of the sequence given, i.e. sampled frames) a track may go unseen and still be matched.
DEFAULT_MAX_GAP = 5


@dataclass
class _Track:
    track_id: int
    box: np.ndarray          # float32 [4] last matched box
    last_frame: int


@dataclass
class FaceTracker:
    """Incremental greedy IoU tracker of face boxes (one instance per video).

    Call :meth:`update` once per frame, in order. All (live track, detection) pairs are scored
    with ``box_iou(track's last box, detection box)``; pairs are accepted greedily from the
    highest IoU while ``IoU >= iou_threshold``, each track and detection used at most once
    (ties broken by track age, then detection order). Unmatched detections start new tracks
    with the next integer id (0, 1, 2, ... in order of first appearance; within a frame in
    detection order). A track not matched for more than ``max_gap`` frames is closed and never
    matched again.

    Args:
        iou_threshold: minimum IoU in [0, 1] to link (default 0.3).
        max_gap: frames a track may be missed and still continue (default 5; counted in the
            frames handed to :meth:`update`, so sampled frames when a video is subsampled).

    Raises:
        ValueError: ``iou_threshold`` outside [0, 1] or ``max_gap < 0``.
    """

    iou_threshold: float = DEFAULT_IOU
    max_gap: int = DEFAULT_MAX_GAP
    _tracks: list = field(default_factory=list, init=False, repr=False)
    _frame: int = field(default=-1, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {self.iou_threshold}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")

    @property
    def num_tracks(self) -> int:
        """Tracks started so far (the next new id)."""
        return len(self._tracks)

    def update(self, detections: np.ndarray) -> np.ndarray:
        """Assign track ids to the detections of the next frame.

        Args:
            detections: ``float32 [D, >=4]`` (x1, y1, x2, y2, ...) in pixels; ``D`` may be 0.

        Returns:
            ``int64 [D]`` track id of each detection row.

        Raises:
            ValueError: ``detections`` is not 2-D with at least 4 columns.
        """
        dets = np.asarray(detections, dtype=np.float32)
        if dets.ndim != 2 or (dets.shape[0] and dets.shape[1] < 4):
            raise ValueError(f"detections must be [D, >=4] (x1, y1, x2, y2, ...), got shape {dets.shape}")
        self._frame += 1
        t = self._frame
        ids = np.full(len(dets), -1, dtype=np.int64)
        live = [tr for tr in self._tracks if t - tr.last_frame <= self.max_gap + 1]
        if live and len(dets):
            iou = box_iou(torch.from_numpy(np.stack([tr.box for tr in live])),
                          torch.from_numpy(np.ascontiguousarray(dets[:, :4]))).numpy()
            order = sorted(((-iou[i, j], i, j) for i in range(len(live)) for j in range(len(dets))))
            used_t, used_d = set(), set()
            for neg, i, j in order:
                if -neg < self.iou_threshold or -neg <= 0.0:
                    break
                if i in used_t or j in used_d:
                    continue
                used_t.add(i)
                used_d.add(j)
                live[i].box, live[i].last_frame = dets[j, :4].copy(), t
                ids[j] = live[i].track_id
        for j in np.flatnonzero(ids < 0):
            track = _Track(len(self._tracks), dets[j, :4].copy(), t)
            self._tracks.append(track)
            ids[j] = track.track_id
        return ids


@dataclass(frozen=True)
class FaceTracks:
    """Face tracks of a sequence of T frames, OpenFace-style.

    Attributes:
        ids: length T; ``int64 [D_t]`` track id of each detection row of frame t.
        boxes: ``float32 [M, T, 4]`` (x1, y1, x2, y2) source pixels, NaN where track m is not
            found in frame t.
        confidence: ``float32 [M, T]`` detector score of the matched detection, 0 where not
            found (OpenFace ``confidence``).
        found: ``bool [M, T]`` (OpenFace ``success``).
    """

    ids: list
    boxes: np.ndarray
    confidence: np.ndarray
    found: np.ndarray

    @property
    def num_tracks(self) -> int:
        """M, the number of tracks."""
        return int(self.boxes.shape[0])


def track_faces(detections: Sequence[np.ndarray], iou_threshold: float = DEFAULT_IOU,
                max_gap: int = DEFAULT_MAX_GAP) -> FaceTracks:
    """Track faces over a whole sequence with :class:`FaceTracker`.

    Args:
        detections: length T; element t is ``float32 [D_t, >=5]`` rows ``x1, y1, x2, y2,
            score, ...`` in source pixels (``[0, 17]`` or ``[0, 5]`` when no face).
        iou_threshold, max_gap: see :class:`FaceTracker`.

    Returns:
        :class:`FaceTracks` with ``M`` = number of tracks (0 when no frame has a face).

    Raises:
        ValueError: a frame's array is not ``[D, >=5]``, or bad tracker settings.
    """
    tracker = FaceTracker(iou_threshold, max_gap)
    ids = []
    for t, dets in enumerate(detections):
        dets = np.asarray(dets, dtype=np.float32)
        if dets.ndim != 2 or (len(dets) and dets.shape[1] < 5):
            raise ValueError(f"frame {t}: detections must be [D, >=5] (x1, y1, x2, y2, score), "
                             f"got shape {dets.shape}")
        ids.append(tracker.update(dets.reshape(len(dets), -1) if len(dets) else np.zeros((0, 5), np.float32)))
    m, n = tracker.num_tracks, len(detections)
    boxes = np.full((m, n, 4), np.nan, np.float32)
    confidence = np.zeros((m, n), np.float32)
    found = np.zeros((m, n), bool)
    for t, (dets, frame_ids) in enumerate(zip(detections, ids)):
        for row, track in zip(np.asarray(dets, np.float32), frame_ids):
            boxes[track, t], confidence[track, t], found[track, t] = row[:4], row[4], True
    return FaceTracks(ids, boxes, confidence, found)
