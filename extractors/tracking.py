"""Per-person tracks across frames by greedy matching of keypoints.

Poses per frame come from any pose estimator as ``float32 [P_t, V, 3]`` (x, y, score in pixels).
The tracker links them into ``float32 [M, T, V, 3]`` (MMAction2 / PySKL ``keypoint`` plus score),
NaN where a person is not seen.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def confident_joints(poses: np.ndarray, min_score: float) -> np.ndarray:
    """``bool [..., V]``: score at least ``min_score`` and finite x, y (NaN scores are not confident)."""
    return (poses[..., 2] >= min_score) & np.isfinite(poses[..., :2]).all(axis=-1)


def pose_scales(poses: np.ndarray, min_score: float) -> np.ndarray:
    """Diagonal of the box of each pose's confident joints (pixels, at least 1).

    Args:
        poses: ``float32 [N, V, 3]`` (x, y, score); see :func:`confident_joints`.

    Returns:
        ``float64 [N]``; 1 for a pose without a confident joint.
    """
    ok = confident_joints(poses, min_score)
    xy = poses[..., :2].astype(np.float64)
    hi = np.where(ok[..., None], xy, -np.inf).max(axis=1)
    lo = np.where(ok[..., None], xy, np.inf).min(axis=1)
    with np.errstate(invalid="ignore"):
        diag = np.hypot(*(hi - lo).T)
    return np.where(ok.any(axis=1), np.maximum(diag, 1.0), 1.0)


def pose_distances(ref: np.ndarray, cand: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """Distances of every reference pose to every candidate pose (see :func:`pose_distance`).

    Args:
        ref: ``float32 [L, V, 3]`` (x, y, score) in pixels, e.g. the tracks' last poses.
        cand: ``float32 [P, V, 3]``, e.g. one frame's poses.

    Returns:
        ``float64 [L, P]``: mean pixel distance over the joints confident in both poses
        (:func:`confident_joints`: a NaN or inf coordinate is never confident),
        divided by the reference pose's :func:`pose_scales`; ``inf`` where no joint is confident
        in both.
    """
    both = confident_joints(ref, min_score)[:, None] & confident_joints(cand, min_score)[None]  # [L, P, V]
    with np.errstate(invalid="ignore"):
        diff = ref[:, None, :, :2].astype(np.float64) - cand[None, :, :, :2]
        dist = np.where(both, np.hypot(diff[..., 0], diff[..., 1]), 0.0).sum(axis=2)
    count = both.sum(axis=2)
    scale = pose_scales(ref, min_score)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, dist / np.maximum(count, 1) / scale, np.inf)


def pose_distance(a: np.ndarray, b: np.ndarray, min_score: float = 0.2) -> float:
    """Mean distance between joints confident in both poses, relative to pose ``a``'s size.

    Args:
        a, b: ``float32 [V, 3]`` (x, y, score) in pixels.

    Returns:
        Dimensionless distance (0 = identical); ``inf`` when no joint is confident in both.
    """
    return float(pose_distances(a[None], b[None], min_score)[0, 0])


def _greedy_pairs(dist: np.ndarray, max_distance: float) -> list[tuple[int, int]]:
    """Accept (row, column) pairs from the smallest distance up, each row and column once.

    Ties are broken by row, then column (the order of sorting ``(distance, row, column)``).
    """
    rows, cols = np.nonzero(dist <= max_distance)
    order = np.lexsort((cols, rows, dist[rows, cols]))
    used_r, used_c, out = set(), set(), []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            out.append((r, c))
    return out


def track_poses(poses: Sequence[np.ndarray], max_distance: float = 0.5, max_gap: int = 5,
                min_score: float = 0.2) -> np.ndarray:
    """Link per-frame poses into tracks by greedy nearest matching.

    For each frame, all (track, pose) pairs are scored at once with :func:`pose_distances`
    against each track's last pose; pairs are accepted greedily from the smallest distance while
    at most ``max_distance``. Unmatched poses start new tracks. A track not seen for more than
    ``max_gap`` frames is not matched again.

    Args:
        poses: length T; element t is ``float32 [P_t, V, 3]`` (may be empty, ``[0, V, 3]``).

    Returns:
        ``float32 [M, T, V, 3]``; NaN where track m has no pose in frame t. ``M = 0`` when no
        frame has a pose.
    """
    num_frames = len(poses)
    joints = next((p.shape[1] for p in poses if len(p)), 0)
    last: list[np.ndarray] = []  # per track: its last pose [V, 3]
    seen: list[int] = []  # per track: the frame of its last pose
    members: list[dict[int, np.ndarray]] = []  # per track: {frame: pose}
    for t, frame_poses in enumerate(poses):
        live = [i for i in range(len(last)) if t - seen[i] <= max_gap]
        matched: set[int] = set()
        if live and len(frame_poses):
            dist = pose_distances(np.stack([last[i] for i in live]), np.asarray(frame_poses), min_score)
            for r, j in _greedy_pairs(dist, max_distance):
                i = live[r]
                last[i], seen[i] = frame_poses[j], t
                members[i][t] = frame_poses[j]
                matched.add(j)
        for j, p in enumerate(frame_poses):
            if j not in matched:
                last.append(p)
                seen.append(t)
                members.append({t: p})
    out = np.full((len(members), num_frames, joints, 3), np.nan, dtype=np.float32)
    for m, found in enumerate(members):
        for t, p in found.items():
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
