"""Evaluation metrics and plots (scikit-learn, matplotlib)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / support and the confusion matrix.

    Classes with no true and no predicted sample get 0 (scikit-learn ``zero_division=0``).
    """
    labels = list(range(len(label_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, name in enumerate(label_names)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "num_samples": int(len(y_true)),
    }


def plot_confusion(matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: Path, title: str) -> None:
    """Save the confusion matrix (rows = true class, columns = predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(2 + 1.1 * len(label_names), 1.5 + 1.0 * len(label_names)))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(label_names)).plot(
        ax=ax, colorbar=False, xticks_rotation=30)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path, metric_label: str = "eval accuracy") -> None:
    """Save the losses (train, and eval when rows have ``eval_loss``) and the eval metric
    (``eval_metric``; NaN epochs are gaps) per epoch as a PNG; epochs are integer ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [int(h["epoch"]) for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if any("eval_loss" in h for h in history):
        a.plot(epochs, [h.get("eval_loss", np.nan) for h in history], marker="s", color="tab:orange", label="eval")
        a.legend()
    a.set_xlabel("epoch"), a.set_ylabel("loss")
    b.plot(epochs, [np.nan if h["eval_metric"] is None else h["eval_metric"] for h in history], marker="o",
           color="tab:green")
    b.set_xlabel("epoch"), b.set_ylabel(metric_label), b.set_ylim(0, 1.05)
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
