"""VS-GCNN (ProxEmo): view-specific group CNN over the gait image embedding.

Source: ``vijay4313/proxemo@98c4e21:emotion_classification/modeling/vs_gcnn.py`` (same class in
``zykev/pose_emotion@4ef3385:vsgcnn.py``); seed spec 2.5; shipped weights
``weights/proxemo_vsgcnn_epoch134_state_dict.pth`` (registry name ``proxemo-vsgcnn``, the
``model_state_dict`` of ``trained_models/mdl_epoch134_acc86.92_model.pth.tar``, MIT).

Input: float32 NHWC ``[N, 244, 244, 3]`` image embeddings in 0..255
(:func:`pipelines.represent.embedding.gait_embedding`: rows = time, columns = joints,
channels = x, y, z). ``forward`` permutes with ``(0, 3, 2, 1)``, so the convolutions see
``[N, 3, joints-axis, time-axis]`` (height and width swapped, as in the reference).

Output: 16 values per sample = the flattened 4x4 map of the last conv; index
``4 * emotion + view_group`` (:func:`pipelines.represent.embedding.training_target`). The last
layer is a ReLU, so the "logits" are >= 0. The number of outputs follows from the input size
(244 or 224 -> 16, 128 -> 1), not from ``n_classes``, which the reference stores but never uses.

Emotion order: :data:`PROXEMO_EMOTIONS` = ProxEmo ``demo.py EMOTION_MAP`` and pose_emotion
``show_emo.py`` (``idx // 4`` -> angry, happy, sad, neutral). The label files disagree (seed
spec 2.6): STEP's code names ``labels.h5`` ``['Angry', 'Neutral', 'Happy', 'Sad']``, and the
majorities of ``proxemo/sample_data/labels.h5`` per file-name emotion suggest 0 happy, 1 angry,
2 sad, 3 neutral. The order here is the one the shipped checkpoint's demo uses; it is a table,
not a fact about the data: retrained models should pass their own names.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from zoo.models.registration import register_model
from zoo.recipes import PROXEMO_EMOTIONS  # noqa: F401 - emotion index -> name (torch-free table)

WEIGHTS_NAME = "proxemo-vsgcnn"
INPUT_SIZE = 244


def _name(stage: int, kind: str, num="") -> str:
    """Layer name as the reference builds it: ``VSGCNN_stage_<s>_<kind>_<num>`` (num may be '')."""
    return f"VSGCNN_stage_{stage}_{kind}_{num}"


def _conv(cin: int, cout: int, groups: int = 1, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, no padding, with bias."""
    return nn.Conv2d(cin, cout, 3, stride=stride, groups=groups)


def _pool() -> nn.MaxPool2d:
    """3x3 max-pool, stride 2 (the reference shares one instance; it has no state)."""
    return nn.MaxPool2d(3, 2)


def output_side(n: int) -> int:
    """Side of the final map for an input side ``n`` (<= 0 means the input is too small).

    conv -2, conv -2, pool, conv -2, pool, [BN], conv -2, pool, conv -2, pool, conv -2,
    conv stride 2 (pool / stride-2 conv: ``(n - 3) // 2 + 1``). 244 -> 4, 224 -> 4, 128 -> 1.
    """
    half = lambda m: (m - 3) // 2 + 1 if m >= 3 else 0  # noqa: E731
    n = half(n - 4)
    n = half(n - 2)
    n = half(n - 2)
    n = half(n - 2)
    return half(n - 2)


