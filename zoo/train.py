"""``python -m zoo.train NAME --shards DIR``: train a zoo model on extraction shards.

Writes a new run folder ``runs/<name>/<YYYYmmdd-HHMMSS>/`` with a ``runs/<name>/latest`` link to
it (or ``--out DIR``; a non-empty ``--out`` is refused unless ``--overwrite`` or ``--resume``):

* ``checkpoint.pt``: the best epoch on the eval split (state dict, resolved config, label names,
  the shard manifest's sha256); ``last.pt``: the latest epoch with optimizer, schedule, AMP and
  RNG state, for ``--resume``;
* ``metrics.json``: the task's metrics at the best epoch (accuracy, macro-F1, per-class
  precision/recall/F1 and confusion matrix; micro/macro ROC AUC for multi-label models);
* ``confusion_matrix.png`` (single-label tasks), ``curves.png``, ``history.csv`` and TensorBoard
  event files in ``tb/``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
from pathlib import Path

from pipelines import cli


def __getattr__(name: str):
    """``TARGET_OF_TASK`` lives in :mod:`zoo.tasks` (imported on first use: it imports torch)."""
    if name == "TARGET_OF_TASK":
        from zoo.tasks import TARGET_OF_TASK

        return TARGET_OF_TASK
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _import_heavy() -> None:
    """Import torch, the data and model modules into this module's namespace (on first use, so
    that ``--help`` and argument errors return at once)."""
    global np, torch, DataLoader, tqdm, ShardDataset, run_epoch, plot_confusion, plot_curves
    global KeyedSampler, balanced_sampler, build_optimizer, build_scheduler, MODELS, ZooModel
    global count_parameters, get_model, Task, resolve_class_weights, save_checkpoint
    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from zoo.checkpoints import save_checkpoint
    from zoo.data import ShardDataset
    from zoo.loop import run_epoch
    from zoo.metrics import plot_confusion, plot_curves
    from zoo.optim import KeyedSampler, balanced_sampler, build_optimizer, build_scheduler
    from zoo.registry import MODELS, ZooModel, count_parameters, get_model
    from zoo.tasks import Task, resolve_class_weights


def better(metric: float, best) -> bool:
    """Whether an epoch's eval ``metric`` beats ``best`` (a best-epoch dict or None).

    NaN ranks below every number: a NaN epoch never replaces a real one, and a real one always
    replaces a NaN best (``primary > best`` alone is never true against NaN and kept epoch 1).
    """
    if best is None:
        return True
    old = best["metric"]
    if metric is None or (isinstance(metric, float) and math.isnan(metric)):
        return False
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return True
    return metric > old


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; with ``deterministic``, ask torch for deterministic kernels
    (warn-only where none exists) and disable cuDNN benchmarking."""
    _import_heavy()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def list_models() -> str:
    """One line per model: name, input field, task, parameter count in the reference setup, source
    (:func:`zoo.registry.model_cards`: read from the model modules' source, torch is not imported)."""
    from zoo.registry import model_cards, list_pretrained

    lines = [f"{'model':24} {'input':22} {'task':12} {'params':>11}  source"]
    for m in model_cards():
        lines.append(f"{m.name:24} {m.group + '/' + m.field:22} {m.task:12} {m.params:>11,}  {m.source}")
    return "\n".join(lines) + "\n\n" + list_pretrained()


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m zoo.train", description=__doc__.split("\n")[0],
                                 formatter_class=cli.HelpFormatter)
    ap.add_argument("model", nargs="?", help="model name (see --list)")
    ap.add_argument("--list", action="store_true", help="list the zoo's models and exit")
    ap.add_argument("--shards", type=Path, default=Path("shards/sample"), help="extraction output folder")
    ap.add_argument("--out", type=Path, default=None,
                    help="run folder (default: a new runs/<model>/<timestamp>/, linked as runs/<model>/latest)")
    ap.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the model's reference value)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the model's reference value")
    ap.add_argument("--lr", type=float, default=None, help="default: the model's reference value")
    ap.add_argument("--input", default=None, metavar="FIELD",
                    help="train on another field of the model's shard group (e.g. fullbody for the TSN "
                         "models: the full-body clip crops instead of the faces)")
    ap.add_argument("--fold", type=int, default=None, metavar="K",
                    help="k-fold cross-validation on the corpus's folds (CK+: 1-10): evaluate on fold K, train on "
                         "the others (ignores --train-split / --eval-split)")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                    help="caer-* models: compute training items from the stored tracks with the seed's augmentations "
                         "and a random 64-frame crop (default on); --no-augment trains on the stored centre crops")
    ap.add_argument("--aug-prob", type=float, default=None, metavar="P",
                    help="caer-* models: the seed's aug_prob (flip/scale/rotation/noise P, time warp P/2, joint drop "
                         "0.3 P; default: the model's recipe, 0.5; the seed's train_bilstm CLI used 0.7)")
    ap.add_argument("--redraw", action=argparse.BooleanOptionalAction, default=None,
                    help="sistcm / resnet18-tlstm: draw each training sample's C x K face frames at random every epoch "
                         "from videos/face_pool (card face_pool = true) instead of the stored plan (default off)")
    ap.add_argument("--train-split", default="train", help="split of the shards to train on")
    ap.add_argument("--eval-split", default="test",
                    help="split to evaluate on after every epoch (picks the best epoch; must not be empty)")
    ap.add_argument("--seed", type=int, default=0, help="seed of Python, NumPy, torch and the data order")
    ap.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    ap.add_argument("--torch-threads", type=int, default=None, metavar="N",
                    help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--clip-grad", type=float, default=None,
                    help="max gradient norm, 0 = off (default: the model's reference value)")
    ap.add_argument("--patience", type=int, default=0,
                    help="stop after this many epochs without a better eval metric (0 = never)")
    ap.add_argument("--resume", type=Path, default=None, help="continue from a last.pt of an earlier run")
    ap.add_argument("--pretrained", action="store_true",
                    help="start image backbones from torchvision's ImageNet weights (needs them cached or online)")
    ap.add_argument("--no-amp", action="store_true", help="float32 on CUDA too (AMP is used on CUDA by default)")
    ap.add_argument("--nondeterministic", action="store_true", help="allow nondeterministic (faster) kernels")
    ap.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    cli.add_verbose(ap)
    return ap.parse_args(argv)


