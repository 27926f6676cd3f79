"""CAER pose features computed at load time, with the seed's training augmentations.

Source: ``JohnOh3809/EmotionRecognizer-@11e5753`` ``train_bilstm.py EnhancedPoseDataset`` /
``PoseAugmentor`` (seed_specs 5.2): the dataset augments a sample's kinematics (flip with
left/right swap, scale, rotation, noise, each with probability ``aug_prob``; time warp with
``aug_prob / 2``; joint drop with ``0.3 aug_prob``) **before** cropping to 64 frames, and the crop
starts at a random frame when training (the centre otherwise).

The extraction stores the evaluation input (``videos/pose_features``, the centre crop without
augmentation) and what is needed to recompute it: the COCO-17 person tracks ``videos/tracks``
and the frame times ``videos/timestamps_s``. :class:`CaerPoseView` recomputes stage 1
(:func:`pipelines.represent.pose_features.tracks_kinematics`) from them, augments
(:mod:`zoo.transforms`) and crops; without a random generator it returns exactly the stored row
(the same functions on the same inputs as
:func:`pipelines.represent.pose_features.tracks_pose_features`, which the extraction stores).

Time axis: stage 1 measures velocity per source-frame step (the seed's ``frame_indices``), so the
view turns ``timestamps_s`` (``frame_index / fps`` in float32) back into frame indices with the
video's ``fps`` (:func:`frame_time_axis`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.represent.pose_features import (FEATURES_PER_JOINT, NUM_JOINTS, ProcCfg, pose_feature_sequence,
                                               tracks_kinematics)
from zoo.transforms import seed_augmentation


def frame_time_axis(timestamps_s: np.ndarray, fps: float) -> np.ndarray:
    """Source frame indices of sampled frames from their times: ``rint(timestamps_s * fps)``.

    Args:
        timestamps_s: float32 [T] seconds, ``frame_index / fps`` (``videos/timestamps_s`` without
            its NaN padding).
        fps: the video's frame rate (frames per second; Parquet ``videos.fps``).

    Returns:
        float64 [T] frame indices. When ``fps`` or a time is not finite (skeleton corpora without
        a frame rate), the positions ``0 .. T-1`` (one frame step per row).
    """
    times = np.asarray(timestamps_s, np.float64)
    if not (np.isfinite(fps) and fps > 0 and np.isfinite(times).all()):
        return np.arange(len(times), dtype=np.float64)
    return np.rint(times * float(fps))


def caer_pose_features(tracks: np.ndarray, frame_times: np.ndarray, seq_len: int = 64,
                       rng: np.random.Generator | None = None, augmentation: Any = None,
                       min_score: float = ProcCfg.min_score) -> np.ndarray:
    """The CAER input of one sample: stage 1, optional augmentation, crop / pad, flatten.

    Args:
        tracks: float32 [P, T, 17, 3] COCO-17 person tracks (x, y, score in source pixels, NaN
            where unseen), without frame padding.
        frame_times: [T] the time axis of stage 1 (source frame indices, :func:`frame_time_axis`).
        seq_len: output frames (64).
        rng: None = evaluation (no augmentation, centre crop); a Generator = training (the
            ``augmentation`` drawn from it, then a random crop start when T' > seq_len).
        augmentation: ``(PoseKinematics, Generator) -> PoseKinematics`` (e.g.
            :func:`zoo.transforms.seed_augmentation`); None = none.
        min_score: stage-1 joint threshold; the extraction's ``min_keypoint_score`` (0.2).

    Returns:
        float32 [seq_len, P * 17 * 7]. A sample whose tracks all fail the stage-1 gates is all
        zeros (also in training: nothing to augment), as the stored features. With ``rng=None``
        this is :func:`pipelines.represent.pose_features.tracks_pose_features`, the stored row.

    Raises:
        ValueError: ``tracks`` is not [P, T, 17, 3] or ``frame_times`` is not [T].
    """
    tracks = np.asarray(tracks, np.float32)
    if tracks.ndim != 4 or tracks.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f"tracks must be [P, T, 17, 3], got {tracks.shape}")
    if np.shape(frame_times) != (tracks.shape[1],):
        raise ValueError(f"frame_times must be [{tracks.shape[1]}] (one per track frame), got {np.shape(frame_times)}")
    people = tracks.shape[0]
    sample = tracks_kinematics(tracks, frame_times, min_score)
    if sample is None:
        return np.zeros((seq_len, people * NUM_JOINTS * FEATURES_PER_JOINT), np.float32)
    if rng is not None and augmentation is not None:
        sample = augmentation(sample, rng)
    return pose_feature_sequence(sample, seq_len=seq_len, num_people=people, rng=rng)


@dataclass(frozen=True)
class CaerPoseView:
    """Load-time training view of the CAER models (``zoo.train --augment``).

    Reads a sample's ``videos/tracks`` [P, T, 17, 3], ``videos/timestamps_s`` [T],
    ``num_frames`` and ``fps`` (the dict :meth:`zoo.data.ShardDataset.video` returns) and gives
    float32 [64, P*17*7]: with a Generator, the seed's augmentation chain then a random crop;
    with ``rng=None``, the stored evaluation row exactly.

    Attributes:
        aug_prob: the seed's ``aug_prob`` (0.5 in the architecture scripts, 0.7 in the
            ``train_bilstm`` CLI); 0 = random crop only.
        seq_len: output frames.
        augmentation: the transform; None = :func:`zoo.transforms.seed_augmentation` ``(aug_prob)``.
        min_score: stage-1 joint threshold, the extraction's ``min_keypoint_score`` (0.2).
    """

    aug_prob: float = 0.5
    seq_len: int = 64
    augmentation: Any = None
    min_score: float = ProcCfg.min_score
    needs: tuple = field(default=("tracks", "timestamps_s", "num_frames", "fps"), init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.aug_prob) <= 1.0:
            raise ValueError(f"aug_prob must be in [0, 1], got {self.aug_prob}")
        if self.augmentation is None:
            object.__setattr__(self, "augmentation", seed_augmentation(float(self.aug_prob)))

    def __call__(self, video: dict, rng: np.random.Generator | None = None) -> np.ndarray:
        """float32 [seq_len, P*17*7] of one ``videos`` row (see the class docstring).

        Raises:
            ValueError: the row's arrays have the wrong shapes (the message names ``source``).
        """
        n = int(video["num_frames"])
        try:
            return caer_pose_features(video["tracks"][:, :n], frame_time_axis(video["timestamps_s"][:n], video["fps"]),
                                      self.seq_len, rng, self.augmentation, self.min_score)
        except ValueError as exc:
            raise ValueError(f"{video.get('source', 'videos row')}: {exc}") from exc
