"""MediaPipe BlazeFace face detector (front 128x128 and back 256x256 models) in PyTorch.

Method: V. Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile
GPUs", arXiv:1907.05047 (2019); weights and layer layout of the PyTorch port
hollance/BlazeFace-PyTorch @852bfd8 (Apache-2.0, converted from the MediaPipe TFLite models).
Anchors follow MediaPipe's ``SsdAnchorsCalculator``. This module is an independent
implementation written from the published facts in ``shared/data/README.md``.

Pipeline: RGB frame -> :func:`letterbox` (zero pad bottom/right to a square, ``cv2.INTER_AREA``
resize to 128 or 256) -> ``x / 127.5 - 1`` -> :class:`BlazeFace` -> anchor decode ->
weighted ("blending") NMS -> boxes and 6 keypoints in source-image pixels.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from extractors import _device as _dev
from extractors import weights as _weights

__all__ = [
    "FACE_KEYPOINTS",
    "BlazeFace",
    "generate_anchors",
    "load_blazeface",
    "letterbox",
    "decode_detections",
    "weighted_nms",
    "weighted_nms_batch",
    "preprocess",
    "detect_faces",
    "warmup",
]

#: Keypoint order of the 6 BlazeFace landmarks (subject's point of view).
FACE_KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")

FRONT_SIZE, BACK_SIZE = 128, 256
FRONT_THRESHOLD, BACK_THRESHOLD = 0.75, 0.65
NMS_IOU = 0.3
SCORE_CLIP = 100.0

# (in, out, stride) of the BlazeBlocks, indexed from 2 as in the weight files.
_FRONT_BACKBONE1 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1),
                    (42, 48, 2), (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
_FRONT_BACKBONE2 = [(88, 96, 2)] + [(96, 96, 1)] * 4
_BACK_BACKBONE = ([(24, 24, 1)] * 7 + [(24, 24, 2)] + [(24, 24, 1)] * 7 + [(24, 48, 2)]
                  + [(48, 48, 1)] * 7 + [(48, 96, 2)] + [(96, 96, 1)] * 7)


class _DepthwiseSeparable(nn.Module):
    """Holds ``convs`` = [depthwise 3x3, pointwise 1x1] (keys ``convs.0``, ``convs.1``)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        pad = 1 if stride == 1 else 0
        self.convs = nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=pad, groups=cin, bias=True),
            nn.Conv2d(cin, cout, 1, bias=True),
        )

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:  # TFLite SAME padding (right/bottom)
            x = F.pad(x, (0, 2, 0, 2))
        return self.convs(x)


class BlazeBlock(_DepthwiseSeparable):
    """Single BlazeBlock: relu(pointwise(depthwise(x)) + shortcut(x)).

    Shortcut: identity (stride 1) or 2x2 max-pool (stride 2), zero-padded with extra channels
    when ``cout > cin``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._branch(x)
        skip = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        extra = h.shape[1] - skip.shape[1]
        if extra > 0:
            skip = F.pad(skip, (0, 0, 0, 0, 0, extra))
        return F.relu(h + skip)


class FinalBlock(_DepthwiseSeparable):
    """Back model's last block: stride-2 depthwise + pointwise + ReLU, no shortcut."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self._branch(x))


class _Stem(nn.Conv2d):
    """5x5 stride-2 conv (24 channels) on the input padded left/top 1, right/bottom 2."""

    def __init__(self):
        super().__init__(3, 24, 5, stride=2, padding=0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (1, 2, 1, 2)))


def _blocks(spec) -> list[nn.Module]:
    return [BlazeBlock(i, o, s) for i, o, s in spec]


