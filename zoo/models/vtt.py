"""VTT video emotion model: ResNet-18 with a causal temporal shift between stages, and its loss.

Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d``: ``src/resnet_tsm.py resnet18(num_classes=7)``
(model), ``src/resnet.py`` (the static model), ``src/loss_def.py emo_loss`` (loss),
``src/model_tsm_train.py`` + ``ops.py`` (training); seed spec 4.4-4.5.

Forward: windows ``[N, T, 3, H, W]`` (T = 4 consecutive frames, RGB in [0, 1], no mean/std,
reference 224x224) are flattened clip-major to ``[N*T, 3, H, W]`` (row ``n*T + t``) and run
through a torchvision ResNet-18; after ``layer1``, ``layer2`` and ``layer3`` the first
``C // 4`` channels of frame t are replaced by those of frame t-1 (frame 0 keeps its own,
:func:`zoo.models.temporal_shift.causal_shift`); ``avgpool`` -> ``fc(512 -> 7)`` -> per-frame
logits ``[N, T, 7]``. The shift sits on the stage outputs (the identity path too), not inside
the residual branch as in TSM "blockres".

State-dict keys are torchvision's / the reference's (``conv1``, ``layer1.0.conv1``, ``fc``):
11,180,103 parameters, 122 tensors, for both the TSM and the static model.
Classes (FER order, ``utils.emo2txt``): :data:`VTT_LABELS`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, ResNet

from zoo.models.temporal_shift import causal_shift
from zoo.models.tsn import torchvision_backbone
from zoo.recipes import VTT_DEFAULTS  # noqa: F401

VTT_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Class order of the 7 logits (seed spec 4.1); index 6 = neutral."""
NEUTRAL = 6



class ResNet18TSM(ResNet):
    """torchvision ResNet-18 with the VTT causal temporal shift after layer1, layer2 and layer3.

    Input: float32 ``[N, T, 3, H, W]`` (T frames per window, 4 in the reference; H, W >= 32).
    Output: float32 ``[N, T, num_classes]`` per-frame logits (train with :func:`vtt_emo_loss`).

    Args:
        num_classes: 7 (:data:`VTT_LABELS`).
        fold_div: ``C // fold_div`` channels are shifted (reference 4).
        fill_zero: frame 0 of the shifted channels becomes 0 instead of keeping its values
            (False in the reference forward).
        pretrained: start from torchvision's ImageNet ResNet-18 (fc excluded, it stays random);
            the reference starts from its own static AffectNet+RAF model, which is not public.

    Raises:
        ValueError: (forward) input not ``[N, T, 3, H, W]``.
        RuntimeError: ``pretrained=True`` and the weights cannot be downloaded.

    Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d:src/resnet_tsm.py ResNet._forward`` (4.4).
    """

    def __init__(self, num_classes: int = 7, fold_div: int = 4, fill_zero: bool = False,
                 pretrained: bool = False) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        if fold_div < 1:
            raise ValueError(f"fold_div must be >= 1, got {fold_div}")
        self.fold_div = int(fold_div)
        self.fill_zero = bool(fill_zero)
        if pretrained:
            state = torchvision_backbone("resnet18", pretrained=True).state_dict()
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing = self.load_state_dict(state, strict=False).missing_keys
            if sorted(missing) != ["fc.bias", "fc.weight"]:
                raise RuntimeError(f"torchvision resnet18 weights do not fit ResNet18TSM: missing {missing}")

    def _shift(self, x: torch.Tensor, n_segment: int) -> torch.Tensor:
        return causal_shift(x, n_segment, self.fold_div, self.fill_zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"x must be [N, T, 3, H, W], got shape {tuple(x.shape)}")
        n, t = x.shape[:2]
        h = self.maxpool(self.relu(self.bn1(self.conv1(x.flatten(0, 1)))))
        h = self._shift(self.layer1(h), t)
        h = self._shift(self.layer2(h), t)
        h = self._shift(self.layer3(h), t)
        h = self.avgpool(self.layer4(h)).flatten(1)
        return self.fc(h).reshape(n, t, -1)


def neutral_vs_rest(values: torch.Tensor, reduce: str) -> torch.Tensor:
    """Collapse 7 class columns into [neutral, non-neutral]: ``[..., 7] -> [..., 2]``.

    Args:
        values: float [..., 7] in :data:`VTT_LABELS` order (neutral last).
        reduce: ``"sum"`` (targets: ``sum(y0..y5)``) or ``"max"`` (logits: ``max(p0..p5)``).

    Raises:
        ValueError: last dimension is not 7 or unknown reduce.

    Source: ``loss_def.py emo_loss.loss_neutral`` (seed spec 4.5).
    """
    if values.shape[-1] != len(VTT_LABELS) or reduce not in ("sum", "max"):
        raise ValueError(f"need [..., 7] and reduce 'sum'|'max', got {tuple(values.shape)}, {reduce!r}")
    rest = values[..., :NEUTRAL]
    other = rest.sum(dim=-1, keepdim=True) if reduce == "sum" else rest.max(dim=-1, keepdim=True).values
    return torch.cat([values[..., NEUTRAL:], other], dim=-1)


def vtt_emo_loss(logits: torch.Tensor, targets: torch.Tensor, loss_lambda: float = 0.5) -> torch.Tensor:
    """VTT loss: ``lambda * BCE([p6, max p0..5], [y6, sum y0..5]) + (1 - lambda) * BCE(p, y)``.

    Both BCE terms are ``binary_cross_entropy_with_logits`` averaged over all frame rows and
    columns (the reference flattens ``[N, T, 7]`` to ``[N*T, 7]``).

    Args:
        logits: float [N, T, 7] (or [R, 7]) model outputs.
        targets: float 7-vectors per frame, same shape as logits (one-hot or soft labels, e.g.
            0.5/0.5 for RAF compound classes), or [N, 7] for one label per window (repeated
            over the T frames).
        loss_lambda: balance of the neutral-vs-rest term (reference 0.5).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: last dimension is not 7 or targets cannot be matched to logits.

    Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d:src/loss_def.py emo_loss`` (seed spec 4.5).
    """
    if targets.dim() == logits.dim() - 1 and logits.dim() == 3:
        targets = targets.unsqueeze(1).expand_as(logits)
    if logits.shape != targets.shape or logits.shape[-1] != len(VTT_LABELS):
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must be [..., 7] alike")
    p = logits.reshape(-1, len(VTT_LABELS))
    y = targets.reshape(-1, len(VTT_LABELS)).to(p.dtype)
    neutral = F.binary_cross_entropy_with_logits(neutral_vs_rest(p, "max"), neutral_vs_rest(y, "sum"))
    emotion = F.binary_cross_entropy_with_logits(p, y)
    return loss_lambda * neutral + (1.0 - loss_lambda) * emotion
