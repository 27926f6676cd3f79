"""The ``Sample`` record every corpus reader yields, the reader for ``segments`` cards and
:func:`read_samples`, which runs the reader of a card's layout kind.

The table of readers by layout kind is :data:`pipelines.readers.READERS` (``segments``
included). This module does not import :mod:`pipelines.readers` at import time (the readers
import :class:`Sample` from here): :func:`read_samples` looks the table up when called, and
``pipelines.samples.READERS`` still names it for older callers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .cards import CardError


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


def _window_starts(start: float, end: float, length: float, stride: float) -> list[float]:
    starts, t = [], start
    while t + length <= end + 1e-6:
        starts.append(round(t, 3))
        t += stride
    return starts


def read_segments(card: dict[str, Any], root: Path, problems: list | None = None, *,
                  allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield window samples from a ``layout = "segments"`` card.

    Each ``[[segments]]`` entry names a video (relative to ``root``), a label and a time range;
    it is cut into windows of ``windows.length_s`` every ``stride_s`` seconds. Window ``n`` of a
    segment goes to ``test`` when ``n % test_every == test_every - 1``, else to ``train``.

    A segment whose video path leaves ``root`` (``..``, absolute, a link out unless
    ``allow_outside_root``, a broken or looping link) is reported through
    :func:`pipelines.readers.base.confine` (raises ``CorpusError`` when ``problems`` is None).

    Raises:
        CardError: a segment names an unknown label or lacks a field.
    """
    from pipelines.readers.base import confine

    names = card["labels"]["names"]
    win = card["windows"]
    corpus = card["corpus"]["name"]
    every = int(win.get("test_every", 0))
    for seg in card.get("segments", []):
        try:
            video, label_name = seg["video"], seg["label"]
            starts = _window_starts(float(seg["start_s"]), float(seg["end_s"]),
                                    float(win["length_s"]), float(seg["stride_s"]))
        except KeyError as exc:
            raise CardError(f"{card['card_path']}: segment {seg} lacks {exc}") from exc
        if label_name not in names:
            raise CardError(f"{card['card_path']}: segment label {label_name!r} not in {names}")
        if confine(root, Path(root) / str(video), problems, allow_outside_root=allow_outside_root,
                   source=f"{card['card_path']} [[segments]]") is None:
            continue
        for n, start in enumerate(starts):
            end = round(start + float(win["length_s"]), 3)
            split = "test" if every and n % every == every - 1 else "train"
            yield Sample(
                corpus=corpus,
                sample_id=f"{corpus}/{video}#{int(start * 1000):06d}-{int(end * 1000):06d}",
                video_id=f"{corpus}/{video}",
                uri=str((root / video).resolve()),
                split=split,
                label=names.index(label_name),
                label_name=label_name,
                start_s=start,
                end_s=end,
            )


def __getattr__(name: str):
    if name == "READERS":  # the table lives in pipelines.readers; looked up lazily (no import circle)
        from pipelines.readers import READERS

        return READERS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from pipelines.readers import READERS
    from pipelines.readers.base import dedupe

    layout = card["corpus"].get("layout")
    if layout not in READERS:
        raise CardError(f"{card['card_path']}: layout {layout!r} has no reader (known: {sorted(READERS)})")
    samples = READERS[layout](card, Path(root), problems, allow_outside_root=allow_outside_root)
    if layout == "segments":
        return list(samples)  # pipelines.extract screens segments and drops their repeats itself
    return dedupe(samples, problems)