class BlazeFace(nn.Module):
    """BlazeFace network; state-dict keys match hollance's ``blazeface.pth`` / ``blazefaceback.pth``.

    Args:
        back_model: False for the front model (input 128x128, keys ``backbone1``/``backbone2``),
            True for the back model (input 256x256, keys ``backbone``/``final``).

    ``forward(x)``: x float32 [N, 3, S, S], RGB scaled to [-1, 1] (``x / 127.5 - 1``), S = 128
    or 256. Returns ``(raw_boxes [N, 896, 16], raw_scores [N, 896, 1])``: regressor outputs in
    input pixels relative to the anchors and classifier logits (16x16 map anchors first).
    """

    def __init__(self, back_model: bool = False):
        super().__init__()
        self.back_model = back_model
        self.input_size = BACK_SIZE if back_model else FRONT_SIZE
        self.score_threshold = BACK_THRESHOLD if back_model else FRONT_THRESHOLD
        if back_model:
            self.backbone = nn.Sequential(_Stem(), nn.ReLU(), *_blocks(_BACK_BACKBONE))
            self.final = FinalBlock(96, 96, 2)
            c16 = 96
        else:
            self.backbone1 = nn.Sequential(_Stem(), nn.ReLU(), *_blocks(_FRONT_BACKBONE1))
            self.backbone2 = nn.Sequential(*_blocks(_FRONT_BACKBONE2))
            c16 = 88
        self.register_buffer("anchors", torch.from_numpy(generate_anchors(back_model)).float(),
                             persistent=False)
        self.classifier_8 = nn.Conv2d(c16, 2, 1)
        self.classifier_16 = nn.Conv2d(96, 6, 1)
        self.regressor_8 = nn.Conv2d(c16, 32, 1)
        self.regressor_16 = nn.Conv2d(96, 96, 1)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.back_model:
            f16 = self.backbone(x)
            return f16, self.final(f16)
        f16 = self.backbone1(x)
        return f16, self.backbone2(f16)

    @staticmethod
    def _flat(t: torch.Tensor, per_anchor: int) -> torch.Tensor:
        return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, per_anchor)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f16, f8 = self._features(x)
        scores = torch.cat([self._flat(self.classifier_8(f16), 1),
                            self._flat(self.classifier_16(f8), 1)], dim=1)
        boxes = torch.cat([self._flat(self.regressor_8(f16), 16),
                           self._flat(self.regressor_16(f8), 16)], dim=1)
        return boxes, scores


def generate_anchors(back_model: bool = False) -> np.ndarray:
    """SSD anchors of BlazeFace as MediaPipe's ``SsdAnchorsCalculator`` generates them.

    Options: 4 layers, strides [8, 16, 16, 16] (front, input 128) or [16, 32, 32, 32] (back,
    input 256), aspect ratio 1.0 plus the interpolated scale (2 anchors per layer and cell),
    offsets 0.5, fixed anchor size (w = h = 1). Layers with equal strides share one feature map.

    Returns:
        float64 [896, 4] rows ``[x_center, y_center, w, h]`` normalised to [0, 1]; order: feature
        map (finest first), row y, column x, anchor. Identical for both models.
    """
    size, strides = (BACK_SIZE, [16, 32, 32, 32]) if back_model else (FRONT_SIZE, [8, 16, 16, 16])
    rows = []
    layer = 0
    while layer < len(strides):
        n_same = sum(1 for s in strides[layer:] if s == strides[layer])
        fm = int(np.ceil(size / strides[layer]))
        per_cell = 2 * n_same
        for y in range(fm):
            for x in range(fm):
                rows.extend([[(x + 0.5) / fm, (y + 0.5) / fm, 1.0, 1.0]] * per_cell)
        layer += n_same
    return np.asarray(rows, dtype=np.float64)


def load_blazeface(variant: str = "front", device="cpu", channels_last: Optional[bool] = None
                   ) -> BlazeFace:
    """Build :class:`BlazeFace` and load the registered weights strictly (eval mode).

    The SSD anchors (:func:`generate_anchors`, equal to the shipped ``blazeface_anchors.npy``)
    are a non-persistent buffer ``anchors`` float32 [896, 4] of every :class:`BlazeFace`.

    Args:
        variant: ``"front"`` (``blazeface-front``, 128x128) or ``"back"`` (``blazeface-back``).
        device: torch device for the model.
        channels_last: channels-last weights (default: on CUDA only).
    Raises:
        ValueError: unknown variant. WeightsNotFoundError / WeightsChecksumError from
        :mod:`extractors.weights`. RuntimeError: key mismatch (strict load).
    """
    if variant not in ("front", "back"):
        raise ValueError(f"variant must be 'front' or 'back', got {variant!r}")
    model = BlazeFace(back_model=variant == "back")
    model.load_state_dict(_weights.load_state_dict(f"blazeface-{variant}"), strict=True)
    model = model.to(device).eval()
    if _dev.is_cuda(device) if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Zero-pad an image bottom/right to a square, then resize it with ``cv2.INTER_AREA``.

    Args:
        frame: uint8 [H, W, 3] (any channel order; it is preserved).
        size: output side in pixels (128 or 256 for BlazeFace).
    Returns:
        ``(square uint8 [size, size, 3], scale)`` with ``scale = max(H, W) / size``, so that a
        point (x, y) of the square (pixels) is (x * scale, y * scale) in the source image and a
        normalised coordinate u maps to ``u * max(H, W)`` source pixels.
    Raises:
        ValueError: not an [H, W, 3] array.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {frame.shape}")
    h, w = frame.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), dtype=frame.dtype)
    square[:h, :w] = frame
    if side != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return square, side / size