def resolve_config(spec: ZooModel, args: argparse.Namespace) -> dict:
    """The model's reference defaults overridden by the command line."""
    cfg = dict(spec.defaults)
    for key in ("epochs", "batch_size", "lr"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.clip_grad is not None:
        cfg["clip_grad_norm"] = args.clip_grad
    cfg.setdefault("clip_grad_norm", 0.0)
    for key, option, owner in (("augment", "--augment", "caer-*"), ("aug_prob", "--aug-prob", "caer-*"),
                               ("redraw", "--redraw", "sistcm / resnet18-tlstm")):
        value = getattr(args, key, None)
        if value is None:
            continue
        if key not in cfg:
            raise ValueError(f"{option} does not apply to {spec.name} (it is an option of the {owner} models)")
        cfg[key] = value
    return cfg


def _datasets(spec: ZooModel, args, cfg: dict) -> tuple[ShardDataset, ShardDataset]:
    kw = dict(field=spec.field, group=spec.group, stack_clips=spec.stack_clips, target=Task(spec.task).target,
              derive=spec.derive, views=spec.views)
    if spec.train_view:
        from pipelines.shardset import ShardSet

        view = spec.train_view(cfg, ShardSet(args.shards).config)
    else:
        view = None
    if args.fold is not None:
        args.eval_split = f"fold-{args.fold}"  # names the evaluation in the report
        train_set = ShardDataset(args.shards, split=None, fold=(args.fold, False), train_view=view, **kw)
        eval_set = ShardDataset(args.shards, split=None, fold=(args.fold, True), **kw)
        if len(eval_set) == 0:
            raise ValueError(f"no rows of fold {args.fold} in {args.shards} (does the corpus have folds?)")
    else:
        train_set = ShardDataset(args.shards, split=args.train_split, train_view=view, **kw)
        eval_set = ShardDataset(args.shards, split=args.eval_split, **kw)
        if len(eval_set) == 0:
            raise ValueError(f"no rows of the eval split {args.eval_split!r} in {args.shards}: the best epoch "
                             "cannot be chosen (pick another --eval-split, or extract more samples)")
    if len(train_set) == 0:
        raise ValueError(f"no rows of the training split {args.train_split!r} in {args.shards}")
    return train_set, eval_set


def _loaders(train_set, eval_set, cfg, args, gen: torch.Generator):
    """Training and evaluation DataLoaders. With a load-time train view the training sampler is
    wrapped in :class:`zoo.optim.KeyedSampler` (one augmentation key per draw, from ``gen``)."""
    sampler = balanced_sampler(train_set.labels, gen) if cfg.get("sampler") == "balanced" else None
    if train_set.train_view is not None:
        sampler = KeyedSampler(sampler or torch.utils.data.RandomSampler(train_set, generator=gen), gen)
    train_loader = DataLoader(train_set, cfg["batch_size"], shuffle=sampler is None, sampler=sampler,
                              generator=gen, num_workers=args.workers)
    return train_loader, DataLoader(eval_set, cfg["batch_size"], num_workers=args.workers)


def _rng_state(gen: torch.Generator) -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "loader": gen.get_state()}


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    gen.set_state(state["loader"])


