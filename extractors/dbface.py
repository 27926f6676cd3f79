"""DBFace face detector (Small-H and large MobileNetV3 models) in PyTorch, batched.

Method and weights: dlunion/DBFace @b5fc28f (``model/DBFaceSmallH.py`` + ``dbfaceSmallH.pth``,
``model/DBFace.py`` + ``dbface.pth``, decoding of ``main_small.py`` / ``main.py detect``); facts
in ``shared/specs/seed_specs.md`` §6 and ``shared/reference/README.md`` §1. This module is an
independent implementation of those facts. DBFace is a CenterNet-style detector: a MobileNetV3
backbone, an FPN-like neck back to stride 4, an SSH detect module, and three heads per stride-4
cell: face-centre heatmap, box distances (left, top, right, bottom) and 5 landmarks.

Pipeline (one call of :func:`detect_faces`):

1. **Channel order.** Our decoders give **RGB** frames; DBFace was trained on OpenCV **BGR**
   images (``cv2.imdecode``), and its mean/std are given in B, G, R order. Frames are flipped to
   BGR before normalisation (``channel_order="rgb"``, the default); pass ``channel_order="bgr"``
   for frames straight from ``cv2.imread``.
2. **Letterbox.** Zero-pad each uint8 frame at the right/bottom to a multiple of 32 (no resize),
   so network-input pixels are source pixels and no coordinate mapping is needed beyond it.
3. **Normalise** ``(x / 255 - mean) / std`` per channel, mean (0.408, 0.447, 0.470), std
   (0.289, 0.274, 0.278) in BGR order, through a float64-computed lookup table rounded to
   float32: bit-identical to the reference's numpy float64 arithmetic cast to float32. Padded
   pixels are normalised too (zero pixels, not zero inputs), as in the reference.
4. **Batched forward** of the frames whose padded sizes are equal (frames of different padded
   sizes run as separate batches: the SE global pooling and the align-corners bilinear
   upsampling depend on the canvas size, so a common larger canvas would change detections).
   On CPU a batch is cut into chunks of :data:`CPU_FORWARD_PIXELS` (larger CPU batches are
   slower per frame); on a GPU a whole group is one forward.
5. **Decode on the tensor's device** (stride 4): peaks where ``hm == maxpool3x3(hm)``, top-k
   (1000) of the peak-masked heatmap, keep ``score >= threshold``; box
   ``([cx, cy, cx, cy] + [-l, -t, r, b]) * 4``; landmark k = ``(cexp(4 v) + c) * 4`` with
   ``cexp(v) = v e`` if ``|v| < 1`` else ``sign(v) e^|v|``; greedy NMS (IoU > ``nms_iou``
   suppresses) with the reference's +1-pixel area convention, run by ``torchvision.ops`` on
   boxes whose right/bottom are shifted by +1 (this gives exactly that convention).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import nms

from extractors import _device as _dev
from extractors import weights as _weights

__all__ = [
    "VARIANTS",
    "DEFAULTS",
    "LANDMARKS",
    "STRIDE",
    "PAD_MULTIPLE",
    "TOP_K",
    "CPU_FORWARD_PIXELS",
    "MEAN_BGR",
    "STD_BGR",
    "DBFace",
    "load_dbface",
    "pad_to_multiple",
    "preprocess",
    "raw_heads",
    "decode_heads",
    "detect_faces",
    "warmup",
]

VARIANTS = ("small", "large")
#: Reference ``detect()`` defaults per variant: (threshold, nms_iou) of ``main_small.py`` / ``main.py``.
DEFAULTS = {"small": (0.3, 0.3), "large": (0.4, 0.5)}
#: Landmark order of the 5 points (WIDER FACE style; "first"/"second" = smaller/larger x on a
#: frontal face, as observed on ``astronaut.png``).
LANDMARKS = ("eye_first", "eye_second", "nose", "mouth_first", "mouth_second")
STRIDE = 4
PAD_MULTIPLE = 32
TOP_K = 1000
#: Padded pixels per network forward on CPU (2 frames of 640x480). Larger CPU batches cost more
#: time per frame (activations leave the caches: measured 94 ms/frame at batch 1-2, 150 at 8,
#: 1 thread, 640x480), so CPU batches are cut into chunks of this size; GPUs take whole batches.
CPU_FORWARD_PIXELS = 2 * 640 * 480
MEAN_BGR = (0.408, 0.447, 0.47)
STD_BGR = (0.289, 0.274, 0.278)

# (kernel, in, expand, out, activation, squeeze-excite, stride) of the bottleneck blocks.
_SMALL_BLOCKS = (
    (3, 16, 16, 16, "relu", False, 2), (3, 16, 72, 24, "relu", False, 2),
    (3, 24, 88, 24, "relu", False, 1), (5, 24, 96, 40, "relu", True, 2),
    (5, 40, 240, 40, "relu", True, 1), (5, 40, 240, 40, "relu", True, 1),
    (5, 40, 120, 48, "relu", True, 1), (5, 48, 144, 48, "relu", True, 1),
    (5, 48, 288, 96, "relu", True, 2),
)
_SMALL_TAPS = (0, 2, 7)  # stride 4, 8, 16 outputs (16, 24, 48 channels)
_LARGE_BLOCKS = (
    (3, 16, 16, 16, "relu", False, 1), (3, 16, 64, 24, "relu", False, 2),
    (3, 24, 72, 24, "relu", False, 1), (5, 24, 72, 40, "relu", True, 2),
    (5, 40, 120, 40, "relu", True, 1), (5, 40, 120, 40, "relu", True, 1),
    (3, 40, 240, 80, "hswish", False, 2), (3, 80, 200, 80, "hswish", False, 1),
    (3, 80, 184, 80, "hswish", False, 1), (3, 80, 184, 80, "hswish", False, 1),
    (3, 80, 480, 112, "hswish", True, 1), (3, 112, 672, 112, "hswish", True, 1),
    (5, 112, 672, 160, "hswish", True, 1), (5, 160, 672, 160, "hswish", True, 2),
    (5, 160, 960, 160, "hswish", True, 1),
)
_LARGE_TAPS = (2, 5, 12)  # stride 4, 8, 16 outputs (24, 40, 160 channels)


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "hswish": nn.Hardswish, "sigmoid": nn.Sigmoid,
            "hsigmoid": nn.Hardsigmoid}[name]()


class _ConvBNAct(nn.Module):
    """conv (no bias) -> BN -> activation; keys ``conv``, ``bn`` (DBFace ``CBAModule``/``CBNModule``)."""

    def __init__(self, cin: int, cout: int, kernel: int, act: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _SqueezeExcite(nn.Module):
    """x * gate(BN(conv(relu(BN(conv(avgpool(x))))))), reduction 4; keys ``se.0``..``se.4``."""

    def __init__(self, channels: int, gate: str):
        super().__init__()
        mid = channels // 4
        self.se = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, channels, 1, bias=False), nn.BatchNorm2d(channels), _act(gate),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.se(F.adaptive_avg_pool2d(x, 1))


class _Bottleneck(nn.Module):
    """MobileNetV3 bneck: 1x1 expand -> depthwise kxk (stride) -> 1x1 project -> SE -> residual.

    The residual is added only at stride 1 (identity when in == out, else 1x1 conv + BN).
    Key order follows the weight files (``se.*`` first, then conv1..bn3, then ``shortcut.*``).
    """

    def __init__(self, kernel: int, cin: int, expand: int, cout: int, act: str, se: bool,
                 stride: int, se_gate: str):
        super().__init__()
        self.stride = stride
        self.se = _SqueezeExcite(cout, se_gate) if se else None
        self.conv1 = nn.Conv2d(cin, expand, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(expand)
        self.act1 = _act(act)
        self.conv2 = nn.Conv2d(expand, expand, kernel, stride=stride, padding=kernel // 2,
                               groups=expand, bias=False)
        self.bn2 = nn.BatchNorm2d(expand)
        self.act2 = _act(act)
        self.conv3 = nn.Conv2d(expand, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return out + self.shortcut(x) if self.stride == 1 else out


class _Backbone(nn.Module):
    """Stem (conv3x3/2, 16 ch, BN, ReLU) + bottlenecks; keys ``conv1``, ``bn1``, ``bneck.N``."""

    def __init__(self, blocks, taps: Sequence[int], se_gate: str):
        super().__init__()
        self.taps = tuple(taps)
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.bneck = nn.Sequential(*[_Bottleneck(*b, se_gate=se_gate) for b in blocks])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Returns [tap outputs (strides 4, 8, 16)..., last block output (stride 32)]."""
        x = F.relu(self.bn1(self.conv1(x)))
        outs = []
        for i, block in enumerate(self.bneck):
            x = block(x)
            if i in self.taps:
                outs.append(x)
        return outs + [x]


