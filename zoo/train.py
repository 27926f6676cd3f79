"""``python -m zoo.train NAME --shards DIR``: train a zoo model on extraction shards.

Writes to ``--out`` (default ``runs/<name>``): ``checkpoint.pt`` (best epoch on the eval split:
state dict, resolved config, label names, the shard manifest's sha256), ``last.pt``,
``metrics.json`` (accuracy, macro-F1, per-class precision/recall/F1, confusion matrix),
``confusion_matrix.png``, ``curves.png`` and ``history.csv``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from zoo.data import ShardDataset
from zoo.metrics import classification_metrics, plot_confusion, plot_curves
from zoo.registry import MODELS, count_parameters, get_model


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def list_models() -> str:
    """One line per model: name, input, parameter count (8 classes), source."""
    lines = [f"{'model':10} {'input':18} {'params':>9}  source"]
    for m in MODELS.values():
        channels = 56
        n = count_parameters(m.build(channels, 8))
        lines.append(f"{m.name:10} {m.group + '/' + m.field:18} {n:>9,}  {m.source}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m zoo.train", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("model", nargs="?", help=f"model name ({', '.join(MODELS)})")
    ap.add_argument("--list", action="store_true", help="list the zoo's models and exit")
    ap.add_argument("--shards", type=Path, default=Path("shards/sample"), help="extraction output folder")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/<model>)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the model's reference value)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--eval-split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--clip-grad", type=float, default=5.0, help="max gradient norm (0 = off)")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def _run_epoch(model, loader, device, optimizer=None, clip=0.0, desc="", show=True):
    """One pass; trains when ``optimizer`` is given. Returns (mean loss, y_true, y_pred)."""
    model.train(optimizer is not None)
    total, count, y_true, y_pred = 0.0, 0, [], []
    loss_fn = torch.nn.CrossEntropyLoss()
    with torch.set_grad_enabled(optimizer is not None):
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not show, file=sys.stderr):
            x, y = x.to(device).float(), y.to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
            y_true += y.tolist()
            y_pred += logits.argmax(1).tolist()
    return total / max(count, 1), y_true, y_pred


def train(args: argparse.Namespace) -> dict:
    """Train ``args.model`` and write the run folder; returns the final metrics dict."""
    spec = get_model(args.model)
    epochs = args.epochs or spec.defaults["epochs"]
    batch_size = args.batch_size or spec.defaults["batch_size"]
    lr = args.lr or spec.defaults["lr"]
    seed_everything(args.seed)
    train_set = ShardDataset(args.shards, spec.field, args.train_split, spec.group)
    eval_set = ShardDataset(args.shards, spec.field, args.eval_split, spec.group)
    if len(train_set) == 0:
        raise SystemExit(f"error: no '{args.train_split}' rows in {args.shards}")
    names = train_set.label_names
    x0, _ = train_set[0]
    model = spec.build(int(x0.shape[0]), len(names)).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, spec.defaults["step_size"], spec.defaults["gamma"])
    gen = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, generator=gen, num_workers=args.workers)
    eval_loader = DataLoader(eval_set, batch_size, num_workers=args.workers)
    out = args.out or Path("runs") / args.model
    out.mkdir(parents=True, exist_ok=True)
    manifest_sha = hashlib.sha256((args.shards / "manifest.json").read_bytes()).hexdigest()
    config = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "epochs": epochs, "batch_size": batch_size, "lr": lr, "input": f"{spec.group}/{spec.field}",
              "in_shape": list(x0.shape), "label_names": names, "manifest_sha256": manifest_sha,
              "parameters": count_parameters(model), "source": spec.source}
    history, best = [], None
    show = not args.no_progress
    for epoch in tqdm(range(1, epochs + 1), desc=f"train {args.model}", disable=not show, file=sys.stderr):
        start = time.time()
        loss, _, _ = _run_epoch(model, train_loader, args.device, optimizer, args.clip_grad, f"epoch {epoch}", show)
        scheduler.step()
        eval_loss, y_true, y_pred = _run_epoch(model, eval_loader, args.device, desc="eval", show=show)
        acc = float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else float("nan")
        history.append({"epoch": epoch, "train_loss": loss, "eval_loss": eval_loss, "eval_accuracy": acc,
                        "seconds": round(time.time() - start, 2)})
        state = {"model": args.model, "state_dict": model.state_dict(), "config": config, "epoch": epoch,
                 "history": history}
        torch.save(state, out / "last.pt")
        if best is None or acc > best[0]:
            best = (acc, epoch, y_true, y_pred)
            torch.save(state, out / "checkpoint.pt")
    metrics = classification_metrics(best[2], best[3], names)
    metrics.update(model=args.model, best_epoch=best[1], epochs=epochs, eval_split=args.eval_split,
                   train_rows=len(train_set), eval_rows=len(eval_set), final_train_loss=history[-1]["train_loss"],
                   first_train_loss=history[0]["train_loss"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    plot_confusion(metrics["confusion_matrix"], names, out / "confusion_matrix.png",
                   f"{args.model}, {args.eval_split} (epoch {best[1]})")
    plot_curves(history, out / "curves.png")
    return metrics


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print(list_models())
        return 0
    if not args.model:
        print("error: name a model (see --list)", file=sys.stderr)
        return 2
    try:
        metrics = train(args)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / args.model
    print(f"{args.model}: {metrics['train_rows']} train / {metrics['eval_rows']} {args.eval_split} rows; "
          f"loss {metrics['first_train_loss']:.3f} -> {metrics['final_train_loss']:.3f}; "
          f"best {args.eval_split} accuracy {metrics['accuracy']:.3f} (epoch {metrics['best_epoch']}), "
          f"macro-F1 {metrics['macro_f1']:.3f}\n  outputs in {out}/ (checkpoint.pt, metrics.json, confusion_matrix.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
