"""Super-images: tiled face crops for display/IO, and the SISTCM pixel-interleaved views.

``tile_superimage`` / ``untile_superimage`` are our own lossless packing of K crops into one image
(no reference method; used to store or show a clip's crops as one picture).

``sistcm_views`` / ``sistcm_unviews`` are the two super-images of the SISTCM BasicBlock (seed spec
1.3), source ``Janie1996/FER_BGER@b6d53bd:Facial/Model/attention_2D_2dim.py BasicBlock.forward``:
the K frames of a clip are interleaved **pixel by pixel** along one spatial axis, so that one
``3x3`` convolution sees neighbouring frames side by side.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _check_crops(crops: np.ndarray) -> np.ndarray:
    """Return ``crops`` as an array; raise ValueError unless uint8 [K>=1, H, W, 3]."""
    arr = np.asarray(crops)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        raise ValueError(f"crops must be uint8 [K>=1, H, W, 3], got {arr.dtype} {arr.shape}")
    return arr


def tile_superimage(crops: np.ndarray, cols: int | None = None) -> tuple:
    """Tile K equally sized crops into one image, row-major.

    Args:
        crops: uint8 [K, H, W, 3] (any channel order, kept as is; pixel coordinates, y down).
        cols: tiles per row; default K (one row). Rows = ceil(K / cols); unused tiles of the
            last row are zero (black).

    Returns:
        (image, layout): image uint8 [rows*H, cols*W, 3]; tile k sits at row ``k // cols``,
        column ``k % cols``. layout = {"k": K, "rows": rows, "cols": cols, "tile_h": H,
        "tile_w": W, "order": "row-major"} (JSON-serialisable, for :func:`untile_superimage`).

    Raises:
        ValueError: crops not uint8 [K>=1, H, W, 3] or cols < 1.
    """
    arr = _check_crops(crops)
    k, h, w, _ = arr.shape
    cols = k if cols is None else int(cols)
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = math.ceil(k / cols)
    grid = np.zeros((rows * cols, h, w, 3), dtype=np.uint8)
    grid[:k] = arr
    image = grid.reshape(rows, cols, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)
    layout = {"k": k, "rows": rows, "cols": cols, "tile_h": h, "tile_w": w, "order": "row-major"}
    return np.ascontiguousarray(image), layout


def untile_superimage(image: np.ndarray, layout: dict) -> np.ndarray:
    """Exact inverse of :func:`tile_superimage`.

    Args:
        image: uint8 [rows*tile_h, cols*tile_w, 3]. layout: the dict tile_superimage returned.

    Returns:
        uint8 [K, tile_h, tile_w, 3] (a copy).

    Raises:
        ValueError: unknown order, K larger than the grid, or an image shape that does not
        match the layout.
    """
    k, rows, cols = layout["k"], layout["rows"], layout["cols"]
    h, w = layout["tile_h"], layout["tile_w"]
    if layout.get("order", "row-major") != "row-major" or not 1 <= k <= rows * cols:
        raise ValueError(f"unsupported layout {layout}")
    arr = np.asarray(image)
    if arr.shape != (rows * h, cols * w, 3):
        raise ValueError(f"image shape {arr.shape} does not match layout {layout}")
    tiles = arr.reshape(rows, h, cols, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, h, w, 3)
    return tiles[:k].copy()


def clips_from_frame_major(x: torch.Tensor, k: int) -> torch.Tensor:
    """Restack frame-major rows into clips: [K*N, C, H, W] (row ``k*N + n``) -> [N, C, K, H, W].

    Source: the ``[K*N, ...]`` layout of ``Facial/Model/attention_2D_2dim.py`` (seed spec 1.3).
    Raises ValueError when the first dimension is not a multiple of k.
    """
    if x.dim() != 4 or k < 1 or x.shape[0] % k:
        raise ValueError(f"x must be [K*N, C, H, W] with K={k}, got {tuple(x.shape)}")
    n = x.shape[0] // k
    return x.reshape(k, n, *x.shape[1:]).permute(1, 2, 0, 3, 4)


def clips_to_frame_major(f: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`clips_from_frame_major`: [N, C, K, H, W] -> [K*N, C, H, W]."""
    if f.dim() != 5:
        raise ValueError(f"f must be [N, C, K, H, W], got {tuple(f.shape)}")
    n, c, k, h, w = f.shape
    return f.permute(2, 0, 1, 3, 4).reshape(k * n, c, h, w)


def sistcm_views(f: torch.Tensor) -> tuple:
    """The two SISTCM super-images of a clip feature map (seed spec 1.3, steps 2-3).

    Source: ``Janie1996/FER_BGER@b6d53bd:Facial/Model/attention_2D_2dim.py BasicBlock.forward``
    (``x3 = F.permute(0,1,3,4,2).view(N,C,H,W*K)``, ``x2 = F.permute(0,1,4,3,2).view(N,C,W,H*K)``).
    The reference block only runs for K = 2 (hard-coded ``range(2)``, QUIRK); the views here work
    for any K.

    Args:
        f: [N, C, K, H, W] (any dtype/device): clip n, channel c, frame k, feature row h, col w.

    Returns:
        (A, B): A [N, C, H, W*K] with ``A[n,c,h,w*K+k] = F[n,c,k,h,w]`` ("H x W.K");
        B [N, C, W, H*K] with ``B[n,c,w,h*K+k] = F[n,c,k,h,w]`` ("W x H.K", transposed frame).

    Raises:
        ValueError: f is not 5-D.
    """
    if f.dim() != 5:
        raise ValueError(f"f must be [N, C, K, H, W], got {tuple(f.shape)}")
    n, c, k, h, w = f.shape
    a = f.permute(0, 1, 3, 4, 2).reshape(n, c, h, w * k)
    b = f.permute(0, 1, 4, 3, 2).reshape(n, c, w, h * k)
    return a, b


def sistcm_unviews(a: torch.Tensor, b: torch.Tensor, k: int) -> tuple:
    """Inverse of :func:`sistcm_views` (seed spec 1.3, step 5, before the sum).

    Source: as :func:`sistcm_views` (``view(N,C,H,W,K).permute(0,1,4,2,3)`` and
    ``view(N,C,W,H,K).transpose(2,4)``).

    Args:
        a: [N, C, H, W*K]; b: [N, C, W, H*K]; k: frames per clip.

    Returns:
        (F_from_A, F_from_B), each [N, C, K, H, W].

    Raises:
        ValueError: not 4-D, a last dimension not divisible by k, or A/B shapes that disagree.
    """
    if a.dim() != 4 or b.dim() != 4 or k < 1 or a.shape[-1] % k or b.shape[-1] % k:
        raise ValueError(f"bad super-image shapes {tuple(a.shape)}, {tuple(b.shape)} for K={k}")
    n, c, h, wk = a.shape
    w = wk // k
    if tuple(b.shape) != (n, c, w, h * k):
        raise ValueError(f"B shape {tuple(b.shape)} does not match A {tuple(a.shape)} for K={k}")
    f_a = a.reshape(n, c, h, w, k).permute(0, 1, 4, 2, 3)
    f_b = b.reshape(n, c, w, h, k).permute(0, 1, 4, 3, 2)
    return f_a, f_b
