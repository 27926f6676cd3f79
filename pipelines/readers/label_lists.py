"""Reader for RAF-DB (Li, Deng & Du, CVPR 2017): label list files plus one box file per image.

Layout as distributed and as the seed parses it (``JanghoonChoi/VTT_vid_emotion@e142d7d``
``src/parse_RAF.py``; seed spec 4.2)::

    basic/EmoLabel/list_patition_label.txt        "train_00001.jpg 5" (codes 1..7)
    basic/Annotation/boundingbox/<stem>_boundingbox.txt   "xmin ymin xmax ymax"
    basic/Image/original/<name>
    compound/EmoLabel/list_patition_label.txt     codes 1..11, each two basic emotions
    compound/Annotation/boundingbox/<stem>_boundingbox.txt
    compound/Image/original/<name>
    multi/EmoLabel/distribution.txt               "<name> p_surprise p_fear p_disgust p_happiness p_sadness p_anger"
    multi/Annotation/manual/<stem>_manu_ldmk.txt  manual landmarks (x y per line)
    multi/Image/original/<name>

Every sample gets a soft 7-vector ``targets`` over ``labels.names`` (FER order: basic one-hot,
compound 0.5 + 0.5, multi the distribution with neutral = max(1 - sum, 0)) and ``label`` = its
argmax. The split is the name prefix (``train_`` / ``test_``). Card ``[layout]`` keys:
``subsets`` (which of basic / compound / multi to read) and ``box_margin`` for the landmark box
of the multi subset (seed: 0.5 of the landmark extent on each side).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipelines.readers.base import confine, fail, finite_or_none, label_names, make_sample
from pipelines.samples import Sample

#: Basic (and multi) RAF-DB codes / columns, in the corpus's own order.
BASIC = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
#: Compound codes 1..11 -> the two basic emotions they combine (RAF-DB README; seed parse_RAF.py).
COMPOUND = {1: ("happy", "surprise"), 2: ("happy", "disgust"), 3: ("sad", "fear"), 4: ("sad", "angry"),
            5: ("sad", "surprise"), 6: ("sad", "disgust"), 7: ("fear", "angry"), 8: ("fear", "surprise"),
            9: ("angry", "surprise"), 10: ("angry", "disgust"), 11: ("disgust", "surprise")}


def _vector(names: list[str], weights: dict[str, float]) -> tuple[float, ...]:
    return tuple(float(weights.get(n.lower(), 0.0)) for n in names)


def _split_of(name: str) -> str:
    return "test" if name.startswith("test") else "train"


def _lines(path: Path, problems: list | None) -> list[list[str]] | None:
    if not path.is_file():
        fail(problems, "missing_annotation", path, "label list is missing")
        return None
    try:
        return [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        fail(problems, "unreadable_annotation", path, f"cannot read: {exc}")
        return None


def _bbox_file(path: Path, problems: list | None, sid: str) -> tuple | None:
    """(x1, y1, x2, y2) from a ``*_boundingbox.txt``; reports missing / malformed files."""
    if not path.is_file():
        fail(problems, "missing_annotation", path, "bounding-box file is missing", sid)
        return None
    values = [finite_or_none(v) for v in path.read_text(errors="replace").split()]
    if len(values) < 4 or any(v is None for v in values[:4]) or values[2] <= values[0] or values[3] <= values[1]:
        fail(problems, "unreadable_annotation", path, f"expected 'xmin ymin xmax ymax', got {path.read_text(errors='replace')[:60]!r}", sid)
        return None
    return tuple(values[:4])


def _landmark_box(path: Path, margin: float, problems: list | None, sid: str) -> tuple | None:
    """Box around the manual landmarks, grown by ``margin`` x extent on each side (seed rule)."""
    if not path.is_file():
        fail(problems, "missing_annotation", path, "landmark file is missing", sid)
        return None
    rows = []
    for ln in path.read_text(errors="replace").splitlines():
        vals = [finite_or_none(v) for v in ln.replace("\t", " ").split()]
        if len(vals) >= 2 and vals[0] is not None and vals[1] is not None:
            rows.append(vals[:2])
    if len(rows) < 2:
        fail(problems, "unreadable_annotation", path, "fewer than two 'x y' landmark lines", sid)
        return None
    pts = np.asarray(rows, np.float64)
    (x1, y1), (x2, y2) = pts.min(0), pts.max(0)
    w, h = x2 - x1, y2 - y1
    return (x1 - margin * w, y1 - margin * h, x2 + margin * w, y2 + margin * h)


def _entry(card, root, subset, name, weights, box, problems, allow=False) -> Sample | None:
    sid = f"{card['corpus']['name']}/{subset}/Image/original/{name}"
    image = confine(root, Path(root) / subset / "Image" / "original" / name, problems, allow_outside_root=allow,
                    source=f"{subset} label list", sample_id=sid)
    if image is None:
        return None
    if not image.is_file():
        fail(problems, "missing_file", image, "image listed in the label file is missing", sid)
        return None
    names = label_names(card)
    targets = _vector(names, weights)
    if sum(targets) <= 0:
        fail(problems, "unknown_label", image, f"no class of {names} has weight in {weights}", sid)
        return None
    label = int(np.argmax(targets))
    active = tuple(n for n, t in zip(names, targets) if t > 0)
    return make_sample(card, root, image, _split_of(name), label, targets=targets, labels=active, box=box,
                       frames=(str(image.resolve()),), meta={"subset": subset})


def _basic_or_compound(card, root, subset, problems, allow=False) -> Iterator[Sample]:
    base = Path(root) / subset
    listing = confine(root, base / "EmoLabel" / "list_patition_label.txt", problems, allow_outside_root=allow,
                      source=f"{card['card_path']} [layout] subsets")
    for parts in (_lines(listing, problems) if listing else None) or []:
        name = parts[0]
        sid = f"{card['corpus']['name']}/{subset}/Image/original/{name}"
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        table = BASIC if subset == "basic" else COMPOUND
        valid = (1 <= code <= 7) if (code is not None and subset == "basic") else (code in COMPOUND)
        if not valid:
            fail(problems, "unknown_label", base / "EmoLabel" / "list_patition_label.txt",
                 f"{name}: label {parts[1:]!r} is not a {subset} code", sid)
            continue
        weights = {BASIC[code - 1]: 1.0} if subset == "basic" else {e: 0.5 for e in table[code]}
        if confine(root, base / "Image" / "original" / name, problems, allow_outside_root=allow,
                   source=f"{subset} label list", sample_id=sid) is None:
            continue  # the image names a place outside the root: nothing of this entry is read
        stem = Path(name).stem
        box_file = confine(root, base / "Annotation" / "boundingbox" / f"{stem}_boundingbox.txt", problems,
                           allow_outside_root=allow, source=f"{subset} label list", sample_id=sid)
        box = _bbox_file(box_file, problems, sid) if box_file else None
        if box is None:
            continue
        sample = _entry(card, root, subset, name, weights, box, problems, allow)
        if sample is not None:
            yield sample


def _multi(card, root, problems, allow=False) -> Iterator[Sample]:
    base = Path(root) / "multi"
    margin = float(card.get("layout", {}).get("box_margin", 0.5))
    listing = confine(root, base / "EmoLabel" / "distribution.txt", problems, allow_outside_root=allow)
    for parts in (_lines(listing, problems) if listing else None) or []:
        name = parts[0]
        sid = f"{card['corpus']['name']}/multi/Image/original/{name}"
        probs = [finite_or_none(v) for v in parts[1:7]]
        if len(probs) != 6 or any(p is None or p < 0 for p in probs):
            fail(problems, "unreadable_annotation", listing, f"{name}: expected 6 probabilities, got {parts[1:]}", sid)
            continue
        weights = dict(zip(BASIC[:6], probs))
        weights["neutral"] = max(1.0 - sum(probs), 0.0)
        if confine(root, base / "Image" / "original" / name, problems, allow_outside_root=allow,
                   source="multi distribution list", sample_id=sid) is None:
            continue
        marks = confine(root, base / "Annotation" / "manual" / f"{Path(name).stem}_manu_ldmk.txt", problems,
                        allow_outside_root=allow, source="multi distribution list", sample_id=sid)
        box = _landmark_box(marks, margin, problems, sid) if marks else None
        if box is None:
            continue
        sample = _entry(card, root, "multi", name, weights, box, problems, allow)
        if sample is not None:
            yield sample


def read_label_lists(card: dict[str, Any], root: Path, problems: list | None = None, *,
                     allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield RAF-DB samples of the card's ``[layout] subsets`` (default ``["basic"]``).

    Problems: missing list / box / landmark / image files, codes outside the subset's table,
    malformed box or probability lines; image, box and landmark paths outside the root, broken or
    looping links (:func:`pipelines.readers.base.confine`; links out allowed with
    ``allow_outside_root``).

    Raises:
        CorpusError: a problem while ``problems`` is None.
    """
    for subset in card.get("layout", {}).get("subsets", ["basic"]):
        if subset == "multi":
            yield from _multi(card, root, problems, allow_outside_root)
        else:
            yield from _basic_or_compound(card, root, subset, problems, allow_outside_root)
