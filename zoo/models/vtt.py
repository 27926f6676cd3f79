"""VTT video emotion model: ResNet-18/34/50 with a causal temporal shift between stages, and its loss.

Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d``: ``src/resnet_tsm.py resnet18(num_classes=7)``
(model; the same file builds ``resnet34`` and ``resnet50`` the torchvision way: BasicBlock
[3, 4, 6, 3] and Bottleneck [3, 4, 6, 3]), ``src/resnet.py`` (the static model),
``src/loss_def.py emo_loss`` (loss), ``src/model_tsm_train.py`` + ``ops.py`` (training); seed
spec 4.4-4.5.

Forward: windows ``[N, T, 3, H, W]`` (T = 4 consecutive frames, RGB in [0, 1], no mean/std,
reference 224x224) are flattened clip-major to ``[N*T, 3, H, W]`` (row ``n*T + t``) and run
through a torchvision ResNet-18; after ``layer1``, ``layer2`` and ``layer3`` the first
``C // 4`` channels of frame t are replaced by those of frame t-1 (frame 0 keeps its own,
:func:`zoo.models.temporal_shift.causal_shift`); ``avgpool`` -> ``fc(512 -> 7)`` -> per-frame
logits ``[N, T, 7]``. The shift sits on the stage outputs (the identity path too), not inside
the residual branch as in TSM "blockres".

State-dict keys are torchvision's / the reference's (``conv1``, ``layer1.0.conv1``, ``fc``):
ResNet-18 11,180,103 parameters, 122 tensors, for both the TSM and the static model; ResNet-34
21,288,263 and ResNet-50 23,522,375 (torchvision's ``resnet34`` / ``resnet50`` with the 7-class
head: the shift adds no parameter). With ResNet-50 the shifted channels are ``C // 4`` of the
Bottleneck stage outputs (256, 512, 1024) and ``fc`` is 2048 -> 7.
Classes (FER order, ``utils.emo2txt``): :data:`VTT_LABELS`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from zoo.inputs import images_to_unit_chw
from zoo.models.registration import register_model
from zoo.models.temporal_shift import causal_shift
from zoo.models.tsn import torchvision_backbone
from zoo.recipes import VTT_DEFAULTS

VTT_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Class order of the 7 logits (seed spec 4.1); index 6 = neutral."""
NEUTRAL = 6

#: Depth -> (block, blocks per stage) of ``resnet_tsm.py``'s builders (torchvision's layouts).
ARCHITECTURES = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
                 "resnet50": (Bottleneck, [3, 4, 6, 3])}


class ResNetTSM(ResNet):
    """torchvision ResNet-18/34/50 with the VTT causal temporal shift after layer1, layer2 and layer3.

    Input: float32 ``[N, T, 3, H, W]`` (T frames per window, 4 in the reference; H, W >= 32).
    Output: float32 ``[N, T, num_classes]`` per-frame logits (train with :func:`vtt_emo_loss`).

    Args:
        num_classes: 7 (:data:`VTT_LABELS`).
        arch: ``resnet18`` (the reference's), ``resnet34`` or ``resnet50`` (:data:`ARCHITECTURES`).
        fold_div: ``C // fold_div`` channels are shifted (reference 4).
        fill_zero: frame 0 of the shifted channels becomes 0 instead of keeping its values
            (False in the reference forward).
        pretrained: start from torchvision's ImageNet weights of ``arch`` (fc excluded, it stays
            random); the reference starts from its own static AffectNet+RAF model, which is not
            public.

    Raises:
        ValueError: unknown ``arch``, ``fold_div`` < 1; (forward) input not ``[N, T, 3, H, W]``.
        RuntimeError: ``pretrained=True`` and the weights cannot be downloaded.

    Source: ``JanghoonChoi/VTT_vid_emotion@e142d7d:src/resnet_tsm.py ResNet._forward`` (4.4).
    """

    def __init__(self, num_classes: int = 7, arch: str = "resnet18", fold_div: int = 4, fill_zero: bool = False,
                 pretrained: bool = False) -> None:
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown VTT backbone {arch!r}; known: {', '.join(ARCHITECTURES)}")
        block, layers = ARCHITECTURES[arch]
        super().__init__(block, layers, num_classes=num_classes)
        if fold_div < 1:
            raise ValueError(f"fold_div must be >= 1, got {fold_div}")
        self.arch = arch
        self.fold_div = int(fold_div)
        self.fill_zero = bool(fill_zero)
        if pretrained:
            state = torchvision_backbone(arch, pretrained=True).state_dict()
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing = self.load_state_dict(state, strict=False).missing_keys
            if sorted(missing) != ["fc.bias", "fc.weight"]:
                raise RuntimeError(f"torchvision {arch} weights do not fit ResNetTSM: missing {missing}")

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


class ResNet18TSM(ResNetTSM):
    """:class:`ResNetTSM` with the reference's ResNet-18 (``resnet_tsm.py resnet18``)."""

    def __init__(self, num_classes: int = 7, fold_div: int = 4, fill_zero: bool = False,
                 pretrained: bool = False) -> None:
        super().__init__(num_classes, "resnet18", fold_div, fill_zero, pretrained)


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


# ------------------------------------------------------------------------- zoo registrations
def zoo_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VTT's loss on the 7 FER classes (neutral last, :func:`vtt_emo_loss`) for int class
    targets [N]; with another label set the neutral-vs-rest term has no meaning, so only its
    per-class BCE term is used."""
    onehot = F.one_hot(target, output.shape[-1]).float()
    if output.shape[-1] == len(VTT_LABELS):
        return vtt_emo_loss(output, onehot)
    return F.binary_cross_entropy_with_logits(output, onehot[:, None].expand_as(output))


def _window_logits(output: torch.Tensor) -> torch.Tensor:
    """[N, T, classes] per-frame logits -> [N, classes] (their mean over the window)."""
    return output.mean(1)


def _builder(arch: str):
    def build(in_shape, outputs: int, pretrained: bool = False) -> ResNetTSM:
        return ResNetTSM(num_classes=outputs, arch=arch, pretrained=pretrained)

    return build


#: What the VTT entries share: windows of 4 face crops, 7 FER classes, the VTT loss.
_VTT = dict(prepare=images_to_unit_chw, example_shape=(4, 224, 224, 3), example_classes=7,
            defaults={**VTT_DEFAULTS, "schedule": "none"}, loss=zoo_loss, logits=_window_logits)

register_model("vtt-resnet18-tsm", group="clips", field="faces", params=11_180_103,
               source="VTT ResNet-18 with causal temporal shift (JanghoonChoi/VTT_vid_emotion@e142d7d "
                      "src/resnet_tsm.py resnet18)", **_VTT)(_builder("resnet18"))
register_model("vtt-resnet34-tsm", group="clips", field="faces", params=21_288_263,
               source="VTT ResNet-34 with causal temporal shift (JanghoonChoi/VTT_vid_emotion@e142d7d "
                      "src/resnet_tsm.py resnet34)", **_VTT)(_builder("resnet34"))
register_model("vtt-resnet50-tsm", group="clips", field="faces", params=23_522_375,
               source="VTT ResNet-50 with causal temporal shift (JanghoonChoi/VTT_vid_emotion@e142d7d "
                      "src/resnet_tsm.py resnet50)", **_VTT)(_builder("resnet50"))