class _Logger:
    """history.csv rows and TensorBoard scalars."""

    def __init__(self, out: Path, tensorboard: bool):
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tb"))

    def log(self, row: dict) -> None:
        if self.writer is not None:
            for key in ("train_loss", "eval_loss", "eval_metric", "lr"):
                self.writer.add_scalar(key, row[key], row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(args: argparse.Namespace) -> dict:
    """Train ``args.model`` and write the run folder; returns the final metrics dict.

    Raises:
        KeyError: unknown model. FileNotFoundError / ShardSchemaError: shards missing or lacking
        the model's input. ValueError: no training rows.
    """
    _import_heavy()
    spec = get_model(args.model)
    if args.input:
        spec = dataclasses.replace(spec, field=args.input)
    cfg = resolve_config(spec, args)
    seed_everything(args.seed, not args.nondeterministic)
    train_set, eval_set = _datasets(spec, args, cfg)
    names = train_set.label_names
    task = Task(spec.task, label_smoothing=cfg.get("label_smoothing", 0.0),
                class_weights=resolve_class_weights(cfg.get("class_weights"), names))
    in_shape = tuple(train_set[0][0].shape)
    model = spec.build(in_shape, task.outputs(len(names)), pretrained=args.pretrained).to(args.device)
    optimizer = build_optimizer(model.parameters(), cfg)
    scheduler = build_scheduler(optimizer, cfg, cfg["epochs"])
    use_amp = args.device.startswith("cuda") and not args.no_amp
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    gen = torch.Generator().manual_seed(args.seed)
    train_loader, eval_loader = _loaders(train_set, eval_set, cfg, args, gen)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest_sha = train_set.shard_set.manifest_sha256()
    config = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **cfg,
              "task": spec.task, "input": f"{spec.group}/{spec.field}", "stack_clips": spec.stack_clips,
              "in_shape": list(in_shape), "label_names": names, "manifest_sha256": manifest_sha,
              "manifest_config": train_set.manifest.get("config"), "parameters": count_parameters(model),
              "source": spec.source, "amp": use_amp, "loss_class_weights": task.class_weights,
              "train_view": type(train_set.train_view).__name__ if train_set.train_view else None}
    history, best, start = [], None, 1
    if args.resume:
        history, best, start = _resume(args.resume, model, optimizer, scheduler, scaler, args.model, gen)
    logger = _Logger(out, not args.no_tensorboard)
    show = not args.no_progress
    for epoch in tqdm(range(start, cfg["epochs"] + 1), desc=f"train {args.model}", disable=not show,
                      file=sys.stderr, initial=start - 1, total=cfg["epochs"]):
        t0 = time.time()
        tr = run_epoch(model, spec, task, train_loader, args.device, optimizer, scaler, cfg["clip_grad_norm"],
                       f"epoch {epoch}", show)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        ev = run_epoch(model, spec, task, eval_loader, args.device, desc="eval", show=show)
        primary = task.metrics(ev.y_true, ev.scores, names)["primary"] if len(ev.y_true) else float("nan")
        row = {"epoch": epoch, "train_loss": tr.loss, "eval_loss": ev.loss, "eval_metric": primary, "lr": lr,
               "seconds": round(time.time() - t0, 2)}
        history.append(row)
        logger.log(row)
        improved = better(primary, best)
        if improved:
            best = {"metric": primary, "epoch": epoch, "y_true": ev.y_true, "scores": ev.scores}
        state = {"model": args.model, "state_dict": model.state_dict(), "config": config, "epoch": epoch,
                 "history": history, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "scaler": scaler.state_dict() if scaler else None, "rng": _rng_state(gen), "best": best}
        save_checkpoint(state, out / "last.pt")  # atomic, and read back weights-only before it replaces
        if improved:
            save_checkpoint({k: state[k] for k in ("model", "state_dict", "config", "epoch", "history")},
                            out / "checkpoint.pt")
        if args.patience and epoch - best["epoch"] >= args.patience:
            print(f"early stop: no better eval metric for {args.patience} epochs (best epoch {best['epoch']})",
                  file=sys.stderr)
            break
    logger.close()
    return _report(out, args, spec, task, names, history, best, len(train_set), len(eval_set), cfg)


