"""Reader for gait corpora stored as HDF5 pairs: ``features*.h5`` + ``labels*.h5``.

Format (seed spec 2.2; ``vijay4313/proxemo@98c4e21`` ``emotion_classification/sample_data``,
``UttaranB127/STEP@797b53f``): one dataset per gait at the file root, float ``[T, 48]`` = T frames
x 16 joints x (x, y, z), joint order root, spine, neck, head, two arm chains, two leg chains;
the labels file holds one scalar integer per gait under the same key. EWalk / Emotion-Gait ships
``features.h5`` / ``labels.h5`` (342 real gaits), ELMD ``features_ELMD.h5`` /
``labels_ELMD.h5`` (1,835), STEP's synthetic sets ``features4DCVAEGCN.h5`` /
``labels4DCVAEGCN.h5`` and ``features_CVAEGCN_*.h5``.

The stored integer is an index into the card's label order (``labels.names`` after
``labels.order``): the sources disagree on that order (seed spec 2.6), so it is a card choice,
never guessed here. Neither corpus has an official split; ours: a gait is ``test`` when
``crc32(key) % test_every == 0`` (card ``[splits] test_every``, default 10 = ProxEmo's 10 %),
else ``train``.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Iterator

from pipelines.readers.base import confine, fail, make_sample, rel, require
from pipelines.samples import Sample


def _open_h5(path: Path, problems: list | None, what: str):
    import h5py

    if not path.is_file():
        fail(problems, "missing_file" if what == "features" else "missing_annotation", path, f"{what} file is missing")
        return None
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        kind = "truncated_media" if what == "features" else "unreadable_annotation"
        fail(problems, kind, path, f"cannot open HDF5 {what} file: {exc}")
        return None


def labels_path(features: Path, card: dict[str, Any]) -> Path:
    """The labels file paired with ``features``: ``features`` -> ``labels`` in the file name."""
    prefix = card.get("layout", {}).get("features_prefix", "features")
    return features.with_name(features.name.replace(prefix, card.get("layout", {}).get("labels_prefix", "labels"), 1))


def _label_of(labels_file, key: str, names: list[str], lpath: Path, problems, sid) -> int | None:
    if key not in labels_file:
        fail(problems, "missing_annotation", lpath, f"no label for gait {key!r}", sid)
        return None
    try:
        value = labels_file[key][()]
        code = int(value)
    except (TypeError, ValueError, OSError) as exc:
        fail(problems, "unreadable_annotation", lpath, f"label of {key!r} is not an integer: {exc}", sid)
        return None
    if not 0 <= code < len(names):
        fail(problems, "unknown_label", lpath, f"gait {key!r} has label {code}, outside 0..{len(names) - 1} "
             f"of the order {names}", sid)
        return None
    return code


def read_gait_h5(card: dict[str, Any], root: Path, problems: list | None = None, *,
                 allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one skeleton sample per gait of every ``[layout] features`` file (glob patterns).

    Problems: no features file matches, a labels file is missing or unreadable, a gait without
    label, a label outside the order, a gait array that is not ``[T >= 1, 3 x joints]``, a
    truncated features file; features and labels files outside the root, broken or looping
    links (:func:`pipelines.readers.base.confine`; links out allowed with ``allow_outside_root``).

    Raises:
        CardError: ``[layout]`` lacks ``features``.
        CorpusError: a problem while ``problems`` is None.
    """
    patterns = require(card, "layout", "features")
    joints = int(card.get("skeleton", {}).get("joints", 16))
    every = int(card.get("splits", {}).get("test_every", 10))
    names = list(card["labels"]["names"])
    try:
        files = sorted({p for pat in patterns for p in Path(root).glob(pat)})
    except (ValueError, NotImplementedError) as exc:  # an absolute pattern
        fail(problems, "outside_root", str(patterns), f"features pattern cannot be used under the root: {exc}")
        return
    if not files:
        fail(problems, "missing_file", Path(root) / patterns[0], f"no features file matches {patterns}")
        return
    keep = {"allow_outside_root": allow_outside_root, "source": f"{card['card_path']} [layout] features"}
    for fpath in files:
        lpath = labels_path(fpath, card)
        if confine(root, fpath, problems, **keep) is None or confine(root, lpath, problems, **keep) is None:
            continue
        features = _open_h5(fpath, problems, "features")
        if features is None:
            continue
        labels = _open_h5(lpath, problems, "labels")
        if labels is None:
            features.close()
            continue
        with features, labels:
            for key in sorted(features.keys()):
                sid = f"{card['corpus']['name']}/{rel(root, fpath)}#{key}"
                try:
                    shape = features[key].shape
                except (OSError, KeyError) as exc:
                    fail(problems, "truncated_media", fpath, f"gait {key!r} cannot be read: {exc}", sid)
                    continue
                if len(shape) != 2 or shape[0] < 1 or shape[1] != 3 * joints:
                    fail(problems, "bad_value", fpath, f"gait {key!r} has shape {shape}, expected [T, {3 * joints}]", sid)
                    continue
                code = _label_of(labels, key, names, lpath, problems, sid)
                if code is None:
                    continue
                split = "test" if every and zlib.crc32(key.encode()) % every == 0 else "train"
                yield make_sample(card, root, fpath, split, code, suffix=f"#{key}", key=key,
                                  meta={"frames": int(shape[0]), "joints": joints})
