"""Training-time transforms of the CAER pose kinematics (``train_bilstm.py PoseAugmentor``).

Source: ``JohnOh3809/EmotionRecognizer-@11e5753`` (seed spec 5.2). Small transforms of a
:class:`pipelines.represent.pose_features.PoseKinematics` triple (keypoints float32 [T, K, 17, 3],
vel / acc float32 [T, K, 17, 2]), each returning a new one, composed by :class:`Compose` /
:func:`seed_augmentation` and driven by a ``numpy.random.Generator``. The representation itself
(stage 1 and 2, no randomness but the crop) stays in :mod:`pipelines.represent.pose_features`.

QUIRK kept on purpose: flip / scale / rotate act about 0.5 (the seed assumes coordinates in
[0, 1]), while stage-1 coordinates are centred on 0; ``centre`` is a parameter with the seed's
default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pipelines.represent.pose_features import NUM_JOINTS, PoseKinematics

#: COCO-17 left/right pairs swapped by a horizontal flip (seed spec 5.2).
COCO17_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


def flip(sample: PoseKinematics, centre: float = 0.5) -> PoseKinematics:
    """Mirror x about ``centre`` (x -> 2 centre - x; vx, ax negated) and swap COCO left/right."""
    perm = np.arange(NUM_JOINTS)
    for left, right in COCO17_FLIP_PAIRS:
        perm[left], perm[right] = right, left
    kps, vel, acc = (a[:, :, perm].copy() for a in sample)
    kps[..., 0] = 2.0 * centre - kps[..., 0]
    vel[..., 0] *= -1.0
    acc[..., 0] *= -1.0
    return PoseKinematics(kps, vel, acc)


def scale(sample: PoseKinematics, factor: float, centre: float = 0.5) -> PoseKinematics:
    """Scale x, y about (centre, centre) and vel, acc by ``factor``; conf unchanged."""
    kps, vel, acc = (a.copy() for a in sample)
    kps[..., :2] = (kps[..., :2] - centre) * factor + centre
    return PoseKinematics(kps, (vel * factor).astype(np.float32), (acc * factor).astype(np.float32))


def _rotate_xy(xy: np.ndarray, cos: float, sin: float) -> np.ndarray:
    return np.stack([xy[..., 0] * cos - xy[..., 1] * sin, xy[..., 0] * sin + xy[..., 1] * cos], -1)


def rotate(sample: PoseKinematics, angle_rad: float, centre: float = 0.5) -> PoseKinematics:
    """Rotate x, y by ``angle_rad`` (counter-clockwise in x-right/y-up terms) about
    (centre, centre), and vel, acc about the origin; conf unchanged."""
    cos, sin = float(np.cos(angle_rad)), float(np.sin(angle_rad))
    kps = sample.keypoints.copy()
    kps[..., :2] = _rotate_xy(kps[..., :2] - centre, cos, sin) + centre
    return PoseKinematics(kps, _rotate_xy(sample.vel, cos, sin).astype(np.float32),
                          _rotate_xy(sample.acc, cos, sin).astype(np.float32))


def add_noise(sample: PoseKinematics, std: float, rng: np.random.Generator,
              vel_mult: float = 2.0, acc_mult: float = 4.0) -> PoseKinematics:
    """Add N(0, std) to x, y, N(0, vel_mult std) to vel, N(0, acc_mult std) to acc; conf unchanged."""
    kps = sample.keypoints.copy()
    kps[..., :2] += rng.standard_normal(kps[..., :2].shape).astype(np.float32) * np.float32(std)
    vel = sample.vel + rng.standard_normal(sample.vel.shape).astype(np.float32) * np.float32(std * vel_mult)
    acc = sample.acc + rng.standard_normal(sample.acc.shape).astype(np.float32) * np.float32(std * acc_mult)
    return PoseKinematics(kps, vel, acc)


def time_warp(sample: PoseKinematics, speed: float) -> PoseKinematics:
    """Resample to ``clip(int(T / speed), 4, 2T)`` frames by linear interpolation at
    ``linspace(0, T-1, T_new)`` (all channels; vel/acc are not rescaled, as the seed).
    Sequences with T < 4 are returned unchanged. Output frames that fall exactly on an input
    frame copy it (our choice: the seed also blends in the next frame with weight 0, which turns a
    valid frame NaN when its neighbour is NaN); otherwise a NaN neighbour gives NaN."""
    n_t = sample.keypoints.shape[0]
    if n_t < 4:
        return sample
    n_new = max(4, min(int(n_t / speed), n_t * 2))
    pos = np.linspace(0, n_t - 1, n_new)
    low = pos.astype(int)
    high = np.minimum(low + 1, n_t - 1)
    alpha = (pos - low)[:, None, None, None]
    return PoseKinematics(*(np.where(alpha == 0, a[low], a[low] * (1 - alpha) + a[high] * alpha).astype(np.float32)
                            for a in sample))


def drop_joints(sample: PoseKinematics, joints: Sequence[int]) -> PoseKinematics:
    """Set every channel of ``joints`` to 0 for all frames and people."""
    kps, vel, acc = (a.copy() for a in sample)
    idx = list(joints)
    for arr in (kps, vel, acc):
        arr[:, :, idx] = 0.0
    return PoseKinematics(kps, vel, acc)


@dataclass(frozen=True)
class RandomFlip:
    """Apply :func:`flip` (about ``centre``)."""

    centre: float = 0.5

    def __call__(self, sample: PoseKinematics, rng: np.random.Generator) -> PoseKinematics:
        return flip(sample, self.centre)


@dataclass(frozen=True)
class RandomScale:
    """:func:`scale` by U(low, high) (seed 0.8-1.2)."""

    low: float = 0.8
    high: float = 1.2
    centre: float = 0.5

    def __call__(self, sample, rng):
        return scale(sample, float(rng.uniform(self.low, self.high)), self.centre)


@dataclass(frozen=True)
class RandomRotation:
    """:func:`rotate` by U(-max_deg, max_deg) degrees (seed 15)."""

    max_deg: float = 15.0
    centre: float = 0.5

    def __call__(self, sample, rng):
        return rotate(sample, np.deg2rad(rng.uniform(-self.max_deg, self.max_deg)), self.centre)


@dataclass(frozen=True)
class RandomNoise:
    """:func:`add_noise` with std U(low, high) (seed 0.005-0.02; x2 vel, x4 acc)."""

    low: float = 0.005
    high: float = 0.02

    def __call__(self, sample, rng):
        return add_noise(sample, float(rng.uniform(self.low, self.high)), rng)


@dataclass(frozen=True)
class RandomTimeWarp:
    """:func:`time_warp` with speed U(low, high) (seed 0.8-1.2)."""

    low: float = 0.8
    high: float = 1.2

    def __call__(self, sample, rng):
        return time_warp(sample, float(rng.uniform(self.low, self.high)))


@dataclass(frozen=True)
class RandomJointDrop:
    """:func:`drop_joints` on ``n`` distinct joints, ``n`` uniform in [min_joints, max_joints]."""

    min_joints: int = 1
    max_joints: int = 3

    def __call__(self, sample, rng):
        n = int(rng.integers(self.min_joints, self.max_joints + 1))
        return drop_joints(sample, rng.choice(NUM_JOINTS, size=n, replace=False))


@dataclass(frozen=True)
class RandomApply:
    """Apply ``transform`` with probability ``p`` (one ``rng.random()`` draw per call)."""

    transform: Any
    p: float

    def __call__(self, sample, rng):
        return self.transform(sample, rng) if rng.random() < self.p else sample


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order; each is ``(PoseKinematics, Generator) -> PoseKinematics``."""

    transforms: tuple

    def __call__(self, sample: PoseKinematics, rng: np.random.Generator) -> PoseKinematics:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


def seed_augmentation(aug_prob: float = 0.5, centre: float = 0.5) -> Compose:
    """The seed's ``PoseAugmentor(aug_prob)`` chain: flip, scale, rotation, noise each with
    probability ``aug_prob``, time warp with ``aug_prob / 2``, joint drop with ``0.3 aug_prob``
    (seed spec 5.2; the architecture scripts use 0.5, the ``train_bilstm`` CLI 0.7)."""
    return Compose((
        RandomApply(RandomFlip(centre), aug_prob),
        RandomApply(RandomScale(centre=centre), aug_prob),
        RandomApply(RandomRotation(centre=centre), aug_prob),
        RandomApply(RandomNoise(), aug_prob),
        RandomApply(RandomTimeWarp(), aug_prob * 0.5),
        RandomApply(RandomJointDrop(), aug_prob * 0.3),
    ))
