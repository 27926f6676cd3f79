"""MediaPipe BlazePose GHUM (full): multi-person 33 landmarks with 3-D world coordinates, in torch.

Method: V. Bazarevsky et al., "BlazePose: On-device Real-time Body Pose tracking",
arXiv:2006.10204 (2020); GHUM world landmarks: MediaPipe Pose model card (BlazePose GHUM 3D).
Weights: ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` of the ``mediapipe``
0.10.21 wheel (Apache-2.0), read at run time by :class:`extractors.tflite_graph.TFLiteGraph`.
The pre- and post-processing follow MediaPipe's graphs ``pose_detection_cpu.pbtxt``,
``pose_detection_to_roi.pbtxt``, ``pose_landmark_by_roi_cpu.pbtxt`` and
``tensors_to_pose_landmarks_and_segmentation.pbtxt`` (google-ai-edge/mediapipe); parity with
MediaPipe's own ``solutions.pose`` (static image mode) is tested in ``tests/test_blazepose.py``.

Pipeline per batch of RGB frames (all frames of a batch in one detector forward, all person
regions of the batch in one landmark forward):

1. whole frame letterboxed to 224 x 224 (bilinear, zero border, values rounded to uint8 as
   MediaPipe's OpenCV converter does) -> ``x / 127.5 - 1`` -> detector -> SSD anchor decode
   (2254 anchors) -> score >= 0.5 -> weighted NMS (IoU 0.3) -> persons (hip centre and a
   scale / rotation point);
2. per person a square region rotated upright: centre = hip centre, side = 2.5 x the distance
   between the two points, rotation = 90 deg - the angle of that vector;
3. region cropped to 256 x 256 (bilinear, edge replicate) -> ``x / 255`` -> landmark model ->
   39 landmarks (33 + 6 auxiliary), refined from the 64 x 64 heatmaps (7 x 7 sigmoid-weighted
   window), projected back to the frame; world landmarks rotated by the region's rotation;
   persons with a pose flag < 0.5 are dropped.

Output per frame (:func:`estimate_poses`): ``(scores float32 [P], keypoints float32 [P, 33, 8])``,
channels :data:`schemas.keypoints.BLAZEPOSE_CHANNELS`: ``x, y`` (source pixels, origin at the
top-left pixel, x right, y down), ``visibility`` and ``presence`` (0..1), ``z`` (depth relative
to the hips, in pixels at the x scale, smaller = nearer the camera), and ``world_x, world_y,
world_z`` (metres, origin between the hips, x towards the image's right, y down, z away
from the camera: GHUM's metric frame).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from extractors import _device as _dev
from extractors import weights as _weights
from extractors.tflite_graph import TFLiteGraph

__all__ = ["BlazePose", "load_blazepose", "ssd_anchors", "detect_persons",
           "rois_from_detections", "crop_rois", "landmarks_in_rois", "estimate_poses",
           "DETECTOR_SIZE", "LANDMARK_SIZE"]

DETECTOR_SIZE, LANDMARK_SIZE, HEATMAP_KERNEL = 224, 256, 7
DETECTION_THRESHOLD, NMS_IOU, PRESENCE_THRESHOLD, REFINE_MIN_CONFIDENCE = 0.5, 0.3, 0.5, 0.5
ROI_SCALE = 1.25
SCORE_CLIP = 100.0
NUM_LANDMARKS, NUM_RAW_LANDMARKS = 33, 39


def ssd_anchors(size: int = DETECTOR_SIZE, strides=(8, 16, 32, 32, 32)) -> np.ndarray:
    """SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` makes them for the pose detector
    (aspect ratio 1 plus the interpolated scale = 2 anchors per layer and cell, offsets 0.5,
    fixed size; layers of equal stride share a feature map).

    Returns:
        float32 [2254, 2] anchor centres (x, y) normalised to [0, 1], in the detector's order.
    """
    rows, layer = [], 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])
        fm = int(math.ceil(size / strides[layer]))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        rows.append(np.repeat(cells, 2 * same, axis=0))
        layer += same
    return np.concatenate(rows).astype(np.float32)


class BlazePose(nn.Module):
    """The two BlazePose graphs: ``detector`` (224 px, [N, 3, 224, 224] in [-1, 1] ->
    boxes [N, 2254, 12], logits [N, 2254, 1]) and ``landmark`` (256 px, [N, 3, 256, 256] in
    [0, 1] -> landmarks [N, 195], pose flag [N, 1], segmentation [N, 1, 256, 256], heatmaps
    [N, 39, 64, 64], world landmarks [N, 117]); ``anchors`` float32 [2254, 2]."""

    def __init__(self, detector: TFLiteGraph, landmark: TFLiteGraph):
        super().__init__()
        self.detector, self.landmark = detector, landmark
        self.register_buffer("anchors", torch.from_numpy(ssd_anchors()), persistent=False)


def load_blazepose(device="cpu") -> BlazePose:
    """Read the registered ``blazepose-detector`` and ``blazepose-ghum`` (landmark) graphs
    (sha256-checked) into :class:`BlazePose` on ``device`` (eval mode).

    Raises:
        extractors.weights.WeightsNotFoundError / WeightsChecksumError;
        extractors.tflite_graph.UnsupportedGraphError for a graph it cannot read.
    """
    det = TFLiteGraph(str(_weights.verify("blazepose-detector")))
    lmk = TFLiteGraph(str(_weights.verify("blazepose-ghum")))
    return BlazePose(det, lmk).to(device).eval()


def _grid(rois: torch.Tensor, size: int, hw: tuple[int, int]) -> torch.Tensor:
    """grid_sample grid [R, size, size, 2] of rotated rectangles ``rois`` [R, 5] = (xc, yc, w,
    h, rotation) in pixels: output pixel (i, j) samples ``c + R(theta) ((i / size - 0.5) w,
    (j / size - 0.5) h)`` (MediaPipe's corner-to-corner ``getPerspectiveTransform``)."""
    t = (torch.arange(size, device=rois.device, dtype=torch.float64) / size - 0.5)
    r = rois.double()
    u = t[None, None, :] * r[:, 2, None, None]
    v = t[None, :, None] * r[:, 3, None, None]
    cos, sin = torch.cos(r[:, 4])[:, None, None], torch.sin(r[:, 4])[:, None, None]
    sx = r[:, 0, None, None] + cos * u - sin * v
    sy = r[:, 1, None, None] + sin * u + cos * v
    h, w = hw
    return torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1).float()


def crop_rois(images: torch.Tensor, frame_of: torch.Tensor, rois: torch.Tensor, size: int,
              border: str) -> torch.Tensor:
    """Rotated crops of frames, resampled bilinearly and rounded to uint8 values.

    Args:
        images: float [N, 3, H, W] frames (0..255) on the device.
        frame_of: int64 [R] frame index of each region. rois: float [R, 5] (xc, yc, w, h,
        rotation rad) in pixels. size: output side. border: ``"zeros"`` or ``"border"``.
    Returns:
        float [R, 3, size, size] with values 0..255 (integers).
    """
    grid = _grid(rois, size, images.shape[-2:])
    out = F.grid_sample(images[frame_of], grid, mode="bilinear", padding_mode=border,
                        align_corners=False)
    return _dev.round_to_uint8_values(out)


def _check_frames(frames: list) -> None:
    for i, f in enumerate(frames):
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            got = f"{f.dtype} {f.shape}" if isinstance(f, np.ndarray) else type(f).__name__
            raise ValueError(f"frames[{i}]: expected uint8 [H, W, 3], got {got}")


def _frames_tensor(frames: list[np.ndarray], device) -> torch.Tensor:
    """Equal-size uint8 frames -> float [N, 3, H, W] (0..255) on ``device``."""
    return _dev.upload(_dev.stack(frames, range(len(frames))), device).permute(0, 3, 1, 2).float()


def _weighted_nms(dets: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """MediaPipe's WEIGHTED non-max suppression of one image: [K, 13] rows (xmin, ymin, xmax,
    ymax, 4 x (x, y), score), sorted by score; each group (IoU > threshold with the best
    remaining) becomes the score-weighted mean of its 12 coordinates with the best score."""
    dets = dets[torch.argsort(dets[:, 12], descending=True, stable=True)]
    out = []
    while dets.shape[0]:
        seed = dets[0]
        lo = torch.maximum(seed[:2], dets[:, :2])
        hi = torch.minimum(seed[2:4], dets[:, 2:4])
        inter = (hi - lo).clamp(min=0).prod(dim=1)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        group = inter / (area(seed) + area(dets) - inter) > iou_threshold
        group[0] = True
        w = dets[group, 12:13]
        out.append(torch.cat([(dets[group, :12] * w).sum(0) / w.sum(), seed[12:]]))
        dets = dets[~group]
    return torch.stack(out) if out else dets.new_zeros((0, 13))


@torch.no_grad()
def detect_persons(model: BlazePose, images: torch.Tensor, dtype=torch.float32,
                   score_threshold: float = DETECTION_THRESHOLD, max_persons: int = 4
                   ) -> list[torch.Tensor]:
    """Pose detector on a batch of frames.

    Args:
        images: float [N, 3, H, W] frames (0..255) on the model's device.
        max_persons: keep at most this many detections per frame (best first).
    Returns:
        N tensors [D, 13]: box ``x1, y1, x2, y2`` (the face box), then (x, y) of the mid-hip
        centre, the full-body scale / rotation point, the mid-shoulder centre and the upper-body
        scale point, in source pixels, then the score; best first.
    """
    n, _, h, w = images.shape
    side = float(max(h, w))
    whole = images.new_tensor([[w / 2, h / 2, side, side, 0.0]]).expand(n, 5)
    x = crop_rois(images, torch.arange(n, device=images.device), whole, DETECTOR_SIZE, "zeros")
    with _dev.autocast(images.device, dtype):
        raw_boxes, raw_scores = model.detector(x / 127.5 - 1.0)
    raw, anchors = raw_boxes.float() / DETECTOR_SIZE, model.anchors
    xy = raw[..., [0, 1, 4, 5, 6, 7, 8, 9, 10, 11]].reshape(n, -1, 5, 2) + anchors[None, :, None]
    half = raw[..., 2:4] / 2
    dets = torch.cat([xy[:, :, 0] - half, xy[:, :, 0] + half, xy[:, :, 1:].flatten(2)], -1)
    scores = torch.sigmoid(raw_scores[..., 0].float().clamp(-SCORE_CLIP, SCORE_CLIP))
    pad = torch.tensor([(side - w) / 2, (side - h) / 2], device=images.device)
    out = []
    for i in range(n):
        keep = scores[i] >= score_threshold
        merged = _weighted_nms(torch.cat([dets[i][keep], scores[i][keep, None]], 1), NMS_IOU)
        merged = merged[:max_persons]
        pts = merged[:, :12].reshape(-1, 6, 2) * side - pad  # letterbox removal, in pixels
        out.append(torch.cat([pts.flatten(1), merged[:, 12:]], 1))
    return out


def rois_from_detections(dets: torch.Tensor) -> torch.Tensor:
    """Person regions of detections (``pose_detection_to_roi.pbtxt``): centre = mid-hip,
    side = 2 x |scale point - mid-hip| x 1.25 (square), rotation = pi/2 - atan2(-dy, dx)
    normalised to [-pi, pi).

    Args:
        dets: [D, 13] from :func:`detect_persons`.
    Returns:
        float [D, 5] ``(xc, yc, side, side, rotation)`` in pixels / radians.
    """
    c, s = dets[:, 4:6], dets[:, 6:8]
    d = s - c
    side = 2.0 * torch.linalg.vector_norm(d, dim=1) * ROI_SCALE
    rot = math.pi / 2 - torch.atan2(-d[:, 1], d[:, 0])
    rot = rot - 2 * math.pi * torch.floor((rot + math.pi) / (2 * math.pi))
    return torch.stack([c[:, 0], c[:, 1], side, side, rot], dim=1)


def _refine(xy: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
    """RefineLandmarksFromHeatmapCalculator: [R, 39, 2] normalised crop coordinates refined by
    the sigmoid-weighted mean position in a 7 x 7 heatmap window around each landmark when the
    window's highest confidence is >= 0.5 (heatmaps [R, 39, 64, 64] logits)."""
    r, k, hm, _ = heatmaps.shape
    col = torch.trunc(xy[..., 0] * hm).long()  # C++ float -> int truncation
    row = torch.trunc(xy[..., 1] * hm).long()
    inside = (col >= 0) & (col < hm) & (row >= 0) & (col < hm)  # MediaPipe checks col twice
    off = torch.arange(-(HEATMAP_KERNEL // 2), HEATMAP_KERNEL // 2 + 1, device=xy.device)
    rows = (row[..., None, None] + off[:, None]).expand(r, k, HEATMAP_KERNEL, HEATMAP_KERNEL)
    cols = (col[..., None, None] + off[None, :]).expand(r, k, HEATMAP_KERNEL, HEATMAP_KERNEL)
    valid = (rows >= 0) & (rows < hm) & (cols >= 0) & (cols < hm)
    flat = (rows.clamp(0, hm - 1) * hm + cols.clamp(0, hm - 1)).flatten(2)
    conf = torch.sigmoid(torch.gather(heatmaps.flatten(2).float(), 2, flat))
    conf = conf * valid.flatten(2)
    total = conf.sum(-1)
    refined = torch.stack([(conf * cols.flatten(2)).sum(-1), (conf * rows.flatten(2)).sum(-1)],
                          -1) / total.clamp(min=1e-12)[..., None] / hm
    ok = inside & (conf.amax(-1) >= REFINE_MIN_CONFIDENCE) & (total > 0)
    return torch.where(ok[..., None], refined, xy)


@torch.no_grad()
def landmarks_in_rois(model: BlazePose, images: torch.Tensor, frame_of: torch.Tensor,
                      rois: torch.Tensor, dtype=torch.float32
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The landmark model on person regions (one forward for all regions).

    Args:
        images: float [N, 3, H, W] frames (0..255); frame_of: int64 [R]; rois: [R, 5] pixels.
    Returns:
        ``(flags float [R], keypoints float [R, 33, 8])`` (channels in the module docstring).
    """
    x = crop_rois(images, frame_of, rois, LANDMARK_SIZE, "border") / 255.0
    with _dev.autocast(images.device, dtype):
        raw, flag, _, heatmaps, world = model.landmark(x)
    raw = raw.float().reshape(-1, NUM_RAW_LANDMARKS, 5) / LANDMARK_SIZE
    xy = _refine(raw[..., :2], heatmaps)[:, :NUM_LANDMARKS] - 0.5
    cos, sin = torch.cos(rois[:, 4])[:, None], torch.sin(rois[:, 4])[:, None]
    side = rois[:, 2, None]
    px = rois[:, 0, None] + (cos * xy[..., 0] - sin * xy[..., 1]) * side
    py = rois[:, 1, None] + (sin * xy[..., 0] + cos * xy[..., 1]) * side
    vis = torch.sigmoid(raw[:, :NUM_LANDMARKS, 3] * LANDMARK_SIZE)
    pres = torch.sigmoid(raw[:, :NUM_LANDMARKS, 4] * LANDMARK_SIZE)
    z = raw[:, :NUM_LANDMARKS, 2] * side
    wv = world.float().reshape(-1, NUM_RAW_LANDMARKS, 3)[:, :NUM_LANDMARKS]
    wx = cos * wv[..., 0] - sin * wv[..., 1]
    wy = sin * wv[..., 0] + cos * wv[..., 1]
    kp = torch.stack([px, py, vis, pres, z, wx, wy, wv[..., 2]], dim=-1)
    return flag.float()[:, 0], kp


@torch.no_grad()
def estimate_poses(model: BlazePose, frames, device="cpu", dtype=torch.float32,
                   score_threshold: float = DETECTION_THRESHOLD,
                   presence_threshold: float = PRESENCE_THRESHOLD, max_persons: int = 4
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """BlazePose on a batch of RGB frames (see the module docstring).

    Args:
        model: from :func:`load_blazepose` on ``device``.
        frames: RGB uint8 [H, W, 3] frames (a list; sizes may differ, each size is one batch)
            or one uint8 [N, H, W, 3] array.
        dtype: autocast dtype on CUDA (float32 = none).
        score_threshold: person detector score; presence_threshold: pose flag to keep a person;
        max_persons: persons per frame (best detections first).
    Returns:
        Per frame ``(scores float32 [P] (pose flags), keypoints float32 [P, 33, 8])``.
    Raises:
        ValueError: a frame that is not uint8 [H, W, 3].
    """
    frames = _dev.frame_list(frames)
    _check_frames(frames)
    out: list = [None] * len(frames)
    for idx in _dev.group_by_size(frames).values():
        images = _frames_tensor([frames[i] for i in idx], device)
        for i, res in zip(idx, _estimate_batch(model, images, dtype, score_threshold,
                                               presence_threshold, max_persons)):
            out[i] = res
    return out


def _estimate_batch(model, images, dtype, score_threshold, presence_threshold, max_persons):
    """:func:`estimate_poses` on frames of one size, float [N, 3, H, W] on the device."""
    dets = detect_persons(model, images, dtype, score_threshold, max_persons)
    frame_of = torch.cat([torch.full((len(d),), i, dtype=torch.long, device=images.device)
                          for i, d in enumerate(dets)])
    if len(frame_of):
        flags, kps = landmarks_in_rois(model, images, frame_of, rois_from_detections(torch.cat(dets)),
                                       dtype)
    else:
        flags, kps = images.new_zeros(0), images.new_zeros((0, NUM_LANDMARKS, 8))
    flags, kps, frame_of = flags.cpu().numpy(), kps.cpu().numpy(), frame_of.cpu().numpy()
    for i in range(images.shape[0]):
        sel = (frame_of == i) & (flags >= presence_threshold)
        yield flags[sel].astype(np.float32), kps[sel].astype(np.float32)


def warmup(model: BlazePose, device="cpu", size: tuple[int, int] = (480, 640), batch: int = 1,
           dtype=torch.float32) -> None:
    """Run :func:`estimate_poses` once on ``batch`` black frames of ``size`` = (H, W)."""
    estimate_poses(model, np.zeros((batch, size[0], size[1], 3), np.uint8), device, dtype)
    images = torch.zeros((1, 3, size[0], size[1]), device=device)
    rois = images.new_tensor([[size[1] / 2, size[0] / 2, min(size), min(size), 0.0]]).repeat(batch, 1)
    landmarks_in_rois(model, images, torch.zeros(batch, dtype=torch.long, device=device), rois, dtype)
    if _dev.is_cuda(device):
        torch.cuda.synchronize(device)
