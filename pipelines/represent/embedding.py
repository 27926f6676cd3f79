"""ProxEmo gait representation: view augmentation and the image embedding for VS-GCNN.

Sources: ``vijay4313/proxemo@98c4e21`` (``emotion_classification/utils/transform3DPose.py``,
``utils/dataGenerator.py``, ``loader/loader.py TrainTestLoader``) and its inference copy
``zykev/pose_emotion@4ef3385`` (``transform3DPose.py``, ``show_emo.py``); seed spec 2.2-2.5.

A *gait* is a sequence of T frames of the 16 ProxEmo joints (seed spec 2.2,
:data:`schemas.keypoints.PROXEMO16`: 0 root, 1 spine, 2 neck, 3 head, 4-6 first arm, 7-9 second
arm, 10-12 first leg, 13-15 second leg; which side is left is unverified) with (x, y, z) per
joint, given either as ``[T, 48]`` (the EWalk / ELMD / STEP ``features*.h5`` row layout,
joint-major: ``x0 y0 z0 x1 ...``) or as ``[T, 16, 3]``.
Units are those of the source (ProxEmo's training translation of 150 is in EWalk units; its
folder name ``AugData_150_cm`` suggests centimetres; the STEP gaits span about -0.3..0.7);
y is the vertical axis (the view rotation is about y).

Everything is computed in **float64**: the training views translate the gait by 150 units, so
in float32 the small STEP coordinate ranges lose enough precision to move embedding pixels by
up to 0.34 (reference README, tolerances). Embeddings are returned as float32.

The pipeline the paper trains on (seed spec 2.3, 2.4)::

    gait [T, 48] --augment3d(theta, 150, 1) for theta in 30/110/200/300--> 4 views
         --gait_embedding--> float32 [244, 244, 3] each, target 4*emotion + view_group(theta)

and the one pose_emotion uses at inference: angles 0/90/180/270 with no translation.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from schemas.keypoints import PROXEMO16

NUM_JOINTS = len(PROXEMO16)
NUM_COORDS = 3
EMBEDDING_SIZE = 244
"""Side of the square embedding image (``cv2.resize(img, (244, 244))`` in the reference)."""

PROXEMO_TRAIN_ANGLES = (30.0, 110.0, 200.0, 300.0)
"""View angles (degrees) of ProxEmo's ``utils/dataGenerator.py`` (one per view group)."""
PROXEMO_TRAIN_TRANS = 150.0
"""Translation of the training views (``AugData_150_cm``)."""
POSE_EMOTION_ANGLES = (0.0, 90.0, 180.0, 270.0)
"""View angles (degrees) of pose_emotion's ``show_emo.load_pose_data`` (inference)."""
POSE_EMOTION_TRANS = 0.0