class VSGCNN(nn.Module):
    """ProxEmo's VS-GCNN; state-dict names match the reference so its checkpoint loads strictly.

    Args:
        n_classes: number of emotions (kept for the reference signature and :meth:`num_outputs`;
            the architecture does not depend on it).
        in_channels: input channels (3 = x, y, z).
        num_groups: view groups G; the group convolutions use ``groups=G``.
        dropout: dropout probability after each stage's BN.
        layer_channels: (c1, c2, c3); stage widths c1*G, c2*G, c3*G.

    Layers (3x3 convs without padding, shapes for 244x244; ``conv_stage_1``, ``conv_stage_2``,
    ``final_layers`` with the reference's inner names)::

        conv_0 3->c1 (242), ReLU, conv_1 c1->c1G (240), ReLU, maxpool 3/2 (119),
        conv_2 c1G->c1G g=G (117), ReLU, maxpool (58), bn_ (c1G), Dropout
        conv_1 c1G->c2G g=G (56), ReLU, maxpool (27), conv_2 c2G->c2G g=G (25), ReLU,
        maxpool (12), bn_ (c2G), Dropout
        conv_1 c2G->c3G g=G (10), ReLU, conv_2 c3G->1 stride 2 (4), ReLU -> flatten 16

    Default arguments: 334,849 parameters (``reference/param_counts.json``).
    """

    def __init__(self, n_classes: int = 4, in_channels: int = 3, num_groups: int = 4,
                 dropout: float = 0.2, layer_channels: Sequence[int] = (32, 64, 16)) -> None:
        super().__init__()
        if len(layer_channels) != 3:
            raise ValueError(f"layer_channels must have 3 entries, got {tuple(layer_channels)}")
        self.n_classes = int(n_classes)
        self.in_channels = int(in_channels)
        self.num_groups = g = int(num_groups)
        self.layer_channels = tuple(int(c) for c in layer_channels)
        c1, c2, c3 = (c * g for c in self.layer_channels)
        self.conv_stage_1 = nn.Sequential(OrderedDict([
            (_name(1, "conv", 0), _conv(in_channels, self.layer_channels[0])),
            (_name(1, "relu", 0), nn.ReLU()),
            (_name(1, "conv", 1), _conv(self.layer_channels[0], c1)),
            (_name(1, "relu", 1), nn.ReLU()),
            (_name(1, "maxpool", 1), _pool()),
            (_name(1, "conv", 2), _conv(c1, c1, groups=g)),
            (_name(1, "relu", 2), nn.ReLU()),
            (_name(1, "maxpool", 2), _pool()),
            (_name(1, "bn"), nn.BatchNorm2d(c1)),
            (_name(1, "drop"), nn.Dropout(dropout)),
        ]))
        self.conv_stage_2 = nn.Sequential(OrderedDict([
            (_name(2, "conv", 1), _conv(c1, c2, groups=g)),
            (_name(2, "relu", 1), nn.ReLU()),
            (_name(2, "maxpool", 1), _pool()),
            (_name(2, "conv", 2), _conv(c2, c2, groups=g)),
            (_name(2, "relu", 2), nn.ReLU()),
            (_name(2, "maxpool", 2), _pool()),
            (_name(2, "bn"), nn.BatchNorm2d(c2)),
            (_name(2, "drop"), nn.Dropout(dropout)),
        ]))
        self.final_layers = nn.Sequential(OrderedDict([
            (_name(3, "conv", 1), _conv(c2, c3, groups=g)),
            (_name(3, "relu", 1), nn.ReLU()),
            (_name(3, "conv", 2), _conv(c3, 1, stride=2)),
            (_name(3, "relu", 2), nn.ReLU()),
        ]))
        self.reset_parameters()

    @property
    def num_outputs(self) -> int:
        """Outputs the training target expects: ``n_classes * num_groups`` (16)."""
        return self.n_classes * self.num_groups

    def reset_parameters(self) -> None:
        """Reference init (``runner/trainer.py weights_init``): conv weight N(0, 0.02), bias 0;
        BN weight N(1, 0.02), bias 0 (running stats reset)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"VSGCNN expects NHWC [N, H, W, {self.in_channels}] embeddings, got {tuple(x.shape)}"
            )
        if min(output_side(x.shape[1]), output_side(x.shape[2])) < 1:
            raise ValueError(f"VSGCNN input {tuple(x.shape[1:3])} is too small (use 244x244)")

    def forward(self, x_nhwc: torch.Tensor, apply_softmax: bool = False) -> torch.Tensor:
        """Scores for each (emotion, view group) class.

        Args:
            x_nhwc: float ``[N, H, W, in_channels]`` (``[N, 244, 244, 3]``, 0..255).
            apply_softmax: softmax over the flattened outputs (reference ``apply_sfmax``).
        Returns:
            ``[N, h*w]`` (``[N, 16]`` for 244x244): ReLU outputs (>= 0), or probabilities.
        Raises:
            ValueError: not 4-D, last dim != in_channels, or spatial size too small.

        Unlike the reference, which permutes only when ``x.size(1) != in_channels`` (so an
        NHWC batch with H == 3 would be taken as NCHW), the input is always NHWC.
        """
        self._check_input(x_nhwc)
        x = x_nhwc.permute(0, 3, 2, 1)
        out = self.final_layers(self.conv_stage_2(self.conv_stage_1(x)))
        out = out.flatten(1)
        return torch.softmax(out, dim=1) if apply_softmax else out


def build_vsgcnn(in_channels: int = 3, num_classes: int = 4) -> VSGCNN:
    """Zoo builder ``build(in_channels, num_classes)``: ``VSGCNN(num_classes, in_channels)``
    with the paper's 4 view groups (train with target ``4 * emotion + group``, 16 outputs)."""
    return VSGCNN(n_classes=num_classes, in_channels=in_channels)


def load_proxemo_vsgcnn(device: str | torch.device = "cpu") -> VSGCNN:
    """The shipped ProxEmo checkpoint (epoch 134, acc 86.92 in the paper's repo), in eval mode.

    Loads ``proxemo-vsgcnn`` through :func:`extractors.weights.load_state_dict` (sha256 check,
    ``torch.load(weights_only=True)``) into ``VSGCNN(4, 3, 4, 0.2, (32, 64, 16))`` with
    ``strict=True``.

    Raises:
        WeightsNotFoundError, WeightsChecksumError (see ``extractors.weights``); RuntimeError
        if the keys or shapes do not match.
    """
    from extractors.weights import load_state_dict

    model = VSGCNN()
    model.load_state_dict(load_state_dict(WEIGHTS_NAME, map_location="cpu"), strict=True)
    return model.to(device).eval()


