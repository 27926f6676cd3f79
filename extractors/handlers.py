"""Apache Beam ``RunInference`` model handlers for the affectzoo extractors.

Each handler takes single frames (uint8 [H, W, 3] RGB numpy arrays) as elements; Beam's
``BatchElements`` groups frames of many videos into batches of at most ``max_batch_size``, and
the handler runs one batched forward per batch on ``device``. Wrap a handler in
``KeyedModelHandler`` to carry keys such as ``(sample_id, position)``.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult


def _resolve_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but torch sees no CUDA device")
    return device


class _FrameModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """Shared batching, device and model-sharing settings of the frame handlers."""

    extractor_name = "base"

    def __init__(self, device: str = "cpu", max_batch_size: int = 16, large_model: bool = False,
                 torch_threads: int = 0):
        super().__init__()
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.device = device
        self.max_batch_size = max_batch_size
        self._large_model = large_model
        self.torch_threads = torch_threads

    def _prepare_torch(self) -> str:
        import torch

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        return _resolve_device(self.device)

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def share_model_across_processes(self) -> bool:
        return self._large_model

    def get_metrics_namespace(self) -> str:
        return f"affectzoo_{self.extractor_name}"

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return int(sum(x.nbytes for x in batch))


class PoseNetHandler(_FrameModelHandler):
    """PoseNet MobileNetV1-0.75 multi-person pose estimation (COCO-17).

    Inference result per frame: ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``,
    keypoints (x, y, score) in source-frame pixels. See :mod:`extractors.posenet`.
    """

    extractor_name = "posenet-mobilenet-v1-075"

    def __init__(self, scale_factor: float = 1.0, min_pose_score: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.scale_factor = scale_factor
        self.min_pose_score = min_pose_score

    def load_model(self):
        from .posenet import load_posenet

        return load_posenet(device=self._prepare_torch())

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        from .posenet import estimate_poses

        results = estimate_poses(model, list(batch), scale_factor=self.scale_factor,
                                 device=self.device, min_pose_score=self.min_pose_score)
        return [PredictionResult(x, r, self.extractor_name) for x, r in zip(batch, results)]


class BlazeFaceHandler(_FrameModelHandler):
    """MediaPipe BlazeFace face detection (front 128 px or back 256 px model).

    Inference result per image: ``float32 [D, 17]`` rows (x1, y1, x2, y2, score, 6 keypoints
    x, y) in the pixels of the image given. See :mod:`extractors.blazeface`.
    """

    def __init__(self, variant: str = "front", **kwargs):
        super().__init__(**kwargs)
        if variant not in ("front", "back"):
            raise ValueError(f"BlazeFace variant must be 'front' or 'back', not {variant!r}")
        self.variant = variant
        self.extractor_name = f"blazeface-{variant}"

    def load_model(self):
        from .blazeface import load_blazeface

        return load_blazeface(variant=self.variant, device=self._prepare_torch())

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        from .blazeface import detect_faces

        results = detect_faces(model, list(batch), device=self.device)
        return [PredictionResult(x, r, self.extractor_name) for x, r in zip(batch, results)]


class DBFaceHandler(_FrameModelHandler):
    """DBFace face detection (dlunion/DBFace Small-H or large MobileNetV3 model).

    Elements are RGB uint8 [H, W, 3] frames. Inference result per frame: ``float32 [D, 15]``
    rows (x1, y1, x2, y2, score, 5 landmarks x, y) in source-frame pixels, descending score.
    Frames of one padded size (multiples of 32) share a forward. See :mod:`extractors.dbface`.
    The weights are user-supplied (``python -m extractors.weights install dbface-small FILE``).
    """

    def __init__(self, variant: str = "small", threshold: Optional[float] = None,
                 nms_iou: Optional[float] = None, **kwargs):
        super().__init__(**kwargs)
        if variant not in ("small", "large"):
            raise ValueError(f"DBFace variant must be 'small' or 'large', not {variant!r}")
        self.variant = variant
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.extractor_name = f"dbface-{variant}"

    def load_model(self):
        from .dbface import load_dbface

        return load_dbface(variant=self.variant, device=self._prepare_torch())

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        from .dbface import detect_faces

        results = detect_faces(model, list(batch), threshold=self.threshold, nms_iou=self.nms_iou)
        return [PredictionResult(x, r, self.extractor_name) for x, r in zip(batch, results)]


class OpenPoseHandler(_FrameModelHandler):
    """OpenPose COCO-18 body keypoints (pytorch-openpose ``body_pose_model.pth``).

    Frames of one size share one batched forward per scale; ``mode="fast"`` decodes the batch
    on ``device``, ``"reference"`` reproduces body.py frame by frame on the CPU.
    Inference result per frame: ``(scores float32 [M], keypoints float32 [M, 18, 3])`` like
    :class:`PoseNetHandler`: keypoints (x, y, score) in source-frame pixels, OPENPOSE18 order,
    NaN for missing parts; score = body.py total score / part count. See
    :mod:`extractors.openpose`.
    """

    extractor_name = "openpose-body"

    def __init__(self, scale_search: Sequence[float] = (0.5,), mode: str = "fast", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("fast", "reference"):
            raise ValueError(f"OpenPose mode must be 'fast' or 'reference', not {mode!r}")
        self.scale_search = tuple(float(s) for s in scale_search)
        self.mode = mode

    def load_model(self):
        from .openpose import load_openpose

        return load_openpose(device=self._prepare_torch())

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        from .openpose import estimate_poses

        poses = estimate_poses(model, list(batch), scale_search=self.scale_search,
                               device=self.device, mode=self.mode)
        return [PredictionResult(x, (p.scores, p.keypoints), self.extractor_name)
                for x, p in zip(batch, poses)]
