"""Temporal shift operations (TSM) for 2-D CNNs that process the frames of a clip as a batch.

A temporal shift moves a fraction of the channels of each frame's feature map to a neighbouring
frame (zero parameters, zero FLOPs), so that the 2-D convolutions that follow mix time.
Two variants are used by the seed repos:

* **bidirectional** (TSM, Lin, Gan & Han, "TSM: Temporal Shift Module for Efficient Video
  Understanding", ICCV 2019, arXiv:1811.08383), as used by EmoReact TSN
  (``nkegke/deep-affective-bodily-expression-recognition@863cf98:EmoReact/temporal_shift.py``,
  seed spec 3.6): with ``fold = C // shift_div``, channels ``[0, fold)`` of frame t take frame
  t+1 (shift toward the past), channels ``[fold, 2*fold)`` take frame t-1, the rest stay; the
  frames that have no neighbour receive zeros.
* **causal** (online / one-directional), as used by VTT
  (``JanghoonChoi/VTT_vid_emotion@e142d7d:src/resnet_tsm.py ResNet.temp_shift``, seed spec 4.4):
  with ``fold = C // fold_div`` (``fold_div`` 4), channels ``[0, fold)`` of frame t take frame
  t-1; frame 0 keeps its own values (``fill_zero=False``, the reference forward) or receives
  zeros (``fill_zero=True``, unused by the reference forward).

Layout convention (both repos): a batch of N clips of T frames is stacked **clip-major** as
``[N*T, C, H, W]``, row ``n*T + t`` = frame t of clip n (this is the opposite of the
frame-major layout of the SISTCM code in :mod:`zoo.models.sistcm`).

Where the shift sits (:func:`make_temporal_shift`): ``place="residual"`` wraps the first
convolution of every residual block (TSM "blockres": the shift only touches the residual branch,
the identity path keeps the unshifted features); ``place="block"`` wraps whole blocks (TSM
"block"). VTT instead shifts the stage outputs between stages; :mod:`zoo.models.vtt` calls
:func:`causal_shift` itself.

Parity: the functions reproduce ``reference/representations/temporal_shift/*`` exactly.
"""
from __future__ import annotations

import torch
from torch import nn

DIRECTIONS = ("bidirectional", "causal")
PLACES = ("residual", "block")


