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
=================  =======================================================  ==================

``segments`` (the shipped sample) is read by :func:`pipelines.samples.read_segments`.

:data:`READERS` is the one table of readers by layout kind; :func:`pipelines.samples.read_samples`
looks it up when called (this package imports :mod:`pipelines.samples`, never the other way
round at import time). Every reader is ``reader(card, root, problems, *, allow_outside_root=False)``.
"""
from __future__ import annotations

from pipelines.readers.class_folders import read_class_folders
from pipelines.readers.csv_table import read_csv_table
from pipelines.readers.gait_h5 import read_gait_h5
from pipelines.readers.image_sequences import read_image_sequences
from pipelines.readers.label_lists import read_label_lists
from pipelines.readers.mocap_sheets import read_mocap_sheets
from pipelines.readers.vtt_json import read_vtt_json
from pipelines.samples import read_segments

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
