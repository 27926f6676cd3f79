"""SISTCM (super-image spatio-temporal convolution) ResNet-18 + TLSTM, and the ResNet-18 + TLSTM baseline.

Source: ``Janie1996/FER_BGER@b6d53bd``: ``Facial/Model/attention_2D_2dim.py`` (``BasicBlock``,
``attentionblock``, ``RNN_feature``, ``ResNet``, ``resnet18(batch, C, K, num_classes)``) and
``Facial/Model/resnet18.py`` (baseline); training ``Facial/src/train_CK+.py`` /
``train_resnet_CK+.py`` (``jointLoss``); seed spec 1.3-1.5.

Data flow (N videos, C clips per video, K frames per clip, M = C*N clips):

* input face clips ``[N, C, K, 3, H, W]`` (reference: RGB in [0, 1], 224x224, no mean/std);
* rows are restacked clip-major (row ``c*N + n``, as the reference batch) and then frame-major,
  ``[K*M, 3, H, W]`` (row ``k*M + m``), the layout of the super-image blocks;
* ResNet-18 trunk (torchvision stem and stages). In :class:`SISTCM` every BasicBlock is a
  :class:`SuperImageBasicBlock`: its second convolution runs on two pixel-interleaved super-images
  of the clip's K frames (:func:`pipelines.represent.superimage.sistcm_views`);
* ``AdaptiveAvgPool3d(1)`` over (K, h, w) -> clip features ``[M, 512]`` -> ``[N, C, 512]``;
* :class:`TLSTM` (two LSTM streams over the C clips) -> video-level outputs (:class:`TLSTMOutput`).

State-dict keys of the trunk are the reference's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer1.0.attenblock.conv``); the head's keys are the reference's with the prefix ``tlstm.``
(reference ``fc1.weight`` = ours ``tlstm.fc1.weight``, ``rnn.lstm.*``, ``rnn1.fc.*`` likewise).

Parameter counts (7 classes): SISTCM 22,044,885 with ``faithful_unused_attention=True`` (the
reference registers, in every block, an ``attentionblock`` of 5*C^2 + 3*C parameters that its
forward never calls: 3,487,360 in all) or 18,557,525 without; ResNet-18 + TLSTM 18,557,525
(trunk 11,176,512, ``fc1`` 3,591, feature stream 6,306,823, emotion stream 1,070,599).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from pipelines.represent.superimage import (clips_from_frame_major, clips_to_frame_major, sistcm_unviews,
                                            sistcm_views)
from zoo.inputs import images_to_unit_chw
from zoo.models.registration import register_model
from zoo.models.tsn import torchvision_backbone
from zoo.recipes import RESNET18_TLSTM_DEFAULTS, SISTCM_DEFAULTS



class UnusedAttentionBlock(nn.Module):
    """Parameters of the reference ``attentionblock(C)``: ``Conv3d(C, C, 1)`` + ``Linear(2C, 2C)``.

    The reference builds one in every super-image block (``self.attenblock``) but the call is
    commented out, so the parameters are never used and receive no gradient. This module only
    holds them, so that the parameter count (5*C^2 + 3*C per block) and the state-dict keys
    (``attenblock.conv.*``, ``attenblock.linear.*``) match the reference; it has no forward.
    (The reference forward would be: AdaptiveMaxPool3d(1) of two [N, C, K, H, W] maps, the 1x1x1
    conv, concat -> Linear -> softmax over the batch dimension 0.)

    Source: ``attention_2D_2dim.py attentionblock`` (seed spec 1.3, notes).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, kernel_size=1)
        self.linear = nn.Linear(2 * channels, 2 * channels)


