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
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from extractors import _device as _dev
from extractors import weights as _weights

__all__ = [
    "COCO17_KEYPOINTS",
    "POSE_CHAIN",
    "OUTPUT_STRIDE",
    "PoseNetMobileNetV1",
    "load_posenet",
    "network_input_size",
    "preprocess",
    "preprocess_batch",
    "decode_batch",
    "decode_multiple_poses",
    "estimate_poses",
    "warmup",
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


def load_posenet(device="cpu", channels_last: Optional[bool] = None) -> PoseNetMobileNetV1:
    """Build :class:`PoseNetMobileNetV1` and load ``posenet-mobilenet-v1-075`` strictly (eval).

    Args:
        device: torch device of the model.
        channels_last: store the conv weights channels-last (default: on CUDA only, where
            cuDNN's NHWC kernels are faster; :func:`estimate_poses` then feeds NHWC input).

    Raises:
        WeightsNotFoundError / WeightsChecksumError (:mod:`extractors.weights`); RuntimeError on
        a key mismatch.
    """
    model = PoseNetMobileNetV1()
    model.load_state_dict(_weights.load_state_dict("posenet-mobilenet-v1-075"), strict=True)
    model = model.to(device).eval()
    if _dev.is_cuda(device) if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


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
    vals, idx = _batch_candidates(heatmap[None], score_threshold)
    return vals.cpu().numpy(), idx[:, 1:].cpu().numpy()


def _batch_candidates(heatmap: torch.Tensor, score_threshold: float):
    """Part candidates of a whole batch on the heatmap's device, in one pass.

    A candidate is a 3x3 local maximum (max-pool NMS; outside the map counts as -inf) with
    score >= ``score_threshold``.

    Args:
        heatmap: float [N, 17, h, w] sigmoid scores.
    Returns:
        ``(scores float32 [M], idx int64 [M, 4] = (frame, keypoint, y, x))`` on the device,
        ordered by frame, then by descending score, ties in row-major (keypoint, y, x) order:
        per frame exactly the order of posenet-pytorch's ``build_part_with_score_torch``
        followed by a stable descending sort.
    """
    hm = heatmap.float()
    pooled = F.max_pool2d(hm, 3, stride=1, padding=1)
    mask = (hm == pooled) & (hm >= score_threshold)
    idx = mask.nonzero()
    vals = hm[mask]
    by_score = torch.argsort(vals, descending=True, stable=True)
    order = by_score[torch.argsort(idx[by_score, 0], stable=True)]
    return vals[order], idx[order]


def _to_vectors(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """[2K, h, w] (K y channels then K x channels) -> [K, h, w, 2] (y, x)."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    c, h, w = a.shape
    return a.reshape(2, c // 2, h, w).transpose(1, 2, 3, 0)


def _walk_chains(heatmap: torch.Tensor, offsets: torch.Tensor, fwd: torch.Tensor,
                 bwd: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor, stride: int):
    """Walk the pose chain from every candidate root at once (on the heads' device).

    The same float64 arithmetic as posenet-pytorch's per-root ``decode_pose`` /
    ``traverse_to_targ_keypoint`` (IEEE operations, round half to even), vectorised over the
    M roots: backwards along :data:`POSE_CHAIN` with ``bwd``, then forwards with ``fwd``; an
    edge is followed where its source has a score > 0 and its target still has score 0.

    Args:
        heatmap: [N, 17, h, w]; offsets: [N, 34, h, w]; fwd / bwd: [N, 32, h, w] (network-input
            pixels; any float dtype, read as float64). vals / idx: from :func:`_batch_candidates`.
    Returns:
        ``(kp_scores float64 [M, 17], kp_yx float64 [M, 17, 2])`` in network-input pixels.
    """
    n_kp = heatmap.shape[1]
    h, w = heatmap.shape[2], heatmap.shape[3]
    m = idx.shape[0]
    dev = heatmap.device
    fr, k, ry, rx = idx.unbind(1)
    n_off = offsets.shape[1] // 2
    n_edge = fwd.shape[1] // 2
    kp_scores = torch.zeros((m, n_kp), dtype=torch.float64, device=dev)
    kp_yx = torch.zeros((m, n_kp, 2), dtype=torch.float64, device=dev)
    rows = torch.arange(m, device=dev)
    kp_scores[rows, k] = vals.double()
    root = torch.stack([ry, rx], 1) * stride + torch.stack(
        [offsets[fr, k, ry, rx], offsets[fr, n_off + k, ry, rx]], 1).double()
    kp_yx[rows, k] = root
    limit_y, limit_x = h - 1, w - 1

    def cell_of(yx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.round(yx / stride)
        return (c[:, 0].clamp(0, limit_y).long(), c[:, 1].clamp(0, limit_x).long())

    def follow(edge: int, source: int, target: int, disp: torch.Tensor) -> None:
        go = (kp_scores[:, source] > 0.0) & (kp_scores[:, target] == 0.0)
        src = kp_yx[:, source]
        sy, sx = cell_of(src)
        displaced = src + torch.stack([disp[fr, edge, sy, sx], disp[fr, n_edge + edge, sy, sx]],
                                      1).double()
        cy, cx = cell_of(displaced)
        yx = torch.stack([cy, cx], 1) * stride + torch.stack(
            [offsets[fr, target, cy, cx], offsets[fr, n_off + target, cy, cx]], 1).double()
        score = heatmap[fr, target, cy, cx].double()
        kp_scores[:, target] = torch.where(go, score, kp_scores[:, target])
        kp_yx[:, target] = torch.where(go[:, None], yx, kp_yx[:, target])

    if m:
        for edge in reversed(range(len(POSE_CHAIN))):
            target, source = POSE_CHAIN[edge]
            follow(edge, source, target, bwd)
        for edge, (source, target) in enumerate(POSE_CHAIN):
            follow(edge, source, target, fwd)
    return kp_scores, kp_yx


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


def _greedy(root_ids: np.ndarray, kp_scores: np.ndarray, kp_yx: np.ndarray, n_kp: int,
            max_pose_detections: int, nms_radius: float, min_pose_score: float):
    """posenet-pytorch's greedy selection over one frame's walked roots (visiting order).

    Same decisions and float64 values as the per-root loop: a root within ``nms_radius`` of
    the same keypoint of an accepted pose is skipped (kept as a ``blocked`` mask that is
    updated, vectorised, only when a pose is accepted), every other root gets its instance
    score against the poses accepted before it.

    Returns ``(pose_scores list[float], kp_scores list[float64 [17]], coords float64
    [P, 17, 2])`` in network-input pixels.
    """
    sq_r = nms_radius ** 2
    m = len(root_ids)
    roots = kp_yx[np.arange(m), root_ids]                      # [m, 2] root (y, x)
    blocked = np.zeros(m, dtype=bool)
    pose_scores, pose_kp_scores, pose_coords = [], [], np.zeros((0, n_kp, 2))
    r = 0
    while r < m:
        free = np.flatnonzero(~blocked[r:])
        if len(free) == 0:
            break
        r += int(free[0])
        score = _instance_score(pose_coords, kp_scores[r], kp_yx[r], sq_r)
        if min_pose_score == 0.0 or score >= min_pose_score:
            pose_scores.append(score)
            pose_kp_scores.append(kp_scores[r])
            pose_coords = np.concatenate([pose_coords, kp_yx[r][None]], axis=0)
            later = slice(r + 1, m)
            blocked[later] |= ((kp_yx[r][root_ids[later]] - roots[later]) ** 2).sum(1) <= sq_r
        if len(pose_scores) >= max_pose_detections:
            break
        r += 1
    return pose_scores, pose_kp_scores, pose_coords


def decode_batch(heatmap: torch.Tensor, offsets: torch.Tensor, displacement_fwd: torch.Tensor,
                 displacement_bwd: torch.Tensor, scale_yx: Optional[np.ndarray] = None,
                 output_stride: int = OUTPUT_STRIDE, max_pose_detections: int = 10,
                 score_threshold: float = 0.5, nms_radius: float = 20,
                 min_pose_score: float = 0.25) -> list[tuple[np.ndarray, np.ndarray]]:
    """PoseNet multi-person decoding of a batch, candidates and chain walks on the device.

    Part candidates of all frames (:func:`_batch_candidates`) and the pose-chain walk from every
    candidate (:func:`_walk_chains`, float64) run on the heads' device; then the candidate
    lists (frame, keypoint, 17 scores, 17 (y, x)) come to the CPU in **one** transfer, and the
    greedy selection of :func:`decode_multiple_poses` runs per frame in numpy. Results are
    identical to decoding each frame alone.

    Args:
        heatmap: [N, 17, h, w] sigmoid scores; offsets: [N, 34, h, w]; displacement_fwd /
            displacement_bwd: [N, 32, h, w] (torch tensors on one device, any float dtype).
        scale_yx: float64 [N, 2] per-frame factors applied to the output (y, x) coordinates
            (network-input -> source pixels); default ones.
        output_stride, max_pose_detections, score_threshold, nms_radius, min_pose_score: as
            :func:`decode_multiple_poses`.
    Returns:
        Per frame ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``, rows (x, y,
        score) in source pixels (network-input pixels times ``scale_yx``).
    """
    n = heatmap.shape[0]
    n_kp = heatmap.shape[1]
    vals, idx = _batch_candidates(heatmap, score_threshold)
    kp_scores, kp_yx = _walk_chains(heatmap, offsets, displacement_fwd, displacement_bwd,
                                    vals, idx, output_stride)
    packed = torch.cat([idx[:, :2].double(), kp_scores, kp_yx.flatten(1)], 1).cpu().numpy()
    frame_of = packed[:, 0].astype(np.int64)
    root_ids = packed[:, 1].astype(np.int64)
    scores_all = packed[:, 2:2 + n_kp]
    yx_all = packed[:, 2 + n_kp:].reshape(-1, n_kp, 2)
    bounds = np.searchsorted(frame_of, np.arange(n + 1))
    scale = np.ones((n, 2)) if scale_yx is None else np.asarray(scale_yx, np.float64).reshape(n, 2)
    out = []
    for f in range(n):
        sl = slice(bounds[f], bounds[f + 1])
        ps, pk, pc = _greedy(root_ids[sl], scores_all[sl], yx_all[sl], n_kp,
                             max_pose_detections, nms_radius, min_pose_score)
        out.append(_pack(ps, pk, pc, scale[f]))
    return out


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
    (One-frame form of :func:`decode_batch`.)

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
    heads = [hm] + [torch.as_tensor(o).to(hm.device) for o in
                    (offsets, displacement_fwd, displacement_bwd)]
    heads = [t if t.ndim == 4 else t[None] for t in heads]
    scale = None if _scale_yx is None else np.asarray(_scale_yx, np.float64)[None]
    (result,) = decode_batch(*heads, scale_yx=scale, output_stride=output_stride,
                             max_pose_detections=max_pose_detections,
                             score_threshold=score_threshold, nms_radius=nms_radius,
                             min_pose_score=min_pose_score)
    return result


def _pack(pose_scores, kp_scores, coords_yx, scale_yx) -> tuple[np.ndarray, np.ndarray]:
    """Lists of float64 results -> (float32 [P], float32 [P, 17, 3] (x, y, score)), with the
    (y, x) coordinates multiplied by ``scale_yx`` in float64 first."""
    keypoints = np.zeros((len(pose_scores), len(COCO17_KEYPOINTS), 3), dtype=np.float64)
    if pose_scores:
        keypoints[..., 0] = coords_yx[..., 1] * scale_yx[1]
        keypoints[..., 1] = coords_yx[..., 0] * scale_yx[0]
        keypoints[..., 2] = np.stack(kp_scores)
    return np.asarray(pose_scores, dtype=np.float32), keypoints.astype(np.float32)


def preprocess_batch(frames: np.ndarray | torch.Tensor, scale_factor: float = 1.0,
                     device="cpu") -> tuple[torch.Tensor, np.ndarray]:
    """Device-side :func:`preprocess` of equal-size frames (the CUDA path).

    The uint8 batch goes to ``device`` (pinned, non_blocking on CUDA), is resized there with
    cv2's ``INTER_LINEAR`` fixed-point arithmetic reproduced in integer torch ops
    (:func:`extractors._device.cv2_linear_resize`, bit-exact) and scaled to [-1, 1] with the
    same float32 operations as :func:`preprocess`: the network input equals the CPU path's.

    Args:
        frames: uint8 [N, H, W, 3] RGB (numpy, or a uint8 tensor already on ``device``).
    Returns:
        ``(x float32 [N, 3, H_in, W_in] on device, scale_yx float64 [2] = (H/H_in, W/W_in))``.
    Raises:
        ValueError: not uint8 [N, H, W, 3].
    """
    if tuple(frames.shape[-1:]) != (3,) or frames.ndim != 4 or \
            str(frames.dtype) not in ("uint8", "torch.uint8"):
        raise ValueError(f"expected uint8 [N, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    n, h, w = frames.shape[:3]
    hin, win = network_input_size(h, w, scale_factor)
    t = frames if isinstance(frames, torch.Tensor) else _dev.upload(frames, device)
    if (hin, win) != (h, w):
        t = _dev.cv2_linear_resize(t, (hin, win))
    x = t.permute(0, 3, 1, 2).float()
    x = x * torch.tensor(2.0 / 255.0, dtype=torch.float32) - torch.tensor(1.0)
    return x.contiguous(), np.array([h / hin, w / win])


def _check(frame: np.ndarray, i: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames[{i}]: expected uint8 [H, W, 3], got {got}")


@torch.no_grad()
def estimate_poses(model: PoseNetMobileNetV1, frames, scale_factor: float = 1.0, device="cpu",
                   dtype=None, device_preprocess: Optional[bool] = None,
                   **decode_kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """Multi-person poses for RGB frames (posenet-pytorch ``_process_input`` + decode).

    Each frame is resized to :func:`network_input_size` (h, w, scale_factor) and scaled to
    [-1, 1]; frames of the same size share one batched forward, and the whole group is
    decoded by :func:`decode_batch` (candidates and chain walks on ``device``, one transfer).

    On CPU (default) the resize is cv2 ``INTER_LINEAR`` on the host (:func:`preprocess`), as
    posenet-pytorch does. On CUDA (default) the uint8 frames go up as one tensor per size and
    are resized there (:func:`preprocess_batch`), bit-exactly as cv2 would: the network input is
    the same on both devices (differences come only from the network's arithmetic: cuDNN/TF32
    and the autocast ``dtype``).

    Args:
        model: loaded :class:`PoseNetMobileNetV1` on ``device``.
        frames: RGB uint8 [H, W, 3] images (a list), or one uint8 [N, H, W, 3] array.
        scale_factor: resize factor before the network (posenet-pytorch default 1.0; 0.5 is
            faster).
        device: torch device.
        dtype: autocast dtype on CUDA (``torch.float16`` / ``torch.bfloat16`` or their names);
            ``None`` or float32 = no autocast. Ignored off CUDA.
        device_preprocess: resize on ``device`` with torch (default: only on CUDA).
        **decode_kwargs: passed to :func:`decode_batch` (``max_pose_detections``,
            ``score_threshold``, ``nms_radius`` (network-input pixels), ``min_pose_score``).
    Returns:
        Per frame ``(pose_scores float32 [P], keypoints float32 [P, 17, 3])``, keypoint rows
        (x, y, score) in source-image pixels (per-axis ratio source/network-input), keypoint
        order :data:`COCO17_KEYPOINTS`.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3] (or the array not uint8 [N, H, W, 3]).
    """
    frames = _dev.frame_list(frames)
    for i, f in enumerate(frames):
        _check(f, i)
    on_device = _dev.is_cuda(device) if device_preprocess is None else bool(device_preprocess)
    amp = _dev.resolve_dtype(dtype, device)
    channels_last = _dev.is_channels_last(model)
    results: list = [None] * len(frames)
    for (h, w), idx in _dev.group_by_size(frames).items():
        if on_device:
            batch, scale = preprocess_batch(_dev.stack(frames, idx), scale_factor, device)
        else:
            prepared = [preprocess(frames[i], scale_factor) for i in idx]
            batch = torch.from_numpy(np.stack([p[0] for p in prepared])).to(device)
            scale = prepared[0][1]
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with _dev.autocast(device, amp):
            heads = model(batch)
        decoded = decode_batch(*heads, scale_yx=np.tile(scale, (len(idx), 1)), **decode_kwargs)
        for i, r in zip(idx, decoded):
            results[i] = r
    return results


def warmup(model: PoseNetMobileNetV1, device="cpu", size: tuple[int, int] = (480, 640),
           batch: int = 1, scale_factor: float = 1.0, dtype=None) -> None:
    """Run :func:`estimate_poses` once on ``batch`` black frames of ``size`` = (H, W) so that
    CUDA kernels, cuDNN autotuning and allocator pools are ready before timed work."""
    estimate_poses(model, np.zeros((batch, size[0], size[1], 3), np.uint8), scale_factor,
                   device=device, dtype=dtype)
    if _dev.is_cuda(device):
        torch.cuda.synchronize(device)
