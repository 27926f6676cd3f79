"""Learning tasks of the zoo: how labels become targets, which loss, how outputs are scored.

A model entry in :mod:`zoo.registry` names one task:

* ``multiclass``: one class per sample; cross-entropy (optional label smoothing and per-class
  loss weights, :func:`resolve_class_weights`); metrics accuracy, macro-F1, per-class
  precision/recall/F1, confusion matrix.
* ``multilabel``: a 0/1 vector per sample (EmoReact, seed_specs §3.7); ``BCEWithLogitsLoss``;
  metrics micro and macro ROC AUC (scikit-learn) plus per-label AUC.
* ``view_groups``: ProxEmo's joint emotion x view-group output (seed_specs §2.5): target
  ``num_groups * emotion + group``, cross-entropy over ``num_classes * num_groups`` logits; the
  emotion is scored by summing the softmax over the view groups of each emotion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from zoo.metrics import classification_metrics


#: Task kind -> the target :class:`zoo.data.ShardDataset` gives its items (``target=``).
TARGET_OF_TASK = {"multiclass": "label", "multilabel": "targets", "view_groups": "view_group"}


@dataclass(frozen=True)
class Task:
    """Loss and scoring of one kind of target.

    Attributes:
        kind: ``multiclass``, ``multilabel`` or ``view_groups``.
        label_smoothing: cross-entropy label smoothing (multiclass and view_groups).
        num_groups: view groups per emotion (view_groups only).
        class_weights: per-class cross-entropy weights, one per logit (multiclass only; None =
            all 1). They enter as ``torch.nn.functional.cross_entropy(weight=...)``: the NLL term
            of a row is scaled by its class's weight, the label-smoothing term of every row
            weighs each class's log-probability by that class's weight, and the mean divides
            by the sum of the rows' class weights (the CAER scripts' ``CrossEntropyLoss``,
            seed_specs 5.3). A batch whose rows all weigh 0 has loss 0 (no NaN).
    """

    kind: str = "multiclass"
    label_smoothing: float = 0.0
    num_groups: int = 4
    class_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.class_weights is not None and self.kind != "multiclass":
            raise ValueError(f"class weights apply to multiclass tasks only, not {self.kind!r}")

    @property
    def target(self) -> str:
        """The dataset target of this kind (:data:`TARGET_OF_TASK`): ``label``, ``targets`` or
        ``view_group``."""
        return TARGET_OF_TASK[self.kind]

    def outputs(self, num_classes: int) -> int:
        """Logits the model must produce for ``num_classes`` classes or labels."""
        return num_classes * self.num_groups if self.kind == "view_groups" else num_classes

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch.

        Args:
            logits: float [N, outputs].
            target: int64 [N] class index (multiclass), int64 [N] ``groups * emotion + group``
                (view_groups), or float [N, L] in {0, 1} (multilabel).

        Raises:
            ValueError: ``class_weights`` does not have one weight per logit.
        """
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, target.float())
        if self.class_weights is None:
            return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        if len(self.class_weights) != logits.shape[1]:
            raise ValueError(f"{len(self.class_weights)} class weights for {logits.shape[1]} logits")
        weight = torch.tensor(self.class_weights, dtype=logits.dtype, device=logits.device)
        total = F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing,
                                reduction="sum")
        denom = weight[target].sum()
        return torch.where(denom > 0, total / denom.clamp_min(1e-12), total * 0.0)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class scores of a batch: softmax [N, C], sigmoid [N, L], or for view_groups the
        softmax summed over each emotion's view groups [N, C]."""
        if self.kind == "multilabel":
            return torch.sigmoid(logits)
        p = torch.softmax(logits.float(), dim=1)
        if self.kind == "view_groups":
            p = p.reshape(len(p), -1, self.num_groups).sum(2)
        return p

    def class_of(self, target: torch.Tensor) -> torch.Tensor:
        """The class index a target stands for (view_groups: ``target // groups``)."""
        return target // self.num_groups if self.kind == "view_groups" else target

    def metrics(self, y_true: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict:
        """The papers' metrics on a whole split.

        Args:
            y_true: int [N] classes, or {0, 1} [N, L] for multilabel.
            scores: float [N, C] from :meth:`scores`.
            names: class or label names.
        """
        if self.kind == "multilabel":
            return multilabel_metrics(y_true, scores, names)
        out = classification_metrics(y_true.tolist(), scores.argmax(1).tolist(), names)
        out["primary"] = out["accuracy"]
        return out


def resolve_class_weights(kind: str | None, names: Sequence[str]) -> tuple[float, ...] | None:
    """Loss weights of a registry recipe's ``class_weights`` for a run's label names.

    ``None`` or ``uniform``: None (all classes weigh 1). ``uniform_other_zero`` (CAER
    ``train_best_model.py``, seed_specs 5.3): 1 for every class, 0 for the class named ``other``
    (case-insensitive). The seed's ``other`` is an 8th logit that is never a target; a corpus
    card without an ``other`` class (CAER's 7 folders) has no such logit here, so the weights are
    all 1 there (with the seed's 8 logits the zero weight only removes ``other`` from the
    label-smoothing term).

    Raises:
        ValueError: unknown kind.
    """
    if kind in (None, "uniform"):
        return None
    if kind != "uniform_other_zero":
        raise ValueError(f"class_weights must be 'uniform' or 'uniform_other_zero', got {kind!r}")
    lowered = [n.lower() for n in names]
    if "other" not in lowered:
        return None
    return tuple(0.0 if n == "other" else 1.0 for n in lowered)


def multilabel_metrics(y_true: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict:
    """Micro / macro ROC AUC and per-label AUC (scikit-learn); labels with one class only in
    ``y_true`` get ``None`` and are left out of the macro mean. Primary metric: macro AUC."""
    y_true = np.asarray(y_true).astype(int)
    per_label, valid = {}, []
    for j, name in enumerate(names):
        if len(np.unique(y_true[:, j])) < 2:
            per_label[name] = None
            continue
        per_label[name] = float(roc_auc_score(y_true[:, j], scores[:, j]))
        valid.append(per_label[name])
    flat = y_true.ravel()
    micro = float(roc_auc_score(flat, scores.ravel())) if len(np.unique(flat)) == 2 else None
    macro = float(np.mean(valid)) if valid else None
    return {"roc_auc_micro": micro, "roc_auc_macro": macro, "per_label_auc": per_label,
            "num_samples": int(len(y_true)), "primary": macro if macro is not None else float("nan")}


TASKS = {"multiclass": Task(), "multilabel": Task("multilabel"), "view_groups": Task("view_groups")}
