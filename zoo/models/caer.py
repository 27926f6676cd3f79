"""CAER pose model zoo: sequence classifiers over the 238-dim pose features.

Source: ``JohnOh3809/EmotionRecognizer-@11e5753`` (seed spec 5.3): ``train_bilstm.py``
(BiLSTM, TCN-BiLSTM, Transformer), ``train_architectures.py`` (GRU, Conv1D, MultiScale, ConvLSTM,
DeepResidual, GraphSkeleton), ``train_deep_residual_variations.py`` (DeepResidualV2: block type,
pooling, SE) and ``train_best_model.py`` (DeepResidualPreact). Written from the spec; parameter
counts equal ``reference/param_counts.json`` (every ``CAER/`` entry).

Every model maps ``float32 [N, T, in_dim]`` (T = 64 frames, in_dim = 238 from
:func:`pipelines.represent.pose_features.pose_feature_sequence`) to raw logits
``[N, num_classes]`` (8 = :data:`CAER_CLASSES`; the reference trains with CrossEntropy).

Shared parts: :class:`InputProjection` (Linear -> LayerNorm -> act -> Dropout),
:class:`AttentionPooling` (Linear -> Tanh -> Linear(., 1) -> softmax over T -> weighted sum),
:func:`mlp_head`, :class:`BiRNNLastState`. The BiLSTM and GRU classifiers are one class
(:class:`RecurrentAttentionClassifier`, ``cell``); the four DeepResidual variants are one class
(:class:`DeepResidual`, knobs ``block_type``, ``pooling``, ``use_se``, ``input_dropout``,
``attention_bias``).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from zoo.models.registration import register_model
from zoo.recipes import CAER_BEST_TRAINING, CAER_SEQ_LEN, CAER_TRAINING  # noqa: F401 (re-exported)

#: Output order of every CAER model (``train_bilstm.CLASSES``); ``other`` is never a label.
CAER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "other")
IN_DIM = 238
SEQ_LEN = CAER_SEQ_LEN

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _check_input(x: torch.Tensor, in_dim: int) -> None:
    """Raise ValueError unless x is [N, T, in_dim] with T >= 1."""
    if x.dim() != 3 or x.shape[-1] != in_dim or x.shape[1] < 1:
        raise ValueError(f"expected pose features [N, T, {in_dim}], got {tuple(x.shape)}")


# ---------------------------------------------------------------------------------------------
# Shared building blocks
# ---------------------------------------------------------------------------------------------
class InputProjection(nn.Sequential):
    """Per-frame Linear(in_dim, hidden) -> LayerNorm -> activation -> Dropout: [N, T, in] -> [N, T, hidden]."""

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), _ACTIVATIONS[activation](),
                         nn.Dropout(dropout))


class AttentionPooling(nn.Module):
    """Additive attention over time: score_t = w2 . tanh(W1 x_t + b1) (+ b2), softmax over T,
    output = sum_t softmax_t x_t. Shapes: [N, T, dim] -> [N, dim].

    ``bias`` is the bias of the last Linear: False in every reference model except
    ``train_best_model.py``'s ``AttentionPooling`` (+1 parameter; softmax makes it a no-op).
    """

    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(x), dim=1)
        return (x * weights).sum(dim=1)


def mlp_head(in_features: int, hidden: Sequence[int], num_classes: int, dropout: Sequence[float],
             activation: str = "relu", input_norm: bool = False) -> nn.Sequential:
    """Classifier MLP: [LayerNorm] -> (Linear -> act -> Dropout) per hidden width -> Linear(num_classes).

    ``dropout[i]`` goes with ``hidden[i]``. Shapes: [N, in_features] -> [N, num_classes].
    """
    layers: list[nn.Module] = [nn.LayerNorm(in_features)] if input_norm else []
    width = in_features
    for out, p in zip(hidden, dropout, strict=True):
        layers += [nn.Linear(width, out), _ACTIVATIONS[activation](), nn.Dropout(p)]
        width = out
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class BiRNNLastState(nn.Module):
    """One-layer bidirectional LSTM; returns [h_forward, h_backward] of the last layer: [N, T, in] -> [N, 2 hidden]."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden, num_layers=1, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        return torch.cat([h_n[-2], h_n[-1]], dim=1)