def _clips(x: torch.Tensor, n_segment: int) -> torch.Tensor:
    """View [N*T, C, H, W] (row n*T + t) as [N, T, C, H, W]; ValueError on a bad shape."""
    if x.dim() != 4:
        raise ValueError(f"x must be [N*T, C, H, W], got shape {tuple(x.shape)}")
    if n_segment < 1 or x.shape[0] % n_segment:
        raise ValueError(f"x has {x.shape[0]} rows, not a multiple of n_segment={n_segment}")
    return x.reshape(x.shape[0] // n_segment, n_segment, *x.shape[1:])


def _fold(channels: int, div: int) -> int:
    if div < 1:
        raise ValueError(f"shift divisor must be >= 1, got {div}")
    return channels // div


def tsm_shift(x: torch.Tensor, n_segment: int, shift_div: int = 8) -> torch.Tensor:
    """Bidirectional TSM shift with zeros at the clip borders (EmoReact TSN, seed spec 3.6).

    Args:
        x: [N*T, C, H, W], row ``n*T + t`` = frame t of clip n (any float dtype/device).
        n_segment: T, frames (segments) per clip.
        shift_div: ``fold = C // shift_div`` channels move each way (TSN uses 8, or 4).

    Returns:
        A new tensor of the same shape: ``out[:, t, :fold] = x[:, t+1, :fold]`` (0 at t = T-1),
        ``out[:, t, fold:2fold] = x[:, t-1, fold:2fold]`` (0 at t = 0), other channels copied.

    Raises:
        ValueError: x not 4-D, rows not a multiple of n_segment, or shift_div < 1.

    Source: ``nkegke/deep-affective-bodily-expression-recognition@863cf98:EmoReact/temporal_shift.py
    TemporalShift.shift`` (non in-place branch); TSM arXiv:1811.08383.
    """
    clips = _clips(x, n_segment)
    fold = _fold(clips.shape[2], shift_div)
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = clips[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = clips[:, :, 2 * fold:]
    return out.reshape(x.shape)


def causal_shift(x: torch.Tensor, n_segment: int, fold_div: int = 4, fill_zero: bool = False) -> torch.Tensor:
    """Causal (online) shift: the first ``C // fold_div`` channels of frame t come from frame t-1.

    Args:
        x: [N*T, C, H, W], row ``n*T + t`` = frame t of clip n.
        n_segment: T, frames per clip (VTT windows: 4).
        fold_div: ``fold = C // fold_div`` shifted channels (VTT: 4).
        fill_zero: False (reference forward): frame 0 keeps its own values in the shifted
            channels (frame index list ``[0, 0, 1, ..., T-2]``); True: frame 0 gets zeros there.

    Returns:
        A new tensor of the same shape; channels ``[fold, C)`` are copied unchanged.

    Raises:
        ValueError: x not 4-D, rows not a multiple of n_segment, or fold_div < 1.

    Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d:src/resnet_tsm.py ResNet.temp_shift`` (seed
    spec 4.4).
    """
    clips = _clips(x, n_segment)
    fold = _fold(clips.shape[2], fold_div)
    source = [0] + list(range(n_segment - 1))
    out = clips.clone()
    out[:, :, :fold] = clips[:, source, :fold]
    if fill_zero:
        out[:, 0, :fold] = 0
    return out.reshape(x.shape)


class TemporalShift(nn.Module):
    """Shift the frames' channels in time, then run ``net`` (or nothing when ``net`` is None).

    Shapes: [N*T, C, H, W] (row ``n*T + t``) -> whatever ``net`` returns for that input.
    Has no parameters of its own; the wrapped module's state-dict keys get the prefix ``net.``
    (as in the reference TSM code, so ``layer1.0.conv1.net.weight``).

    Args:
        net: module applied after the shift (e.g. a block's ``conv1``), or None for a bare shift.
        n_segment: T, frames per clip.
        shift_div: channel divisor (``fold = C // shift_div``); TSM 8 (or 4), VTT 4.
        direction: ``"bidirectional"`` (:func:`tsm_shift`) or ``"causal"`` (:func:`causal_shift`).
        fill_zero: causal only; see :func:`causal_shift`.

    Raises:
        ValueError: unknown direction, n_segment < 1 or shift_div < 1 (at construction); bad
        input shapes (in forward).

    Source: ``EmoReact/temporal_shift.py TemporalShift`` (seed spec 3.6); VTT ``temp_shift`` (4.4).
    """

    def __init__(self, net: nn.Module | None = None, n_segment: int = 8, shift_div: int = 8,
                 direction: str = "bidirectional", fill_zero: bool = False) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if n_segment < 1 or shift_div < 1:
            raise ValueError(f"n_segment and shift_div must be >= 1, got {n_segment}, {shift_div}")
        self.net = net
        self.n_segment = int(n_segment)
        self.shift_div = int(shift_div)
        self.direction = direction
        self.fill_zero = bool(fill_zero)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """The shift alone (no ``net``): [N*T, C, H, W] -> same shape."""
        if self.direction == "causal":
            return causal_shift(x, self.n_segment, self.shift_div, self.fill_zero)
        return tsm_shift(x, self.n_segment, self.shift_div)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = self.shift(x)
        return shifted if self.net is None else self.net(shifted)

    def extra_repr(self) -> str:
        return (f"n_segment={self.n_segment}, shift_div={self.shift_div}, direction={self.direction!r}"
                + (", fill_zero=True" if self.fill_zero else ""))


def make_temporal_shift(resnet: nn.Module, n_segment: int, shift_div: int = 8, place: str = "residual",
                        direction: str = "bidirectional") -> nn.Module:
    """Insert temporal shifts into the four stages of a torchvision ResNet, in place.

    Args:
        resnet: a module with ``layer1``..``layer4`` holding torchvision ``BasicBlock`` /
            ``Bottleneck`` blocks (a ``torchvision.models.ResNet`` or anything with that layout).
        n_segment: T, frames per clip; the network's batch must be [N*T, ...] clip-major.
        shift_div: channel divisor (TSN: 8 by default, 4 allowed).
        place: ``"residual"`` (TSM "blockres", EmoReact default): every block's ``conv1`` becomes
            ``TemporalShift(conv1)``, so only the residual branch sees shifted features (every
            second block when ``layer3`` has >= 23 blocks, as the reference's ``n_round``);
            ``"block"``: every block becomes ``TemporalShift(block)``.
        direction: ``"bidirectional"`` or ``"causal"``.

    Returns:
        The same ``resnet`` object (modified in place). No parameter is added.

    Raises:
        ValueError: unknown place/direction, or a stage without blocks.

    Source: ``EmoReact/temporal_shift.py make_temporal_shift`` (``temporal_pool=False``; the
    optional temporal pooling of the reference is not implemented), seed spec 3.6.
    """
    if place not in PLACES:
        raise ValueError(f"place must be one of {PLACES}, got {place!r}")
    stages = [getattr(resnet, f"layer{i}", None) for i in range(1, 5)]
    if any(s is None or len(s) == 0 for s in stages):
        raise ValueError("resnet must have non-empty layer1..layer4 (torchvision ResNet layout)")
    every = 2 if len(stages[2]) >= 23 else 1
    for stage in stages:
        for i, block in enumerate(stage):
            if place == "block":
                stage[i] = TemporalShift(block, n_segment, shift_div, direction)
            elif i % every == 0:
                block.conv1 = TemporalShift(block.conv1, n_segment, shift_div, direction)
    return resnet
