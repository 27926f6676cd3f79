"""The entry of a trainable zoo model and the decorator its module registers it with.

A model module (:mod:`zoo.models.accm`, ...) decorates its builder with :func:`register_model`,
as timm's ``@register_model`` does; the table (:data:`zoo.registry.MODELS`) imports the modules
and reads the entries registered here. This module imports no model module and no torch, so the
model modules can import it without an import circle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from zoo.inputs import as_float

if TYPE_CHECKING:
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


#: The fields :func:`zoo.registry.model_cards` reads from the source of a ``register_model(...)`` call.
CARD_FIELDS = ("group", "field", "source", "task", "params")

_MODELS: dict[str, ZooModel] = {}


def register_model(name: str, **fields) -> Callable:
    """Decorator registering ``build`` as zoo model ``name`` (:class:`ZooModel` ``fields``); it
    returns ``build`` unchanged. Also usable as a call, ``register_model(name, ...)(build)``.

    ``name`` and the :data:`CARD_FIELDS` (``group``, ``field``, ``source``, ``params``, and
    ``task`` when not multiclass) must be written as literals in the call:
    :func:`zoo.registry.model_cards` reads them from the source.

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