ON_CONSTANT = ("zero", "nan", "raise")
MIN_FRAMES = 2


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def as_gait(gait, name: str = "gait") -> np.ndarray:
    """Validate a gait and return it as float64 ``[T, 16, 3]`` (a copy when the dtype changes).

    Args:
        gait: array-like ``[T, 48]`` (joint-major x, y, z) or ``[T, 16, 3]``.
        name: how the array is called in error messages (e.g. the h5 key).
    Returns:
        float64 ``[T, 16, 3]``.
    Raises:
        ValueError: any other shape, T < 2 (a gait needs motion; one frame gives a constant
            image along time), or non-finite values (NaN / inf: the reference's min/max would
            turn the whole coordinate channel into NaN; fill or drop missing joints first). The
            message names ``name``, the shape and the first offending frames.
    """
    arr = np.asarray(gait, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == NUM_JOINTS * NUM_COORDS:
        arr = arr.reshape(arr.shape[0], NUM_JOINTS, NUM_COORDS)
    elif not (arr.ndim == 3 and arr.shape[1:] == (NUM_JOINTS, NUM_COORDS)):
        raise ValueError(
            f"{name}: expected [T, {NUM_JOINTS * NUM_COORDS}] or [T, {NUM_JOINTS}, {NUM_COORDS}] "
            f"(ProxEmo joints x (x, y, z)), got shape {arr.shape}"
        )
    if arr.shape[0] < MIN_FRAMES:
        raise ValueError(f"{name}: a gait needs T >= {MIN_FRAMES} frames, got T = {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        frames = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite values (NaN/inf) in frames {frames[:10].tolist()}"
            f"{' ...' if frames.size > 10 else ''}; fill or drop missing joints before embedding"
        )
    return arr


def _same_layout(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Reshape a ``[T, 16, 3]`` result to the layout of the caller's input (``[T, 48]`` or not)."""
    if np.ndim(like) == 2:
        return result.reshape(result.shape[0], NUM_JOINTS * NUM_COORDS)
    return result


# ---------------------------------------------------------------------------------------------
# view augmentation
# ---------------------------------------------------------------------------------------------
def view_transform(theta_deg: float, trans: float, scale: float) -> np.ndarray:
    """The 4x4 row-vector transform ``P = K @ H`` of ProxEmo's ``augment3D`` (seed spec 2.3).

    ``H`` is all ones except ``H[:3, :3] = R = [[c, 0, -s], [0, 1, 0], [s, 0, c]]`` (rotation
    about y by theta) and ``H[3, :3] = [trans*c, trans*s, 0]``; ``K = diag(scale, scale, 1, 1)``.
    Points are rows ``[x, y, z, 1] @ P`` of which the first three columns are kept, i.e.::

        x' = scale*c*x + s*z + trans*c
        y' = scale*y       + trans*s
        z' = -scale*s*x + c*z

    QUIRKS (kept): ``scale`` multiplies the input x and y (rows of ``P``), not z; the
    translation lies in the x-y plane, so it shifts the gait *vertically* by ``trans*sin``
    although the rotation is about the vertical axis; the ones in ``H[:3, 3]`` only feed the
    discarded 4th column.

    Returns: float64 [4, 4].
    """
    theta = float(theta_deg) * np.pi / 180.0
    c, s = np.cos(theta), np.sin(theta)
    h = np.ones((4, 4), dtype=np.float64)
    h[:3, :3] = [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]
    h[3, :3] = [trans * c, trans * s, 0.0]
    k = np.diag([float(scale), float(scale), 1.0, 1.0])
    return k @ h


def augment3d(gait, theta_deg: float, trans: float, scale: float) -> np.ndarray:
    """ProxEmo ``augment3D(gait, theta, trans, scale)``: view a gait from another angle.

    Source: ``vijay4313/proxemo@98c4e21:emotion_classification/utils/transform3DPose.py``; seed
    spec 2.3. The training data of the shipped checkpoint used ``theta`` in 30/110/200/300,
    ``trans=150``, ``scale=1`` (:data:`PROXEMO_TRAIN_ANGLES`). See :func:`view_transform` for
    the exact formula and its quirks.

    Args:
        gait: ``[T, 48]`` or ``[T, 16, 3]`` (see :func:`as_gait`).
        theta_deg: rotation about the y axis, degrees.
        trans: translation length (source units).
        scale: factor on the input x and y.
    Returns:
        float64, same layout as ``gait``.
    Raises:
        ValueError: see :func:`as_gait`.
    """
    joints = as_gait(gait)
    p = view_transform(theta_deg, trans, scale)
    out = joints @ p[:3, :3] + p[3, :3]  # == ([x, y, z, 1] @ P)[..., :3]
    return _same_layout(out, np.asarray(gait))


def augment3d_pose_emotion(gait, theta_deg: float, trans: float = POSE_EMOTION_TRANS,
                           scale: float = 1.0) -> np.ndarray:
    """pose_emotion's ``augment3D(gait, theta, trans=0, scale=1)`` (inference views).

    Source: ``zykev/pose_emotion@4ef3385:transform3DPose.py`` (a copy of ProxEmo's with default
    arguments; the commented-out ``rotMat.T`` there is not applied). Same transform as
    :func:`augment3d`; with the defaults the gait is only rotated about y.

    Returns: float64, same layout as ``gait``. Raises: ValueError (see :func:`as_gait`).
    """
    return augment3d(gait, theta_deg, trans, scale)


def view_group(angle_deg: float, num_groups: int = 4) -> int:
    """View group of a view angle: ``int(angle / (360 / num_groups))`` (``int(angle/90)`` for 4).

    Source: ``loader/loader.py data_loader_base`` (seed spec 2.3): 30->0, 110->1, 200->2, 300->3.

    Raises:
        ValueError: angle outside [0, 360) (the reference would give group 4 for 390 and 0 for
            -30: pass ``angle % 360``) or ``num_groups < 1``.
    """
    if num_groups < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    angle = float(angle_deg)
    if not 0.0 <= angle < 360.0:
        raise ValueError(f"view angle must be in [0, 360) degrees, got {angle_deg}")
    return int(angle / (360.0 / num_groups))


# ---------------------------------------------------------------------------------------------
# image embedding
# ---------------------------------------------------------------------------------------------
def _coordinate_scale(span: np.ndarray, on_constant: str, name: str) -> np.ndarray:
    """``255 / (max_c - min_c)`` per coordinate, with the zero-range policy applied."""
    zero = span == 0
    if zero.any() and on_constant == "raise":
        axes = "xyz"
        which = ", ".join(axes[c] for c in np.flatnonzero(zero))
        raise ValueError(f"{name}: coordinate {which} is constant over the whole gait (max == min)")
    with np.errstate(divide="ignore"):
        scale = 255.0 / span  # inf where the range is 0, as in the reference
    if on_constant == "zero":
        scale[zero] = 0.0
    return scale


def gait_embedding(gait, size: int = EMBEDDING_SIZE, on_constant: str = "zero",
                   unit_range: bool = False, name: str = "gait") -> np.ndarray:
    """ProxEmo image embedding of one gait (``TrainTestLoader._convert_skeletion_to_image``).

    Source: ``vijay4313/proxemo@98c4e21:emotion_classification/loader/loader.py``; seed spec 2.4.
    Per coordinate c (R, G, B = x, y, z) with max/min over all frames and joints:
    ``img[t, j, c] = (max_c - v[t, j, c]) * (255 / (max_c - min_c))`` (inverted min-max: the
    minimum maps to 255, the maximum to 0), then ``cv2.resize(img, (size, size))`` with the
    default INTER_LINEAR, all in float64, returned as float32.

    Args:
        gait: ``[T, 48]`` or ``[T, 16, 3]``, any float dtype (converted to float64).
        size: output side (244 in the paper; VS-GCNN also accepts 224).
        on_constant: what a coordinate with ``max == min`` becomes (the reference divides by
            zero and the channel turns NaN):
            ``"zero"`` (default, our choice): the channel is 0, the value the maximum maps to
            (every sample *is* the maximum); ``"nan"``: faithful, the channel is NaN;
            ``"raise"``: ValueError.
        unit_range: divide by 255 (pose_emotion's ``show_emo.py`` inference does; ProxEmo
            training does not, and the shipped weights expect 0..255).
        name: used in error messages.
    Returns:
        float32 ``[size, size, 3]`` HWC: rows = time (T resized to ``size``), columns = joints
        (16 resized to ``size``), channels = x, y, z; values in [0, 255] (or [0, 1]).
    Raises:
        ValueError: bad shape, T < 2, non-finite values (:func:`as_gait`), size < 1, unknown
            ``on_constant``, or a constant coordinate with ``on_constant="raise"``.
    """
    if on_constant not in ON_CONSTANT:
        raise ValueError(f"on_constant must be one of {ON_CONSTANT}, got {on_constant!r}")
    if int(size) < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    joints = as_gait(gait, name)
    hi = joints.max(axis=(0, 1))
    lo = joints.min(axis=(0, 1))
    scale = _coordinate_scale(hi - lo, on_constant, name)
    with np.errstate(invalid="ignore"):
        img = (hi - joints) * scale  # 0 * inf = NaN in "nan" mode, as the reference
    img = cv2.resize(img, (int(size), int(size)), interpolation=cv2.INTER_LINEAR)
    if unit_range:
        img = img / 255.0
    return img.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# view sets and targets
# ---------------------------------------------------------------------------------------------
def view_set(gait, angles: Sequence[float], trans: float, scale: float = 1.0,
             num_groups: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Augment one gait to several views.

    Returns:
        ``(views, groups)``: float64 ``[V, T, 16, 3]`` (``augment3d`` per angle, in the given
        order) and int64 ``[V]`` view groups (:func:`view_group`).
    Raises:
        ValueError: no angles, an angle outside [0, 360), or a bad gait.
    """
    if len(angles) == 0:
        raise ValueError("angles must not be empty")
    joints = as_gait(gait)
    views = np.stack([augment3d(joints, a, trans, scale) for a in angles])
    groups = np.array([view_group(a, num_groups) for a in angles], dtype=np.int64)
    return views, groups


def training_views(gait) -> tuple[np.ndarray, np.ndarray]:
    """ProxEmo's training views: angles 30/110/200/300, trans 150, scale 1 -> groups 0, 1, 2, 3.

    Source: ``utils/dataGenerator.py`` (seed spec 2.3). Returns :func:`view_set`'s tuple.
    """
    return view_set(gait, PROXEMO_TRAIN_ANGLES, PROXEMO_TRAIN_TRANS, 1.0)


def inference_views(gait) -> tuple[np.ndarray, np.ndarray]:
    """pose_emotion's inference views: angles 0/90/180/270, trans 0, scale 1 -> groups 0-3.

    Source: ``zykev/pose_emotion@4ef3385:show_emo.py load_pose_data`` (seed spec 2.3).
    Returns :func:`view_set`'s tuple.
    """
    return view_set(gait, POSE_EMOTION_ANGLES, POSE_EMOTION_TRANS, 1.0)


def view_embeddings(gait, mode: str = "inference", **embedding_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """The four view embeddings of one gait, ready for VS-GCNN (NHWC batch).

    Args:
        gait: ``[T, 48]`` or ``[T, 16, 3]``.
        mode: ``"inference"`` (:func:`inference_views`) or ``"training"`` (:func:`training_views`).
        embedding_kwargs: passed to :func:`gait_embedding` (``size``, ``on_constant``, ...).
    Returns:
        ``(images, groups)``: float32 ``[4, 244, 244, 3]`` and int64 ``[4]`` view groups.
    Raises:
        ValueError: unknown mode or a bad gait.
    """
    if mode == "inference":
        views, groups = inference_views(gait)
    elif mode == "training":
        views, groups = training_views(gait)
    else:
        raise ValueError(f"mode must be 'inference' or 'training', got {mode!r}")
    images = np.stack([gait_embedding(v, **embedding_kwargs) for v in views])
    return images, groups


def training_target(emotion, group, num_emotions: int = 4, num_groups: int = 4):
    """VS-GCNN class index ``num_groups * emotion + group`` (16 classes for 4 x 4).

    The reference trainer writes ``num_classes * label + group`` with ``num_classes`` the number
    of emotions; with 4 emotions and 4 groups both read ``4 * emotion + group`` (seed spec 2.5).
    Inverse: ``emotion = index // num_groups``, ``group = index % num_groups``.

    Args:
        emotion: int or int array in [0, num_emotions).
        group: int or int array in [0, num_groups) (broadcast with ``emotion``).
    Returns:
        int (scalars) or int64 array.
    Raises:
        ValueError: a value out of range.
    """
    e = np.asarray(emotion)
    g = np.asarray(group)
    if not (np.issubdtype(e.dtype, np.integer) and np.issubdtype(g.dtype, np.integer)):
        raise ValueError(f"emotion and group must be integers, got {e.dtype} and {g.dtype}")
    if e.size and (e.min() < 0 or e.max() >= num_emotions):
        raise ValueError(f"emotion must be in [0, {num_emotions}), got {e.tolist()}")
    if g.size and (g.min() < 0 or g.max() >= num_groups):
        raise ValueError(f"view group must be in [0, {num_groups}), got {g.tolist()}")
    target = num_groups * e.astype(np.int64) + g.astype(np.int64)
    return int(target) if target.ndim == 0 else target
