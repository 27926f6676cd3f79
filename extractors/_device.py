"""Frame batches and device helpers shared by the extractors (internal).

Frames are RGB ``uint8 [H, W, 3]`` arrays, given either as a sequence or as one ``uint8
[N, H, W, 3]`` array (a per-sample chunk). Frames of one size travel to the device as one uint8
tensor: from pinned host memory with ``non_blocking=True`` on CUDA, a plain copy elsewhere.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Sequence, Union

import numpy as np
import torch

Frames = Union[Sequence[np.ndarray], np.ndarray]


def frame_list(frames: Frames, what: str = "frames") -> list[np.ndarray]:
    """Frames as a list of ``uint8 [H, W, 3]`` arrays (views of a 4-D array, no copies).

    Raises:
        ValueError: a 4-D array that is not uint8 [N, H, W, 3], or a 3-D array (one frame must
            be given as a list of one, or as [1, H, W, 3]).
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"{what}: expected a list of uint8 [H, W, 3] frames or one uint8 "
                             f"[N, H, W, 3] array, got {frames.dtype} {frames.shape}")
        return list(frames)
    return list(frames)


def is_cuda(device) -> bool:
    """True for a CUDA device (``"cuda"``, ``"cuda:1"``, ``torch.device``)."""
    return torch.device(device).type == "cuda"


def group_by_size(frames: Sequence[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Frame indices grouped by (H, W), in first-seen order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(tuple(f.shape[:2]), []).append(i)
    return groups


def stack(frames: Sequence[np.ndarray], idx: Sequence[int]) -> np.ndarray:
    """uint8 [len(idx), H, W, 3] of equal-size frames: a view (no copy) when they are
    consecutive rows of one C-contiguous [N, H, W, 3] array (a per-sample chunk given as one
    array), else one contiguous copy."""
    idx = list(idx)
    base = frames[idx[0]].base if len(idx) else None
    if isinstance(base, np.ndarray) and base.ndim == 4 and base.flags.c_contiguous \
            and base.shape[1:] == frames[idx[0]].shape and base.dtype == frames[idx[0]].dtype:
        row = base[0].nbytes
        start_ptr = base.__array_interface__["data"][0]
        rows = [(frames[i].__array_interface__["data"][0] - start_ptr) / row
                if frames[i].base is base else -1 for i in idx]
        first = rows[0]
        if first == int(first) and rows == [first + k for k in range(len(rows))]:
            return base[int(first):int(first) + len(rows)]
    return np.ascontiguousarray(np.stack([frames[i] for i in idx]))


def upload(batch: np.ndarray, device) -> torch.Tensor:
    """uint8 [N, H, W, 3] host array -> uint8 tensor on ``device`` (pinned + non_blocking on
    CUDA; the pinned buffer stays referenced by the copy until it completes)."""
    t = torch.from_numpy(np.ascontiguousarray(batch))
    if is_cuda(device):
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def autocast(device, dtype: torch.dtype):
    """``torch.autocast`` on CUDA for float16 / bfloat16, else a no-op context (CPU inference
    always runs in float32)."""
    if dtype in (torch.float16, torch.bfloat16) and is_cuda(device):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def resolve_dtype(dtype, device) -> torch.dtype:
    """``None``/``"float32"``/``torch.float32`` etc. -> torch dtype; anything other than float32
    is used only on CUDA (float32 elsewhere).

    Raises:
        ValueError: an unknown dtype name.
    """
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(names)}")
        dtype = names[dtype]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"unsupported inference dtype {dtype}")
    return dtype if is_cuda(device) else torch.float32


def separable_resize(x: torch.Tensor, ay: torch.Tensor, ax: torch.Tensor) -> torch.Tensor:
    """``ay @ x @ ax^T`` over the last two axes: a separable linear resize of float images.

    Args:
        x: float [..., H, W]; ay: [H_out, H]; ax: [W_out, W] (same dtype and device).
    Returns:
        float [..., H_out, W_out].
    """
    return torch.matmul(torch.matmul(ay, x), ax.transpose(0, 1))


def round_to_uint8_values(x: torch.Tensor) -> torch.Tensor:
    """Round half to even and clamp to [0, 255] (cv2 ``saturate_cast<uchar>``), same dtype."""
    return torch.round(x).clamp_(0, 255)


def is_channels_last(model: torch.nn.Module) -> bool:
    """Whether the model's first 4-D parameter with a spatial kernel is stored channels-last
    (as ``model.to(memory_format=torch.channels_last)`` stores it)."""
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


@functools.lru_cache(maxsize=256)
def _linear_taps_on(src: int, dst: int, clamp_fraction: bool, area: bool, device: str
                    ) -> tuple[torch.Tensor, ...]:
    """:func:`_linear_taps` as int64 index / int32 weight tensors on ``device`` (cached)."""
    i0, i1, w0, w1 = _linear_taps(src, dst, clamp_fraction, area)
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device),
            torch.from_numpy(w0.astype(np.int32)).to(device),
            torch.from_numpy(w1.astype(np.int32)).to(device))


