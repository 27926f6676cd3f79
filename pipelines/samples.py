"""The ``Sample`` record every corpus reader yields (:mod:`pipelines.readers`).

This module imports no reader: the readers import :class:`Sample` from here, and
:func:`pipelines.readers.read_samples` runs the reader of a card's layout kind.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One unit of extraction: a video or a window of one, an image, an image sequence, or a
    skeleton sequence (an entry inside a gait file or one mocap sheet).

    Attributes:
        corpus: corpus name (card ``corpus.name``).
        sample_id: stable id, unique in the corpus: ``<corpus>/<relative path>`` plus
            ``#<start_ms>-<end_ms>`` for windows, ``#<key>`` for an entry inside a file, or
            ``#<frame>-<person>`` for one annotated face of an episode. Shard assignment is a pure
            function of it.
        video_id: ``<corpus>/<relative path>`` of the source media (video, image, image-sequence
            folder, gait file or sheet).
        uri: absolute path of the media file (the folder for an image sequence).
        split: ``train``, ``val`` or ``test``.
        label: class index into the card's ``labels.names``; for multi-label corpora the first
            active class, or -1 when no class is active (see ``targets``).
        label_name: the class name ("" when ``label`` is -1).
        start_s, end_s: window bounds in seconds (``end_s`` None = to the end of the video).
        meta: free-form extra fields from the card or the annotation.
        modality: ``video``, ``images`` or ``skeleton`` (card ``corpus.modality``); decides
            the pipeline stage the sample enters at.
        key: entry inside ``uri`` (HDF5 dataset name of a gait; None otherwise).
        frames: absolute paths of the images of an image sequence (or the one image), in
            temporal order; empty for videos and skeletons.
        frame_indices: explicit 0-based video frame numbers to decode (empty = sample the window
            ``start_s`` .. ``start_s + length_s`` at the card's rate).
        labels: names of the active classes (multi-label corpora; single-label: ``(label_name,)``).
        targets: float per class of ``labels.names`` (multi-hot, or a soft distribution such as
            RAF-DB compound / multi); empty when the corpus has one hard label.
        box: annotated face box ``(x1, y1, x2, y2)`` in source pixels, or None.
        valence, arousal: continuous annotations in the corpus's own scale, or None.
        fold: cross-validation fold (1-based) of the sample, or None.
    """

    corpus: str
    sample_id: str
    video_id: str
    uri: str
    split: str
    label: int
    label_name: str
    start_s: float = 0.0
    end_s: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    modality: str = "video"
    key: str | None = None
    frames: tuple[str, ...] = ()
    frame_indices: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    targets: tuple[float, ...] = ()
    box: tuple[float, float, float, float] | None = None
    valence: float | None = None
    arousal: float | None = None
    fold: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The sample as a plain dict (JSON-able; tuples become lists only when serialised)."""
        return asdict(self)
