"""ACCM (FER_BGER body branch) and its single-branch timeline-CNN baseline.

Source: ``Janie1996/FER_BGER@b6d53bd:Gesture/src/x_y_cnn.py``, classes ``proposed(input_channel,
emotion)`` (= :class:`ACCM`) and ``CNN(input_channel, emotion)`` (= :class:`TimelineCNN`); seed spec
1.9. Input is the timeline of :func:`pipelines.represent.timeline.skeleton_timeline`,
float32 [N, 2V, size, length] (reference [N, 56, 64, 300]). Outputs are raw logits (the reference
applies no softmax; it trains with CrossEntropy).

Top-level submodule names follow the reference (``channel1``, ``channel2``, ``att``, ``block2``,
``fc`` / ``block1``, ``block2``, ``fc``), so the per-module parameter counts can be compared with
``reference/param_counts.json``: ACCM(56, 8) 429,248 and TimelineCNN(56, 8) 213,768. Inner key
names are ours (the reference checkpoints are not available).
"""
from __future__ import annotations

import torch
from torch import nn

from zoo.models.registration import register_model

WIDTH = 128  # feature channels of every conv after the input (reference constant)


class ConvBNReLU(nn.Sequential):
    """3x3 Conv2d (with bias, padding 1) -> BatchNorm2d -> ReLU.

    Shapes: [N, in_ch, H, W] -> [N, out_ch, ceil(H/stride), ceil(W/stride)].
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: GAP -> Linear(C, C/r) -> ReLU -> Linear(C/r, C) -> Sigmoid -> scale.

    Shapes: [N, C, H, W] -> [N, C, H, W]. Both Linear layers have a bias (reference ``att``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class ClassifierHead(nn.Module):
    """AdaptiveAvgPool2d(1) -> flatten -> Linear(C, num_classes): [N, C, H, W] -> [N, classes]."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(2, 3)))


def _check_input(x: torch.Tensor, in_channels: int) -> None:
    """Raise ValueError unless x is [N, in_channels, H, W]."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected [N, {in_channels}, size, length], got {tuple(x.shape)}")


class ACCM(nn.Module):
    """Two-branch ACCM classifier on a timeline image (reference ``proposed``).

    - ``channel1`` (spatial branch): ConvBNReLU(C->128, stride 2) -> ConvBNReLU(128->128).
    - ``channel2`` (channel-wise branch): depthwise 3x3 Conv(C->C, groups=C, bias, no BN/ReLU)
      -> ConvBNReLU(C->128, stride 2); then ``att`` = SE(128, reduction 16) and ``block2`` =
      ConvBNReLU(128->128).
    - sum of the two branches -> global average pool -> ``fc`` Linear(128 -> num_classes).

    forward(x): float32 [N, in_channels, size, length] (any H, W >= 1) -> logits
    [N, num_classes]; ValueError on a wrong channel count. Reference (56, 8): 429,248 parameters.
    """

    def __init__(self, in_channels: int = 56, num_classes: int = 8) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.channel1 = nn.Sequential(ConvBNReLU(in_channels, WIDTH, 2), ConvBNReLU(WIDTH, WIDTH))
        self.channel2 = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels),
            ConvBNReLU(in_channels, WIDTH, 2),
        )
        self.att = SqueezeExcite(WIDTH, 16)
        self.block2 = ConvBNReLU(WIDTH, WIDTH)
        self.fc = ClassifierHead(WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        spatial = self.channel1(x)
        channel = self.block2(self.att(self.channel2(x)))
        return self.fc(spatial + channel)


class TimelineCNN(nn.Module):
    """Single-branch baseline (reference ``CNN``): ACCM's ``channel1`` only, split in two blocks.

    ``block1`` = ConvBNReLU(C->128, stride 2), ``block2`` = ConvBNReLU(128->128), then global
    average pool and ``fc`` Linear(128 -> num_classes).

    forward(x): float32 [N, in_channels, size, length] -> logits [N, num_classes]; ValueError on
    a wrong channel count. Reference (56, 8): 213,768 parameters.
    """

    def __init__(self, in_channels: int = 56, num_classes: int = 8) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.block1 = ConvBNReLU(in_channels, WIDTH, 2)
        self.block2 = ConvBNReLU(WIDTH, WIDTH)
        self.fc = ClassifierHead(WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        return self.fc(self.block2(self.block1(x)))


# ------------------------------------------------------------------------- zoo registrations
_FER_BGER_BODY = {"optimizer": "adam", "lr": 1e-3, "schedule": "step", "step_size": 50, "gamma": 0.1,
                  "epochs": 200, "batch_size": 8, "clip_grad_norm": 0.0}


@register_model("accm", group="videos", field="timeline", params=429_248,
                source="FER_BGER ACCM (Janie1996/FER_BGER@b6d53bd Gesture/src/x_y_cnn.py proposed)",
                example_shape=(56, 64, 300), defaults=_FER_BGER_BODY)
def build_accm(in_shape, outputs: int, pretrained: bool = False) -> ACCM:
    """:class:`ACCM` for timelines of ``in_shape`` = (2V, size, length) and ``outputs`` classes."""
    return ACCM(in_channels=in_shape[0], num_classes=outputs)


@register_model("accm-cnn", group="videos", field="timeline", params=213_768,
                source="FER_BGER CNN baseline (same file, class CNN)",
                example_shape=(56, 64, 300), defaults=_FER_BGER_BODY)
def build_timeline_cnn(in_shape, outputs: int, pretrained: bool = False) -> TimelineCNN:
    """:class:`TimelineCNN` for timelines of ``in_shape`` = (2V, size, length)."""
    return TimelineCNN(in_channels=in_shape[0], num_classes=outputs)
