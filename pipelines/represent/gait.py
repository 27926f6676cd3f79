"""BlazePose world landmarks -> ProxEmo / EWalk gaits: the seed's 16 joints in the gait frame.

Seed 000 (``zykev/pose_emotion``, seed spec 2.1-2.4) turns 3-D body points of a walking person
into ProxEmo's image embedding. Here the 3-D points are BlazePose GHUM's metric world landmarks
(:mod:`extractors.blazepose`, channels :data:`schemas.keypoints.BLAZEPOSE_CHANNELS` 5:8).

Steps (:func:`gait_from_blazepose`):

1. joints: :data:`schemas.keypoints.MAPPINGS` ``("blazepose33", "proxemo16")`` (each joint's
   definition is in that mapping's notes);
2. axes: BlazePose world is x right, y down, z away from the camera (metres); the gait frame is
   y **up** (ProxEmo's view rotation ``augment3D`` turns about y, and the STEP / EWalk gaits have
   the head at +y), so (x, y, z) -> (x, -y, -z), a rotation by 180 degrees about x (handedness
   kept);
3. root centring: the root joint is subtracted in every frame (ProxEmo's live demo
   ``pose_tracking/human_tracking_3D.py`` subtracts the root joint; seed spec 2.4);
4. scale: the body height of the window (median over frames of head y minus the lower foot's
   y) becomes :data:`GAIT_BODY_HEIGHT` = 0.92, the median of the shared STEP fixtures
   ``step_features4DCVAEGCN.h5`` (0.91-0.94 there). ProxEmo's embedding is a per-coordinate
   min-max, so the scale only matters for the training views' 150-unit translation.

Windows (:data:`GAIT_WINDOW` = 31 frames): pose_emotion's ``image2pose.py`` computes the pose on
31 consecutive frames ``[begin, begin + 30]``, and ``show_emo.load_pose_data`` tiles a gait of
fewer than 50 frames 8 times (:func:`tile_short_gait`); the views are pose_emotion's inference
views (0 / 90 / 180 / 270 degrees, no translation;
:func:`pipelines.represent.embedding.inference_views`).
"""
from __future__ import annotations

import numpy as np

from schemas.keypoints import BLAZEPOSE_CHANNELS, PROXEMO16, map_keypoints

__all__ = ["GAIT_WINDOW", "GAIT_BODY_HEIGHT", "MIN_VISIBLE_FRAMES", "blazepose_to_proxemo16",
           "to_gait_frame", "gait_from_blazepose", "tile_short_gait", "window_starts",
           "fill_gaps"]

GAIT_WINDOW = 31
"""Frames per gait window (pose_emotion ``image2pose.py``: ``[begin, begin + 30]``)."""
GAIT_BODY_HEIGHT = 0.92
"""Head-above-feet height of a normalised gait (median of the STEP fixtures, 0.91-0.94)."""
MIN_VISIBLE_FRAMES = 0.8
"""Share of a window's frames in which the person must be seen (the rest are interpolated)."""
TILE_BELOW, TILE_TIMES = 50, 8
_WORLD = slice(BLAZEPOSE_CHANNELS.index("world_x"), BLAZEPOSE_CHANNELS.index("world_z") + 1)
_ROOT, _HEAD = PROXEMO16.index("root"), PROXEMO16.index("head")
_FEET = [PROXEMO16.index("left_foot"), PROXEMO16.index("right_foot")]


def blazepose_to_proxemo16(keypoints: np.ndarray) -> np.ndarray:
    """World landmarks of BlazePose keypoints as the 16 ProxEmo joints.

    Args:
        keypoints: float ``[..., 33, 8]`` (:data:`schemas.keypoints.BLAZEPOSE_CHANNELS`).
    Returns:
        float32 ``[..., 16, 3]`` metres in BlazePose's world frame (x right, y down, z away).
    Raises:
        ValueError: not ``[..., 33, 8]``.
    """
    kp = np.asarray(keypoints, np.float32)
    if kp.ndim < 2 or kp.shape[-2:] != (33, len(BLAZEPOSE_CHANNELS)):
        raise ValueError(f"expected BlazePose keypoints [..., 33, {len(BLAZEPOSE_CHANNELS)}], got {kp.shape}")
    return map_keypoints(kp[..., _WORLD], "blazepose33", "proxemo16", has_score=False)


def to_gait_frame(joints: np.ndarray) -> np.ndarray:
    """ProxEmo-16 world joints ``[T, 16, 3]`` (BlazePose axes, metres) -> the gait frame: y up,
    root-centred per frame, scaled to a body height of :data:`GAIT_BODY_HEIGHT` (see the module
    docstring). float64 ``[T, 16, 3]``.

    Raises:
        ValueError: not ``[T, 16, 3]``, NaN joints, or a body height <= 0 (head not above feet).
    """
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[1:] != (16, 3):
        raise ValueError(f"expected ProxEmo joints [T, 16, 3], got {j.shape}")
    if not np.isfinite(j).all():
        raise ValueError("gait joints hold NaN; fill the gaps first (fill_gaps)")
    g = j * np.array([1.0, -1.0, -1.0])
    g = g - g[:, _ROOT:_ROOT + 1]
    height = float(np.median(g[:, _HEAD, 1] - g[:, _FEET, 1].min(axis=1)))
    if not height > 0:
        raise ValueError(f"body height {height:.3f} <= 0: the head is not above the feet")
    return g * (GAIT_BODY_HEIGHT / height)


def fill_gaps(joints: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of frames that are NaN (a person missed for a few frames);
    frames before the first / after the last seen frame copy the nearest seen one.

    Args:
        joints: float ``[T, 16, 3]``, whole frames NaN where the person was not seen.
    Raises:
        ValueError: no frame is seen.
    """
    j = np.asarray(joints, np.float64).copy()
    seen = np.isfinite(j).all(axis=(1, 2))
    if not seen.any():
        raise ValueError("no frame of the window shows the person")
    t = np.arange(len(j))
    flat = j.reshape(len(j), -1)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(t, t[seen], flat[seen, c])
    return flat.reshape(j.shape)


def gait_from_blazepose(keypoints: np.ndarray) -> np.ndarray:
    """A window of one person's BlazePose keypoints -> a ProxEmo gait.

    Args:
        keypoints: float ``[T, 33, 8]``, NaN rows where the person is not seen.
    Returns:
        float64 ``[T, 16, 3]`` in the gait frame (:func:`to_gait_frame`), gaps interpolated.
    Raises:
        ValueError: see :func:`blazepose_to_proxemo16`, :func:`fill_gaps`, :func:`to_gait_frame`.
    """
    return to_gait_frame(fill_gaps(blazepose_to_proxemo16(keypoints)))


def tile_short_gait(gait: np.ndarray) -> np.ndarray:
    """pose_emotion's rule: a gait of fewer than 50 frames is tiled 8 times along time
    (``np.tile(coords, (8, 1))``, 31 -> 248 frames); longer gaits are returned as they are."""
    g = np.asarray(gait)
    return np.tile(g, (TILE_TIMES,) + (1,) * (g.ndim - 1)) if len(g) < TILE_BELOW else g


def window_starts(num_frames: int, window: int = GAIT_WINDOW) -> np.ndarray:
    """Starts of the consecutive, non-overlapping gait windows of a track of ``num_frames``
    frames (a tail shorter than ``window`` is dropped). int64 ``[W]``."""
    return np.arange(0, max(num_frames - window + 1, 0), window, dtype=np.int64)