def _resume(path: Path, model, optimizer, scheduler, scaler, name: str, gen: torch.Generator):
    """Load a ``last.pt``; returns (history, best, first epoch to run).

    Raises:
        ValueError: the file belongs to another model.
    """
    from zoo.checkpoints import CheckpointError, load_state

    state = load_state(path)  # weights-only: a pickle payload is refused, never run
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a last.pt of zoo.train")
    if state.get("model") != name:
        raise ValueError(f"{path} is a checkpoint of {state.get('model')!r}, not {name!r}")
    if not {"state_dict", "optimizer", "scheduler", "rng", "history", "epoch"} <= set(state):
        raise CheckpointError(f"{path}: not a last.pt of zoo.train (needs state_dict, optimizer, scheduler, rng)")
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"], gen)
    return list(state["history"]), state["best"], int(state["epoch"]) + 1


def _report(out, args, spec, task, names, history, best, n_train, n_eval, cfg) -> dict:
    metrics = task.metrics(best["y_true"], best["scores"], names) if len(best["y_true"]) else {"primary": None}
    metrics.update(model=args.model, task=spec.task, best_epoch=best["epoch"], epochs=cfg["epochs"],
                   epochs_run=len(history), eval_split=args.eval_split, train_rows=n_train, eval_rows=n_eval,
                   final_train_loss=history[-1]["train_loss"], first_train_loss=history[0]["train_loss"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    if "confusion_matrix" in metrics:
        plot_confusion(metrics["confusion_matrix"], names, out / "confusion_matrix.png",
                       f"{args.model}, {args.eval_split} (epoch {best['epoch']})")
    plot_curves(history, out / "curves.png", "eval accuracy" if task.kind != "multilabel" else "eval macro AUC")
    return metrics


def new_run_folder(model: str, root: Path = Path("runs")) -> Path:
    """A new ``root/<model>/<YYYYmmdd-HHMMSS>`` folder (``-2``, ``-3``, ... when that second is
    taken), created, with ``root/<model>/latest`` pointing to it (a relative symlink, replaced
    atomically; where symlinks are not allowed, a ``latest.txt`` naming it instead)."""
    base = root / model
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 1000):
        run = base / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            run.mkdir()
            break
        except FileExistsError:
            continue
    tmp = base / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run.name, tmp)
        os.replace(tmp, base / "latest")
    except OSError:
        (base / "latest.txt").write_text(run.name + "\n")
    return run


def check_out(args) -> str | None:
    """Why ``--out`` cannot be used (None when it can): not writable, or a non-empty folder
    without ``--overwrite`` / ``--resume``."""
    problem = cli.check_writable_dir(args.out)
    if problem:
        return problem
    if args.out.is_dir() and any(args.out.iterdir()) and not (args.overwrite or args.resume):
        return (f"--out {args.out}: the folder is not empty (an earlier run?); pass --overwrite to write over it, "
                "or leave --out out for a new runs/<model>/<timestamp>/ folder")
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.quiet_library_logs(args.verbose)
    if args.list:
        print(list_models())
        return 0
    if not args.model:
        return cli.fail("name a model (python -m zoo.train --list shows them)")
    problem = cli.check_device(args.device)
    if problem:
        return cli.fail(problem)
    if args.out is not None:
        problem = check_out(args)
    elif args.resume is not None:
        args.out = Path(args.resume).parent  # continue the run the last.pt belongs to
    else:
        problem = cli.check_writable_dir(Path("runs") / args.model, "runs folder")
    if problem:
        return cli.fail(problem)
    _import_heavy()
    if args.model not in MODELS:
        return cli.fail(cli.unknown("model", args.model, MODELS, listing="python -m zoo.train --list shows them"))
    if not (args.shards / "manifest.json").is_file():
        return cli.fail(f"--shards {args.shards}: no manifest.json there (not an extraction output); extract first: "
                        f"python -m pipelines.extract --dataset <corpus> --out {args.shards}")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.out is None:
        args.out = new_run_folder(args.model)
    try:
        metrics = train(args)
    except KeyError as exc:
        return cli.fail(str(exc.args[0]) if exc.args else repr(exc))
    except (FileNotFoundError, ValueError) as exc:
        return cli.fail(str(exc))
    except KeyboardInterrupt:
        return cli.interrupted(f"interrupted; the last finished epoch is in {args.out}/last.pt "
                               f"(continue with --resume {args.out}/last.pt)")
    out = args.out
    primary = "accuracy" if "accuracy" in metrics else "roc_auc_macro"
    value = metrics.get(primary)
    print(f"{args.model}: {metrics['train_rows']} train / {metrics['eval_rows']} {args.eval_split} rows; "
          f"{metrics['epochs_run']} epochs; loss {metrics['first_train_loss']:.3f} -> {metrics['final_train_loss']:.3f}; "
          f"best {args.eval_split} {primary} {value if value is None else round(value, 3)} "
          f"(epoch {metrics['best_epoch']})\n  outputs in {out}/ (checkpoint.pt, last.pt, metrics.json, curves.png, tb/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
