"""SISTCM / ResNet-18 TLSTM clip frames drawn anew every epoch from a stored face pool.

Source: FER_BGER ``Facial/Model/class_data_new1.py get_video(video, C, K)`` (seed_specs 1.1). The
seed draws the C x K frames of a video once, when its dataset is built, and keeps them for every
epoch (QUIRK); the extraction stores that kind of plan deterministically (``clips/faces``,
:func:`pipelines.sampling.clip_positions`, the seed's ``sample_video`` rule). With a face pool
(card ``face_pool = true``: ``videos/face_pool`` holds the face crop of every sampled frame) the
trainer's ``--redraw`` makes the random draw of ``get_video`` again for every training item, as
the paper's per-epoch sampling intends; evaluation keeps the stored plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.sampling import clip_positions, random_clip_positions


@dataclass(frozen=True)
class FaceRedraw:
    """Load-time training view of ``sistcm`` / ``resnet18-tlstm`` (``zoo.train --redraw``).

    From a sample's ``videos/face_pool`` uint8 [T, S, S, 3] and ``num_frames`` (the dict
    :meth:`zoo.data.ShardDataset.video` returns) it gives the stacked clip faces uint8
    [C, K, S, S, 3] at :func:`pipelines.sampling.random_clip_positions`; with ``rng=None`` at the stored
    deterministic plan (:func:`pipelines.sampling.clip_positions`), which equals the stored
    ``clips/faces`` stack. Pool frames whose face was not found (``face_pool_found`` False) are
    drawn like the others, as the stored clips keep such frames (the keypoint-predicted face
    region, or zeros).

    Attributes:
        clips: C. frames_per_clip: K (the stored clip stack's first two axes).
    """

    clips: int
    frames_per_clip: int
    needs: tuple = field(default=("face_pool", "num_frames"), init=False)

    def positions(self, num_frames: int, rng: np.random.Generator | None) -> np.ndarray:
        """int64 [C, K]: random (``rng``) or the stored plan (``rng=None``)."""
        if rng is None:
            return clip_positions(num_frames, self.clips, self.frames_per_clip)
        return random_clip_positions(num_frames, self.clips, self.frames_per_clip, rng)

    def __call__(self, video: dict, rng: np.random.Generator | None = None) -> np.ndarray:
        """uint8 [C, K, S, S, 3] face crops of one ``videos`` row.

        Raises:
            ValueError: the pool is empty (extracted without ``face_pool``) or shorter than
                ``num_frames`` (the message names ``source`` and the card option).
        """
        pool, n = video["face_pool"], int(video["num_frames"])
        if pool.shape[0] == 0 or pool.shape[0] < n or n < 1:
            raise ValueError(f"{video.get('source', 'videos row')}: videos/face_pool holds {pool.shape[0]} frames for "
                             f"{n} sampled frames; --redraw needs shards extracted with the card's "
                             "[representations] face_pool = true (or pipelines.extract --face-pool)")
        return pool[self.positions(n, rng)]
