"""Reader for CK+ (Lucey et al., CVPR-W 2010): image sequences with one emotion file each.

Layout as distributed::

    cohn-kanade-images/S005/001/S005_001_00000001.png ... (one folder per subject / session)
    Emotion/S005/001/S005_001_00000011_emotion.txt          "   3.0000000e+00" (only 327 sequences)

Emotion codes (CK+ README): 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy,
6 sadness, 7 surprise; the card maps them (``[labels.codes]``) to the seed's order (seed spec
1.2: Happy, Angry, Disgust, Fear, Sad, Contempt, Surprise). Sequences without an emotion file
are unlabelled and left out (not a problem).

Folds: the seed's 10 folds (``Janie1996/FER_BGER@b6d53bd`` ``Facial/Data/CK+/{train,eval}{1..10}.txt``,
made from ``CK+_10-fold_sample_IDascendorder_step10.txt``) are subject-independent: the
labelled subjects in ascending ID order go round-robin to folds 1..10 (S005 -> 1, S010 -> 2,
...; checked against the seed's eval1/eval2 lists). ``[splits] eval_fold`` is the fold that
becomes ``test``; the others are ``train``; every sample carries its ``fold``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from pipelines.readers.base import confine, fail, make_sample, require, resolve_code
from pipelines.samples import Sample


def _emotion_code(path: Path, problems: list | None, sid: str) -> str | None:
    try:
        text = path.read_text(errors="strict").strip()
        return str(int(float(text.split()[0])))
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        fail(problems, "unreadable_annotation", path, "expected one number (the emotion code)", sid)
        return None


def subject_folds(subjects: list[str], num_folds: int = 10) -> dict[str, int]:
    """Fold (1-based) of each subject: ascending ID order, round-robin over ``num_folds``."""
    return {s: i % num_folds + 1 for i, s in enumerate(sorted(set(subjects)))}


def read_image_sequences(card: dict[str, Any], root: Path, problems: list | None = None, *,
                         allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one sample per labelled CK+ sequence (all its images, sorted by name).

    Problems: the image or label root missing, an emotion file for a sequence whose image
    folder is missing or empty, an emotion file that is not one number, an unknown code,
    more than one emotion file in a sequence folder; folders, emotion files and images outside
    the root, broken or looping links (:func:`pipelines.readers.base.confine`; links out allowed
    with ``allow_outside_root``).

    Raises:
        CardError: ``[layout]`` lacks ``images`` or ``labels``.
        CorpusError: a problem while ``problems`` is None.
    """
    images = confine(root, Path(root) / require(card, "layout", "images"), problems,
                     allow_outside_root=allow_outside_root, source=f"{card['card_path']} [layout] images")
    labels = confine(root, Path(root) / require(card, "layout", "labels"), problems,
                     allow_outside_root=allow_outside_root, source=f"{card['card_path']} [layout] labels")
    if images is None or labels is None:
        return
    extensions = {e.lower() for e in card["layout"].get("extensions", [".png"])}
    num_folds = int(card.get("splits", {}).get("folds", 10))
    eval_fold = int(card.get("splits", {}).get("eval_fold", 1))
    for folder, kind in ((images, "missing_file"), (labels, "missing_annotation")):
        if not folder.is_dir():
            fail(problems, kind, folder, "folder is missing")
            return
    found = []
    keep = {"allow_outside_root": allow_outside_root}
    for session in sorted(p for p in labels.glob("*/*") if p.is_dir() or p.is_symlink()):
        subject, seq = session.parent.name, session.name
        sid = f"{card['corpus']['name']}/{rel_images(card)}/{subject}/{seq}"
        if confine(root, session, problems, sample_id=sid, **keep) is None or not session.is_dir():
            continue
        files = [f for f in sorted(session.glob("*_emotion.txt")) if confine(root, f, problems, sample_id=sid, **keep)]
        if not files:
            continue
        if len(files) > 1:
            fail(problems, "duplicate_id", session, f"{len(files)} emotion files for one sequence", sid)
            continue
        code = _emotion_code(files[0], problems, sid)
        if code is None:
            continue
        name, index = resolve_code(card, code)
        if index is None or index < 0:
            if index is None:
                continue
            fail(problems, "unknown_label", files[0], f"emotion code {code} is not one of "
                 f"{sorted(card['labels'].get('codes', {}))}", sid)
            continue
        frames_dir = confine(root, images / subject / seq, problems, sample_id=sid, **keep)
        if frames_dir is None:
            continue
        listed = sorted(p for p in frames_dir.glob("*") if p.suffix.lower() in extensions) if frames_dir.is_dir() else []
        frames = [p for p in listed if confine(root, p, problems, sample_id=sid, **keep)]
        if len(frames) < len(listed):
            continue  # a frame is a link out of the root or to nothing (reported): not a partial sequence
        if not frames:
            fail(problems, "missing_file", frames_dir, f"labelled sequence has no {sorted(extensions)} images", sid)
            continue
        found.append((subject, frames_dir, index, frames, files[0]))
    folds = subject_folds([f[0] for f in found], num_folds)
    for subject, frames_dir, index, frames, label_file in found:
        fold = folds[subject]
        yield make_sample(card, root, frames_dir, "test" if fold == eval_fold else "train", index, fold=fold,
                          frames=tuple(str(p.resolve()) for p in frames),
                          meta={"label_file": label_file.name})


def rel_images(card: dict[str, Any]) -> str:
    """The image root as written in sample ids (card ``[layout] images``)."""
    return str(card["layout"]["images"]).strip("/")
