"""PoseNet (MobileNetV1 0.75, output stride 16) multi-person 2-D body keypoints in PyTorch.

Method: G. Papandreou et al., "PersonLab: Person Pose Estimation and Instance Segmentation with
a Bottom-Up, Part-Based, Geometric Embedding Model", ECCV 2018 (the PoseNet heads: keypoint
heatmaps, short-range offsets, mid-range displacements along a pose chain) and Google's
tfjs-models PoseNet (Apache-2.0). Layer layout, preprocessing and multi-pose decoding follow
rwightman/posenet-pytorch @6f7376d (``posenet/models/mobilenet_v1.py``, ``posenet/utils.py``,
``posenet/decode_multi.py``, ``posenet/decode.py``). Independent implementation written from the
facts in ``shared/data/README.md`` and ``shared/reference/README.md`` section 2.

Coordinates: pixels, origin at the top-left pixel, x right, y down; a heatmap cell (i, j) maps
to (x, y) = (16 j, 16 i) + offset (no half-pixel shift).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from extractors import weights as _weights

__all__ = [
    "COCO17_KEYPOINTS",
    "POSE_CHAIN",
    "OUTPUT_STRIDE",
    "PoseNetMobileNetV1",
    "load_posenet",
    "network_input_size",
    "preprocess",
    "decode_multiple_poses",
    "estimate_poses",
]

OUTPUT_STRIDE = 16

#: The 17 COCO keypoints in PoseNet's channel order.
COCO17_KEYPOINTS = (
    "nose", "leftEye", "rightEye", "leftEar", "rightEar", "leftShoulder", "rightShoulder",
    "leftElbow", "rightElbow", "leftWrist", "rightWrist", "leftHip", "rightHip", "leftKnee",
    "rightKnee", "leftAnkle", "rightAnkle",
)

_CHAIN_NAMES = (
    ("nose", "leftEye"), ("leftEye", "leftEar"), ("nose", "rightEye"), ("rightEye", "rightEar"),
    ("nose", "leftShoulder"), ("leftShoulder", "leftElbow"), ("leftElbow", "leftWrist"),
    ("leftShoulder", "leftHip"), ("leftHip", "leftKnee"), ("leftKnee", "leftAnkle"),
    ("nose", "rightShoulder"), ("rightShoulder", "rightElbow"), ("rightElbow", "rightWrist"),
    ("rightShoulder", "rightHip"), ("rightHip", "rightKnee"), ("rightKnee", "rightAnkle"),
)
#: The 16 (parent, child) keypoint-index edges; edge e uses displacement channels e (y), 16+e (x).
POSE_CHAIN = tuple((COCO17_KEYPOINTS.index(a), COCO17_KEYPOINTS.index(b)) for a, b in _CHAIN_NAMES)

# (in, out, depthwise stride) of conv1 ... conv13 for depth multiplier 0.75, output stride 16.
_LAYERS = [(24, 48, 1), (48, 96, 2), (96, 96, 1), (96, 192, 2), (192, 192, 1), (192, 384, 2)] + [
    (384, 384, 1)] * 7


class _InputConv(nn.Module):
    """conv0: full 3x3 conv stride 2 + ReLU6 (key ``conv``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.conv(x))


