"""3-D PoseNet of pose_emotion (seed 000): PoseResNet-50 with heatmap and depth heads, MPII-16.

Method: X. Zhou et al., "Towards 3D Human Pose Estimation in the Wild: a Weakly-supervised
Approach", ICCV 2017, in its later PyTorch form (xingyizhou/pytorch-pose-hg-3d, weights
``fusion_3d_var.pth``): the SimpleBaseline network of B. Xiao et al. (ECCV 2018), i.e. a ResNet-50
trunk, three stride-2 4x4 deconvolutions (256 channels, BN, ReLU) and two 1x1 heads, ``hm``
(16 joint heatmaps) and ``depth`` (16 per-joint depth maps), both 64x64 for a 256x256 input.
Used by zykev/pose_emotion@4ef3385 (``lib/msra_resnet.py``, ``image2pose.py``, ``lib/util.py``);
facts from seed_specs §2.1. Independent implementation; the trunk is torchvision's ResNet-50,
whose module names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, Bottleneck ``conv1..3``,
``bn1..3``, ``downsample.0/1``, stride on the 3x3 conv) equal the checkpoint's.

Pipeline, as the seed runs it on every frame:

1. :func:`preprocess`: square crop centred on the image centre with side ``max(H, W)``, warped to
   256x256 (``cv2.warpAffine``, bilinear, black border); the seed reads frames with ``cv2.imread``,
   so the network sees **BGR** channels normalised with the ImageNet mean/std listed in RGB order
   (no channel swap: B gets mean 0.485). We take RGB frames and reproduce that input exactly.
2. :class:`PoseResNet3D` -> ``(heatmaps, depth)``, each ``[N, 16, 64, 64]``.
3. :func:`decode_3d` (the seed's ``get_preds_3d`` + ``@ diag(1, -1, 1)``): hard argmax of each
   heatmap (first maximum in row-major order; no soft-argmax, no sub-pixel shift) gives
   ``(x, y) / 64``; ``z`` is the depth map of that joint read at the argmax cell; the pelvis
   (MPII joint 6) is subtracted from all three coordinates; ``y`` is negated (y up).

Coordinates of :func:`decode_3d`: root-relative, in units of the heatmap side (x right, y up,
z = the network's depth unit, same scale); not pixels. Map to ProxEmo order with
:func:`schemas.keypoints.mpii16_to_proxemo16`.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torchvision

from extractors import weights as _weights
from schemas.keypoints import MPII16

__all__ = [
    "WEIGHTS_NAME",
    "NUM_JOINTS",
    "ROOT_JOINT",
    "INPUT_SIZE",
    "OUTPUT_STRIDE",
    "PoseResNet3D",
    "load_posenet3d",
    "crop_transform",
    "preprocess",
    "decode_3d",
    "heatmap_argmax",
    "heatmap_to_source",
    "rotate_vertical",
    "estimate_3d",
]

WEIGHTS_NAME = "posenet3d-resnet50"
NUM_JOINTS = 16
ROOT_JOINT = MPII16.index("pelvis")  # 6
INPUT_SIZE = 256
OUTPUT_STRIDE = 4
DECONV_CHANNELS = 256
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class PoseResNet3D(nn.Module):
    """PoseResNet-50 with ``hm`` and ``depth`` heads (xingyizhou/pytorch-pose-hg-3d ``msra_50``).

    Layers: torchvision ResNet-50 trunk without ``avgpool``/``fc`` (output stride 32, 2048 ch)
    -> ``deconv_layers`` = 3 x [ConvTranspose2d(k4, s2, p1, no bias), BatchNorm2d, ReLU], 256 ch
    (output stride 4) -> ``hm`` and ``depth``: Conv2d(256 -> 16, 1x1, bias). State-dict keys
    equal the checkpoint's ``state_dict`` (strict load).

    Args:
        num_joints: heatmap / depth channels (16 for the MPII-trained weights).

    Input ``x``: ``float32 [N, 3, H, W]`` (see :func:`preprocess`; 256x256 for the weights).
    Returns ``(heatmaps, depth)``: ``float32 [N, J, H/4, W/4]`` each (the seed stacks them into
    ``[2, N, J, H/4, W/4]``).
    """

    def __init__(self, num_joints: int = NUM_JOINTS):
        super().__init__()
        trunk = torchvision.models.resnet50(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4
        layers, channels = [], 2048
        for _ in range(3):
            layers += [nn.ConvTranspose2d(channels, DECONV_CHANNELS, kernel_size=4, stride=2, padding=1,
                                          output_padding=0, bias=False),
                       nn.BatchNorm2d(DECONV_CHANNELS), nn.ReLU(inplace=True)]
            channels = DECONV_CHANNELS
        self.deconv_layers = nn.Sequential(*layers)
        self.hm = nn.Conv2d(DECONV_CHANNELS, num_joints, kernel_size=1)
        self.depth = nn.Conv2d(DECONV_CHANNELS, num_joints, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.deconv_layers(x)
        return self.hm(x), self.depth(x)


def _state_dict_of(checkpoint) -> dict:
    """The model state dict inside a pytorch-pose-hg-3d checkpoint (``{'epoch', 'state_dict', ...}``),
    or the checkpoint itself when it is already a state dict; a DataParallel ``module.`` prefix is
    removed."""
    sd = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(sd, dict):
        raise TypeError(f"{WEIGHTS_NAME}: expected a state dict or a checkpoint dict, got {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_posenet3d(device="cpu") -> PoseResNet3D:
    """Build :class:`PoseResNet3D` and load ``posenet3d-resnet50`` (``fusion_3d_var.pth``) strictly.

    The file is user-supplied (``python -m extractors.weights install posenet3d-resnet50 FILE``);
    its sha256 is not registered, so loading warns that it is unverified. The seed loads with
    ``strict=False``; the original repo (and we) load strictly, so a wrong file fails loudly.

    Returns:
        The model in ``eval()`` mode on ``device``.
    Raises:
        WeightsNotFoundError: the file is not installed (message: official URL, install command).
        RuntimeError: missing or unexpected keys / shape mismatch. TypeError: not a checkpoint.
    """
    model = PoseResNet3D()
    model.load_state_dict(_state_dict_of(_weights.load_state_dict(WEIGHTS_NAME)), strict=True)
    return model.to(device).eval()


def crop_transform(height: int, width: int, size: int = INPUT_SIZE) -> np.ndarray:
    """Affine ``float64 [2, 3]`` from source pixels to the ``size x size`` network input.

    The seed's ``get_affine_transform(c, s, 0, [size, size])`` with centre ``c = (W/2, H/2)`` and
    side ``s = max(H, W)``, built like the seed from three point pairs (centre -> (size/2, size/2),
    ``c + (0, -s/2)`` -> (size/2, 0), ``c + (-s/2, -s/2)`` -> (0, 0)) through
    ``cv2.getAffineTransform`` in float32. Equals ``x' = (x - W/2) * size/s + size/2`` (same for y)
    up to float32 rounding.
    """
    c = np.array([width / 2.0, height / 2.0], np.float32)
    s = float(max(height, width))
    src = np.array([c, c + (0.0, -s / 2), c + (-s / 2, -s / 2)], np.float32)
    dst = np.array([(size / 2, size / 2), (size / 2, 0.0), (0.0, 0.0)], np.float32)
    return cv2.getAffineTransform(src, dst)


def preprocess(frame: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Network input of one RGB frame, exactly as the seed builds it from a BGR ``cv2.imread`` frame.

    Args:
        frame: ``uint8 [H, W, 3]`` RGB.
        size: network input side (256 for the weights).

    Returns:
        ``(x float32 [3, size, size], transform float64 [2, 3])``: ``x`` = BGR channels of the warped
        crop, ``(v/255 - mean)/std`` with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
        applied to channels 0, 1, 2 = B, G, R (the seed's order); ``transform`` maps source pixels
        to input pixels (:func:`crop_transform`).

    Raises:
        ValueError: frame not uint8 [H, W, 3].
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] frame, got {frame.dtype} {frame.shape}")
    trans = crop_transform(frame.shape[0], frame.shape[1], size)
    bgr = np.ascontiguousarray(frame[..., ::-1])
    warped = cv2.warpAffine(bgr, trans, (size, size), flags=cv2.INTER_LINEAR)
    x = (warped / 255.0 - _MEAN) / _STD
    return x.transpose(2, 0, 1).astype(np.float32), trans


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def heatmap_argmax(heatmaps) -> np.ndarray:
    """Integer heatmap cell ``(x, y)`` of each joint's maximum (the seed's ``get_preds``).

    Args:
        heatmaps: ``[N, J, h, w]`` (numpy or torch).
    Returns:
        ``int64 [N, J, 2]`` = ``(idx % w, idx // w)`` of the first maximum in row-major order.
    Raises:
        ValueError: not 4-D.
    """
    hm = _numpy(heatmaps)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be [N, J, h, w], got shape {hm.shape}")
    n, j, h, w = hm.shape
    idx = hm.reshape(n, j, h * w).argmax(axis=2)
    return np.stack([idx % w, idx // w], axis=-1).astype(np.int64)


def decode_3d(heatmaps, depth, root: int | None = ROOT_JOINT, flip_y: bool = True) -> np.ndarray:
    """3-D joints from heatmaps and depth maps, as ``image2pose.py`` does (seed_specs §2.1).

    Args:
        heatmaps: ``[N, J, h, w]``; depth: ``[N, D, h, w]`` with ``D == J`` (joint j reads depth
            channel ``min(j, D-1)``, the seed's rule, so ``D = 1`` also works).
        root: joint subtracted from every joint (MPII pelvis, 6); None keeps absolute values.
        flip_y: negate y (the seed's ``@ diag(1, -1, 1)``: y up).

    Returns:
        ``float32 [N, J, 3]``: ``x = cx / max(h, w)``, ``y = cy / max(h, w)`` (heatmap cell of the
        first maximum), ``z = depth[n, j, cy, cx]``, minus the root joint, then y negated.

    Raises:
        ValueError: shapes do not agree.
    """
    hm, dm = _numpy(heatmaps), _numpy(depth)
    if dm.ndim != 4 or dm.shape[0] != hm.shape[0] or dm.shape[2:] != hm.shape[2:]:
        raise ValueError(f"depth {dm.shape} does not match heatmaps {hm.shape}")
    cells = heatmap_argmax(hm)
    n, j = cells.shape[:2]
    res = float(max(hm.shape[2], hm.shape[3]))
    channel = np.minimum(np.arange(j), dm.shape[1] - 1)
    z = dm[np.arange(n)[:, None], channel[None, :], cells[..., 1], cells[..., 0]]
    out = np.empty((n, j, 3), np.float32)
    out[..., :2] = cells.astype(np.float32) / np.float32(res)
    out[..., 2] = z
    if root is not None:
        out -= out[:, root:root + 1]
    if flip_y:
        out[..., 1] *= -1
    return out


def heatmap_to_source(cells: np.ndarray, transform: np.ndarray, stride: int = OUTPUT_STRIDE) -> np.ndarray:
    """Heatmap cells ``(x, y)`` -> source-image pixels (for drawing; the seed does not use it).

    Args:
        cells: ``[..., 2]`` heatmap coordinates; transform: :func:`crop_transform` of the frame.
    Returns:
        ``float64 [..., 2]``: ``cells * stride`` mapped through the inverse crop transform.
    """
    inv = cv2.invertAffineTransform(np.asarray(transform, np.float64))
    xy = np.asarray(cells, np.float64) * stride
    return xy @ inv[:, :2].T + inv[:, 2]


def rotate_vertical(frame: np.ndarray) -> np.ndarray:
    """The seed's ``--vidmode vertical`` frame fix: ``cv2.flip(cv2.transpose(frame), 1)``
    (a 90-degree clockwise rotation), ``[H, W, C] -> [W, H, C]``."""
    return cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)


@torch.no_grad()
def estimate_3d(model: PoseResNet3D, frames: Sequence[np.ndarray], batch_size: int = 8,
                device="cpu") -> np.ndarray:
    """Run the 3-D PoseNet on RGB frames and decode: ``float32 [T, 16, 3]`` MPII-16, root-relative.

    Args:
        model: :func:`load_posenet3d` result; frames: ``uint8 [H, W, 3]`` RGB each (any sizes).
        batch_size: frames per forward pass.
    Raises:
        ValueError: a frame is not uint8 [H, W, 3].
    """
    out = []
    for start in range(0, len(frames), batch_size):
        x = np.stack([preprocess(f)[0] for f in frames[start:start + batch_size]])
        hm, depth = model(torch.from_numpy(x).to(device))
        out.append(decode_3d(hm, depth))
    return np.concatenate(out) if out else np.zeros((0, NUM_JOINTS, 3), np.float32)