def _linear_taps(src: int, dst: int, clamp_fraction: bool, area: bool = False
                 ) -> tuple[np.ndarray, ...]:
    """cv2 ``INTER_LINEAR`` taps along one axis: (index0, index1, weight0, weight1), weights
    in 11-bit fixed point (sum 2048), computed as cv2's ``resize`` does in float32.
    ``area``: the taps cv2 uses for ``INTER_AREA`` when enlarging."""
    d = np.arange(dst)
    if area:
        s = np.floor(d * (src / dst)).astype(np.int64)
        f = ((d + 1) - (s + 1) * (dst / src)).astype(np.float32)
        f = np.where(f <= 0, np.float32(0), f - np.floor(f)).astype(np.float32)
    else:
        f = ((d + 0.5) * (src / dst) - 0.5).astype(np.float32)
        s = np.floor(f).astype(np.int64)
        f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp_fraction:  # the x axis clamps the source index and zeroes the fraction at borders
        low = s < 0
        f[low], s[low] = 0, 0
        high = s >= src - 1
        f[high], s[high] = 0, src - 1
    w1 = np.rint(f * np.float32(2048)).astype(np.int64)
    w0 = np.rint((np.float32(1) - f) * np.float32(2048)).astype(np.int64)
    return np.clip(s, 0, src - 1), np.clip(s + 1, 0, src - 1), w0, w1


def cv2_linear_resize(x: torch.Tensor, out_hw: tuple[int, int], area: bool = False
                      ) -> torch.Tensor:
    """cv2 ``resize(INTER_LINEAR)`` of uint8 images, bit-exact, as torch integer ops on x's device.

    Reproduces OpenCV's 8-bit path: 11-bit fixed-point taps (x clamped at the borders, y rows
    clamped), an exact integer horizontal pass, then the SIMD vertical pass
    ``(((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2`` (checked equal to
    cv2 4.12 on random sizes, up- and downscaling, in ``tests/test_posenet.py``).

    Args:
        x: uint8 [N, H, W, C] tensor.
        out_hw: (H_out, W_out).
        area: use the taps of cv2 ``INTER_AREA`` for enlarging (cv2 enlarges "area" images
            with this linear filter).
    Returns:
        uint8 [N, H_out, W_out, C] on x's device.
    """
    n, h, w, c = x.shape
    ho, wo = out_hw
    dev = x.device
    xs0, xs1, xa0, xa1 = _linear_taps_on(w, wo, True, area, str(dev))
    ys0, ys1, ya0, ya1 = _linear_taps_on(h, ho, False, area, str(dev))
    xi = x.to(torch.int32)
    hor = xi[:, :, xs0] * xa0[:, None] + xi[:, :, xs1] * xa1[:, None]   # [N, H, W_out, C]
    b0 = ya0[:, None, None]
    b1 = ya1[:, None, None]
    out = (((b0 * (hor[:, ys0] >> 4)) >> 16) + ((b1 * (hor[:, ys1] >> 4)) >> 16) + 2) >> 2
    return out.clamp_(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=64)
def _cv2_axis_matrix(src: int, dst: int, interpolation: int) -> np.ndarray:
    """float64 [dst, src]: cv2's resize along one axis read off by resizing an identity (the
    other axis keeps its size). Separable interpolations only (area, linear, cubic)."""
    import cv2

    eye = np.eye(src, dtype=np.float64)
    out = cv2.resize(eye, (src, dst), interpolation=interpolation)
    if out.shape != (dst, src):
        raise RuntimeError(f"cv2 resize matrix is {out.shape}, expected {(dst, src)}")
    return out


@functools.lru_cache(maxsize=64)
def _area_matrix_on(side: int, size: int, device: str) -> torch.Tensor:
    import cv2

    return torch.from_numpy(_cv2_axis_matrix(side, size, cv2.INTER_AREA)).to(device)


def cv2_area_letterbox(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad uint8 images bottom/right to a square, then cv2 ``INTER_AREA`` to ``size``,
    on x's device: ``round(A[:, :H] @ img @ A[:, :W]^T)`` with cv2's own area weights
    ``A [size, side]`` (float64), rounded half to even as cv2's ``saturate_cast``.

    Shrinking by an integer factor: cv2's box sums and rounding, bit-exact. Other shrinking:
    equal to ``blazeface.letterbox`` up to float rounding of cv2's summation order
    (a value could differ by 1 grey level where cv2's result sits within ~1e-6 of a .5 tie;
    none in the tests). Enlarging (side < size): cv2's fixed-point path, bit-exact.

    Args:
        x: uint8 [N, H, W, 3] tensor.
    Returns:
        float32 [N, 3, size, size] (integral values in [0, 255]) on x's device.
    """
    n, h, w, _ = x.shape
    side = max(h, w)
    if side <= size:  # enlarging (or not resizing): cv2's fixed-point linear path
        sq = torch.zeros((n, side, side, 3), dtype=torch.uint8, device=x.device)
        sq[:, :h, :w] = x
        if side < size:
            sq = cv2_linear_resize(sq, (size, size), area=True)
        return sq.permute(0, 3, 1, 2).float()
    if side % size == 0:  # cv2's integer-factor path: box sums, then its own rounding
        k = side // size
        sq = torch.zeros((n, side, side, 3), dtype=torch.int32, device=x.device)
        sq[:, :h, :w] = x
        sums = sq.view(n, size, k, size, k, 3).sum(dim=(2, 4))
        if k == 2:  # SIMD 2x2 path: (a + b + c + d + 2) >> 2
            out = (sums + 2) >> 2
        else:  # saturate_cast<uchar>(float(sum) * (1.f / area)), float32
            out = torch.round(sums.float() * torch.tensor(1.0 / (k * k), dtype=torch.float32))
        return out.permute(0, 3, 1, 2).float()
    img = x.permute(0, 3, 1, 2).double()
    a = _area_matrix_on(side, size, str(x.device))
    out = separable_resize(img, a[:, :h], a[:, :w])
    return round_to_uint8_values(out).float()
