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

``segments`` (the shipped sample) stays in :mod:`pipelines.samples`.
"""
from __future__ import annotations

from pipelines.readers.class_folders import read_class_folders
from pipelines.readers.csv_table import read_csv_table
from pipelines.readers.gait_h5 import read_gait_h5
from pipelines.readers.image_sequences import read_image_sequences
from pipelines.readers.label_lists import read_label_lists
from pipelines.readers.mocap_sheets import read_mocap_sheets
from pipelines.readers.vtt_json import read_vtt_json

READERS = {
    "class_folders": read_class_folders,
    "csv_table": read_csv_table,
    "label_lists": read_label_lists,
    "gait_h5": read_gait_h5,
    "mocap_sheets": read_mocap_sheets,
    "image_sequences": read_image_sequences,
    "vtt_json": read_vtt_json,
}

from pipelines import samples as _samples  # noqa: E402

_samples.READERS.update(READERS)
