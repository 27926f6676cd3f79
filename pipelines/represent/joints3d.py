"""3-D joints of a window's persons and the seed-000 gait of its main person.

With a 3-D pose extractor (``--body blazepose-ghum``: MediaPipe BlazePose GHUM, 33 landmarks
with metric world coordinates, :mod:`extractors.blazepose`) the extraction keeps, next to the
COCO-17 2-D view that tracking and the 2-D representations use, every landmark of the persons
of ``tracks`` (``videos/joints3d``), and turns the main person's into the gait of the seed
"Emotion Recognition with Walk Pose through CNN" / ProxEmo: 16 joints in the EWalk frame
(:func:`pipelines.represent.gait.gait_from_blazepose`) and its image embedding
(:func:`pipelines.represent.embedding.gait_embedding`, vijay4313/proxemo@98c4e21 loader).

Shapes: P persons (``tracks`` rows), T' sampled frames, W = 33 landmarks, 8 channels
(:data:`schemas.keypoints.BLAZEPOSE_CHANNELS`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["person_joints3d", "main_gait"]


def person_joints3d(keypoints: Sequence[np.ndarray], pose_person: Sequence[np.ndarray],
                    person_ids: np.ndarray) -> np.ndarray:
    """The 3-D keypoints of each ``tracks`` person, frame by frame.

    Args:
        keypoints: per sampled frame float32 ``[P_t, W, 8]``, the extractor's output in the order
            of its poses (the same order as the COCO-17 view that was tracked).
        pose_person: per frame int32 ``[P_t]`` person id of each pose
            (:attr:`pipelines.persons.Identity.pose_person`).
        person_ids: int32 ``[P]`` the person of each ``tracks`` row (-1 = empty row).

    Returns:
        float32 ``[P, T', W, 8]``; NaN where the row's person has no pose (or the row is empty).

    Raises:
        ValueError: a frame's keypoints and person ids disagree in length, or frames differ in W.
    """
    widths = {k.shape[1:] for k in keypoints if len(k)}
    if len(widths) > 1:
        raise ValueError(f"3-D keypoints of different layouts in one window: {sorted(widths)}")
    joints, channels = widths.pop() if widths else (33, 8)
    out = np.full((len(person_ids), len(keypoints), joints, channels), np.nan, np.float32)
    row = {int(p): r for r, p in enumerate(person_ids) if p >= 0}
    for t, (kp, who) in enumerate(zip(keypoints, pose_person)):
        if len(kp) != len(who):
            raise ValueError(f"frame {t}: {len(kp)} 3-D poses but {len(who)} person ids")
        for j in np.flatnonzero(who >= 0):
            if int(who[j]) in row:
                out[row[int(who[j])], t] = kp[j]
    return out


def main_gait(joints3d: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed-000 gait of the main person and its ProxEmo image embedding.

    Args:
        joints3d: float32 ``[T', 33, 8]`` the main person's row of :func:`person_joints3d`.
        frames: T, the stored frame count (the gait is padded with zeros past T').

    Returns:
        ``(gait float32 [T, 16, 3], embedding float32 [244, 244, 3])``: ProxEmo-16 joints in the
        gait frame (y up, root-centred, body height 0.92, gaps interpolated;
        :func:`pipelines.represent.gait.gait_from_blazepose`) and
        :func:`pipelines.represent.embedding.gait_embedding` of its T' frames. Both are zeros
        when the person is never seen whole or the gait is degenerate (fewer than 2 frames,
        head not above the feet), which the trainer can tell by an all-zero gait.
    """
    from pipelines.represent.embedding import gait_embedding
    from pipelines.represent.gait import gait_from_blazepose

    gait = np.zeros((frames, 16, 3), np.float32)
    embedding = np.zeros((244, 244, 3), np.float32)
    seen = np.isfinite(joints3d[..., 5:8]).all(axis=(1, 2))
    if seen.sum() < 2:
        return gait, embedding
    try:
        g = gait_from_blazepose(joints3d)
    except ValueError:
        return gait, embedding
    gait[: len(g)] = g[:frames]
    return gait, gait_embedding(g)