class _BilinearUp(nn.Module):
    """Small model up step: bilinear x2 (align_corners=True) -> CBA 3x3; keys ``conv.conv/bn``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = _ConvBNAct(channels, channels, 3, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


class _NearestUp(_ConvBNAct):
    """Large model up step: nearest x2 -> conv 3x3 + BN + h-swish; keys ``conv``, ``bn``."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 3, "hswish")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


class _SSHContext(nn.Module):
    """SSH context branch: t = inconv(x); cat[upconv(a), downconv2(downconv(b))].

    Small model: a = b = t (t has ``width`` channels); large model (``split``): a, b = the two
    channel halves of t.
    """

    def __init__(self, cin: int, width: int, split: bool, act: str):
        super().__init__()
        self.split = split
        inner = width // 2 if split else width
        self.inconv = _ConvBNAct(cin, width, 3, act)
        self.upconv = _ConvBNAct(inner, inner, 3, act)
        self.downconv = _ConvBNAct(inner, inner, 3, act)
        self.downconv2 = _ConvBNAct(inner, inner, 3, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.inconv(x)
        a, b = torch.chunk(t, 2, dim=1) if self.split else (t, t)
        return torch.cat([self.upconv(a), self.downconv2(self.downconv(b))], dim=1)


class _SSHDetect(nn.Module):
    """SSH detect module: cat[upconv(x), context(x)]; keys ``upconv``, ``context``."""

    def __init__(self, cin: int, up_out: int, ctx_width: int, split: bool, act: str):
        super().__init__()
        self.upconv = _ConvBNAct(cin, up_out, 3, act)
        self.context = _SSHContext(cin, ctx_width, split, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.upconv(x), self.context(x)], dim=1)


