"""A synthetic CAER tree as the corpus is distributed (``<root>/<split>/<Class>/<NNNN>.avi``),
made from real clips (every copy named ``.avi``, as CAER's are, whatever its container), with
optional planted corrupt files. Used by ``test_caer_tree.py`` (28 clips of the shared videos)
and ``test_readme_commands.py`` (a few shipped clips standing in for ``/data/CAER``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

CLASSES = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
SPLITS = ["train", "validation", "test"]
#: The planted corrupt files: (split, class, file name, kind).
CORRUPT = [("train", "Happy", "0900.avi", "truncated"),   # the first tenth of a clip
           ("test", "Sad", "0901.avi", "noise"),          # random bytes named .avi
           ("validation", "Fear", "0902.avi", "zeros")]   # a clip's header, then zeros


def build_caer_tree(root: Path, sources: Sequence[Path], n_good: int, n_corrupt: int = 3,
                    corrupt_source: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Write ``n_good`` clips cycled from ``sources`` (clip i: ``SPLITS[i % 3]/CLASSES[i % 7]/i.avi``)
    and the first ``n_corrupt`` files of :data:`CORRUPT` (made from ``corrupt_source``, default
    the first source) under ``root``; returns ``(good paths, corrupt paths)``."""
    good = []
    for i in range(n_good):
        dest = root / SPLITS[i % 3] / CLASSES[i % 7] / f"{i:04d}.avi"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(Path(sources[i % len(sources)]).read_bytes())
        good.append(dest)
    data = Path(corrupt_source or sources[0]).read_bytes()
    bad = []
    for split, cls, name, kind in CORRUPT[:n_corrupt]:
        dest = root / split / cls / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "truncated":
            dest.write_bytes(data[: len(data) // 10])
        elif kind == "noise":
            dest.write_bytes(os.urandom(200_000))
        else:
            dest.write_bytes(data[:4096] + bytes(len(data) - 4096))
        bad.append(dest)
    return good, bad
