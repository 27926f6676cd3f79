"""TSN / TSM for EmoReact multi-label emotion recognition, its loss and metrics.

Source: ``nkegke/deep-affective-bodily-expression-recognition@863cf98``: ``EmoReact/models.py
TSN`` (model), ``EmoReact/temporal_shift.py`` (TSM), ``model/loss.py bce_loss``,
``model/metric.py`` (scikit-learn ROC AUC / AP / F1); seed spec 3.6-3.7. TSN: Wang et al.,
"Temporal Segment Networks", ECCV 2016; TSM: Lin et al., ICCV 2019.

Architecture: a torchvision backbone without its classifier runs on every segment frame
([N*S, 3, H, W]); ``new_fc`` maps the pooled features (2048 for resnet50, 1280 for mobilenet_v2)
to 8 logits per frame, and the average consensus over the S segments gives ``[N, 8]`` logits.
The backbone is kept as the reference's ``nn.Sequential`` of the torchvision children
(``base_model.0`` = conv1, ..., ``base_model.4`` = layer1, ...), so state-dict keys and the
parameter counts match the reference: resnet50 23,524,425 (with or without TSM) and
mobilenet_v2 2,234,121, both including the unused ``threshold`` Parameter.

Deliberate differences from the reference (documented QUIRKs of seed spec 3.6):

* Dropout: the reference passes ``dropout=0.5`` but never applies it (its base is a Sequential
  without an ``fc`` to replace). Here ``dropout`` is applied to the pooled features before
  ``new_fc``, as TSN intends; ``dropout=0.0`` reproduces the reference forward exactly.
* The AffectNet-pretrained backbones of the reference (Google Drive only) are not available;
  ``pretrained=True`` loads torchvision's ImageNet weights (what the reference starts from
  before its AffectNet checkpoint).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from zoo.inputs import clips_to_segments
from zoo.models.registration import register_model
from zoo.models.temporal_shift import make_temporal_shift
from zoo.recipes import TSN_DEFAULTS

EMOREACT_LABELS = ("Curiosity", "Uncertainty", "Excitement", "Happiness", "Surprise", "Disgust", "Fear",
                   "Frustration")
"""EmoReact label order (``dataset.categorical_emotions``, seed spec 3.1); Valence is not used."""

_TORCHVISION_WEIGHTS = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "mobilenet_v2": "MobileNet_V2_Weights",
}
_FEATURES = {"resnet50": 2048, "mobilenet_v2": 1280}


def torchvision_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """A torchvision classification model, random (default) or with ImageNet weights.

    Args:
        name: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"mobilenet_v2"``.
        pretrained: False: ``weights=None`` (random init, no network access). True: torchvision's
            ``IMAGENET1K_V1`` weights (the ones ``resnet50(True)`` / torch.hub v0.10.0 gave the
            reference), downloaded into the torch hub cache on first use.

    Returns:
        The full torchvision model (with its 1000-class head; callers remove it).

    Raises:
        ValueError: unknown name.
        RuntimeError: the weights could not be downloaded or read (message names the model and
            the cache folder; use ``pretrained=False`` offline).
    """
    if name not in _TORCHVISION_WEIGHTS:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(_TORCHVISION_WEIGHTS)}")
    builder = getattr(torchvision.models, name)
    if not pretrained:
        return builder(weights=None)
    weights = getattr(torchvision.models, _TORCHVISION_WEIGHTS[name]).IMAGENET1K_V1
    try:
        return builder(weights=weights)
    except Exception as err:  # URLError, HTTPError, OSError, RuntimeError from torch.hub
        raise RuntimeError(
            f"could not get torchvision ImageNet weights {weights} for {name} ({type(err).__name__}: {err}); "
            f"check the network or put the file in {torch.hub.get_dir()}/checkpoints, or use pretrained=False"
        ) from err


def _tsn_base(name: str, pretrained: bool) -> nn.Sequential:
    """The reference base model: torchvision children minus the classifier (+ GAP for mobilenet)."""
    net = torchvision_backbone(name, pretrained)
    if name == "resnet50":
        return net
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1))


class TSN(nn.Module):
    """Temporal Segment Network with an optional temporal shift (TSM), multi-label head.

    Input: float32 ``[N, S, 3, H, W]``, N videos x S segment frames, RGB normalised with
    :data:`zoo.inputs.IMAGENET_MEAN` / ``IMAGENET_STD`` (reference 224x224; any size >= 32 works).
    Output: float32 ``[N, num_classes]`` logits (average over segments of per-frame logits;
    train with :func:`multilabel_bce_loss`, score with ``sigmoid``).

    Args:
        num_classes: 8 (EmoReact, :data:`EMOREACT_LABELS`).
        num_segments: S (reference default 5; 1, 3, 5 or 10). With ``shift=True`` the input must
            have exactly this many segments.
        base_model: ``"resnet50"`` or ``"mobilenet_v2"``.
        shift: insert TSM (resnet50 only) into every Bottleneck's residual branch
            (``place="residual"``, reference ``blockres``).
        shift_div: 8 (default) or 4: ``C // shift_div`` channels move each way.
        dropout: probability of the dropout before ``new_fc`` (see the module docstring).
        partial_bn: freeze every BatchNorm2d of the backbone except the first when ``train()`` is
            called (TSN "partial BN": those layers use their running statistics and their affine
            parameters get ``requires_grad=False``).
        pretrained: torchvision ImageNet weights for the backbone (:func:`torchvision_backbone`).

    Attributes:
        base_model: ``nn.Sequential`` backbone (reference layout and state-dict keys).
        new_fc: ``Linear(2048 or 1280, num_classes)``.
        threshold: ``nn.Parameter([0.5])``. The reference registers it (trainable) but never uses
            it; it is kept so that parameter counts (+1) and reference checkpoints match. It is
            not read by :meth:`forward` nor by the metrics (:func:`zoo.tasks.multilabel_metrics`).

    Raises:
        ValueError: unknown base model, shift on mobilenet_v2, bad shift_div / num_segments.

    Source: ``EmoReact/models.py TSN`` (seed spec 3.6), ``train_EmoReact.py`` arguments.
    """

    def __init__(self, num_classes: int = 8, num_segments: int = 5, base_model: str = "resnet50",
                 shift: bool = False, shift_div: int = 8, dropout: float = 0.5, partial_bn: bool = True,
                 pretrained: bool = False) -> None:
        super().__init__()
        if base_model not in _FEATURES:
            raise ValueError(f"base_model must be one of {tuple(_FEATURES)}, got {base_model!r}")
        if shift and base_model != "resnet50":
            raise ValueError("temporal shift is only defined for resnet backbones (reference: resnet50)")
        if shift_div not in (4, 8) or num_segments < 1:
            raise ValueError(f"shift_div must be 4 or 8 and num_segments >= 1, got {shift_div}, {num_segments}")
        self.num_classes = int(num_classes)
        self.num_segments = int(num_segments)
        self.base_name = base_model
        self.shift = bool(shift)
        self.partial_bn = bool(partial_bn)
        net = _tsn_base(base_model, pretrained)
        if base_model == "resnet50":
            if shift:
                make_temporal_shift(net, num_segments, shift_div, place="residual", direction="bidirectional")
            net = nn.Sequential(*list(net.children())[:-1])  # drop fc, keep avgpool (reference)
        self.base_model = net
        self.dropout = nn.Dropout(p=dropout)
        self.new_fc = nn.Linear(_FEATURES[base_model], num_classes)
        self.threshold = nn.Parameter(torch.tensor([0.5]))

    def train(self, mode: bool = True) -> "TSN":
        """Set train/eval mode; with partial BN, freeze all backbone BatchNorm2d but the first.

        As the reference, the freezing happens on every call (also ``eval()``), and the frozen
        layers' ``weight``/``bias`` get ``requires_grad=False`` permanently.
        """
        super().train(mode)
        if self.partial_bn:
            norms = [m for m in self.base_model.modules() if isinstance(m, nn.BatchNorm2d)]
            for m in norms[1:]:
                m.eval()
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"x must be [N, S, 3, H, W], got shape {tuple(x.shape)}")
        n, s = x.shape[:2]
        if self.shift and s != self.num_segments:
            raise ValueError(f"x has {s} segments, the temporal shift was built for {self.num_segments}")
        features = self.base_model(x.reshape(n * s, *x.shape[2:])).flatten(1)
        logits = self.new_fc(self.dropout(features))
        return logits.reshape(n, s, -1).mean(dim=1)


def multilabel_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label binary cross-entropy on logits, mean over all N x classes entries.

    Args:
        logits: float [N, classes] (TSN output). targets: same shape, 0/1 (float or int).

    Returns:
        Scalar tensor ``F.binary_cross_entropy_with_logits(logits, targets)``.

    Raises:
        ValueError: shapes differ.

    Source: ``model/loss.py bce_loss`` (seed spec 3.7).
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))



# ------------------------------------------------------------------------- zoo registrations
def tsn_builder(base: str, shift: bool):
    """``build(in_shape, outputs, pretrained=False)`` of a :class:`TSN` on stacked clips of
    ``in_shape`` = (C, K, H, W, 3): C*K segments."""
    def build(in_shape, outputs: int, pretrained: bool = False) -> TSN:
        return TSN(num_classes=outputs, num_segments=in_shape[0] * in_shape[1], base_model=base, shift=shift,
                   pretrained=pretrained)

    return build


#: What the EmoReact entries share: C clips of one face crop, 8 multi-label targets.
TSN_CLIPS = dict(stack_clips=True, prepare=clips_to_segments, example_shape=(5, 1, 224, 224, 3),
                 example_classes=8, defaults={**TSN_DEFAULTS, "schedule": "multistep"})

register_model("tsn-resnet50", group="clips", field="faces", task="multilabel", params=23_524_425,
               source="EmoReact TSN ResNet-50 (nkegke/deep-affective-bodily-expression-recognition@863cf98 "
                      "EmoReact/models.py)", **TSN_CLIPS)(tsn_builder("resnet50", False))
register_model("tsm-resnet50", group="clips", field="faces", task="multilabel", params=23_524_425,
               source="EmoReact TSM ResNet-50, shift_div 8 (nkegke/deep-affective-bodily-expression-recognition"
                      "@863cf98 EmoReact/models.py, temporal_shift.py)", **TSN_CLIPS)(tsn_builder("resnet50", True))
register_model("tsn-mobilenetv2", group="clips", field="faces", task="multilabel", params=2_234_121,
               source="EmoReact TSN MobileNetV2 (nkegke/deep-affective-bodily-expression-recognition@863cf98 "
                      "EmoReact/models.py)", **TSN_CLIPS)(tsn_builder("mobilenet_v2", False))