class SuperImageBasicBlock(BasicBlock):
    """ResNet BasicBlock whose second convolution sees the K frames of a clip side by side.

    Input/output are frame-major stacks ``[K*N, C, H, W]`` (row ``k*N + n`` = frame k of clip n)
    -> ``[K*N, planes, H', W']`` (H' = ceil(H / stride)). Steps (seed spec 1.3):

    1. ``F = relu(bn1(conv1(x)))`` per frame, regrouped ``[N, planes, K, H', W']``;
    2. super-images ``B`` ("W x H.K", ``B[n,c,w,h*K+k] = F[n,c,k,h,w]``) and ``A`` ("H x W.K",
       ``A[n,c,h,w*K+k] = F[n,c,k,h,w]``);
    3. the same ``conv2`` -> ``bn2`` -> ReLU on B, then on A (the reference's call order, which
       fixes the BN running-statistics update order in training);
    4. both back to ``[N, planes, K, H', W']``, summed, restacked frame-major;
    5. ``+ identity`` (``downsample(x)`` when set), ReLU.
    Note the ReLU after bn2 *before* the residual add (unlike a plain BasicBlock).

    Args:
        inplanes, planes, stride, downsample: as torchvision ``BasicBlock``.
        frames: K, frames per clip. The reference hard-codes K = 2 in its frame split (QUIRK);
            here any K >= 1 works.
        faithful_unused_attention: register the never-called :class:`UnusedAttentionBlock` as
            ``attenblock`` (reference parameter count / keys).

    Raises:
        ValueError: (forward) input rows not a multiple of K.

    Source: ``Janie1996/FER_BGER@b6d53bd:Facial/Model/attention_2D_2dim.py BasicBlock``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, *,
                 frames: int = 2, faithful_unused_attention: bool = True) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = int(frames)
        if faithful_unused_attention:
            self.attenblock = UnusedAttentionBlock(planes)

    @classmethod
    def from_basic_block(cls, block: BasicBlock, frames: int, faithful_unused_attention: bool = True
                         ) -> "SuperImageBasicBlock":
        """A super-image block that takes over ``block``'s layers (weights kept, not copied)."""
        new = cls(block.conv1.in_channels, block.conv1.out_channels, block.stride, None, frames=frames,
                  faithful_unused_attention=faithful_unused_attention)
        new.conv1, new.bn1, new.conv2, new.bn2 = block.conv1, block.bn1, block.conv2, block.bn2
        new.downsample = block.downsample
        return new

    def _conv2_view(self, view: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(view)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = clips_from_frame_major(self.relu(self.bn1(self.conv1(x))), self.frames)
        view_a, view_b = sistcm_views(frames)
        out_b = self._conv2_view(view_b)
        out_a = self._conv2_view(view_a)
        from_a, from_b = sistcm_unviews(out_a, out_b, self.frames)
        out = clips_to_frame_major(from_a + from_b)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class LastStepLSTM(nn.Module):
    """One-layer LSTM over a sequence, last time step -> Linear.

    Shapes: ``[N, T, in_features]`` -> ``[N, num_classes]``. Keys ``lstm.*``, ``fc.*``.
    Source: ``attention_2D_2dim.py RNN_feature`` (seed spec 1.4).
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden, num_layers=1, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class TLSTMOutput(NamedTuple):
    """Video-level outputs of :class:`TLSTM`, each float32 ``[N, num_classes]``.

    Attributes:
        probs: mean over the C clips of the clip softmax ``softmax(fc1(dropout(feature)))``
            (probabilities, not logits).
        emotion: logits of the emotion stream (LSTM over the clip softmax sequence).
        feature: logits of the feature stream (LSTM over the clip features).
        fused: the reference's prediction score (SISTCM ``0.2*probs + 0.8*emotion``; baseline
            ``feature + probs + emotion``); use its argmax as the video prediction.
    """

    probs: torch.Tensor
    emotion: torch.Tensor
    feature: torch.Tensor
    fused: torch.Tensor


class TLSTM(nn.Module):
    """Two-stream LSTM over the clip features of a video (seed spec 1.4).

    Input ``[N, C, in_features]`` (clip features in time order) -> :class:`TLSTMOutput`.

    * feature stream ``rnn``: LSTM(in_features -> 1024), last step -> Linear(1024 -> classes);
    * clip classifier ``fc1``: Dropout(0.5) -> Linear(in_features -> classes) -> softmax;
    * emotion stream ``rnn1``: LSTM(classes -> 512) over the C clip softmaxes, last step ->
      Linear(512 -> classes);
    * ``fused = w_probs*probs + w_emotion*emotion + w_feature*feature``.

    Args:
        in_features: 512 (ResNet-18). num_classes: 7 (CK+).
        feature_hidden, emotion_hidden: 1024, 512. dropout: 0.5.
        fusion_weights: (w_probs, w_emotion, w_feature); SISTCM (0.2, 0.8, 0.0), baseline (1, 1, 1).

    Raises:
        ValueError: (forward) input not ``[N, C, in_features]``.

    Source: ``attention_2D_2dim.py ResNet.forward`` / ``resnet18.py ResNet.forward``.
    """

    def __init__(self, in_features: int = 512, num_classes: int = 7, feature_hidden: int = 1024,
                 emotion_hidden: int = 512, dropout: float = 0.5,
                 fusion_weights: tuple = (0.2, 0.8, 0.0)) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.fusion_weights = tuple(float(w) for w in fusion_weights)
        self.fc1 = nn.Linear(in_features, num_classes)
        self.dropout = nn.Dropout(p=dropout)
        self.rnn = LastStepLSTM(in_features, feature_hidden, num_classes)
        self.rnn1 = LastStepLSTM(num_classes, emotion_hidden, num_classes)

    def forward(self, clips: torch.Tensor) -> TLSTMOutput:
        if clips.dim() != 3 or clips.shape[-1] != self.in_features:
            raise ValueError(f"clip features must be [N, C, {self.in_features}], got {tuple(clips.shape)}")
        feature = self.rnn(clips)
        clip_probs = torch.softmax(self.fc1(self.dropout(clips)), dim=-1)
        probs = clip_probs.mean(dim=1)
        emotion = self.rnn1(clip_probs)
        w_probs, w_emotion, w_feature = self.fusion_weights
        fused = w_probs * probs + w_emotion * emotion + w_feature * feature
        return TLSTMOutput(probs, emotion, feature, fused)


class SISTCM(nn.Module):
    """ResNet-18 with super-image blocks (SISTCM) + TLSTM: face clips -> video-level outputs.

    Input: float32 ``[N, C, K, 3, H, W]``: N videos, C clips per video (in time order), K frames
    per clip, RGB face crops (reference 224x224 in [0, 1]; H, W >= 32 work).
    Output: :class:`TLSTMOutput` of ``[N, num_classes]`` tensors; train with :func:`joint_loss`,
    predict with ``output.fused.argmax(1)``.

    Args:
        num_classes: 7 (CK+: Happy, Angry, Disgust, Fear, Sad, Contempt, Surprise).
        frames: K (reference training: 2; the reference block only works for 2).
        super_image: True: :class:`SuperImageBasicBlock` everywhere (SISTCM); False: plain
            torchvision BasicBlocks (the ResNet-18 + TLSTM baseline, :class:`ResNet18TLSTM`).
        faithful_unused_attention: keep the reference's never-called attention blocks (default
            True, so ``SISTCM()`` has the reference's 22,044,885 parameters; their ``.grad``
            stays None, so torch optimizers skip them and they keep their initial values).
            False drops them
            (18,557,525 parameters, same outputs). Ignored when ``super_image`` is False.
        fusion_weights: see :class:`TLSTM`.
        pretrained: torchvision ImageNet ResNet-18 weights for the trunk (the reference copies
            ``pretrainedmodels`` ImageNet ResNet-18 weights by key; the head stays random).

    Raises:
        ValueError: (forward) input not ``[N, C, frames, 3, H, W]``.
        RuntimeError: ``pretrained=True`` and the weights cannot be downloaded.

    Source: ``Janie1996/FER_BGER@b6d53bd:Facial/Model/attention_2D_2dim.py resnet18(batch, C, K,
    num_classes=7)`` (seed spec 1.3-1.4).
    """

    def __init__(self, num_classes: int = 7, frames: int = 2, *, super_image: bool = True,
                 faithful_unused_attention: bool = True, fusion_weights: tuple = (0.2, 0.8, 0.0),
                 pretrained: bool = False) -> None:
        super().__init__()
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = int(frames)
        net = torchvision_backbone("resnet18", pretrained)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        for name in ("layer1", "layer2", "layer3", "layer4"):
            stage = getattr(net, name)
            if super_image:
                stage = nn.Sequential(*[SuperImageBasicBlock.from_basic_block(b, frames, faithful_unused_attention)
                                        for b in stage])
            setattr(self, name, stage)
        self.tlstm = TLSTM(512, num_classes, fusion_weights=fusion_weights)

    def clip_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk + spatio-temporal average pooling: ``[N, C, K, 3, H, W]`` -> ``[N, C, 512]``."""
        if x.dim() != 6 or x.shape[2] != self.frames or x.shape[3] != 3:
            raise ValueError(f"x must be [N, C, K={self.frames}, 3, H, W], got shape {tuple(x.shape)}")
        n, c, k = x.shape[:3]
        clips = x.transpose(0, 1).reshape(c * n, k, *x.shape[3:])  # row clip*N + n (reference order)
        frames = clips.transpose(0, 1).reshape(k * c * n, *x.shape[3:])  # frame-major, row k*M + m
        h = self.maxpool(self.relu(self.bn1(self.conv1(frames))))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        pooled = clips_from_frame_major(h, k).mean(dim=(2, 3, 4))  # [M, 512]
        return pooled.reshape(c, n, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> TLSTMOutput:
        return self.tlstm(self.clip_features(x))


class ResNet18TLSTM(SISTCM):
    """The "ResNet + TLSTM" baseline: plain ResNet-18 per frame, same pooling and TLSTM.

    Same input/output as :class:`SISTCM`; ``fused = feature + probs + emotion`` (reference
    ``end + probs + out``). 18,557,525 parameters with 7 classes.

    Args:
        num_classes: 7. frames: K (reference training: 3). pretrained: as :class:`SISTCM`.

    Source: ``Janie1996/FER_BGER@b6d53bd:Facial/Model/resnet18.py`` (seed spec 1.4, baseline).
    """

    def __init__(self, num_classes: int = 7, frames: int = 3, *, pretrained: bool = False) -> None:
        super().__init__(num_classes, frames, super_image=False, faithful_unused_attention=False,
                         fusion_weights=(1.0, 1.0, 1.0), pretrained=pretrained)


def joint_loss(output: TLSTMOutput, target: torch.Tensor) -> torch.Tensor:
    """The reference ``jointLoss``: ``CE(probs, y) + CE(feature, y) + CE(emotion, y)``.

    QUIRK kept on purpose: ``probs`` are already probabilities, and the reference still feeds
    them to CrossEntropyLoss (which applies log-softmax again).

    Args:
        output: :class:`TLSTMOutput` with [N, classes] tensors. target: int64 [N] class indices.

    Returns:
        Scalar tensor (sum of three batch-mean cross-entropies).

    Source: ``Janie1996/FER_BGER@b6d53bd:Facial/src/train_CK+.py jointLoss`` (seed spec 1.4).
    """
    return (F.cross_entropy(output.probs, target) + F.cross_entropy(output.feature, target)
            + F.cross_entropy(output.emotion, target))


# ------------------------------------------------------------------------- zoo registrations
def _redraw_view(cfg: dict, extract_config: dict):
    """SISTCM training items drawn anew from ``videos/face_pool`` (:class:`zoo.superimage_sampling.FaceRedraw`)
    when ``cfg["redraw"]``."""
    from zoo.superimage_sampling import FaceRedraw

    if not cfg.get("redraw"):
        return None
    return FaceRedraw(int(extract_config["clips"]), int(extract_config["frames_per_clip"]))


def _fused(output: TLSTMOutput) -> torch.Tensor:
    return output.fused


#: What both FER_BGER face models share: C clips of K face crops per sample, 7 classes.
_FACE_CLIPS = dict(stack_clips=True, example_shape=(5, 2, 224, 224, 3), example_classes=7,
                   prepare=images_to_unit_chw, loss=joint_loss, logits=_fused, train_view=_redraw_view)


@register_model("sistcm", group="clips", field="faces", params=22_044_885,
                source="FER_BGER SISTCM + TLSTM (Janie1996/FER_BGER@b6d53bd Facial/Model/attention_2D_2dim.py)",
                defaults={**SISTCM_DEFAULTS, "schedule": "none", "redraw": False}, **_FACE_CLIPS)
def build_sistcm(in_shape, outputs: int, pretrained: bool = False) -> SISTCM:
    """:class:`SISTCM` for stacked clips of ``in_shape`` = (C, K, H, W, 3)."""
    return SISTCM(num_classes=outputs, frames=in_shape[1], pretrained=pretrained)


@register_model("resnet18-tlstm", group="clips", field="faces", params=18_557_525,
                source="FER_BGER ResNet-18 + TLSTM (Janie1996/FER_BGER@b6d53bd Facial/Model/resnet18.py)",
                defaults={**RESNET18_TLSTM_DEFAULTS, "schedule": "none", "redraw": False}, **_FACE_CLIPS)
def build_resnet18_tlstm(in_shape, outputs: int, pretrained: bool = False) -> ResNet18TLSTM:
    """:class:`ResNet18TLSTM` for stacked clips of ``in_shape`` = (C, K, H, W, 3)."""
    return ResNet18TLSTM(num_classes=outputs, frames=in_shape[1], pretrained=pretrained)
