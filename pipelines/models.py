"""The run's pose and face models, loaded once per worker process and shared by its threads.

:class:`ExtractorModels` wraps the two extractors of a run (``cfg.pose_extractor``,
``cfg.face_extractor``) behind two calls on plain lists of frames, in chunks of at most
``cfg.max_batch_size`` frames (face crops: 4x as many, they are small). The pose model's output
is brought to COCO-17, the layout the assembly works in (OpenPose-18's neck is dropped; the
assembly re-derives it as the mid-shoulder point).

One copy per process: :func:`shared_models` keeps the loaded models in a
``apache_beam.utils.shared.Shared`` handle, so every DoFn instance of a worker process uses the
same copy (on a GPU machine the local runner uses one worker process, so one copy per GPU; see
``docs/runners.md`` for cluster runners).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from pipelines.config import ExtractConfig

#: Face crops per face-model call, relative to ``max_batch_size`` frames per pose-model call.
FACE_BATCH_FACTOR = 4


def _chunked(fn: Callable[[list], list], items: list, size: int) -> list:
    out: list = []
    for start in range(0, len(items), max(1, size)):
        out.extend(fn(items[start: start + size]))
    return out


class ExtractorModels:
    """Pose and face models of one run on ``cfg.device``.

    Raises (at construction):
        extractors.registry.UnknownExtractorError: an extractor name the registry lacks.
        extractors.weights.WeightsNotFoundError / WeightsChecksumError: a weights file is
            missing or differs from its registered sha256.
    """

    def __init__(self, cfg: ExtractConfig, need_pose: bool = True):
        from extractors import registry

        registry.prepare_device(cfg.device, torch_threads=cfg.torch_threads if cfg.device == "cpu" else 0)
        self.cfg = cfg
        self.face = registry.resolve(cfg.face_extractor, role="face")
        self.face_model = self.face.load(cfg.device)
        self.pose = registry.resolve(cfg.pose_extractor, role="pose") if need_pose else None
        self.pose_model = self.pose.load(cfg.device) if need_pose else None
        self._pose_options = self.pose.options_from(cfg) if self.pose is not None else {}
        if cfg.device.startswith("cuda"):  # kernels, cuDNN autotuning and allocator pools, once per process
            self.face.warmup(self.face_model, cfg.device, size=(128, 128), batch=cfg.max_batch_size * FACE_BATCH_FACTOR)
            if self.pose is not None:
                self.pose.warmup(self.pose_model, cfg.device, batch=cfg.max_batch_size, **self._pose_options)

    def poses(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``: COCO-17
        (x, y, score) in source-frame pixels. ``frames``: RGB uint8 [H, W, 3]."""
        return [self.coco17(found) for found in self.raw_poses(frames)]

    def raw_poses(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame ``(pose_scores float32 [P], keypoints float32 [P, V, C])`` in the
        extractor's own layout (``blazepose-ghum``: V = 33, C = 8 with metric world
        coordinates, :data:`schemas.keypoints.BLAZEPOSE_CHANNELS`)."""
        def run(batch):
            return self.pose.infer(self.pose_model, batch, device=self.cfg.device, **self._pose_options)

        return _chunked(run, frames, self.cfg.max_batch_size)

    def coco17(self, found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One frame of :meth:`raw_poses` as ``(pose_scores, keypoints float32 [P, 17, 3])``."""
        from extractors import registry

        scores, keypoints = found
        return scores, registry.to_coco17(keypoints, self.pose.keypoint_layout)

    def faces(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Per crop ``float32 [D, 5 + 2L]`` detections (box x1, y1, x2, y2, score, L landmarks)
        in crop pixels. ``crops``: RGB uint8 [S, S, 3]."""
        def run(batch):
            return self.face.infer(self.face_model, batch, device=self.cfg.device)

        return _chunked(run, crops, self.cfg.max_batch_size * FACE_BATCH_FACTOR)


def shared_models(handle, cfg: ExtractConfig) -> ExtractorModels:
    """The process's :class:`ExtractorModels` for ``cfg`` from a Beam ``Shared`` handle."""
    need_pose = cfg.modality == "video"
    key = (cfg.pose_extractor, cfg.face_extractor, cfg.device, cfg.max_batch_size, need_pose)

    class _Holder:  # Shared keeps a weak reference: the holder must be a weak-referenceable object
        def __init__(self):
            self.models = ExtractorModels(cfg, need_pose=need_pose)

    return handle.acquire(_Holder, tag=repr(key)).models