def _decode_boxes(raw_boxes: torch.Tensor, anchors: torch.Tensor, size: int) -> torch.Tensor:
    """Anchor decode (hollance ``_decode_boxes``): [N, 896, 16] -> normalised [N, 896, 16]
    rows ``ymin, xmin, ymax, xmax, kx0, ky0, ..., kx5, ky5``."""
    a = anchors.to(raw_boxes)
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    xc = raw_boxes[..., 0] / size * aw + ax
    yc = raw_boxes[..., 1] / size * ah + ay
    w = raw_boxes[..., 2] / size * aw
    h = raw_boxes[..., 3] / size * ah
    out = [yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0]
    kp = raw_boxes[..., 4:].reshape(*raw_boxes.shape[:-1], 6, 2)
    kx = kp[..., 0] / size * aw[:, None] + ax[:, None]
    ky = kp[..., 1] / size * ah[:, None] + ay[:, None]
    out = torch.stack(out, dim=-1)
    return torch.cat([out, torch.stack([kx, ky], dim=-1).flatten(-2)], dim=-1)


def decode_detections(raw_boxes: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor,
                      size: int, score_threshold: float) -> list[torch.Tensor]:
    """Decode a batch of raw outputs into per-image candidate detections (before NMS).

    Args:
        raw_boxes: [N, 896, 16]; raw_scores: [N, 896, 1] logits; anchors: [896, 4] normalised
        ``[xc, yc, w, h]``; size: network input side (128/256); score_threshold: keep
        ``sigmoid(clamp(logit, -100, 100)) >= score_threshold``.
    Returns:
        N tensors [K, 17] on the input device: ymin, xmin, ymax, xmax, 6 x (x, y) keypoints
        (normalised to the letterboxed square), score.
    """
    decoded = _decode_boxes(raw_boxes, anchors, size)
    scores = torch.sigmoid(raw_scores[..., 0].clamp(-SCORE_CLIP, SCORE_CLIP))
    keep = scores >= score_threshold
    return [torch.cat([decoded[i][keep[i]], scores[i][keep[i]][:, None]], dim=1)
            for i in range(decoded.shape[0])]