def emotion_probabilities_from_scores(scores: torch.Tensor, n_classes: int = 4,
                                      num_groups: int = 4) -> np.ndarray:
    """Aggregate the views of one gait into emotion probabilities.

    Rule (ours; the reference only takes per-view argmaxes): for each view v,
    ``p_v = softmax(scores_v)`` over all ``n_classes * num_groups`` outputs; the emotion mass of
    the view is ``m_v[e] = sum_g p_v[num_groups * e + g]`` (all view groups of that emotion,
    since the view a camera sees need not match the group the net guesses); the result is the
    mean of ``m_v`` over the views. It sums to 1.

    Args:
        scores: ``[V, n_classes * num_groups]`` raw VS-GCNN outputs (``apply_softmax=False``).
    Returns:
        float64 ``[n_classes]``.
    Raises:
        ValueError: wrong shape or no views.
    """
    s = torch.as_tensor(scores).detach().to("cpu", torch.float64)
    k = n_classes * num_groups
    if s.dim() != 2 or s.shape[0] == 0 or s.shape[1] != k:
        raise ValueError(f"scores must be [V >= 1, {k}], got {tuple(s.shape)}")
    per_view = torch.softmax(s, dim=1).view(-1, n_classes, num_groups).sum(dim=2)
    return per_view.mean(dim=0).numpy()


@torch.no_grad()
def predict_emotion(model: VSGCNN, views_nhwc, names: Sequence[str] = PROXEMO_EMOTIONS
                    ) -> tuple[str, np.ndarray]:
    """Predict the emotion of one gait from its view embeddings.

    Args:
        model: a VS-GCNN (put in eval mode by the caller, e.g. :func:`load_proxemo_vsgcnn`).
        views_nhwc: float ``[V, 244, 244, 3]`` (numpy or tensor), e.g.
            ``pipelines.represent.embedding.view_embeddings(gait)[0]`` (0/90/180/270 degrees).
        names: emotion names by index (default :data:`PROXEMO_EMOTIONS`).
    Returns:
        ``(name, probabilities)``: the arg-max emotion and float64 ``[n_classes]``
        (:func:`emotion_probabilities_from_scores`).
    Raises:
        ValueError: bad input shape or ``len(names) != model.n_classes``.
    """
    if len(names) != model.n_classes:
        raise ValueError(f"{len(names)} names for a model with {model.n_classes} emotions")
    param = next(model.parameters())
    x = torch.as_tensor(views_nhwc).to(device=param.device, dtype=param.dtype)
    probs = emotion_probabilities_from_scores(model(x), model.n_classes, model.num_groups)
    return names[int(np.argmax(probs))], probs


# ------------------------------------------------------------------------- zoo registrations
def gait_view(gait, num_frames: int, view: int):
    """VS-GCNN input of one stored gait: ``(float32 [244, 244, 3], view group)`` for training
    view ``view`` of ProxEmo's four (augment3D at 30/110/200/300 degrees, translation 150),
    computed in float64 from the first ``num_frames`` rows.

    Raises:
        ValueError: the stored keypoints are not 16-joint ProxEmo gaits (x, y, z).
    """
    from pipelines.represent.embedding import (PROXEMO_TRAIN_ANGLES, PROXEMO_TRAIN_TRANS, augment3d,
                                               gait_embedding, view_group)

    if gait.shape[-2:] != (16, 3):
        raise ValueError(f"vsgcnn trains on 16-joint ProxEmo gaits (EWalk, ELMD cards), got keypoints "
                         f"{tuple(gait.shape)}")
    angle = PROXEMO_TRAIN_ANGLES[view]
    views = augment3d(np.asarray(gait[:num_frames], np.float64), angle, PROXEMO_TRAIN_TRANS, 1.0)
    return gait_embedding(views), view_group(angle)


@register_model("vsgcnn", group="videos", field="keypoints", task="view_groups", params=334_849,
                source="ProxEmo VS-GCNN (vijay4313/proxemo@98c4e21 modeling/vs_gcnn.py); "
                       "pretrained: weights proxemo-vsgcnn",
                example_shape=(244, 244, 3), example_classes=4, derive=gait_view, views=4,
                defaults={"optimizer": "adam", "lr": 0.009, "weight_decay": 1e-5, "schedule": "none",
                          "epochs": 2000, "batch_size": 16})
def build_zoo_vsgcnn(in_shape, outputs: int, pretrained: bool = False) -> VSGCNN:
    """VS-GCNN with ``outputs`` = 4 emotions x 4 view groups; ``pretrained``: the ProxEmo
    checkpoint (shipped weights), in training mode.

    Raises:
        ValueError: ``outputs`` is not 16 (the output is the final 4 x 4 map).
    """
    if outputs != 16:  # the output is the final 4 x 4 map: 4 emotions x 4 view groups
        raise ValueError(f"vsgcnn predicts 4 emotions x 4 view groups; this corpus has {outputs // 4} labels "
                         "(use a 4-label order, e.g. the ewalk card's default)")
    if pretrained:  # the ProxEmo checkpoint (shipped weights)
        return load_proxemo_vsgcnn().train()
    return build_vsgcnn(in_channels=in_shape[-1], num_classes=outputs // 4)
