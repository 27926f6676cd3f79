"""The reader of ``layout = "segments"`` cards: labelled time segments of whole videos, cut into
windows (the shipped sample)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from pipelines.cards import CardError
from pipelines.readers.base import confine
from pipelines.samples import Sample
from pipelines.sampling import segment_window_starts


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
    names = card["labels"]["names"]
    win = card["windows"]
    corpus = card["corpus"]["name"]
    every = int(win.get("test_every", 0))
    for seg in card.get("segments", []):
        try:
            video, label_name = seg["video"], seg["label"]
            starts = segment_window_starts(float(seg["start_s"]), float(seg["end_s"]),
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
