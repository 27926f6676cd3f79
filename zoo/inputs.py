"""Input adapters: turn a stored shard tensor into what a model's ``forward`` takes.

Shards keep images as uint8 RGB ``[..., H, W, 3]`` (compact, viewable); image backbones take
float ``[..., 3, H, W]`` normalised with the ImageNet mean and std that torchvision's
pretrained weights expect. Adapters run on the batch's device, after the DataLoader.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # adapters take tensors; the model table imports this module without torch
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Any stored tensor as float32, unchanged otherwise (timelines, pose features, embeddings)."""
    return x.float()


def images_to_normalized_chw(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``[..., H, W, 3]`` (0..255) -> float32 ``[..., 3, H, W]``, ``(x/255 - mean)/std``
    with the ImageNet RGB mean and std."""
    import torch

    x = x.float().div_(255.0).movedim(-1, -3)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def images_to_unit_chw(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` in [0, 1] (FER_BGER SISTCM and
    VTT feed ``ToTensor()`` images without mean/std, seed_specs 1.1 and 4.3)."""
    return x.float().div_(255.0).movedim(-1, -3)


def require_frames(x: torch.Tensor, axis: int, what: str = "input") -> torch.Tensor:
    """``x`` unchanged when its frame axis ``axis`` is not empty.

    Shards keep a switched-off representation (``clips/faces_masked`` without the card's
    ``face_mask``, ``videos/face_pool`` without ``face_pool``) as a dataset with a zero-length
    frame axis (schema 3).

    Raises:
        ValueError: the axis is empty, naming the card switch that fills it.
    """
    if x.shape[axis] == 0:
        raise ValueError(f"{what}: the stored field has no frames (shape {tuple(x.shape)}): it was switched off at "
                         "extraction; re-extract with the card's face_mask / face_pool on (--face-mask / --face-pool)")
    return x


def clips_to_segments(x: torch.Tensor) -> torch.Tensor:
    """Stacked clips uint8 ``[N, C, K, H, W, 3]`` -> TSN segments float32 ``[N, C*K, 3, H, W]``
    (ImageNet-normalised): the C x K face frames of a sample, in time order, are its segments.
    ``--input faces_masked`` (``clips/faces_masked``) goes the same way.

    Raises:
        ValueError: K = 0 (a field switched off at extraction, :func:`require_frames`).
    """
    return images_to_normalized_chw(require_frames(x, 2, "clips").flatten(1, 2))
