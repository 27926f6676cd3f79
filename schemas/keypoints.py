"""Keypoint layouts and the mappings between them.

Layouts are tuples of joint names in storage order. Keypoint arrays follow the MMAction2 / PySKL
convention used across affectzoo: ``float32 [..., V, C]`` with ``C = (x, y, score)`` in
source-image pixels (x right, y down, origin at the top-left pixel), NaN where a joint is absent.
"""
from __future__ import annotations

import numpy as np

#: COCO-17 order (PoseNet, MMPose, CAER zoo). Source: COCO keypoint annotation format.
COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: OpenPose body COCO-18 order (pytorch-openpose ``body.py``; seed_specs §7).
OPENPOSE18 = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

#: Head joints of COCO-17 (used to place a head region for face detection).
COCO17_HEAD = tuple(COCO17.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))


def coco17_to_openpose18(keypoints: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Map COCO-17 keypoints to the OpenPose-18 layout.

    Args:
        keypoints: ``float32 [..., 17, 3]`` (x, y, score) in pixels, NaN where absent.
        min_score: joints whose score is below this become NaN before mapping.

    Returns:
        ``float32 [..., 18, 3]``. The neck (OpenPose joint 1) is the midpoint of the two
        shoulders with the smaller of their scores, NaN unless both shoulders are present
        (the rule used by the shared OpenPose reference renderer, reference README §3).

    Raises:
        ValueError: when the joint axis is not 17 long or the last axis is not 3.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape[-2:] != (17, 3):
        raise ValueError(f"expected [..., 17, 3] COCO-17 keypoints, got shape {kp.shape}")
    kp = kp.copy()
    kp[kp[..., 2] < min_score] = np.nan
    out = np.full(kp.shape[:-2] + (18, 3), np.nan, dtype=np.float32)
    for op_index, name in enumerate(OPENPOSE18):
        if name != "neck":
            out[..., op_index, :] = kp[..., COCO17.index(name), :]
    left, right = kp[..., 5, :], kp[..., 6, :]
    out[..., 1, :2] = (left[..., :2] + right[..., :2]) / 2.0
    out[..., 1, 2] = np.minimum(left[..., 2], right[..., 2])
    return out
