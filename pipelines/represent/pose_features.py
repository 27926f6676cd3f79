"""CAER pose features: COCO-17 tracks -> kinematics -> the 238-dim per-frame feature sequence.

Source: ``JohnOh3809/EmotionRecognizer-@11e5753`` (seed spec section 5), written from the spec and
checked against ``reference/representations/caer`` (atol 1e-5, NaN at the same places).

Stage 1, :func:`kinematics` (``enhance_data.py process_one``): keep the two tracks with the most
valid joints, normalise every frame of a track (centre, scale, rotate), compute velocity and
acceleration over the frame times, reject tracks that move too fast or are mostly missing, upsample
``interp_factor`` times with constant acceleration and recompute velocity / acceleration.

Stage 2, :func:`pose_feature_sequence` (``train_bilstm.py EnhancedPoseDataset``): crop or zero-pad
to ``seq_len`` frames, NaN -> 0, flatten every frame person-major, then joint (COCO-17), then
``[x, y, conf, vx, vy, ax, ay]``: ``2 * 17 * 7 = 238`` features.

The training-time augmentations (``train_bilstm.py PoseAugmentor``) are transforms of a
:class:`PoseKinematics` triple; they live with the trainer, in :mod:`zoo.transforms`.

Coordinate frames: input keypoints are source-image pixels (x right, y down). After stage 1, x/y
are in torso units around the body centre, rotated so the shoulders are horizontal; velocity is
in those units per frame-index unit (``frame_indices`` are the time axis), acceleration per
frame-index unit squared.

Numerics follow the reference's float32 flow (same operation order, float32 arrays, Python-float
scalars), so results match to float32 rounding; acceleration after upsampling divides by
``dt**2`` (0.04 at ``interp_factor`` 5) and would amplify a different rounding order.

QUIRKS kept on purpose (they define the reference output):

- Keypoint scores are not upsampled: the output ``conf`` channel is the first ``T'`` input scores,
  edge-padded (``conf[t]`` of an upsampled sequence belongs to input frame ``t``, not ``t/f``).
  Scores are kept where x/y are NaN. (Our guard: a non-finite score, ``+-inf``, is written as NaN,
  so that stage 2 turns it into 0 rather than ``+-float32 max``; finite inputs are unaffected.)
- Tracks shorter than 3 frames are rejected by the quality gates (no valid acceleration gives an
  acceleration p95 of ``inf``, one frame no valid velocity), as in the reference.
- A frame with a NaN joint has a NaN "mean of valid joints" (NaN * 0 in the weighted mean), so its
  centre falls back to NaN when the hips are not both valid.
- Output slots keep the position of the track in the top-N order; a rejected first track leaves
  slot 0 NaN / zero while slot 1 is filled.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

NUM_JOINTS = 17
FEATURES_PER_JOINT = 7  # x, y, conf, vx, vy, ax, ay
FEATURE_NAMES = ("x", "y", "conf", "vx", "vy", "ax", "ay")
L_SHOULDER, R_SHOULDER = 5, 6
L_HIP, R_HIP = 11, 12
NORM_MODES = ("none", "center", "center_scale", "center_scale_rotate")


# ---------------------------------------------------------------------------------------------
# Stage 1: kinematics
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcCfg:
    """Stage-1 settings (``enhance_data.py ProcCfg``; defaults = its CLI defaults, seed spec 5.1).

    Attributes:
        norm_mode: ``none``, ``center``, ``center_scale`` or ``center_scale_rotate``.
        interp_factor: upsampling factor (>= 1); ``T' = (T - 1) * f + 1``.
        keep_people: number of output person slots (tracks with the most valid joints).
        min_score: a joint is valid when x, y, score are finite and score >= this.
        min_valid_joint_frac: a track with a smaller fraction of valid (frame, joint) is rejected.
        max_speed_p95: a track whose 95th-percentile joint speed (torso units / frame) is larger
            is rejected (before upsampling).
        max_acc_p95: same for the acceleration magnitude.
        drop_frame0: drop the first frame when its frame index is 0 (the filtering stage skips
            frame 0 of a video, which is often a scene cut).
    """

    norm_mode: str = "center_scale_rotate"
    interp_factor: int = 1
    keep_people: int = 2
    min_score: float = 0.20
    min_valid_joint_frac: float = 0.10
    max_speed_p95: float = 3.0
    max_acc_p95: float = 6.0
    drop_frame0: bool = False

    def __post_init__(self) -> None:
        if self.norm_mode not in NORM_MODES:
            raise ValueError(f"ProcCfg.norm_mode must be one of {NORM_MODES}, got {self.norm_mode!r}")
        if int(self.interp_factor) < 1 or int(self.keep_people) < 1:
            raise ValueError(f"ProcCfg.interp_factor and keep_people must be >= 1, got "
                             f"{self.interp_factor}, {self.keep_people}")


#: The settings of the ``enhance_data.py`` docstring example (interp x5, frame 0 dropped).
EXAMPLE_CFG = ProcCfg(interp_factor=5, min_valid_joint_frac=0.12, drop_frame0=True)


class SampleRejected(ValueError):
    """Stage 1 kept no track. ``reason`` is ``no_frames`` (T = 0, after ``drop_frame0``),
    ``no_valid_tracks`` or ``all_tracks_filtered``;
    ``record`` holds the per-track statistics (as :func:`kinematics` records them)."""

    def __init__(self, reason: str, record: dict[str, Any]) -> None:
        super().__init__(f"pose kinematics rejected the sample: {reason} "
                         f"({[s.get('reason') for s in record.get('track_stats', [])]})")
        self.reason = reason
        self.record = record


def valid_joints(xy: np.ndarray, score: np.ndarray, min_score: float) -> np.ndarray:
    """bool [...]: x, y and score finite and ``score >= min_score``. xy is [..., 2]."""
    return np.isfinite(xy[..., 0]) & np.isfinite(xy[..., 1]) & np.isfinite(score) & (score >= float(min_score))


def _safe_step(dt: np.ndarray) -> np.ndarray:
    """float32 time steps with non-finite or <= 1e-6 steps replaced by 1.0 (reference rule)."""
    return np.where(np.isfinite(dt) & (dt > 1e-6), dt, 1.0).astype(np.float32)


def velocity_acceleration(xy: np.ndarray, valid: np.ndarray, time: np.ndarray):
    """Backward-difference velocity and acceleration of one track.

    ``vel[t] = (xy[t] - xy[t-1]) / dt[t]`` (valid when frames t-1 and t are valid, ``vel[0] = 0``);
    ``acc[t] = (vel[t] - vel[t-1]) / (0.5 * (dt[t] + dt[t-1]))`` (valid when both velocities are,
    ``acc[0:2] = 0``). Invalid entries are 0. Seed spec 5.1.

    Args:
        xy: float32 [T, J, 2] positions without NaN (invalid joints hold any finite value).
        valid: bool [T, J].
        time: float32 [T] frame times.

    Returns:
        ``(vel, acc, vel_valid, acc_valid)``: float32 [T, J, 2], float32 [T, J, 2], bool [T, J] x2.
    """
    n_t, n_j = xy.shape[:2]
    vel = np.zeros((n_t, n_j, 2), np.float32)
    acc = np.zeros((n_t, n_j, 2), np.float32)
    vel_ok = np.zeros((n_t, n_j), bool)
    acc_ok = np.zeros((n_t, n_j), bool)
    if n_t < 2:
        return vel, acc, vel_ok, acc_ok
    dt = _safe_step(np.diff(time).astype(np.float32))
    vel_ok[1:] = valid[1:] & valid[:-1]
    vel[1:] = (xy[1:] - xy[:-1]) / dt[:, None, None]
    vel[~vel_ok] = 0.0
    if n_t < 3:
        return vel, acc, vel_ok, acc_ok
    dt_mid = _safe_step(0.5 * (dt[1:] + dt[:-1]))
    acc_ok[2:] = vel_ok[2:] & vel_ok[1:-1]
    acc[2:] = (vel[2:] - vel[1:-1]) / dt_mid[:, None, None]
    acc[~acc_ok] = 0.0
    return vel, acc, vel_ok, acc_ok


def upsample_constant_acceleration(xy, valid, acc, acc_valid, time, factor: int):
    """Insert ``factor - 1`` frames in every interval, moving with constant acceleration.

    On ``[t0, t1]`` with ``dt = t1 - t0`` and ``a0 = acc[t0]`` (0 where not valid):
    ``v0 = (x1 - x0) / dt - a0 dt / 2``, ``x(tau) = x0 + v0 tau + a0 tau^2 / 2`` for
    ``tau = s dt / factor``, ``s = 0 .. factor-1``; the last input frame is appended. A joint is
    valid in an interval only when both ends are. Seed spec 5.1.

    Args:
        xy: float32 [T, J, 2] positions without NaN. valid: bool [T, J].
        acc: float32 [T, J, 2]. acc_valid: bool [T, J]. time: float32 [T].
        factor: >= 1; 1 (or T <= 1) returns the inputs unchanged.

    Returns:
        ``(xy_up, valid_up, time_up)``: float32 [T', J, 2] (NaN where invalid), bool [T', J],
        float32 [T'] with ``T' = (T - 1) * factor + 1``.
    """
    factor = int(factor)
    n_t = xy.shape[0]
    if factor <= 1 or n_t <= 1:
        return xy, valid, time
    t64 = time.astype(np.float64)
    dt = t64[1:] - t64[:-1]
    dt = np.where(np.isfinite(dt) & (dt > 1e-6), dt, 1.0)                       # [T-1] float64
    tau = (np.arange(factor, dtype=np.float64) / float(factor))[None, :] * dt[:, None]  # [T-1, f]
    a0 = np.where(acc_valid[:-1, :, None], acc[:-1], 0.0).astype(np.float32)    # [T-1, J, 2]
    dt32 = dt.astype(np.float32)[:, None, None]
    v0 = (xy[1:] - xy[:-1]) / dt32 - np.float32(0.5) * a0 * dt32
    tau32 = tau.astype(np.float32)[:, :, None, None]
    tau_sq32 = (tau * tau).astype(np.float32)[:, :, None, None]
    x = xy[:-1, None] + v0[:, None] * tau32 + (np.float32(0.5) * a0)[:, None] * tau_sq32  # [T-1, f, J, 2]
    ok = (valid[1:] & valid[:-1])[:, None, :].repeat(factor, axis=1)
    n_j = xy.shape[1]
    xy_up = np.concatenate([np.where(ok[..., None], x, np.nan).reshape(-1, n_j, 2).astype(np.float32),
                            xy[-1:].astype(np.float32)])
    valid_up = np.concatenate([ok.reshape(-1, n_j), valid[-1:]])
    time_up = np.concatenate([(t64[:-1, None] + tau).reshape(-1), t64[-1:]]).astype(np.float32)
    return xy_up, valid_up, time_up


def _masked_mean(xy: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """float32 [T, 2] mean of the valid joints (weights 0/1; NaN coordinates still poison it)."""
    w = valid.astype(np.float32)[:, :, None]
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN, the same poisoning as NaN * 0
        return (xy * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-6)


def _pair_mid(xy, valid, a: int, b: int, fallback):
    """Midpoint of joints a, b where both are valid, ``fallback`` elsewhere: float32 [T, 2]."""
    both = valid[:, a] & valid[:, b]
    out = np.zeros((xy.shape[0], 2), np.float32)
    out[both] = 0.5 * (xy[both, a] + xy[both, b])
    out[~both] = fallback[~both]
    return out


def normalize_pose(xy: np.ndarray, valid: np.ndarray, mode: str = "center_scale_rotate"):
    """Per-frame body normalisation of one track (seed spec 5.1, ``enhance_data.normalize_xy``).

    - centre: mid-hip (COCO 11/12) when both hips are valid, else the mean of valid joints;
    - scale (``center_scale*``): divide by the torso length |mid-shoulder - centre| (mid-shoulder
      falls back to the mean of valid joints), or the RMS radius of the valid joints when that is
      <= 1e-6 or not finite (1.0 when no joint is valid); the divisor is clamped to >= 1 pixel;
    - rotate (``center_scale_rotate``): rotate so L_SH - R_SH points along +x, in frames where
      both shoulders are valid.

    Args:
        xy: float32 [T, 17, 2] pixels (NaN allowed). valid: bool [T, 17]. mode: one of NORM_MODES.

    Returns:
        ``(xy_norm float32 [T, 17, 2], info)`` with ``scale_mean``, ``center_abs_mean``,
        ``center_abs_p95`` (``info`` is empty for ``none``).

    Raises:
        ValueError: unknown mode.
    """
    if mode not in NORM_MODES:
        raise ValueError(f"norm mode must be one of {NORM_MODES}, got {mode!r}")
    info: dict[str, float] = {}
    if mode == "none":
        return xy, info
    mean_valid = _masked_mean(xy, valid)
    centre = _pair_mid(xy, valid, L_HIP, R_HIP, mean_valid)
    out = xy - centre[:, None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames: nanmean -> NaN -> fallback
        if mode in ("center_scale", "center_scale_rotate"):
            torso = np.linalg.norm(_pair_mid(xy, valid, L_SHOULDER, R_SHOULDER, mean_valid) - centre, axis=1)
            radius2 = np.where(valid, out[..., 0] ** 2 + out[..., 1] ** 2, np.nan)
            rms = np.sqrt(np.nanmean(radius2, axis=1))
            rms = np.where(np.isfinite(rms), rms, 1.0)
            scale = np.maximum(np.where(np.isfinite(torso) & (torso > 1e-6), torso, rms), 1.0)
            out = out / scale[:, None, None]
            info["scale_mean"] = float(np.mean(scale))
        if mode == "center_scale_rotate":
            out = _rotate_shoulders_level(out, valid)
        centre_after = np.abs(_masked_mean(out, valid))
        info["center_abs_mean"] = float(np.mean(centre_after))
        info["center_abs_p95"] = float(np.nanpercentile(centre_after, 95))
    return out.astype(np.float32), info


def _rotate_shoulders_level(xy: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rotate each frame by -atan2(L_SH - R_SH) where both shoulders are valid (float32)."""
    shoulders = valid[:, L_SHOULDER] & valid[:, R_SHOULDER]
    vec = xy[:, L_SHOULDER] - xy[:, R_SHOULDER]
    angle = np.arctan2(vec[:, 1], vec[:, 0])
    cos, sin = np.cos(-angle).astype(np.float32)[:, None], np.sin(-angle).astype(np.float32)[:, None]
    x, y = xy[..., 0], xy[..., 1]
    rotated = np.stack([x * cos - y * sin, x * sin + y * cos], axis=2).astype(np.float32)
    return np.where(shoulders[:, None, None], rotated, xy)


def top_tracks(keypoints: np.ndarray, min_score: float, keep: int) -> list[int]:
    """Indices of the ``keep`` tracks with the most valid joints over all frames.

    Ties go to the higher track index (reversed stable argsort, as the reference); tracks with no
    valid joint are left out; when none has one, ``[0]`` (the reference's fallback).

    Args:
        keypoints: float32 [T, K, 17, 3] (x, y, score).
    """
    counts = valid_joints(keypoints[..., :2], keypoints[..., 2], min_score).sum(axis=(0, 2))
    order = np.argsort(counts, kind="stable")[::-1]
    kept = [int(k) for k in order[:keep] if counts[k] > 0]
    return kept or ([0] if keypoints.shape[1] > 0 else [])


def _p95_magnitude(vec: np.ndarray, ok: np.ndarray) -> float:
    """95th percentile of |vec| over the ``ok`` entries; inf when there are none."""
    mag = np.where(ok, np.sqrt(vec[..., 0] ** 2 + vec[..., 1] ** 2), np.nan)
    if not np.isfinite(mag).any():
        return float("inf")
    return float(np.nanpercentile(mag, 95))


def _check_inputs(keypoints, frame_indices):
    """Return (float32 [T, K, 17, 3], float32 [T] time); raise ValueError on bad shapes."""
    kps = np.asarray(keypoints, dtype=np.float32)
    if kps.ndim == 3 and kps.shape[1:] == (NUM_JOINTS, 3):
        kps = kps[:, None]
    if kps.ndim != 4 or kps.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must be [T, K, 17, 3] (or [T, 17, 3]) COCO-17 x, y, score; got {kps.shape}")
    if frame_indices is None:
        return kps, np.arange(kps.shape[0], dtype=np.float32)
    time = np.asarray(frame_indices).astype(np.float32)
    if time.shape != (kps.shape[0],):
        raise ValueError(f"frame_indices must be [T] = [{kps.shape[0]}] to match keypoints, got {time.shape}")
    return kps, time


def _track_kinematics(kp: np.ndarray, time: np.ndarray, cfg: ProcCfg):
    """Stage 1 for one track [T, 17, 3]. Returns (stats, arrays or None when rejected)."""
    xy, score = kp[..., :2], kp[..., 2]
    valid = valid_joints(xy, score, cfg.min_score)
    valid_frac = float(np.mean(valid))
    if valid_frac < cfg.min_valid_joint_frac:
        return {"kept": False, "reason": "low_valid_frac", "valid_frac": valid_frac}, None
    xy_n, norm_info = normalize_pose(xy, valid, cfg.norm_mode)
    xy_n = np.nan_to_num(np.where(valid[..., None], xy_n, np.nan), nan=0.0).astype(np.float32)
    vel, acc, vel_ok, acc_ok = velocity_acceleration(xy_n, valid, time)
    speed95, acc95 = _p95_magnitude(vel, vel_ok), _p95_magnitude(acc, acc_ok)
    if speed95 > cfg.max_speed_p95:
        return {"kept": False, "reason": "speed_p95", "speed_p95": speed95, "valid_frac": valid_frac}, None
    if acc95 > cfg.max_acc_p95:
        return {"kept": False, "reason": "acc_p95", "acc_p95": acc95, "valid_frac": valid_frac}, None
    xy_u, valid_u, time_u = upsample_constant_acceleration(xy_n, valid, acc, acc_ok, time, cfg.interp_factor)
    xy_u = np.where(valid_u[..., None], xy_u, np.nan).astype(np.float32)
    vel_u, acc_u, _, _ = velocity_acceleration(np.nan_to_num(xy_u, nan=0.0).astype(np.float32), valid_u, time_u)
    stats = {"kept": True, "valid_frac": valid_frac, "speed_p95_pre": speed95, "acc_p95_pre": acc95,
             "norm": norm_info, "interp_factor": int(cfg.interp_factor)}
    return stats, (xy_u, score, vel_u, acc_u, time_u)


def kinematics(keypoints: np.ndarray, frame_indices: np.ndarray | None = None, cfg: ProcCfg = ProcCfg()) -> dict:
    """Stage 1: normalised keypoints, velocity and acceleration of the top tracks.

    Source: ``enhance_data.py process_one`` (seed spec 5.1), reproduced to float32 rounding.

    Args:
        keypoints: float32 [T, K, 17, 3] (or [T, 17, 3]) COCO-17 pixel x, y, keypoint score,
            NaN where a person is not tracked (``filtering.py`` layout).
        frame_indices: [T] frame numbers (the time axis); None = 0..T-1.
        cfg: :class:`ProcCfg`.

    Returns:
        dict with ``kin_keypoints`` float32 [T', P, 17, 3] (normalised x, y + input score; x/y NaN
        where invalid), ``kin_vel`` / ``kin_acc`` float32 [T', P, 17, 2] (0 where invalid),
        ``kin_time`` float32 [T'] and ``record`` (``cfg``, ``track_stats`` per slot, ``shapes``);
        ``P = cfg.keep_people``, ``T' = (T - 1) * interp_factor + 1`` (T after ``drop_frame0``).
        Slots without a kept track are NaN (keypoints) / 0 (vel, acc).

    Raises:
        ValueError: bad shapes (naming the field).
        SampleRejected: no frame (``no_frames``), no track has a valid joint, or every track
            failed a quality gate (tracks of fewer than 3 frames always do, see the module notes).
    """
    kps, time = _check_inputs(keypoints, frame_indices)
    if cfg.drop_frame0 and kps.shape[0] >= 2 and float(time[0]) == 0.0:
        kps, time = kps[1:], time[1:]
    record: dict[str, Any] = {"layout": "coco17", "cfg": asdict(cfg), "track_stats": []}
    if kps.shape[0] == 0:
        raise SampleRejected("no_frames", record)
    order = top_tracks(kps, cfg.min_score, cfg.keep_people)
    if not order:
        raise SampleRejected("no_valid_tracks", record)
    slots: dict[int, tuple] = {}
    for slot in range(cfg.keep_people):
        if slot >= len(order):
            record["track_stats"].append({"kept": False, "reason": "missing_track"})
            continue
        stats, arrays = _track_kinematics(kps[:, order[slot]], time, cfg)
        if arrays is not None:
            stats = {"kept": True, "track_index": order[slot], **{k: v for k, v in stats.items() if k != "kept"}}
            slots[slot] = arrays
        record["track_stats"].append(stats)
    if not slots:
        raise SampleRejected("all_tracks_filtered", record)
    return _assemble(slots, cfg.keep_people, record)


def _assemble(slots: dict[int, tuple], people: int, record: dict) -> dict:
    """Stack the kept tracks into their slots (all kept tracks share one time axis)."""
    first = slots[min(slots)]
    n_out = first[0].shape[0]
    kin_kps = np.full((n_out, people, NUM_JOINTS, 3), np.nan, np.float32)
    kin_vel = np.zeros((n_out, people, NUM_JOINTS, 2), np.float32)
    kin_acc = np.zeros((n_out, people, NUM_JOINTS, 2), np.float32)
    for slot, (xy, score, vel, acc, _) in slots.items():
        kin_kps[:, slot, :, :2] = xy
        kin_kps[:, slot, :, 2] = _fit_length(score, n_out)
        kin_vel[:, slot] = vel
        kin_acc[:, slot] = acc
    record["shapes"] = {"keypoints": list(kin_kps.shape), "vel": list(kin_vel.shape), "acc": list(kin_acc.shape)}
    return {"kin_keypoints": kin_kps, "kin_vel": kin_vel, "kin_acc": kin_acc,
            "kin_time": first[4].astype(np.float32), "record": record}


def _fit_length(score: np.ndarray, length: int) -> np.ndarray:
    """Scores [T, 17] truncated or edge-padded to ``length`` frames (reference QUIRK); non-finite
    scores become NaN (our guard, see the module notes)."""
    score = np.where(np.isfinite(score), score, np.nan).astype(np.float32)
    if score.shape[0] >= length:
        return score[:length]
    return np.pad(score, ((0, length - score.shape[0]), (0, 0)), mode="edge")


# ---------------------------------------------------------------------------------------------
# Stage 2: the 238-feature sequence
# ---------------------------------------------------------------------------------------------
class PoseKinematics(NamedTuple):
    """One sample's kinematics: keypoints float32 [T, K, 17, 3] (x, y, conf), vel and acc
    float32 [T, K, 17, 2]. The augmentations map a PoseKinematics to a new one."""

    keypoints: np.ndarray
    vel: np.ndarray
    acc: np.ndarray

    @classmethod
    def from_kin(cls, kin: dict) -> "PoseKinematics":
        """From a :func:`kinematics` result (``kin_*`` keys) or a ``*__kin.npz`` mapping
        (``keypoints``, ``vel``, ``acc``). Raises ValueError on missing keys or bad shapes."""
        keys = ("kin_keypoints", "kin_vel", "kin_acc") if "kin_keypoints" in kin else ("keypoints", "vel", "acc")
        missing = [k for k in keys if k not in kin]
        if missing:
            raise ValueError(f"kinematics mapping lacks {missing} (has {sorted(kin)})")
        kps, vel, acc = (np.asarray(kin[k], dtype=np.float32) for k in keys)
        if kps.ndim != 4 or kps.shape[2:] != (NUM_JOINTS, 3):
            raise ValueError(f"{keys[0]} must be [T, K, 17, 3], got {kps.shape}")
        for name, arr in zip(keys[1:], (vel, acc)):
            if arr.shape != kps.shape[:3] + (2,):
                raise ValueError(f"{name} must be {kps.shape[:3] + (2,)} to match {keys[0]}, got {arr.shape}")
        return cls(kps, vel, acc)


def pose_feature_sequence(kin, seq_len: int = 64, num_people: int = 2,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """Stage 2: the CAER model input, float32 [seq_len, num_people * 17 * 7] ([64, 238]).

    Source: ``train_bilstm.py EnhancedPoseDataset.__getitem__`` (seed spec 5.2). Steps: keep the
    first ``num_people`` slots; crop to ``seq_len`` frames (centre ``start = (T - seq_len) // 2``,
    or a uniform random start from ``rng`` for training) or zero-pad at the end; zero-pad missing
    people; NaN -> 0 (+-inf -> +-float32 max, as ``np.nan_to_num``); per frame person-major, then
    joint (COCO-17), then ``[x, y, conf, vx, vy, ax, ay]``. Augment before calling (the seed
    augments before the crop).

    Args:
        kin: a :func:`kinematics` dict, a ``*__kin.npz`` mapping, or a :class:`PoseKinematics`.
        seq_len: output frames (>= 1). num_people: person slots (>= 1).
        rng: None for the centre crop (evaluation), a Generator for a random crop (training).

    Raises:
        ValueError: bad shapes / keys, or non-positive seq_len / num_people.
    """
    if int(seq_len) < 1 or int(num_people) < 1:
        raise ValueError(f"seq_len and num_people must be >= 1, got {seq_len}, {num_people}")
    sample = kin if isinstance(kin, PoseKinematics) else PoseKinematics.from_kin(kin)
    kps, vel, acc = (a[:, :num_people] for a in sample)
    n_t = kps.shape[0]
    per_frame = np.concatenate([kps, vel, acc], axis=-1)                       # [T, K, 17, 7]
    if n_t > seq_len:
        start = (n_t - seq_len) // 2 if rng is None else int(rng.integers(0, n_t - seq_len + 1))
        per_frame = per_frame[start:start + seq_len]
    out = np.zeros((seq_len, num_people, NUM_JOINTS, FEATURES_PER_JOINT), np.float32)
    out[:per_frame.shape[0], :per_frame.shape[1]] = per_frame
    return np.nan_to_num(out, nan=0.0).reshape(seq_len, -1)


def feature_index(person: int, joint: int, feature: str) -> int:
    """Column of ``feature`` (one of FEATURE_NAMES) of ``joint`` of ``person`` in the 238 vector."""
    return (person * NUM_JOINTS + joint) * FEATURES_PER_JOINT + FEATURE_NAMES.index(feature)


# ---------------------------------------------------------------------------------------------
# Person tracks -> stage 1 -> stage 2 (the stored ``videos/pose_features`` and its training view)
# ---------------------------------------------------------------------------------------------
def tracks_kinematics(tracks: np.ndarray, frame_times: np.ndarray, min_score: float = ProcCfg.min_score
                      ) -> PoseKinematics | None:
    """Stage 1 of a sample's person tracks with the CLI defaults (seed spec 5.1), every track kept.

    Args:
        tracks: float32 [P, T, 17, 3] COCO-17 person tracks (x, y, score in source pixels, NaN
            where unseen), without frame padding.
        frame_times: [T] the time axis (source frame indices).
        min_score: joint validity threshold (``ProcCfg.min_score``; the pipeline passes
            ``ExtractConfig.min_keypoint_score``, 0.2 by default = the seed's).

    Returns:
        The :class:`PoseKinematics` of ``P`` slots, or None when stage 1 rejects every track
        (:class:`SampleRejected`).
    """
    cfg = ProcCfg(keep_people=tracks.shape[0], min_score=float(min_score))
    try:
        kin = kinematics(np.transpose(tracks, (1, 0, 2, 3)), np.asarray(frame_times), cfg)
    except SampleRejected:
        return None
    return PoseKinematics.from_kin(kin)


def tracks_pose_features(tracks: np.ndarray, frame_times: np.ndarray, seq_len: int = 64,
                         min_score: float = ProcCfg.min_score) -> np.ndarray:
    """The CAER evaluation input of a sample's person tracks (seed spec 5.1-5.2): stage 1
    (:func:`tracks_kinematics`), then the centre crop of :func:`pose_feature_sequence`.

    Args:
        tracks: float32 [P, T, 17, 3]; frame_times: [T]; min_score: see :func:`tracks_kinematics`.
        seq_len: output frames (``ShardShapes.feature_frames``, 64).

    Returns:
        float32 [seq_len, P * 17 * 7]; all zeros when every track fails the stage-1 quality
        gates (as the seed's dataset gives for an all-NaN sequence).
    """
    kin = tracks_kinematics(tracks, frame_times, min_score)
    people = tracks.shape[0]
    if kin is None:
        return np.zeros((seq_len, people * NUM_JOINTS * FEATURES_PER_JOINT), np.float32)
    return pose_feature_sequence(kin, seq_len=seq_len, num_people=people)
