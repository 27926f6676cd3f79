"""Reader for Emilya (Fourati & Pelachaud, LREC 2014), "Emily" in the seeds: mocap sheets.

As the seed reads it (``Janie1996/FER_BGER@b6d53bd`` ``Gesture/pre/x_y_root_size_length.py``;
seed spec 1.2, 1.6): one ``.xls`` workbook per sequence under ``<root>/<action>/...``, the joints
on sheet index 2, row 0 a header, each data row 28 joints x (x, y, z). Eight actions (``BS, KD,
Lf, MB, SD, SW, Th, WH``) are trained separately, so a card reads one ``[layout] action``.
The emotion is the first of the 8 class names found as a substring of the file's path (seed
``save_label``); a path naming none is an unknown label here (the seed silently used class 0).

Workbooks are read with ``xlrd`` (pinned in ``requirements.lock``); a sheet exported to CSV
(same rows, comma-separated, header first) is read too. Split (the seed's
``splitTrainTest``): per class, files in path order, ``int(n / 10)`` of them at
``linspace(0, n, int(n / 10), endpoint=False)`` go to ``test``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipelines.readers.base import confine, fail, make_sample, media_files, rel, require
from pipelines.samples import Sample


def label_from_path(path: str, names: list[str]) -> int | None:
    """Index of the first class name (in ``names`` order) that occurs in ``path``; None if none."""
    for i, name in enumerate(names):
        if name in path:
            return i
    return None


def test_positions(n: int, every: int = 10) -> set[int]:
    """Positions of a class's ``n`` files that go to test (seed ``splitTrainTest``)."""
    k = int(n / every)
    return set(np.linspace(0, n, k, endpoint=False).astype(int).tolist()) if k else set()


def read_mocap_sheets(card: dict[str, Any], root: Path, problems: list | None = None, *,
                      allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one skeleton sample per sheet of the card's action (``[layout] action``).

    Problems: the action folder missing, a path that names no class; folders and sheets outside
    the root, broken or looping links (:func:`pipelines.readers.base.confine`; links out allowed
    with ``allow_outside_root``).

    Raises:
        CardError: ``[layout]`` lacks ``action``.
        CorpusError: a problem while ``problems`` is None.
    """
    action = require(card, "layout", "action")
    extensions = card["layout"].get("extensions", [".xls", ".csv"])
    names = list(card["labels"]["names"])
    folder = confine(root, Path(root) / action, problems, allow_outside_root=allow_outside_root,
                     source=f"{card['card_path']} [layout] action")
    if folder is None:
        return
    if not folder.is_dir():
        fail(problems, "missing_file", folder, f"action folder {action!r} is missing")
        return
    by_class: dict[int, list[Path]] = defaultdict(list)
    for sheet in media_files(folder, extensions, root, problems, allow_outside_root=allow_outside_root):
        index = label_from_path(rel(root, sheet), names)
        if index is None:
            fail(problems, "unknown_label", sheet, f"the path names none of the classes {names}")
            continue
        by_class[index].append(sheet)
    every = int(card.get("splits", {}).get("test_every", 10))
    joints = int(card.get("skeleton", {}).get("joints", 28))
    for index in sorted(by_class):
        files = sorted(by_class[index])
        test = test_positions(len(files), every)
        for pos, sheet in enumerate(files):
            yield make_sample(card, root, sheet, "test" if pos in test else "train", index,
                              meta={"action": action, "joints": joints})
