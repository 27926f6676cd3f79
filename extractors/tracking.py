"""Per-person tracks across frames by greedy matching of keypoints.

Poses per frame come from any pose estimator as ``float32 [P_t, V, 3]`` (x, y, score in pixels).
The tracker links them into ``float32 [M, T, V, 3]`` (MMAction2 / PySKL ``keypoint`` plus score),
NaN where a person is not seen.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _pose_scale(pose: np.ndarray, min_score: float) -> float:
    """Diagonal of the box of a pose's confident joints (pixels, at least 1)."""
    ok = pose[:, 2] >= min_score
    if not ok.any():
        return 1.0
    xy = pose[ok, :2]
    return float(max(np.hypot(*(xy.max(0) - xy.min(0))), 1.0))


def pose_distance(a: np.ndarray, b: np.ndarray, min_score: float = 0.2) -> float:
    """Mean distance between joints confident in both poses, relative to pose ``a``'s size.

    Args:
        a, b: ``float32 [V, 3]`` (x, y, score) in pixels.

    Returns:
        Dimensionless distance (0 = identical); ``inf`` when no joint is confident in both.
    """
    both = (a[:, 2] >= min_score) & (b[:, 2] >= min_score)
    if not both.any():
        return float("inf")
    d = np.hypot(*(a[both, :2] - b[both, :2]).T).mean()
    return float(d / _pose_scale(a, min_score))


def track_poses(poses: Sequence[np.ndarray], max_distance: float = 0.5, max_gap: int = 5,
                min_score: float = 0.2) -> np.ndarray:
    """Link per-frame poses into tracks by greedy nearest matching.

    For each frame, all (track, pose) pairs are scored with :func:`pose_distance` against the
    track's last pose; pairs are accepted greedily from the smallest distance while below
    ``max_distance``. Unmatched poses start new tracks. A track not seen for more than
    ``max_gap`` frames is not matched again.

    Args:
        poses: length T; element t is ``float32 [P_t, V, 3]`` (may be empty, ``[0, V, 3]``).

    Returns:
        ``float32 [M, T, V, 3]``; NaN where track m has no pose in frame t. ``M = 0`` when no
        frame has a pose.
    """
    num_frames = len(poses)
    joints = next((p.shape[1] for p in poses if len(p)), 0)
    tracks: list[dict] = []  # {"last": pose, "seen": t, "poses": {t: pose}}
    for t, frame_poses in enumerate(poses):
        live = [i for i, tr in enumerate(tracks) if t - tr["seen"] <= max_gap]
        pairs = sorted((pose_distance(tracks[i]["last"], p, min_score), i, j)
                       for i in live for j, p in enumerate(frame_poses))
        used_t, used_p = set(), set()
        for dist, i, j in pairs:
            if dist > max_distance or i in used_t or j in used_p:
                continue
            used_t.add(i)
            used_p.add(j)
            tracks[i].update(last=frame_poses[j], seen=t)
            tracks[i]["poses"][t] = frame_poses[j]
        for j, p in enumerate(frame_poses):
            if j not in used_p:
                tracks.append({"last": p, "seen": t, "poses": {t: p}})
    out = np.full((len(tracks), num_frames, joints, 3), np.nan, dtype=np.float32)
    for m, tr in enumerate(tracks):
        for t, p in tr["poses"].items():
            out[m, t] = p
    return out


def track_prominence(tracks: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """Prominence of each track: sum over frames of (mean joint score x pose height in pixels).

    A person who is large, confidently detected and present for long ranks first.

    Args:
        tracks: ``float32 [M, T, V, 3]``.

    Returns:
        ``float64 [M]``.
    """
    if tracks.shape[0] == 0:
        return np.zeros(0)
    scores = np.nan_to_num(tracks[..., 2], nan=0.0)
    ok = scores >= min_score
    y = np.nan_to_num(tracks[..., 1], nan=0.0)
    hi = np.where(ok, y, -np.inf).max(axis=2)
    lo = np.where(ok, y, np.inf).min(axis=2)
    height = np.where(ok.any(axis=2), hi - lo, 0.0)
    return (scores.mean(axis=2) * height).sum(axis=1)


def main_track(tracks: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """The most prominent track, ``float32 [T, V, 3]`` (all NaN when there is no track)."""
    if tracks.shape[0] == 0:
        raise ValueError("main_track needs at least one track; check tracks.shape[0] first")
    return tracks[int(np.argmax(track_prominence(tracks, min_score)))]