class _SeparableConv(nn.Module):
    """Depthwise 3x3 + ReLU6, pointwise 1x1 + ReLU6 (keys ``depthwise``, ``pointwise``)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pointwise(F.relu6(self.depthwise(x))))


class PoseNetMobileNetV1(nn.Module):
    """PoseNet MobileNetV1 (depth 0.75, output stride 16); keys match posenet-pytorch
    ``MobileNetV1(75)`` (``features.conv0`` ... ``features.conv13``, four 1x1 heads).

    ``forward(x)``: x float32 [N, 3, H, W], RGB scaled as ``x * 2/255 - 1`` (range [-1, 1]);
    H and W should be 16k + 1 (see :func:`network_input_size`). Returns
    ``(heatmap_scores [N, 17, h, w] (sigmoid), offsets [N, 34, h, w] (17 y then 17 x, input
    pixels), displacement_fwd [N, 32, h, w], displacement_bwd [N, 32, h, w] (16 y then 16 x))``
    with h = (H - 1) / 16 + 1, w = (W - 1) / 16 + 1.
    """

    def __init__(self):
        super().__init__()
        layers = [("conv0", _InputConv(3, 24))]
        layers += [(f"conv{i}", _SeparableConv(cin, cout, s))
                   for i, (cin, cout, s) in enumerate(_LAYERS, start=1)]
        self.features = nn.Sequential(OrderedDict(layers))
        self.heatmap = nn.Conv2d(384, 17, 1)
        self.offset = nn.Conv2d(384, 34, 1)
        self.displacement_fwd = nn.Conv2d(384, 32, 1)
        self.displacement_bwd = nn.Conv2d(384, 32, 1)

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        return (torch.sigmoid(self.heatmap(f)), self.offset(f),
                self.displacement_fwd(f), self.displacement_bwd(f))


def load_posenet(device="cpu") -> PoseNetMobileNetV1:
    """Build :class:`PoseNetMobileNetV1` and load ``posenet-mobilenet-v1-075`` strictly (eval).

    Raises:
        WeightsNotFoundError / WeightsChecksumError (:mod:`extractors.weights`); RuntimeError on
        a key mismatch.
    """
    model = PoseNetMobileNetV1()
    model.load_state_dict(_weights.load_state_dict("posenet-mobilenet-v1-075"), strict=True)
    return model.to(device).eval()


def network_input_size(h: int, w: int, scale_factor: float,
                       output_stride: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """Network input (H_in, W_in) for a source of h x w pixels: ``(int(dim*sf)//16)*16 + 1``
    per axis (posenet-pytorch ``valid_resolution``)."""
    return ((int(h * scale_factor) // output_stride) * output_stride + 1,
            (int(w * scale_factor) // output_stride) * output_stride + 1)


def preprocess(frame: np.ndarray, scale_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Resize an RGB uint8 [H, W, 3] frame (``cv2.INTER_LINEAR``, no letterbox) and scale it.

    Returns:
        ``(x float32 [3, H_in, W_in] in [-1, 1], scale_yx float64 [2] = (H/H_in, W/W_in))``;
        multiply network-input (y, x) pixels by ``scale_yx`` to get source pixels.
    Raises:
        ValueError: frame not uint8 [H, W, 3].
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    hin, win = network_input_size(h, w, scale_factor)
    resized = cv2.resize(frame, (win, hin), interpolation=cv2.INTER_LINEAR)
    x = resized.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)), np.array([h / hin, w / win])


def _part_candidates(heatmap: torch.Tensor, score_threshold: float):
    """Local maxima (3x3 window) of [17, h, w] scores >= threshold, by descending score.

    Returns ``(scores float32 [K], idx int64 [K, 3] = (keypoint, y, x))`` as numpy arrays.
    """
    pooled = F.max_pool2d(heatmap[None], 3, stride=1, padding=1)[0]
    mask = (heatmap == pooled) & (heatmap >= score_threshold)
    idx = mask.nonzero()
    vals = heatmap[mask]
    order = torch.argsort(vals, descending=True, stable=True)
    return vals[order].cpu().numpy(), idx[order].cpu().numpy()


def _to_vectors(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """[2K, h, w] (K y channels then K x channels) -> [K, h, w, 2] (y, x)."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    c, h, w = a.shape
    return a.reshape(2, c // 2, h, w).transpose(1, 2, 3, 0)


def _traverse(edge: int, source_yx: np.ndarray, target: int, scores: np.ndarray,
              offsets: np.ndarray, displacements: np.ndarray, stride: int):
    """Follow one chain edge: displace the source point, snap to the target's cell, add the
    target's offset. Returns (score, (y, x)) in network-input pixels."""
    limit = np.array([scores.shape[1] - 1, scores.shape[2] - 1])
    src_cell = np.clip(np.round(source_yx / stride), 0, limit).astype(np.int32)
    displaced = source_yx + displacements[edge, src_cell[0], src_cell[1]]
    cell = np.clip(np.round(displaced / stride), 0, limit).astype(np.int32)
    yx = cell * stride + offsets[target, cell[0], cell[1]]
    return scores[target, cell[0], cell[1]], yx


def _decode_pose(root_score, root_id, root_yx, scores, offsets, fwd, bwd, stride):
    """Walk the pose chain from a root (backwards with ``bwd``, then forwards with ``fwd``).

    Returns ``(keypoint scores float64 [17], keypoint (y, x) float64 [17, 2])``.
    """
    kp_scores = np.zeros(scores.shape[0])
    kp_coords = np.zeros((scores.shape[0], 2))
    kp_scores[root_id] = root_score
    kp_coords[root_id] = root_yx
    for edge in reversed(range(len(POSE_CHAIN))):
        target, source = POSE_CHAIN[edge]
        if kp_scores[source] > 0.0 and kp_scores[target] == 0.0:
            kp_scores[target], kp_coords[target] = _traverse(
                edge, kp_coords[source], target, scores, offsets, bwd, stride)
    for edge, (source, target) in enumerate(POSE_CHAIN):
        if kp_scores[source] > 0.0 and kp_scores[target] == 0.0:
            kp_scores[target], kp_coords[target] = _traverse(
                edge, kp_coords[source], target, scores, offsets, fwd, stride)
    return kp_scores, kp_coords


def _within_radius(existing: np.ndarray, point: np.ndarray, sq_radius: float) -> bool:
    """Any of [P, 2] points within sqrt(sq_radius) of ``point`` (inclusive)."""
    return existing.shape[0] > 0 and bool(np.any(((existing - point) ** 2).sum(1) <= sq_radius))


def _instance_score(existing: np.ndarray, kp_scores: np.ndarray, kp_coords: np.ndarray,
                    sq_radius: float) -> float:
    """Mean over 17 keypoints of the scores of keypoints not within the radius of the same
    keypoint of an earlier pose (``existing`` [P, 17, 2])."""
    if existing.shape[0]:
        far = ((existing - kp_coords) ** 2).sum(2) > sq_radius
        return float(kp_scores[np.all(far, axis=0)].sum() / len(kp_scores))
    return float(kp_scores.sum() / len(kp_scores))


def decode_multiple_poses(heatmap, offsets, displacement_fwd, displacement_bwd,
                          output_stride: int = OUTPUT_STRIDE, max_pose_detections: int = 10,
                          score_threshold: float = 0.5, nms_radius: float = 20,
                          min_pose_score: float = 0.25,
                          _scale_yx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PoseNet multi-person decoding of one image (posenet-pytorch ``decode_multiple_poses``).

    Candidates are 3x3 local maxima of the heatmap with score >= ``score_threshold``, visited by
    descending score; one within ``nms_radius`` px of the same keypoint of an accepted pose is
    skipped; otherwise the pose chain is walked from it. The pose score is the sum of keypoint
    scores not within ``nms_radius`` of the same keypoint of earlier poses, over 17; poses
    below ``min_pose_score`` are dropped (0 keeps all); at most ``max_pose_detections``.

    Args:
        heatmap: [17, h, w] sigmoid scores (torch tensor; a leading batch axis of 1 is
            accepted). offsets: [34, h, w]; displacement_fwd / displacement_bwd: [32, h, w]
            (torch or numpy), network-input pixels.
        _scale_yx: internal; per-axis factors applied (in float64) to the output coordinates.
    Returns:
        ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])`` with keypoint rows
        (x, y, score) in network-input pixels, in the order the roots were visited.
    """
    hm = torch.as_tensor(heatmap)
    hm = hm[0] if hm.ndim == 4 else hm
    arrays = [o[0] if o.ndim == 4 else o for o in (offsets, displacement_fwd, displacement_bwd)]
    off, fwd, bwd = (_to_vectors(a).astype(np.float64) for a in arrays)
    cand_scores, cand_idx = _part_candidates(hm, score_threshold)
    scores = hm.detach().cpu().numpy()
    sq_r = nms_radius ** 2
    pose_scores, pose_kp_scores, pose_coords = [], [], np.zeros((0, len(COCO17_KEYPOINTS), 2))
    for root_score, (root_id, ry, rx) in zip(cand_scores, cand_idx):
        root_yx = np.array([ry, rx]) * output_stride + off[root_id, ry, rx]
        if _within_radius(pose_coords[:, root_id, :], root_yx, sq_r):
            continue
        kp_scores, kp_coords = _decode_pose(root_score, root_id, root_yx, scores, off, fwd, bwd,
                                            output_stride)
        score = _instance_score(pose_coords, kp_scores, kp_coords, sq_r)
        if min_pose_score == 0.0 or score >= min_pose_score:
            pose_scores.append(score)
            pose_kp_scores.append(kp_scores)
            pose_coords = np.concatenate([pose_coords, kp_coords[None]], axis=0)
        if len(pose_scores) >= max_pose_detections:
            break
    scale = np.ones(2) if _scale_yx is None else np.asarray(_scale_yx, dtype=np.float64)
    return _pack(pose_scores, pose_kp_scores, pose_coords, scale)


def _pack(pose_scores, kp_scores, coords_yx, scale_yx) -> tuple[np.ndarray, np.ndarray]:
    """Lists of float64 results -> (float32 [P], float32 [P, 17, 3] (x, y, score)), with the
    (y, x) coordinates multiplied by ``scale_yx`` in float64 first."""
    keypoints = np.zeros((len(pose_scores), len(COCO17_KEYPOINTS), 3), dtype=np.float64)
    if pose_scores:
        keypoints[..., 0] = coords_yx[..., 1] * scale_yx[1]
        keypoints[..., 1] = coords_yx[..., 0] * scale_yx[0]
        keypoints[..., 2] = np.stack(kp_scores)
    return np.asarray(pose_scores, dtype=np.float32), keypoints.astype(np.float32)


@torch.no_grad()
def estimate_poses(model: PoseNetMobileNetV1, frames: Sequence[np.ndarray],
                   scale_factor: float = 1.0, device="cpu",
                   **decode_kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """Multi-person poses for RGB frames (posenet-pytorch ``_process_input`` + decode).

    Each frame is resized (``cv2.INTER_LINEAR``) to :func:`network_input_size` (h, w,
    scale_factor) and scaled to [-1, 1]; frames of the same size share one batched forward.

    Args:
        model: loaded :class:`PoseNetMobileNetV1` on ``device``.
        frames: RGB uint8 [H, W, 3] images.
        scale_factor: resize factor before the network (posenet-pytorch default 1.0; 0.5 is
            faster).
        device: torch device.
        **decode_kwargs: passed to :func:`decode_multiple_poses` (``max_pose_detections``,
            ``score_threshold``, ``nms_radius`` (network-input pixels), ``min_pose_score``).
    Returns:
        Per frame ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``, keypoint rows
        (x, y, score) in source-image pixels (per-axis ratio source/network-input), keypoint
        order :data:`COCO17_KEYPOINTS`.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3].
    """
    prepared = [preprocess(f, scale_factor) for f in frames]
    results: list = [None] * len(frames)
    groups: dict[tuple, list[int]] = {}
    for i, (x, _) in enumerate(prepared):
        groups.setdefault(x.shape, []).append(i)
    for idx in groups.values():
        batch = torch.from_numpy(np.stack([prepared[i][0] for i in idx])).to(device)
        heads = model(batch)
        for b, i in enumerate(idx):
            results[i] = decode_multiple_poses(*(h[b] for h in heads), **decode_kwargs,
                                               _scale_yx=prepared[i][1])
    return results
