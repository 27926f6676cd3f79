"""EmoReact late fusion (``--input fusion``): one network, shared weights, on the body crops and
on the face crops (nkegke/deep-affective-bodily-expression-recognition@863cf98
EmoReact/models.py; Pikoulis et al., "Leveraging Semantic Scene Characteristics and Multi-Stream
Convolutional Architectures in a Contextual Approach for Video-Based Visual Emotion Recognition
in the Wild", FG 2021).
"""
from __future__ import annotations

import torch
from torch import nn

from zoo.inputs import clips_to_segments
from zoo.models.registration import register_model
from zoo.models.tsn import TSN_CLIPS, tsn_builder


class LateFusion(nn.Module):
    """The same network on body and face segments; output ``[N, 2, outputs]`` (body, face
    logits). Train with :func:`fusion_loss` (BCE(body) + BCE(face)); predict with the mean of
    the two (late fusion).

    Input: float32 ``[N, 2, S, 3, H, W]`` (body segments, face segments;
    :func:`fusion_segments`).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.net(x[:, 0]), self.net(x[:, 1])], dim=1)


def fusion_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE(body logits) + BCE(face logits) on multi-label targets ``[N, L]``."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return bce(output[:, 0], target.float()) + bce(output[:, 1], target.float())


def fusion_segments(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 2, C, K, H, W, 3]`` (body, faces) -> float32 ``[N, 2, C*K, 3, H, W]``,
    ImageNet-normalised (:func:`zoo.inputs.clips_to_segments` on each stream)."""
    return torch.stack([clips_to_segments(x[:, 0]), clips_to_segments(x[:, 1])], dim=1)


def _mean_of_streams(output: torch.Tensor) -> torch.Tensor:
    return output.mean(1)


@register_model("tsn-resnet50-fusion", group="clips", field="body+faces", task="multilabel", params=23_524_425,
                source="EmoReact TSN ResNet-50, --input fusion: body (face blacked) + face crops, late fusion "
                       "(nkegke/deep-affective-bodily-expression-recognition@863cf98 EmoReact/models.py)",
                **{**TSN_CLIPS, "prepare": fusion_segments, "example_shape": (2, 5, 1, 224, 224, 3)},
                loss=fusion_loss, logits=_mean_of_streams)
def build_tsn_fusion(in_shape, outputs: int, pretrained: bool = False) -> LateFusion:
    """:class:`LateFusion` of one ResNet-50 TSN on stacked (body, faces) clips of ``in_shape`` =
    (2, C, K, H, W, 3)."""
    return LateFusion(tsn_builder("resnet50", False)(in_shape[1:], outputs, pretrained))
