"""Learning tasks of the zoo: how labels become targets, which loss, how outputs are scored.

A model entry in :mod:`zoo.registry` names one task:

* ``multiclass``: one class per sample; cross-entropy (optional label smoothing); metrics
  accuracy, macro-F1, per-class precision/recall/F1, confusion matrix.
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


@dataclass(frozen=True)
class Task:
    """Loss and scoring of one kind of target.

    Attributes:
        kind: ``multiclass``, ``multilabel`` or ``view_groups``.
        label_smoothing: cross-entropy label smoothing (multiclass and view_groups).
        num_groups: view groups per emotion (view_groups only).
    """

    kind: str = "multiclass"
    label_smoothing: float = 0.0
    num_groups: int = 4

    def outputs(self, num_classes: int) -> int:
        """Logits the model must produce for ``num_classes`` classes or labels."""
        return num_classes * self.num_groups if self.kind == "view_groups" else num_classes

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch.

        Args:
            logits: float [N, outputs].
            target: int64 [N] class index (multiclass), int64 [N] ``groups * emotion + group``
                (view_groups), or float [N, L] in {0, 1} (multilabel).
        """
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, target.float())
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)

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
