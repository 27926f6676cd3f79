"""Apache Beam ``RunInference`` model handlers for the affectzoo extractors.

One generic handler, :class:`ExtractorHandler`, runs any :mod:`extractors.registry` entry: its
``load_model`` is the entry's ``load`` (after :func:`extractors.registry.prepare_device` with
the handler's explicit ``torch_threads``), its ``run_inference`` the entry's ``infer`` on the
whole batch. Elements are single frames (uint8 [H, W, 3] RGB numpy arrays); Beam's
``BatchElements`` groups frames of many videos into batches of at most ``max_batch_size``.
Wrap a handler in ``KeyedModelHandler`` to carry keys such as ``(sample_id, position)``.
The per-extractor classes below only fix the entry and name its options.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from extractors import registry


class ExtractorHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler of one registry entry.

    Args:
        extractor: registry name or alias (:func:`extractors.registry.resolve`).
        device: torch device (``cpu``, ``cuda``, ``cuda:1``).
        max_batch_size: most frames per ``run_inference`` call (>= 1).
        large_model: share one model per machine across worker processes (Beam
            ``share_model_across_processes``).
        torch_threads: CPU threads set when the model is loaded (0: torch's default). Explicit,
            per handler; nothing global is read.
        dtype: autocast dtype on CUDA (default: the entry's ``preferred_dtype``).
        role: when given, the extractor must have this role.
        **options: extractor options passed to every ``infer`` call.
    Raises:
        extractors.registry.UnknownExtractorError: unknown extractor; ValueError:
        max_batch_size < 1.

    Inference result per element: the entry's per-frame result (pose: ``(scores float32 [P],
    keypoints float32 [P, V, 3])`` in the entry's ``keypoint_layout``; face: ``float32
    [D, 5 + 2L]``), in the element frame's pixels; ``model_id`` = the entry's name.
    """

    def __init__(self, extractor: str, device: str = "cpu", max_batch_size: int = 16,
                 large_model: bool = False, torch_threads: int = 0, dtype=None,
                 role: Optional[str] = None, **options):
        super().__init__()
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.entry = registry.resolve(extractor, role=role)
        self.extractor_name = self.entry.name
        self.device = device
        self.max_batch_size = max_batch_size
        self._large_model = large_model
        self.torch_threads = torch_threads
        self.dtype = dtype
        self.options = options

    def load_model(self):
        registry.prepare_device(self.device, torch_threads=self.torch_threads)
        return self.entry.load(self.device)

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        results = self.entry.infer(model, list(batch), device=self.device, dtype=self.dtype,
                                   **{**self.options, **(inference_args or {})})
        return [PredictionResult(x, r, self.extractor_name) for x, r in zip(batch, results)]

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def share_model_across_processes(self) -> bool:
        return self._large_model

    def get_metrics_namespace(self) -> str:
        return f"affectzoo_{self.extractor_name}"

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return int(sum(x.nbytes for x in batch))


class PoseNetHandler(ExtractorHandler):
    """PoseNet MobileNetV1-0.75 multi-person pose estimation (COCO-17); see
    :mod:`extractors.posenet`. Result per frame: ``(pose_scores float32 [P], keypoints float32
    [P, 17, 3])``, keypoints (x, y, score) in source-frame pixels."""

    def __init__(self, scale_factor: float = 1.0, min_pose_score: float = 0.25, **kwargs):
        super().__init__("posenet-mobilenet-v1-075", scale_factor=scale_factor,
                         min_pose_score=min_pose_score, **kwargs)
        self.scale_factor = scale_factor
        self.min_pose_score = min_pose_score


class BlazeFaceHandler(ExtractorHandler):
    """MediaPipe BlazeFace (``variant`` "front" 128 px or "back" 256 px); result per image:
    ``float32 [D, 17]`` (x1, y1, x2, y2, score, 6 keypoints x, y). See :mod:`extractors.blazeface`.

    Raises:
        ValueError: unknown variant.
    """

    def __init__(self, variant: str = "front", **kwargs):
        if variant not in ("front", "back"):
            raise ValueError(f"BlazeFace variant must be 'front' or 'back', not {variant!r}")
        super().__init__(f"blazeface-{variant}", **kwargs)
        self.variant = variant


class DBFaceHandler(ExtractorHandler):
    """DBFace (``variant`` "small" = Small-H or "large"); result per frame: ``float32 [D, 15]``
    (x1, y1, x2, y2, score, 5 landmarks x, y), descending score. Weights are user-supplied
    (``python -m extractors.weights install dbface-small FILE``). See :mod:`extractors.dbface`.

    Raises:
        ValueError: unknown variant.
    """

    def __init__(self, variant: str = "small", threshold: Optional[float] = None,
                 nms_iou: Optional[float] = None, **kwargs):
        if variant not in ("small", "large"):
            raise ValueError(f"DBFace variant must be 'small' or 'large', not {variant!r}")
        super().__init__(f"dbface-{variant}", threshold=threshold, nms_iou=nms_iou, **kwargs)
        self.variant = variant
        self.threshold = threshold
        self.nms_iou = nms_iou


class OpenPoseHandler(ExtractorHandler):
    """OpenPose COCO-18 body keypoints; ``mode="fast"`` decodes the batch on the device,
    ``"reference"`` reproduces body.py frame by frame. Result per frame: ``(scores float32
    [M], keypoints float32 [M, 18, 3])``, OPENPOSE18 order, NaN for missing parts. See
    :mod:`extractors.openpose`.

    Raises:
        ValueError: unknown mode.
    """

    def __init__(self, scale_search: Sequence[float] = (0.5,), mode: str = "fast", **kwargs):
        if mode not in ("fast", "reference"):
            raise ValueError(f"OpenPose mode must be 'fast' or 'reference', not {mode!r}")
        scale_search = tuple(float(s) for s in scale_search)
        super().__init__("openpose-body", scale_search=scale_search, mode=mode, **kwargs)
        self.scale_search = scale_search
        self.mode = mode