class _Head(nn.Module):
    """Small model head: CBA 3x3 (``ext``) then 1x1 conv with bias (``head``)."""

    def __init__(self, channels: int, cout: int):
        super().__init__()
        self.head = nn.Conv2d(channels, cout, 1)
        self.ext = _ConvBNAct(channels, channels, 3, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.ext(x))


class DBFace(nn.Module):
    """DBFace network; module names (state-dict keys) match the original weight files.

    Args:
        variant: ``"small"``: DBFace-Small-H (``model/DBFaceSmallH.py DBFace()`` with
            ``has_landmark=True, wide=64, has_ext=True, upmode="UCBA"``; 436,307 parameters,
            342 state-dict tensors, ReLU everywhere, SE gate sigmoid, bilinear align-corners
            upsampling, 64-channel neck, heads with a 3x3 ``ext`` CBA).
            ``"large"``: ``model/DBFace.py DBFace()`` (MobileNetV3-Large backbone with h-swish,
            SE gate h-sigmoid, nearest upsampling, 24-channel neck, plain 1x1 heads on 48
            channels; 1,794,219 parameters, 474 tensors).
    Raises:
        ValueError: unknown variant.

    ``forward(x)``: x float32 [N, 3, H, W], BGR normalised (see :func:`preprocess`), H and W
    multiples of 32. Returns ``(hm [N, 1, H/4, W/4]`` after sigmoid, ``tlrb [N, 4, H/4, W/4]``
    after exp (distances left, top, right, bottom in stride-4 cells), ``landmark
    [N, 10, H/4, W/4]`` raw (x of the 5 points, then y)).
    """

    def __init__(self, variant: str = "small"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"DBFace variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        if variant == "small":
            self._build_small()
        else:
            self._build_large()

    def _build_small(self, wide: int = 64) -> None:
        self.bb = _Backbone(_SMALL_BLOCKS, _SMALL_TAPS, se_gate="sigmoid")
        self.conv3 = _ConvBNAct(96, wide, 1, "relu")
        self.connect0 = _ConvBNAct(16, wide, 1, "relu")
        self.connect1 = _ConvBNAct(24, wide, 1, "relu")
        self.connect2 = _ConvBNAct(48, wide, 1, "relu")
        self.up0, self.up1, self.up2 = (_BilinearUp(wide) for _ in range(3))
        self.detect = _SSHDetect(wide, wide // 2, wide // 4, split=False, act="relu")
        self.center = _Head(wide, 1)
        self.box = _Head(wide, 4)
        self.landmark = _Head(wide, 10)

    def _build_large(self, wide: int = 24) -> None:
        # The large model's backbone layers sit at the top level of its state dict.
        backbone = _Backbone(_LARGE_BLOCKS, _LARGE_TAPS, se_gate="hsigmoid")
        self.conv1, self.bn1, self.bneck = backbone.conv1, backbone.bn1, backbone.bneck
        self._taps = backbone.taps
        self.conv2 = nn.Conv2d(160, 960, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(960)
        self.conv3 = _ConvBNAct(960, 320, 1, "hswish")
        self.conv4 = _ConvBNAct(320, wide, 1, "hswish")
        self.conn0 = _ConvBNAct(24, wide, 1, "hswish")
        self.conn1 = _ConvBNAct(40, wide, 1, "hswish")
        self.conn3 = _ConvBNAct(160, wide, 1, "hswish")
        self.up0, self.up1, self.up2 = (_NearestUp(wide) for _ in range(3))
        self.cout = _SSHDetect(wide, wide, wide, split=True, act="hswish")
        self.head_hm = nn.Conv2d(2 * wide, 1, 1)
        self.head_tlrb = nn.Conv2d(2 * wide, 4, 1)
        self.head_landmark = nn.Conv2d(2 * wide, 10, 1)

    @property
    def heatmap_head(self) -> nn.Conv2d:
        """The 1x1 convolution whose output (before the sigmoid) is the face-centre heatmap."""
        return self.center.head if self.variant == "small" else self.head_hm

    def _large_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        taps = []
        for i, block in enumerate(self.bneck):
            x = block(x)
            if i in self._taps:
                taps.append(x)
        s32 = self.conv4(self.conv3(F.hardswish(self.bn2(self.conv2(x)))))
        s16 = self.up0(s32) + self.conn3(taps[2])
        s8 = self.up1(s16) + self.conn1(taps[1])
        s4 = self.up2(s8) + self.conn0(taps[0])
        return self.cout(s4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.variant == "large":
            f = self._large_features(x)
            return (torch.sigmoid(self.head_hm(f)), torch.exp(self.head_tlrb(f)),
                    self.head_landmark(f))
        s4, s8, s16, s32 = self.bb(x)
        s16 = self.up0(self.conv3(s32)) + self.connect2(s16)
        s8 = self.up1(s16) + self.connect1(s8)
        s4 = self.up2(s8) + self.connect0(s4)
        f = self.detect(s4)
        return torch.sigmoid(self.center(f)), torch.exp(self.box(f)), self.landmark(f)


def load_dbface(variant: str = "small", device="cpu", channels_last: bool = True) -> DBFace:
    """Build :class:`DBFace` and load its registered weights strictly, in eval mode.

    Weights come from :mod:`extractors.weights` (``dbface-small`` = ``dbfaceSmallH.pth``,
    sha256-checked; ``dbface-large`` = ``dbface.pth``, checksum unknown so only a warning),
    loaded with ``torch.load(weights_only=True, map_location="cpu")`` (the small file was saved
    on ``cuda:2``). Neither file may ship with affectzoo (no licence): users install them with
    ``python -m extractors.weights install dbface-small FILE`` or ``$AFFECTZOO_WEIGHTS``.

    Args:
        variant: ``"small"`` or ``"large"``.
        device: torch device of the returned model.
        channels_last: store the weights in ``torch.channels_last`` layout (default), the
            layout :func:`preprocess` produces; on CPU it cost less time per 640x480 frame
            than NCHW (``bench/results_dbface.md``). Outputs agree within the parity tolerances.
    Raises:
        ValueError: unknown variant. WeightsNotFoundError: file missing (the message names the
        file, its official source and the install command). WeightsChecksumError: sha256
        mismatch. RuntimeError: key or shape mismatch (strict load).
    """
    model = DBFace(variant)
    state = _weights.load_state_dict(f"dbface-{variant}", map_location="cpu")
    model.load_state_dict(state, strict=True)
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def pad_to_multiple(frame: np.ndarray, multiple: int = PAD_MULTIPLE) -> np.ndarray:
    """Zero-pad a uint8 [H, W, 3] image at the right/bottom to multiples of ``multiple``.

    Returns the frame itself when no padding is needed, else a new uint8 array
    [ceil(H/m) m, ceil(W/m) m, 3] (DBFace ``common.pad``). Pixel (x, y) is unchanged.
    Raises:
        ValueError: not a uint8 [H, W, 3] array.
    """
    _check_frame(frame, 0)
    h, w = frame.shape[:2]
    ph, pw = _padded_hw(h, w, multiple)
    if (ph, pw) == (h, w):
        return frame
    out = np.zeros((ph, pw, 3), np.uint8)
    out[:h, :w] = frame
    return out


def _padded_hw(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def _check_frame(frame, index: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames[{index}]: expected a uint8 [H, W, 3] image, got {desc}")


def _normalisation_lut() -> np.ndarray:
    """float32 [3, 256]: ``float32((v / 255 - mean_c) / std_c)`` computed in float64, BGR rows."""
    v = np.arange(256, dtype=np.float64) / 255.0
    return ((v[None, :] - np.asarray(MEAN_BGR)[:, None]) / np.asarray(STD_BGR)[:, None]).astype(np.float32)


_LUT = torch.from_numpy(_normalisation_lut())


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def preprocess(frames, device="cpu", channel_order: str = "rgb",
               device_preprocess: Optional[bool] = None) -> torch.Tensor:
    """Letterbox and normalise frames that share one padded size into a network batch.

    Args:
        frames: uint8 [H, W, 3] images (a list, or one uint8 [N, H, W, 3] array) whose
            right/bottom-padded sizes (multiples of 32) are equal; channel order given by
            ``channel_order``.
        device: torch device of the result. The uint8 pixels are moved (on CUDA: pinned,
            non_blocking, one tensor per frame size, padded and channel-flipped there), then
            normalised there through the lookup table.
        channel_order: ``"rgb"`` (our decoders; flipped to BGR here) or ``"bgr"`` (OpenCV).
        device_preprocess: pad on the device (default: on CUDA only; same result either way).
    Returns:
        float32 [N, 3, H32, W32], channels B, G, R, ``(x/255 - mean)/std``, identical to the
        reference's numpy float64 computation rounded to float32; stored channels-last
        (``torch.channels_last`` strides), the layout :func:`load_dbface` gives the model.
    Raises:
        ValueError: empty list, bad frame, unknown channel order, or different padded sizes.
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    frames = _dev.frame_list(frames)
    if len(frames) == 0:
        raise ValueError("preprocess: no frames")
    for i, f in enumerate(frames):
        _check_frame(f, i)
    sizes = {_padded_hw(*f.shape[:2]) for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"preprocess: frames pad to different sizes {sorted(sizes)}; "
                         "use detect_faces, which groups them")
    ph, pw = sizes.pop()
    on_device = _dev.is_cuda(device) if device_preprocess is None else bool(device_preprocess)
    if on_device:
        pixels = torch.zeros((len(frames), ph, pw, 3), dtype=torch.uint8, device=device)
        for (h, w), idx in _dev.group_by_size(frames).items():
            t = _dev.upload(_dev.stack(frames, idx), device)
            if channel_order == "rgb":
                t = t.flip(-1)
            if len(idx) == len(frames):
                pixels[:, :h, :w] = t
            else:
                pixels[torch.as_tensor(idx, device=device), :h, :w] = t
        pixels = pixels.int()
    else:
        canvas = np.zeros((len(frames), ph, pw, 3), np.uint8)
        for i, f in enumerate(frames):
            canvas[i, :f.shape[0], :f.shape[1]] = f[..., ::-1] if channel_order == "rgb" else f
        pixels = torch.from_numpy(canvas).to(device).int()
    offsets = torch.arange(3, dtype=torch.int32, device=device) * 256
    return _LUT.to(device).view(-1)[pixels + offsets].permute(0, 3, 1, 2)


@torch.no_grad()
def raw_heads(model: DBFace, frames, channel_order: str = "rgb", dtype=None,
              device_preprocess: Optional[bool] = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network outputs for frames that share one padded size (for parity tests and debugging).

    Args:
        model: a :class:`DBFace` in eval mode; its device is used.
        frames, channel_order, device_preprocess: as :func:`preprocess`.
        dtype: autocast dtype on CUDA (float16 / bfloat16 or names); None / float32: none.
    Returns:
        ``(hm [N, 1, h, w], tlrb [N, 4, h, w], landmark [N, 10, h, w])`` float32 on the model's
        device, h = H32/4, w = W32/4 (see :class:`DBFace`).
    Raises:
        ValueError: as :func:`preprocess`.
    """
    device = _model_device(model)
    x = preprocess(frames, device, channel_order, device_preprocess)
    with _dev.autocast(device, _dev.resolve_dtype(dtype, device)):
        heads = model(x)
    return tuple(h.float() for h in heads)


def _signed_exp(v: torch.Tensor) -> torch.Tensor:
    """DBFace ``common.exp``: v*e where |v| < 1, else sign(v)*exp(|v|); float32 result."""
    linear = (v.double() * np.e).to(v.dtype)
    return torch.where(v.abs() < 1, linear, torch.sign(v) * torch.exp(v.abs()))


def _candidates(hm, tlrb, landmark, threshold: float, top_k: int):
    """Peak cells -> (image index [M], rank [M], score [M], boxes [M, 4] f64, landmarks [M, 10] f64)."""
    n, _, h, w = hm.shape
    peaks = hm * (hm == F.max_pool2d(hm, 3, 1, 1)).to(hm.dtype)
    scores, cells = peaks.reshape(n, -1).topk(min(top_k, h * w), dim=1)
    img, rank = torch.nonzero(scores >= threshold, as_tuple=True)
    cell = cells[img, rank]
    cy, cx = (cell // w).double(), (cell % w).double()
    l, t, r, b = tlrb.reshape(n, 4, h * w)[img, :, cell].double().unbind(1)
    x1, x2 = (cx - l) * STRIDE, (cx + r) * STRIDE
    y1, y2 = (cy - t) * STRIDE, (cy + b) * STRIDE
    boxes = torch.stack([torch.minimum(x1, x2), torch.minimum(y1, y2),
                         torch.maximum(x1, x2), torch.maximum(y1, y2)], dim=1)
    lm = _signed_exp(landmark.reshape(n, 10, h * w)[img, :, cell] * 4).double()
    lm_x = (lm[:, :5] + cx[:, None]) * STRIDE
    lm_y = (lm[:, 5:] + cy[:, None]) * STRIDE
    points = torch.stack([lm_x, lm_y], dim=2).reshape(-1, 10)
    return img, rank, scores[img, rank], boxes, points


def _nms_per_image(boxes: torch.Tensor, rank: torch.Tensor, img: torch.Tensor, iou: float
                   ) -> torch.Tensor:
    """One ``torchvision.ops.nms`` call for all images; returns kept candidate indices.

    Right/bottom + 1 turns torchvision's IoU into the +1-pixel convention exactly. Images are
    separated by shifting each image's boxes into its own band of the x axis (after moving the
    minimum to 0, so negative coordinates cannot make bands overlap). Scores ``-rank`` make NMS
    visit candidates in the reference's order (score-sorted top-k order).
    """
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    shifted = boxes + boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
    shifted = shifted - shifted.min()
    band = (shifted.max() + 1.0) * img.double()
    shifted = shifted + torch.stack([band, torch.zeros_like(band)] * 2, dim=1)
    return nms(shifted, -rank.double(), iou)


@torch.no_grad()
def decode_heads(hm: torch.Tensor, tlrb: torch.Tensor, landmark: torch.Tensor,
                 threshold: float = 0.3, nms_iou: float = 0.3, top_k: int = TOP_K
                 ) -> list[torch.Tensor]:
    """Decode DBFace heads into detections, on the heads' device (no host round trip).

    Args:
        hm: [N, 1, h, w] heatmap after sigmoid; tlrb: [N, 4, h, w] after exp (stride-4 cells);
            landmark: [N, 10, h, w] raw (see :class:`DBFace`).
        threshold: keep peaks with score >= threshold (reference: top-k loop breaks below it).
        nms_iou: greedy NMS suppresses a box whose IoU with a kept one is > nms_iou; IoU uses
            the +1-pixel area convention of DBFace ``common.computeIOU``.
        top_k: peaks considered per image (reference 1000; capped at h*w).
    Returns:
        N float32 tensors [D, 15] on the heads' device, sorted by descending score (ties in
        top-k order), rows ``x1, y1, x2, y2, score, x_1, y_1, ..., x_5, y_5`` in padded-input
        pixels, which equal source-image pixels (padding is right/bottom only). Boxes and
        landmarks are computed in float64 before the final float32 cast. Detections may lie
        partly outside the image, as in the reference (no clipping).
    """
    n = hm.shape[0]
    img, rank, score, boxes, points = _candidates(hm, tlrb, landmark, threshold, top_k)
    keep = _nms_per_image(boxes, rank, img, nms_iou)
    keep = keep[torch.argsort(img[keep] * (top_k + 1) + rank[keep])]
    dets = torch.cat([boxes[keep], score[keep, None].double(), points[keep]], dim=1).float()
    counts = torch.bincount(img[keep], minlength=n).tolist()
    return list(torch.split(dets, counts))


def _forward_chunk(n_frames: int, padded_hw: tuple[int, int], device: torch.device,
                   forward_batch: Optional[int]) -> int:
    """Frames per network forward: ``forward_batch`` if given, else all frames on an
    accelerator and :data:`CPU_FORWARD_PIXELS` worth of padded frames (at least 1) on CPU."""
    if forward_batch is not None:
        if forward_batch < 1:
            raise ValueError(f"forward_batch must be >= 1, got {forward_batch}")
        return forward_batch
    if device.type == "cpu":
        return max(1, CPU_FORWARD_PIXELS // (padded_hw[0] * padded_hw[1]))
    return max(1, n_frames)


@torch.no_grad()
def detect_faces(model: DBFace, frames, threshold: Optional[float] = None,
                 nms_iou: Optional[float] = None, top_k: int = TOP_K, channel_order: str = "rgb",
                 forward_batch: Optional[int] = None, device=None, dtype=None,
                 device_preprocess: Optional[bool] = None) -> list[np.ndarray]:
    """Detect faces with DBFace in a batch of frames (one forward per padded size).

    Args:
        model: a loaded :class:`DBFace` (:func:`load_dbface`); runs on the model's device, and
            decoding runs there too.
        frames: uint8 [H, W, 3] images (a list, or one uint8 [N, H, W, 3] array), **RGB** by
            default (``channel_order="bgr"`` for OpenCV images); sizes may differ. Frames with equal padded sizes (multiples of 32) share
            forwards; each frame gets the detections it would get alone.
        threshold: minimum heatmap score; default per variant (:data:`DEFAULTS`: 0.3 small as
            ``main_small.py``, 0.4 large as ``main.py``).
        nms_iou: NMS IoU threshold; default per variant (0.3 small, 0.5 large).
        top_k: peaks considered per frame (1000).
        channel_order: ``"rgb"`` or ``"bgr"``.
        forward_batch: most frames per network forward; default: all frames of one padded
            size on an accelerator, :data:`CPU_FORWARD_PIXELS` worth on CPU.
        device: must be the model's device when given (accepted for a uniform signature with
            the other extractors; the model's device is used).
        dtype: autocast dtype on CUDA (see :func:`raw_heads`).
        device_preprocess: pad and flip on the device (default: on CUDA only).
    Returns:
        One float32 array [D, 15] per frame: ``x1, y1, x2, y2, score``, then 5 landmarks
        ``(x, y)`` in :data:`LANDMARKS` order (the model's channel order), in source-image
        pixels (origin top-left pixel, x right, y down), descending score.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3]; unknown channel order; forward_batch < 1;
            ``device`` other than the model's.
    """
    frames = _dev.frame_list(frames)
    if len(frames) == 0:
        return []
    model_device = _model_device(model)
    if device is not None and torch.device(device) != model_device and not (
            torch.device(device).type == model_device.type == "cuda" and torch.device(device).index is None):
        raise ValueError(f"device {device} given, but the model is on {model_device}")
    d_thr, d_iou = DEFAULTS[model.variant]
    threshold = d_thr if threshold is None else float(threshold)
    nms_iou = d_iou if nms_iou is None else float(nms_iou)
    for i, f in enumerate(frames):
        _check_frame(f, i)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(_padded_hw(*f.shape[:2]), []).append(i)
    results: list = [None] * len(frames)
    device = _model_device(model)
    for padded_hw, idx in groups.items():
        step = _forward_chunk(len(idx), padded_hw, device, forward_batch)
        for start in range(0, len(idx), step):
            chunk = idx[start:start + step]
            heads = raw_heads(model, [frames[i] for i in chunk], channel_order, dtype,
                              device_preprocess)
            decoded = decode_heads(*heads, threshold, nms_iou, top_k)
            counts = [len(d) for d in decoded]
            host = torch.cat(decoded).cpu().numpy() if decoded else np.zeros((0, 15), np.float32)
            for i, dets in zip(chunk, np.split(host, np.cumsum(counts)[:-1])):
                results[i] = np.ascontiguousarray(dets)
    return results


def warmup(model: DBFace, device=None, size: tuple[int, int] = (480, 640), batch: int = 1,
           dtype=None) -> None:
    """Run :func:`detect_faces` once on ``batch`` black frames of ``size`` = (H, W)."""
    detect_faces(model, np.zeros((batch, size[0], size[1], 3), np.uint8), dtype=dtype)
    device = _model_device(model)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