class _Classifier(nn.Module):
    """Base: stores ``in_dim`` and checks the input shape before ``_forward``."""

    in_dim: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, num_classes] of pose features [N, T, in_dim]. Raises ValueError on a bad shape."""
        _check_input(x, self.in_dim)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Recurrent models
# ---------------------------------------------------------------------------------------------
class RecurrentAttentionClassifier(_Classifier):
    """BiLSTM / BiGRU with attention pooling (``BiLSTMEmotionClassifier``, ``GRUClassifier``).

    InputProjection(in, h, relu, dropout) -> bidirectional ``cell`` (h per direction, num_layers,
    inter-layer dropout when num_layers > 1) -> AttentionPooling(2h, h) -> head Linear(2h, h) ->
    ReLU -> Dropout -> Linear(h, classes). [N, T, in] -> [N, classes].
    """

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 256, num_layers: int = 2, num_classes: int = 8,
                 dropout: float = 0.3, cell: str = "lstm") -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.in_dim = in_dim
        self.proj = InputProjection(in_dim, hidden, dropout)
        self.rnn = rnn(hidden, hidden, num_layers=num_layers, batch_first=True, bidirectional=True,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.pool = AttentionPooling(2 * hidden, hidden)
        self.head = mlp_head(2 * hidden, [hidden], num_classes, [dropout])

    def _forward(self, x):
        seq, _ = self.rnn(self.proj(x))
        return self.head(self.pool(seq))


class TemporalBlock(nn.Module):
    """TCN block: Conv1d(k, dilation) -> BN -> ReLU -> Dropout -> Conv1d -> BN, + residual
    (1x1 Conv1d when the width changes), ReLU. [N, C_in, T] -> [N, C_out, T] ("same" padding, odd k)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.body = nn.Sequential(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad, dilation=dilation), nn.BatchNorm1d(out_ch),
            nn.ReLU(), nn.Dropout(dropout),
            nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad, dilation=dilation), nn.BatchNorm1d(out_ch))
        self.shortcut = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class TCNBiLSTM(_Classifier):
    """``TCNBiLSTMClassifier``: InputProjection(in, h, GELU, dropout/2) -> 3 TemporalBlocks
    (dilation 1, 2, 4; dropout/2) -> BiLSTM (h/2 per direction, num_layers) -> LayerNorm ->
    multi-head self-attention (num_heads, dropout) + residual -> LayerNorm -> concat
    [AttentionPooling(h, h/4), max over T] -> head 2h -> h -> h/2 -> classes (GELU; dropout, dropout/2).
    """

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 512, num_layers: int = 3, num_classes: int = 7,
                 dropout: float = 0.4, num_heads: int = 8) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.proj = InputProjection(in_dim, hidden, dropout * 0.5, "gelu")
        self.tcn = nn.Sequential(*[TemporalBlock(hidden, hidden, 3, d, dropout * 0.5) for d in (1, 2, 4)])
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.lstm_norm = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, num_heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(hidden)
        self.pool = AttentionPooling(hidden, hidden // 4)
        self.head = mlp_head(2 * hidden, [hidden, hidden // 2], num_classes, [dropout, dropout * 0.5], "gelu")

    def _forward(self, x):
        x = self.tcn(self.proj(x).transpose(1, 2)).transpose(1, 2)
        seq = self.lstm_norm(self.lstm(x)[0])
        attended, _ = self.attention(seq, seq, seq, need_weights=False)
        seq = self.attention_norm(attended + seq)
        return self.head(torch.cat([self.pool(seq), seq.max(dim=1).values], dim=1))


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[:T] (sin on even, cos on odd channels, base 10000), then Dropout. PE is a buffer
    [1, max_len, dim] (in the state dict, as the reference). [N, T, dim] -> [N, T, dim]."""

    def __init__(self, dim: int, max_len: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe[None])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"sequence of {x.shape[1]} frames exceeds the positional table ({self.pe.shape[1]})")
        return self.dropout(x + self.pe[:, :x.shape[1]])


class PoseTransformer(_Classifier):
    """``TransformerClassifier``: InputProjection(in, h, GELU, dropout/2) -> positional encoding
    (dropout/2) -> prepend a learned [CLS] token -> num_layers pre-norm TransformerEncoderLayers
    (num_heads, FFN 4h, GELU, dropout) -> head on [CLS]: LayerNorm -> Linear(h, h/2) -> GELU ->
    Dropout -> Linear(h/2, classes). T <= 511 frames.
    """

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 256, num_layers: int = 4, num_classes: int = 7,
                 dropout: float = 0.3, num_heads: int = 8) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.proj = InputProjection(in_dim, hidden, dropout * 0.5, "gelu")
        self.position = SinusoidalPositionalEncoding(hidden, dropout=dropout * 0.5)
        layer = nn.TransformerEncoderLayer(hidden, num_heads, dim_feedforward=4 * hidden, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden))
        self.head = mlp_head(hidden, [hidden // 2], num_classes, [dropout], "gelu", input_norm=True)

    def _forward(self, x):
        x = self.position(self.proj(x))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.encoder(x)[:, 0])


# ---------------------------------------------------------------------------------------------
# Convolutional models
# ---------------------------------------------------------------------------------------------
def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2), nn.BatchNorm1d(out_ch), nn.ReLU()]


class Conv1DClassifier(_Classifier):
    """``Conv1DClassifier``: Linear(in, h) -> 3 x [Conv1d(k3) -> BN -> ReLU -> Dropout] with widths
    h, 2h, 2h -> mean over T -> head Linear(2h, h) -> ReLU -> Dropout -> Linear(h, classes)."""

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 128, num_classes: int = 8, dropout: float = 0.3) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.proj = nn.Linear(in_dim, hidden)
        widths = [hidden, hidden, 2 * hidden, 2 * hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += _conv_bn_relu(a, b) + [nn.Dropout(dropout)]
        self.convs = nn.Sequential(*layers)
        self.head = mlp_head(2 * hidden, [hidden], num_classes, [dropout])

    def _forward(self, x):
        return self.head(self.convs(self.proj(x).transpose(1, 2)).mean(dim=2))


class MultiScaleClassifier(_Classifier):
    """``MultiScaleClassifier``: Linear(in, h) -> parallel Conv1d(h, h/2) with kernels
    ``kernels`` (3, 5, 7, 11; "same" padding) -> ReLU -> concat (2h) -> BN -> Dropout ->
    AttentionPooling(2h, h) -> head Linear(2h, h) -> ReLU -> Dropout -> Linear(h, classes)."""

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 128, num_classes: int = 8, dropout: float = 0.3,
                 kernels: Sequence[int] = (3, 5, 7, 11)) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.proj = nn.Linear(in_dim, hidden)
        self.branches = nn.ModuleList(nn.Conv1d(hidden, hidden // 2, k, padding=k // 2) for k in kernels)
        width = len(kernels) * (hidden // 2)
        self.norm = nn.Sequential(nn.BatchNorm1d(width), nn.Dropout(dropout))
        self.pool = AttentionPooling(width, hidden)
        self.head = mlp_head(width, [hidden], num_classes, [dropout])

    def _forward(self, x):
        x = self.proj(x).transpose(1, 2)
        x = self.norm(torch.cat([torch.relu(conv(x)) for conv in self.branches], dim=1))
        return self.head(self.pool(x.transpose(1, 2)))


class ConvLSTMClassifier(_Classifier):
    """``ConvLSTMClassifier``: InputProjection(in, h, relu, no dropout) -> 2 x [Conv1d(k3) -> BN
    -> ReLU] -> BiLSTM (h, 1 layer), last states [fwd, bwd] -> Dropout -> head Linear(2h, h) ->
    ReLU -> Dropout -> Linear(h, classes)."""

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 128, num_classes: int = 8, dropout: float = 0.3) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.proj = InputProjection(in_dim, hidden)
        self.convs = nn.Sequential(*(_conv_bn_relu(hidden, hidden) + _conv_bn_relu(hidden, hidden)))
        self.rnn = BiRNNLastState(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = mlp_head(2 * hidden, [hidden], num_classes, [dropout])

    def _forward(self, x):
        x = self.convs(self.proj(x).transpose(1, 2)).transpose(1, 2)
        return self.head(self.dropout(self.rnn(x)))


# ---------------------------------------------------------------------------------------------
# Skeleton-graph model
# ---------------------------------------------------------------------------------------------
class GraphSkeletonClassifier(_Classifier):
    """``GraphSkeletonClassifier``: the 238 features as [N, T, people, joints, 7]; per person and
    frame Linear(7, h/2) -> ReLU -> mix joints with softmax(A) (A learnable [J, J], init N(0, 0.01^2),
    softmax over each row) -> Linear(h/2, h/2) -> ReLU; flatten people x joints x h/2 -> BiLSTM (h),
    last states -> Dropout -> head Linear(2h, h) -> ReLU -> Dropout -> Linear(h, classes).
    Requires ``in_dim == num_people * num_joints * 7``.
    """

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 128, num_classes: int = 8, dropout: float = 0.3,
                 num_joints: int = 17, num_people: int = 2, features_per_joint: int = 7) -> None:
        super().__init__()
        if in_dim != num_people * num_joints * features_per_joint:
            raise ValueError(f"in_dim {in_dim} != num_people {num_people} x num_joints {num_joints} "
                             f"x features_per_joint {features_per_joint}")
        self.in_dim = in_dim
        self.layout = (num_people, num_joints, features_per_joint)
        self.embed = nn.Linear(features_per_joint, hidden // 2)
        self.adjacency = nn.Parameter(torch.randn(num_joints, num_joints) * 0.01)
        self.mix = nn.Linear(hidden // 2, hidden // 2)
        self.rnn = BiRNNLastState(num_people * num_joints * (hidden // 2), hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = mlp_head(2 * hidden, [hidden], num_classes, [dropout])

    def _forward(self, x):
        n, t, _ = x.shape
        joints = torch.relu(self.embed(x.reshape(n, t, *self.layout)))        # [N, T, P, J, h/2]
        joints = torch.einsum("ij,ntpjc->ntpic", torch.softmax(self.adjacency, dim=1), joints)
        joints = torch.relu(self.mix(joints))
        return self.head(self.dropout(self.rnn(joints.reshape(n, t, -1))))


# ---------------------------------------------------------------------------------------------
# DeepResidual family
# ---------------------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """Post-norm block: relu(x + LN(Linear(Dropout(relu(LN(Linear(x))))))). [N, T, d] -> [N, T, d]."""

    def __init__(self, dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class BottleneckBlock(nn.Module):
    """relu(x + body(x)), body: Linear(d, b) -> LN -> ReLU -> Linear(b, b) -> LN -> ReLU -> Dropout
    -> Linear(b, d) -> LN with b = int(d * ratio)."""

    def __init__(self, dim: int, dropout: float = 0.3, ratio: float = 0.25) -> None:
        super().__init__()
        b = int(dim * ratio)
        self.body = nn.Sequential(nn.Linear(dim, b), nn.LayerNorm(b), nn.ReLU(), nn.Linear(b, b), nn.LayerNorm(b),
                                  nn.ReLU(), nn.Dropout(dropout), nn.Linear(b, dim), nn.LayerNorm(dim))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class PreActBlock(nn.Module):
    """Pre-activation block: x + Linear2(relu(LN2(Dropout(Linear1(relu(LN1(x))))))) (no final ReLU)."""

    def __init__(self, dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(dim), nn.ReLU(), nn.Linear(dim, dim), nn.Dropout(dropout),
                                  nn.LayerNorm(dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x):
        return x + self.body(x)


class SqueezeExcite(nn.Module):
    """Channel gate from the time mean: x * sigmoid(W2 relu(W1 mean_T(x))), reduction ``reduction``."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(dim, dim // reduction), nn.ReLU(), nn.Linear(dim // reduction, dim),
                                  nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x.mean(dim=1))[:, None, :]


BLOCKS: dict[str, Callable[[int, float], nn.Module]] = {
    "standard": ResidualBlock, "bottleneck": BottleneckBlock, "preact": PreActBlock}
POOLINGS = ("attention", "mean", "max", "last")


class DeepResidual(_Classifier):
    """Per-frame residual MLP with temporal pooling (``DeepResidualClassifier``,
    ``DeepResidualV2``, ``DeepResidualPreact``).

    InputProjection(in, h, relu, ``input_dropout``) -> ``num_blocks`` blocks (``block_type``:
    standard / bottleneck / preact) -> [SqueezeExcite(h, 4)] -> pooling over T (attention =
    AttentionPooling(h, h/2, bias=``attention_bias``), mean, max, last) -> head Linear(h, h) ->
    ReLU -> Dropout -> Linear(h, classes).

    Reference settings: ``train_architectures`` DeepResidual = standard, ``input_dropout=0``;
    DeepResidualV2 = ``input_dropout=dropout``; ``train_best_model`` DeepResidualPreact = preact,
    ``input_dropout=dropout``, ``attention_bias=True`` (693,001 parameters vs 693,000).

    Raises:
        ValueError: unknown block_type or pooling.
    """

    def __init__(self, in_dim: int = IN_DIM, hidden: int = 256, num_blocks: int = 4, num_classes: int = 8,
                 dropout: float = 0.3, block_type: str = "standard", pooling: str = "attention",
                 use_se: bool = False, input_dropout: float | None = None, attention_bias: bool = False) -> None:
        super().__init__()
        if block_type not in BLOCKS:
            raise ValueError(f"block_type must be one of {sorted(BLOCKS)}, got {block_type!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.in_dim, self.pooling = in_dim, pooling
        self.proj = InputProjection(in_dim, hidden, dropout if input_dropout is None else input_dropout)
        self.blocks = nn.Sequential(*[BLOCKS[block_type](hidden, dropout) for _ in range(num_blocks)])
        self.se = SqueezeExcite(hidden) if use_se else nn.Identity()
        self.pool = AttentionPooling(hidden, hidden // 2, bias=attention_bias) if pooling == "attention" else None
        self.head = mlp_head(hidden, [hidden], num_classes, [dropout])

    def _forward(self, x):
        x = self.se(self.blocks(self.proj(x)))
        if self.pool is not None:
            x = self.pool(x)
        elif self.pooling == "mean":
            x = x.mean(dim=1)
        elif self.pooling == "max":
            x = x.max(dim=1).values
        else:
            x = x[:, -1]
        return self.head(x)


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------
class CaerArchitecture(NamedTuple):
    """A zoo entry: ``builder(in_dim=..., num_classes=..., **kwargs)`` and its reference kwargs."""

    builder: Callable[..., nn.Module]
    kwargs: dict


def _deep_residual_variation(hidden, blocks, dropout=0.3, block_type="standard", pooling="attention", se=False):
    return CaerArchitecture(DeepResidual, dict(hidden=hidden, num_blocks=blocks, dropout=dropout,
                                               block_type=block_type, pooling=pooling, use_se=se))


#: ``train_architectures.py main()`` (all with num_classes=8, in_dim=238) plus the
#: ``train_best_model.py`` model. Keys are the reference names.
CAER_ARCHITECTURES: dict[str, CaerArchitecture] = {
    "BiLSTM_h128_l1": CaerArchitecture(RecurrentAttentionClassifier, dict(hidden=128, num_layers=1, dropout=0.3)),
    "BiLSTM_h256_l2": CaerArchitecture(RecurrentAttentionClassifier, dict(hidden=256, num_layers=2, dropout=0.4)),
    "TCN_BiLSTM": CaerArchitecture(TCNBiLSTM, dict(hidden=128, num_layers=1, dropout=0.3, num_heads=8)),
    "Transformer_h128": CaerArchitecture(PoseTransformer, dict(hidden=128, num_layers=2, num_heads=4, dropout=0.3)),
    "GRU_h128_l2": CaerArchitecture(RecurrentAttentionClassifier,
                                    dict(hidden=128, num_layers=2, dropout=0.3, cell="gru")),
    "Conv1D": CaerArchitecture(Conv1DClassifier, dict(hidden=128, dropout=0.3)),
    "MultiScale": CaerArchitecture(MultiScaleClassifier, dict(hidden=128, dropout=0.3)),
    "ConvLSTM": CaerArchitecture(ConvLSTMClassifier, dict(hidden=128, dropout=0.3)),
    "DeepResidual": CaerArchitecture(DeepResidual, dict(hidden=256, num_blocks=4, dropout=0.3, input_dropout=0.0)),
    "GraphSkeleton": CaerArchitecture(GraphSkeletonClassifier, dict(hidden=128, dropout=0.3)),
    "DeepResidualPreact": CaerArchitecture(DeepResidual, dict(hidden=256, num_blocks=4, dropout=0.3,
                                                              block_type="preact", attention_bias=True)),
}

#: ``train_deep_residual_variations.py main()`` (DeepResidualV2, num_classes=8).
DEEP_RESIDUAL_VARIATIONS: dict[str, CaerArchitecture] = {
    "h128_b4": _deep_residual_variation(128, 4),
    "h256_b4": _deep_residual_variation(256, 4),
    "h512_b4": _deep_residual_variation(512, 4),
    "h256_b2": _deep_residual_variation(256, 2),
    "h256_b6": _deep_residual_variation(256, 6),
    "h256_b8": _deep_residual_variation(256, 8),
    "h256_b4_d02": _deep_residual_variation(256, 4, 0.2),
    "h256_b4_d04": _deep_residual_variation(256, 4, 0.4),
    "h256_b4_d05": _deep_residual_variation(256, 4, 0.5),
    "h256_b4_bottleneck": _deep_residual_variation(256, 4, block_type="bottleneck"),
    "h256_b4_preact": _deep_residual_variation(256, 4, block_type="preact"),
    "h256_b4_meanpool": _deep_residual_variation(256, 4, pooling="mean"),
    "h256_b4_maxpool": _deep_residual_variation(256, 4, pooling="max"),
    "h256_b4_SE": _deep_residual_variation(256, 4, se=True),
    "h384_b6_preact_SE": _deep_residual_variation(384, 6, 0.35, "preact", se=True),
}


def build_caer(name: str, in_dim: int = IN_DIM, num_classes: int = len(CAER_CLASSES), **overrides) -> nn.Module:
    """Build the CAER model ``name`` (a key of CAER_ARCHITECTURES or DEEP_RESIDUAL_VARIATIONS)
    with its reference kwargs, updated by ``overrides``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    table = {**CAER_ARCHITECTURES, **DEEP_RESIDUAL_VARIATIONS}
    if name not in table:
        raise KeyError(f"unknown CAER architecture {name!r}; known: {', '.join(table)}")
    builder, kwargs = table[name]
    return builder(in_dim=in_dim, num_classes=num_classes, **{**kwargs, **overrides})


def class_weights(kind: str, num_classes: int = len(CAER_CLASSES)) -> torch.Tensor:
    """Loss class weights: ``uniform`` (all 1) or ``uniform_other_zero`` (the ``other`` class 0).

    Raises:
        ValueError: unknown kind.
    """
    weights = torch.ones(num_classes)
    if kind == "uniform_other_zero":
        weights[CAER_CLASSES.index("other")] = 0.0
    elif kind != "uniform":
        raise ValueError(f"class weight kind must be 'uniform' or 'uniform_other_zero', got {kind!r}")
    return weights


# ------------------------------------------------------------------------- zoo registrations
def _zoo_builder(arch: str):
    """``build(in_shape, outputs, pretrained=False)`` of architecture ``arch`` on pose features
    of ``in_shape`` = (frames, P*17*7)."""
    def build(in_shape, outputs: int, pretrained: bool = False) -> nn.Module:
        return build_caer(arch, in_dim=in_shape[-1], num_classes=outputs)

    return build


def _caer_view(cfg: dict, extract_config: dict):
    """CAER training items: the seed's augmentation + random crop from the stored tracks
    (:class:`zoo.caer_augment.CaerPoseView`) when ``cfg["augment"]``."""
    from zoo.caer_augment import CaerPoseView

    return CaerPoseView(aug_prob=float(cfg.get("aug_prob", 0.5))) if cfg.get("augment") else None


#: What every CAER entry shares: the stored pose features, the seed's cosine recipe with augmentation.
_ZOO = dict(example_shape=(64, 238), defaults={**CAER_TRAINING, "schedule": "cosine", "augment": True},
            train_view=_caer_view)
register_model("caer-bilstm-h128-l1", group="videos", field="pose_features", params=361_992,
               source="CAER pose zoo BiLSTM_h128_l1 (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("BiLSTM_h128_l1"))
register_model("caer-bilstm-h256-l2", group="videos", field="pose_features", params=2_956_296,
               source="CAER pose zoo BiLSTM_h256_l2 (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("BiLSTM_h256_l2"))
register_model("caer-tcn-bilstm", group="videos", field="pose_features", params=539_784,
               source="CAER pose zoo TCN_BiLSTM (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("TCN_BiLSTM"))
register_model("caer-transformer-h128", group="videos", field="pose_features", params=436_552,
               source="CAER pose zoo Transformer_h128 (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("Transformer_h128"))
register_model("caer-gru-h128-l2", group="videos", field="pose_features", params=592_392,
               source="CAER pose zoo GRU_h128_l2 (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("GRU_h128_l2"))
register_model("caer-conv1d", group="videos", field="pose_features", params=410_504,
               source="CAER pose zoo Conv1D (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("Conv1D"))
register_model("caer-multiscale", group="videos", field="pose_features", params=311_304,
               source="CAER pose zoo MultiScale (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("MultiScale"))
register_model("caer-convlstm", group="videos", field="pose_features", params=428_040,
               source="CAER pose zoo ConvLSTM (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("ConvLSTM"))
register_model("caer-deepresidual", group="videos", field="pose_features", params=693_000,
               source="CAER pose zoo DeepResidual (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("DeepResidual"))
register_model("caer-graphskeleton", group="videos", field="pose_features", params=2_400_233,
               source="CAER pose zoo GraphSkeleton (JohnOh3809/EmotionRecognizer-@11e5753)",
               **_ZOO)(_zoo_builder("GraphSkeleton"))
register_model("caer-deepresidualpreact", group="videos", field="pose_features", params=693_001,
               source="CAER pose zoo DeepResidualPreact (JohnOh3809/EmotionRecognizer-@11e5753)",
               **{**_ZOO, "defaults": {**CAER_BEST_TRAINING, "schedule": "cosine", "augment": True}}
               )(_zoo_builder("DeepResidualPreact"))
