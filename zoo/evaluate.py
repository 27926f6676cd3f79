"""``python -m zoo.evaluate MODEL --images DIR``: accuracy of a face-expression model on an image folder.

(``python -m zoo.evaluate CHECKPOINT --shards DIR [--split test]`` scores a ``zoo.train``
checkpoint on extraction shards with its task's metrics instead: :mod:`zoo.checkpoints`.)

The folder holds one sub-folder per class (``DIR/<class>/<image>``), the layout people keep
CK+, JAFFE, RAF-DB or FER-style sets in. Folder names are mapped to the model's class names
with :data:`SYNONYMS` (case-insensitive; spaces and hyphens count as underscores):

============================================  =========  =============================================
folder names                                  class      note
============================================  =========  =============================================
angry, anger, mad, an                         angry
disgust, disgusted, disgusting, di            disgust
fear, fearful, afraid, scared, fe             fear
happy, happiness, joy, joyful, ha             happy
sad, sadness, sorrow, unhappy, sa             sad
surprise, surprised, surprising, su           surprise
neutral, neutrality, none, ne                 neutral
contempt, calm                                (skipped)  no counterpart among FER2013's 7 classes
============================================  =========  =============================================

(``an``, ``di``, ... are JAFFE's codes.) Numeric folder names are never guessed (CK+ and FER2013
number their classes differently). Folders with no counterpart and unknown folders are skipped
and listed. A folder whose name is one of the model's own class names always maps to it.

Images are read by the one image loader, :func:`pipelines.images.load_image` (EXIF orientation
honoured; alpha, grey, palette, 16-bit and CMYK converted to RGB; size cap), and are either face
crops already (default: the whole image, grey, resized to 64x64 like ``fer`` does) or whole
pictures in which the largest BlazeFace face is classified (``--detect-faces``; ``fer``'s crop
rule, :func:`zoo.face_preprocess.fer_face_input`).

Writes to ``--out`` (default ``runs/evaluate-<model>-<folder>``): ``metrics.json`` (accuracy,
macro-F1, per-class precision / recall / F1 / support, confusion matrix, folder mapping, skipped
folders and images), ``confusion_matrix.png`` and ``predictions.csv``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from pipelines import cli
from pipelines.images import IMAGE_SUFFIXES, ImageError, load_image

#: Normalised folder name -> FER2013 class name, or None for a known class that has no
#: counterpart in the model (skipped). See the module docstring for the table.
SYNONYMS: dict[str, Optional[str]] = {
    **dict.fromkeys(("angry", "anger", "mad", "an"), "angry"),
    **dict.fromkeys(("disgust", "disgusted", "disgusting", "di"), "disgust"),
    **dict.fromkeys(("fear", "fearful", "afraid", "scared", "fe"), "fear"),
    **dict.fromkeys(("happy", "happiness", "joy", "joyful", "ha"), "happy"),
    **dict.fromkeys(("sad", "sadness", "sorrow", "unhappy", "sa"), "sad"),
    **dict.fromkeys(("surprise", "surprised", "surprising", "su"), "surprise"),
    **dict.fromkeys(("neutral", "neutrality", "none", "ne"), "neutral"),
    **dict.fromkeys(("contempt", "calm"), None),
}

#: Warn when more than this share of the images is left out (no face found, unreadable).
LEFT_OUT_WARNING = 0.5


class EvaluateError(ValueError):
    """A model or image folder that zoo.evaluate cannot use; the message says why."""


def normalise(name: str) -> str:
    """Folder name as looked up in :data:`SYNONYMS`: lower case, spaces/hyphens -> ``_``."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def map_folders(folders: Sequence[str], classes: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Map class folder names to the model's classes.

    Args:
        folders: sub-folder names of the image folder.
        classes: the model's class names (output order).

    Returns:
        ``(mapping, skipped)``: ``{folder: class}`` for the folders that map, and
        ``{folder: reason}`` for the others (``no counterpart in the model's classes`` or
        ``unknown class name``).
    """
    lowered = {c.lower(): c for c in classes}
    mapping, skipped = {}, {}
    for folder in sorted(folders):
        key = normalise(folder)
        if key in lowered:
            mapping[folder] = lowered[key]
        elif key in SYNONYMS and SYNONYMS[key] in classes:
            mapping[folder] = SYNONYMS[key]
        elif key in SYNONYMS:
            skipped[folder] = "no counterpart in the model's classes"
        else:
            skipped[folder] = "unknown class name"
    return mapping, skipped


def list_images(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """``([(image path, folder name)], class folder names)`` of ``root/<class>/<image>``,
    sorted; files with other suffixes are ignored.

    Raises:
        EvaluateError: ``root`` is not a folder or has no sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvaluateError(f"{root}: not a folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise EvaluateError(f"{root}: no class sub-folders (expected {root}/<class>/<image>)")
    items = [(p, f) for f in folders for p in sorted((root / f).rglob("*"))
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return items, folders


def crop_input(image: np.ndarray) -> np.ndarray:
    """mini-Xception input of an image that is already a face crop.

    The whole image is the face box, with no margin: :func:`zoo.face_preprocess.fer_face_input`
    with box (0, 0, w, h) and offsets (0, 0) (grey, squared with fer's padding band when not
    square, ``cv2.resize`` INTER_LINEAR to 64x64, scaled to [-1, 1]). For a 64x64 grey crop
    this is exactly ``(crop / 255 - 0.5) * 2``.

    Args:
        image: uint8 grey [H, W] or BGR [H, W, 3] (grey of the RGB of
            :func:`pipelines.images.load_image`: ``cv2.COLOR_RGB2GRAY``).

    Returns:
        float32 [64, 64] in [-1, 1].
    """
    from zoo.face_preprocess import fer_face_input

    h, w = image.shape[:2]
    return fer_face_input(image, (0, 0, w, h), offsets=(0, 0))[0]


def largest_face(detections: np.ndarray) -> Optional[np.ndarray]:
    """The detection row with the largest box area (None when there is none)."""
    if len(detections) == 0:
        return None
    area = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
    return detections[int(np.argmax(area))]


@dataclass
class Inputs:
    """Model inputs of an image folder: ``x`` float32 [N, 64, 64], parallel lists of paths and
    folders, and the images left out (``{path: reason}``)."""

    x: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    folders: list = field(default_factory=list)
    boxes: list = field(default_factory=list)
    left_out: dict = field(default_factory=dict)


def face_inputs(items: Sequence[tuple[Path, str]], detector=None, device: str = "cpu",
                progress: bool = False) -> Inputs:
    """Read the images and build their mini-Xception inputs.

    Args:
        items: ``(path, folder)`` pairs.
        detector: a loaded :class:`zoo.predict.face.FaceDetector` to classify the largest face
            of each image (``--detect-faces``), or None when the images are face crops.
        device: unused (the detector runs on its own device); kept for callers.

    Returns:
        :class:`Inputs`; unreadable images and images without a face are left out, with the
        reason.
    """
    from zoo.face_preprocess import fer_box, fer_face_input

    from tqdm import tqdm

    out = Inputs()
    for path, folder in tqdm(items, desc="images", unit="image", disable=not progress, file=sys.stderr,
                             leave=False):
        try:
            rgb = load_image(path)
        except ImageError as exc:
            out.left_out[str(path)] = str(exc).removeprefix(f"{path}: ")
            continue
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # = BGR2GRAY of the BGR image fer reads
        box = None
        try:
            if detector is None:
                x = crop_input(grey)
            else:
                det = largest_face(detector.detect([rgb])[0])
                if det is None:
                    out.left_out[str(path)] = "no face found"
                    continue
                box = [round(float(v), 1) for v in det[:4]]
                x = fer_face_input(grey, fer_box(det))[0]
        except ValueError as exc:
            out.left_out[str(path)] = f"unusable image: {exc}"
            continue
        out.x.append(x)
        out.paths.append(str(path))
        out.folders.append(folder)
        out.boxes.append(box)
    return out


def predict_inputs(model, x: Sequence[np.ndarray], device: str = "cpu", batch: int = 64) -> np.ndarray:
    """Softmax float32 [N, C] of mini-Xception inputs [N, 64, 64], in batches."""
    import torch

    out = [np.zeros((0, model.num_classes), np.float32)]
    with torch.no_grad():
        for s in range(0, len(x), batch):
            t = torch.from_numpy(np.stack(x[s:s + batch]))[:, None].to(device)
            out.append(torch.softmax(model(t), dim=1).cpu().numpy())
    return np.concatenate(out)


def _other_detector(detector: str) -> tuple[str, str]:
    """``(name, what it suits)`` of the face detector to try when ``detector`` found no face: the
    registry entry's :attr:`extractors.registry.Entry.counterpart` (default ``blazeface-back``)."""
    from extractors import registry

    try:
        other = registry.resolve(detector, role="face").counterpart or "blazeface-back"
    except ValueError:
        other = "blazeface-back"
    return other, registry.resolve(other, role="face").suited_to


def left_out_summary(left_out: dict, total: int, detector: Optional[str] = None) -> Optional[str]:
    """A warning when more than :data:`LEFT_OUT_WARNING` of ``total`` images were left out: the
    reasons counted, and (with a detector) the other detector to try. None otherwise."""
    if not total or len(left_out) <= LEFT_OUT_WARNING * total:
        return None
    counts: dict[str, int] = {}
    for reason in left_out.values():
        counts[reason] = counts.get(reason, 0) + 1
    reasons = "; ".join(f"{n} {r}" for r, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    msg = f"{len(left_out)} of {total} images left out ({reasons})"
    if detector and counts.get("no face found"):
        other, suits = _other_detector(detector)
        msg += (f"; {detector} found no face in {counts['no face found']} of them: try --detector {other} ({suits})"
                ", or leave --detect-faces out if the images are face crops already")
    return msg


def face_model(name: str):
    """The :class:`zoo.registry.PretrainedModel` a model name resolves to (:func:`zoo.registry.resolve`),
    or None when ``name`` is an existing file.

    Raises:
        EvaluateError: a missing file, an unknown name (with the did-you-mean hint) or a
            trainable zoo model (it takes video representations, not face images).
    """
    from zoo import registry

    path = Path(name)
    if name in registry.PRETRAINED:
        return registry.PRETRAINED[name]
    if path.exists():
        return None
    if "/" in name or path.suffix:
        raise EvaluateError(f"{name}: no such model file")
    listing = f"face models: {', '.join(registry.PRETRAINED)}, or a Keras .hdf5 file"
    try:
        registry.resolve(name, listing=listing)
    except registry.UnknownModelError as exc:
        raise EvaluateError(str(exc)) from exc
    raise EvaluateError(f"{name!r} is a zoo.train model: it takes video representations, not face images; train it "
                        f"(python -m zoo.train {name}) and score its checkpoint on shards "
                        "(python -m zoo.evaluate CHECKPOINT --shards DIR)")


def load_model(name: str, device: str = "cpu"):
    """``(model, class names, display name)`` for ``name``.

    Accepts a pretrained face model of :data:`zoo.registry.PRETRAINED` (``mini-xception-fer2013``)
    or a Keras ``.hdf5`` mini-Xception file. A ``zoo.train`` checkpoint is recognised but refused
    with a reason: the zoo's trained models take video representations (timelines, pose
    features, clip stacks), not single face images.

    Raises:
        EvaluateError: unknown name, missing file, or a checkpoint that takes no face images.
    """
    from zoo import registry

    problem = cli.check_device(device)
    if problem:
        raise EvaluateError(problem)
    spec = face_model(name)
    if spec is not None:
        return spec.load(device), spec.classes(), name
    path = Path(name)
    if path.suffix.lower() in (".hdf5", ".h5") and path.is_file():
        spec = registry.PRETRAINED[registry.DEFAULT_FACE_MODEL]
        return spec.load(device, str(path)), spec.classes(), str(path)
    raise EvaluateError(refuse_checkpoint(path))


def refuse_checkpoint(path: Path) -> str:
    """Why the file at ``path`` cannot be evaluated on face images (a zoo.train checkpoint takes a
    video representation; anything else is no face model)."""
    from zoo import registry
    from zoo.predict.checkpoint import load_checkpoint
    from zoo.predict.core import PredictError

    try:
        ckpt = load_checkpoint(path)
    except PredictError as exc:
        return str(exc)
    return (f"{path}: a zoo.train checkpoint of {ckpt['model']!r} takes {ckpt['config']['input']!r} "
            "(a video representation), not single face images; evaluate it on its shards "
            "(python -m zoo.train) or predict on videos (python -m zoo.predict). Image folders "
            f"need a face-image model: {', '.join(registry.PRETRAINED)}")


def load_detector(name: str, device: str = "cpu"):
    """A :class:`zoo.predict.face.FaceDetector` (a face extractor of :mod:`extractors.registry`).

    Raises:
        EvaluateError: unknown detector name, or its weights missing / damaged.
    """
    from zoo.predict.core import PredictError
    from zoo.predict.face import FaceDetector

    try:
        return FaceDetector(name, device)
    except PredictError as exc:
        raise EvaluateError(str(exc)) from exc


def evaluate(model_name: str, images: Path, out: Path, detect: bool = False,
             detector: str = "blazeface-back", device: str = "cpu", progress: bool = False) -> dict:
    """Evaluate a face-expression model on an image folder and write the outputs.

    Returns:
        The ``metrics.json`` dict: :func:`zoo.metrics.classification_metrics` over the model's
        classes (its ``macro_f1`` spans all of them), ``mean_recall`` over the classes present
        (balanced accuracy), ``model``, ``images``, ``mode``, ``folders`` (mapping), ``skipped_folders``,
        ``left_out`` images and ``num_images``.

    Raises:
        EvaluateError: bad model or folder, or no image left to evaluate.
    """
    from zoo.metrics import classification_metrics, plot_confusion

    model, classes, display = load_model(model_name, device)
    items, folders = list_images(images)
    mapping, skipped = map_folders(folders, classes)
    kept = [(p, f) for p, f in items if f in mapping]
    det_model = load_detector(detector, device) if detect else None
    inputs = face_inputs(kept, det_model, device, progress)
    warning = left_out_summary(inputs.left_out, len(kept), det_model.name if detect else None)
    if not inputs.x:
        raise EvaluateError(f"{images}: no image to evaluate (mapped folders: {mapping or 'none'}; "
                            f"skipped: {skipped or 'none'})" + (f"; {warning}" if warning else ""))
    probs = predict_inputs(model, inputs.x, device)
    y_true = [classes.index(mapping[f]) for f in inputs.folders]
    y_pred = probs.argmax(1).tolist()
    metrics = classification_metrics(y_true, y_pred, classes)
    present = [c for c in classes if metrics["per_class"][c]["support"]]
    for c in classes:  # no image of the class: its recall is undefined, not 0 (JSON null, printed n/a)
        if not metrics["per_class"][c]["support"]:
            metrics["per_class"][c]["recall"] = None
    # mean recall over the classes the folder has (balanced accuracy); macro_f1 spans all classes
    metrics["mean_recall"] = float(np.mean([metrics["per_class"][c]["recall"] for c in present]))
    metrics.update(model=display, images=str(images), mode="detect-faces" if detect else "face-crops",
                   detector=det_model.name if detect else None, folders=mapping, skipped_folders=skipped,
                   left_out=inputs.left_out, num_images=len(items), warning=warning)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot_confusion(metrics["confusion_matrix"], classes, out / "confusion_matrix.png",
                   f"{display} on {Path(images).name} ({len(y_true)} images)")
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "folder", "true", "predicted", "score", "box"])
        for p, fo, t, pr, box in zip(inputs.paths, inputs.folders, y_true, probs, inputs.boxes):
            w.writerow([p, fo, classes[t], classes[int(pr.argmax())], f"{pr.max():.6f}",
                        "" if box is None else " ".join(map(str, box))])
    return metrics


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m zoo.evaluate", description=__doc__.split("\n")[0],
                                 formatter_class=cli.HelpFormatter)
    ap.add_argument("model", help="pretrained face model (python -m zoo.train --list) or a Keras .hdf5 mini-Xception file "
                                  "(with --images), or a zoo.train checkpoint.pt (with --shards)")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="image folder, one sub-folder per class (face models)")
    source.add_argument("--shards", type=Path, help="extraction output folder to score a zoo.train checkpoint on")
    ap.add_argument("--split", default="test", help="split of --shards to score")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: runs/evaluate-<model>-<folder>; with --shards "
                         "evaluate-<split> beside the checkpoint)")
    ap.add_argument("--detect-faces", action="store_true",
                    help="images are whole pictures: classify the largest face BlazeFace finds in each")
    ap.add_argument("--detector", default="blazeface-back", metavar="NAME",
                    help="face detector of --detect-faces, a face extractor of extractors.registry: "
                         "blazeface-back = small faces in scenes, blazeface-front = close-ups, dbface-*")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    ap.add_argument("--torch-threads", type=int, default=None, metavar="N",
                    help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    cli.add_verbose(ap)
    args = ap.parse_args(argv)
    if args.torch_threads is not None and args.torch_threads < 1:
        ap.error("--torch-threads must be >= 1")
    return args


def shards_model_problem(name: str) -> Optional[str]:
    """Why ``--shards`` cannot score model ``name`` (None for an existing checkpoint file): a
    face-image model, a missing file, a zoo model name not trained yet, or an unknown name."""
    from zoo import registry

    path = Path(name)
    if name in registry.PRETRAINED or path.suffix.lower() in (".hdf5", ".h5"):
        return (f"{name} is a face-image model: evaluate it on an image folder "
                f"(python -m zoo.evaluate {name} --images DIR); --shards scores zoo.train checkpoints")
    if path.exists():
        return None
    if "/" in name or path.suffix:
        return f"{name}: no such checkpoint (--shards scores a checkpoint.pt written by zoo.train)"
    try:
        registry.resolve(name, listing="--shards needs a zoo.train checkpoint.pt")
    except registry.UnknownModelError as exc:
        return str(exc)
    return (f"{name!r} is a zoo.train model: train it first (python -m zoo.train {name}), then score its "
            f"checkpoint (python -m zoo.evaluate runs/{name}/latest/checkpoint.pt --shards DIR)")


def _main_shards(args) -> int:
    from zoo.checkpoints import evaluate_on_shards

    path = Path(args.model)
    problem = shards_model_problem(args.model)
    if problem:
        return cli.fail(problem)
    out = args.out or path.resolve().parent / f"evaluate-{args.split}"
    problem = cli.check_writable_dir(out)
    if problem:
        return cli.fail(problem)
    try:
        m = evaluate_on_shards(path, args.shards, args.split, args.device, out)
    except KeyError as exc:
        return cli.fail(str(exc.args[0]) if exc.args else repr(exc))
    except (ValueError, FileNotFoundError) as exc:
        return cli.fail(str(exc))
    score = {k: m[k] for k in ("accuracy", "macro_f1", "roc_auc_micro", "roc_auc_macro") if m.get(k) is not None}
    print(f"zoo.evaluate {m['model']} on {args.shards} ({args.split}, {m['rows']} rows): "
          + ", ".join(f"{k} {v:.3f}" for k, v in score.items()) + f"\n  outputs in {out}/")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.quiet_library_logs(args.verbose)
    from zoo.predict.face import check_detector

    problem = cli.check_device(args.device) or check_detector(args.detector)
    if problem:
        return cli.fail(problem)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.shards is not None:
        return _main_shards(args)
    out = args.out or Path("runs") / f"evaluate-{Path(args.model).stem}-{args.images.resolve().name}"
    problem = cli.check_writable_dir(out)
    if problem:
        return cli.fail(problem)
    try:
        m = evaluate(args.model, args.images, out, args.detect_faces, args.detector, args.device,
                     progress=not args.no_progress)
    except EvaluateError as exc:
        return cli.fail(str(exc))
    except KeyboardInterrupt:
        return cli.interrupted()
    used = m["num_samples"]
    print(f"zoo.evaluate {m['model']} on {args.images} ({m['mode']}): {used} of {len(m['left_out']) + used} images "
          f"scored, accuracy {m['accuracy']:.3f}, mean recall {m['mean_recall']:.3f}")
    for folder, cls in m["folders"].items():
        stats = m["per_class"][cls]
        recall = "n/a" if stats["recall"] is None else f"{stats['recall']:.3f}"
        print(f"  {folder} -> {cls}: recall {recall} ({stats['support']} image{'' if stats['support'] == 1 else 's'})")
    for folder, reason in m["skipped_folders"].items():
        print(f"  skipped folder {folder}: {reason}")
    if m["left_out"]:
        print(f"  {len(m['left_out'])} images left out (see metrics.json: left_out)")
    if m.get("warning"):
        print(f"warning: {m['warning']}", file=sys.stderr)
    print(f"  outputs in {out}/ (metrics.json, confusion_matrix.png, predictions.csv)")
    return 1 if m.get("warning") else 0  # most images not scored: the accuracy says little


if __name__ == "__main__":
    sys.exit(main())
