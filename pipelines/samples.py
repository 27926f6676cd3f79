"""The ``Sample`` record every corpus reader yields, and the reader for ``segments`` cards."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .cards import CardError


@dataclass(frozen=True)
class Sample:
    """One unit of extraction: a video, or a time window of one.

    Attributes:
        corpus: corpus name (card ``corpus.name``).
        sample_id: stable id, unique in the corpus: ``<corpus>/<relative path>`` plus
            ``#<start_ms>-<end_ms>`` for windows. Shard assignment is a pure function of it.
        video_id: ``<corpus>/<relative path>`` of the source video.
        uri: absolute path of the media file.
        split: ``train``, ``val`` or ``test``.
        label: class index into the card's ``labels.names``.
        label_name: the class name.
        start_s, end_s: window bounds in seconds (``end_s`` None = to the end of the video).
        meta: free-form extra fields from the card.
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _window_starts(start: float, end: float, length: float, stride: float) -> list[float]:
    starts, t = [], start
    while t + length <= end + 1e-6:
        starts.append(round(t, 3))
        t += stride
    return starts


def read_segments(card: dict[str, Any], root: Path) -> Iterator[Sample]:
    """Yield window samples from a ``layout = "segments"`` card.

    Each ``[[segments]]`` entry names a video (relative to ``root``), a label and a time range;
    it is cut into windows of ``windows.length_s`` every ``stride_s`` seconds. Window ``n`` of a
    segment goes to ``test`` when ``n % test_every == test_every - 1``, else to ``train``.

    Raises:
        CardError: a segment names an unknown label or lacks a field.
    """
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


READERS = {"segments": read_segments}


def read_samples(card: dict[str, Any], root: Path) -> list[Sample]:
    """All samples of a corpus, read by the reader of its card's ``corpus.layout``.

    Raises:
        CardError: unknown layout kind, or the reader's own card errors.
    """
    layout = card["corpus"].get("layout")
    if layout not in READERS:
        raise CardError(f"{card['card_path']}: layout {layout!r} has no reader (known: {sorted(READERS)})")
    return list(READERS[layout](card, Path(root)))