def _iou_batch(seed: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of per-image seed boxes [N, 4] with boxes [N, K, 4], all (ymin, xmin, ymax, xmax)
    (no +1 pixel convention). Returns [N, K]."""
    lo = torch.maximum(seed[:, None, :2], boxes[..., :2])
    hi = torch.minimum(seed[:, None, 2:4], boxes[..., 2:4])
    inter = (hi - lo).clamp(min=0).prod(dim=-1)
    area = ((seed[:, 2] - seed[:, 0]) * (seed[:, 3] - seed[:, 1]))[:, None]
    areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return inter / (area + areas - inter)


def weighted_nms_batch(dets: torch.Tensor, valid: torch.Tensor, iou_threshold: float = NMS_IOU
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted NMS of a batch on the detections' device (see :func:`weighted_nms`).

    Every round takes, in each image at once, the highest-scoring remaining detection as the
    seed, groups the remaining detections whose IoU with it is > ``iou_threshold`` (the seed
    always belongs to its group), and emits the score-weighted mean of the group's 16
    coordinates with the group's mean score (a lone seed is emitted unchanged). Rounds repeat
    until no image has detections left (one host sync per round; rounds = most faces found in
    one image).

    Args:
        dets: float [N, K, 17] (16 coordinates, score last), padded.
        valid: bool [N, K], False for padding.
    Returns:
        ``(out float [N, R, 17], count int64 [N])``: image i's merged detections are
        ``out[i, :count[i]]``, in the order the groups were formed (descending seed score,
        ties by position in ``dets``).
    """
    n, k = valid.shape
    out = dets.new_zeros((n, 0, dets.shape[-1]))
    count = torch.zeros(n, dtype=torch.long, device=dets.device)
    if k == 0:
        return out, count
    order = torch.argsort(torch.where(valid, dets[..., 16], dets.new_tensor(float("-inf"))),
                          dim=1, descending=True, stable=True)
    dets = torch.gather(dets, 1, order[..., None].expand(-1, -1, dets.shape[-1]))
    remaining = torch.gather(valid, 1, order)
    rows = torch.arange(n, device=dets.device)
    merged_rounds = []
    while bool(remaining.any()):
        has = remaining.any(dim=1)
        seed_idx = remaining.to(torch.int8).argmax(dim=1)  # first remaining = best score
        seed = dets[rows, seed_idx]
        group = remaining & (_iou_batch(seed[:, :4], dets[..., :4]) > iou_threshold)
        group[rows, seed_idx] |= has
        w = dets[..., 16] * group
        wsum = w.sum(dim=1)
        size = group.sum(dim=1)
        blended = torch.cat([(dets[..., :16] * w[..., None]).sum(dim=1) / wsum[:, None],
                             (wsum / size)[:, None]], dim=1)
        merged_rounds.append(torch.where((size > 1)[:, None], blended, seed))
        count += has.long()
        remaining &= ~group
    return torch.stack(merged_rounds, dim=1), count


def weighted_nms(dets: torch.Tensor, iou_threshold: float = NMS_IOU) -> torch.Tensor:
    """Weighted ("blending") NMS of BlazeFace (hollance ``_weighted_non_max_suppression``).

    Repeatedly take the highest-scoring remaining detection, group it with every remaining
    detection whose box IoU with it is > ``iou_threshold`` (itself included), and replace the
    group by the score-weighted mean of its 16 coordinates with the group's **mean** score.
    (One-image form of :func:`weighted_nms_batch`.)

    Args:
        dets: [K, 17] float (16 coordinates, score last).
    Returns:
        [M, 17], in the order the groups were formed (descending seed score).
    """
    if dets.shape[0] == 0:
        return dets
    out, count = weighted_nms_batch(dets[None], torch.ones(1, dets.shape[0], dtype=torch.bool,
                                                           device=dets.device), iou_threshold)
    return out[0, :int(count[0])]


def _check(frame, i: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames[{i}]: expected uint8 [H, W, 3], got {got}")


def preprocess(frames, size: int, device="cpu", device_preprocess: Optional[bool] = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Letterbox and scale frames into one network batch on ``device``.

    CPU (default): :func:`letterbox` with cv2 on the host, as hollance's code. CUDA (default):
    frames of one size go up as one uint8 tensor (pinned, non_blocking) and are letterboxed
    there (:func:`extractors._device.cv2_area_letterbox`: cv2's ``INTER_AREA`` weights, the same
    square images as cv2 on the test frames).

    Args:
        frames: RGB uint8 [H, W, 3] images (list) or a uint8 [N, H, W, 3] array.
        size: network input side (128 front, 256 back).
        device_preprocess: force the device path on (True) or off (False).
    Returns:
        ``(x float32 [N, 3, size, size] in [-1, 1] on device, sides float64 [N] = max(H, W)
        per frame on device)``.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3].
    """
    frames = _dev.frame_list(frames)
    for i, f in enumerate(frames):
        _check(f, i)
    on_device = _dev.is_cuda(device) if device_preprocess is None else bool(device_preprocess)
    sides = torch.tensor([float(max(f.shape[:2])) for f in frames], dtype=torch.float64)
    if on_device:
        batch = torch.empty((len(frames), 3, size, size), dtype=torch.float32, device=device)
        for idx in _dev.group_by_size(frames).values():
            sq = _dev.cv2_area_letterbox(_dev.upload(_dev.stack(frames, idx), device), size)
            batch[torch.as_tensor(idx, device=device)] = sq
    else:
        squares = [letterbox(f, size)[0] for f in frames]
        batch = torch.from_numpy(np.stack(squares)).to(device).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0, sides.to(device)


def _postprocess(raw_boxes: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor,
                 size: int, score_threshold: float, sides: torch.Tensor) -> list[np.ndarray]:
    """Anchor decode, score filter, batched weighted NMS and the mapping to source pixels, on
    the outputs' device; one transfer to the host."""
    decoded = _decode_boxes(raw_boxes.float(), anchors, size)
    scores = torch.sigmoid(raw_scores[..., 0].float().clamp(-SCORE_CLIP, SCORE_CLIP))
    keep = scores >= score_threshold
    k = int(keep.sum(dim=1).max()) if keep.numel() else 0
    order = torch.argsort(keep.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]
    dets = torch.cat([decoded, scores[..., None]], dim=-1)
    dets = torch.gather(dets, 1, order[..., None].expand(-1, -1, 17))
    valid = torch.gather(keep, 1, order)
    merged, count = weighted_nms_batch(dets, valid)
    d = merged.double()
    side = sides.to(d)[:, None, None]
    px = torch.cat([d[..., [1, 0, 3, 2]] * side, d[..., 16:17], d[..., 4:16] * side], dim=-1)
    host = px.float().cpu().numpy()
    counts = count.cpu().numpy()
    return [np.ascontiguousarray(host[i, :counts[i]]) for i in range(len(counts))]


@torch.no_grad()
def detect_faces(model: BlazeFace, frames, device="cpu", score_threshold: Optional[float] = None,
                 dtype=None, device_preprocess: Optional[bool] = None) -> list[np.ndarray]:
    """Detect faces with BlazeFace in a batch of RGB frames (one network forward for all).

    Preprocessing (:func:`preprocess`) runs on the host with cv2 on CPU and on the device on
    CUDA (same input images); anchor decoding, the score filter and the weighted NMS run
    batched on ``device`` (:func:`weighted_nms_batch`), and the results come back in one
    transfer.

    Args:
        model: a loaded :class:`BlazeFace` (see :func:`load_blazeface`), already on ``device``.
        frames: RGB uint8 images [H, W, 3] (a list; sizes may differ, each is letterboxed to
            the model's square input), or one uint8 [N, H, W, 3] array.
        device: torch device for the forward pass and the decode.
        score_threshold: minimum score; default 0.75 (front) / 0.65 (back).
        dtype: autocast dtype on CUDA (float16 / bfloat16 or their names); None / float32 =
            none. Ignored off CUDA.
        device_preprocess: letterbox on the device (default: on CUDA only).
    Returns:
        One float32 array [D, 17] per frame, rows ``x1, y1, x2, y2, score, then (x, y) of
        right eye, left eye, nose, mouth, right ear, left ear`` (:data:`FACE_KEYPOINTS`), in
        source-image pixels (origin top-left, x right, y down). Boxes may extend past the image.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3].
    """
    frames = _dev.frame_list(frames)
    if len(frames) == 0:
        return []
    size = model.input_size
    thr = model.score_threshold if score_threshold is None else float(score_threshold)
    x, sides = preprocess(frames, size, device, device_preprocess)
    if _dev.is_channels_last(model):
        x = x.contiguous(memory_format=torch.channels_last)
    with _dev.autocast(device, _dev.resolve_dtype(dtype, device)):
        raw_boxes, raw_scores = model(x)
    return _postprocess(raw_boxes, raw_scores, model.anchors, size, thr, sides)


def warmup(model: BlazeFace, device="cpu", size: tuple[int, int] = (480, 640), batch: int = 1,
           dtype=None) -> None:
    """Run :func:`detect_faces` once on ``batch`` black frames of ``size`` = (H, W)."""
    detect_faces(model, np.zeros((batch, size[0], size[1], 3), np.uint8), device=device,
                 dtype=dtype)
    if _dev.is_cuda(device):
        torch.cuda.synchronize(device)
