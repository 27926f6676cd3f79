"""Corpus readers by layout kind; each yields :class:`pipelines.samples.Sample` records.

=================  =======================================================  ==================
layout kind        module                                                   corpora
=================  =======================================================  ==================
class_folders      :mod:`pipelines.readers.class_folders`                   CAER
csv_table          :mod:`pipelines.readers.csv_table`                       EmoReact, AffectNet
label_lists        :mod:`pipelines.readers.label_lists`                     RAF-DB
gait_h5            :mod:`pipelines.readers.gait_h5`                         EWalk, ELMD
mocap_sheets       :mod:`pipelines.readers.mocap_sheets`                    Emilya
image_sequences    :mod:`pipelines.readers.image_sequences`                 CK+
vtt_json           :mod:`pipelines.readers.vtt_json`                        Friends (VTT)

segments           :mod:`pipelines.readers.segments`                        the shipped sample
=================  =======================================================  ==================

:data:`READERS` is the one table of readers by layout kind and :func:`read_samples` runs the
one a card names. Every reader is ``reader(card, root, problems, *, allow_outside_root=False)``
and yields :class:`pipelines.samples.Sample` (a module that imports no reader).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.cards import CardError
from pipelines.readers.class_folders import read_class_folders
from pipelines.readers.csv_table import read_csv_table
from pipelines.readers.gait_h5 import read_gait_h5
from pipelines.readers.image_sequences import read_image_sequences
from pipelines.readers.label_lists import read_label_lists
from pipelines.readers.mocap_sheets import read_mocap_sheets
from pipelines.readers.vtt_json import read_vtt_json
from pipelines.readers.base import dedupe
from pipelines.readers.segments import read_segments
from pipelines.samples import Sample

READERS = {
    "segments": read_segments,
    "class_folders": read_class_folders,
    "csv_table": read_csv_table,
    "label_lists": read_label_lists,
    "gait_h5": read_gait_h5,
    "mocap_sheets": read_mocap_sheets,
    "image_sequences": read_image_sequences,
    "vtt_json": read_vtt_json,
}
"""Reader per ``corpus.layout`` kind: ``reader(card, root, problems, *, allow_outside_root=False)``
yields Samples. ``problems`` is None (raise :class:`pipelines.cards.CardError` /
:class:`pipelines.readers.base.CorpusError` on the first bad entry) or a list that collects
:class:`pipelines.readers.base.Problem` records while the reader skips the bad entries."""


def read_samples(card: dict[str, Any], root: Path, problems: list | None = None, *,
                 allow_outside_root: bool = False) -> list[Sample]:
    """All samples of a corpus, read by the reader of its card's ``corpus.layout``
    (:data:`pipelines.readers.READERS`).

    Args:
        problems: when a list, bad entries (missing media, unknown labels, unreadable
            annotations, duplicate ids, paths outside the root, broken or looping links) are
            appended to it as :class:`pipelines.readers.base.Problem` and left out; when None the
            first one raises.
        allow_outside_root: read media through symbolic links that lead outside ``root``
            (refused by default). Paths that name a place outside the root (``../``, absolute)
            are refused whatever this says.

    Raises:
        CardError: unknown layout kind, or the reader's own card errors.
        pipelines.readers.base.CorpusError: a bad entry while ``problems`` is None.
    """
    layout = card["corpus"].get("layout")
    if layout not in READERS:
        raise CardError(f"{card['card_path']}: layout {layout!r} has no reader (known: {sorted(READERS)})")
    samples = READERS[layout](card, Path(root), problems, allow_outside_root=allow_outside_root)
    if layout == "segments":
        return list(samples)  # pipelines.extract screens segments and drops their repeats itself
    return dedupe(samples, problems)
