"""Shared pieces of the corpus readers: problems, label look-up, ids and the sample factory.

Every reader has the signature ``reader(card, root, problems) -> Iterator[Sample]``. A bad entry
(missing media, unknown label, unreadable annotation) is reported through :func:`fail`: with
``problems=None`` it raises :class:`CorpusError` (a run that must not go on), with a list it is
appended as a :class:`Problem` and the reader skips the entry and continues, so
``python -m pipelines.corpora check`` can report every problem of a copy at once and an
extraction run can write them to ``errors.jsonl`` while the good samples still land.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pipelines.cards import CardError
from pipelines.samples import Sample

#: Problem kinds, in the order ``check`` prints them.
KINDS = ("missing_file", "missing_annotation", "unreadable_annotation", "unknown_label", "duplicate_id", "truncated_media",
         "bad_value", "count_mismatch")

#: Split names every reader maps the corpus's own names to.
SPLITS = ("train", "val", "test")


class CorpusError(ValueError):
    """A local copy of a corpus does not match its card; the message names the file and reason."""


@dataclass(frozen=True)
class Problem:
    """One problem of a local corpus copy.

    Attributes:
        kind: one of :data:`KINDS`.
        path: the file (or folder) concerned, absolute or relative to the root as found.
        reason: what is wrong, in words.
        sample_id: the sample concerned, when known.
    """

    kind: str
    path: str
    reason: str
    sample_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.kind}] {self.path}: {self.reason}"


def fail(problems: list | None, kind: str, path: str | Path, reason: str, sample_id: str | None = None) -> None:
    """Report one problem: append it to ``problems``, or raise when ``problems`` is None.

    Raises:
        CorpusError: ``problems`` is None.
        ValueError: unknown ``kind`` (a programming error).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown problem kind {kind!r}")
    problem = Problem(kind, str(path), reason, sample_id)
    if problems is None:
        raise CorpusError(str(problem))
    problems.append(problem)


def dedupe(samples: Iterable[Sample], problems: list | None) -> list[Sample]:
    """Drop repeated ``sample_id`` s (the first one stays) and report each repeat.

    Raises:
        CorpusError: a duplicate while ``problems`` is None.
    """
    seen: dict[str, Sample] = {}
    for s in samples:
        if s.sample_id in seen:
            fail(problems, "duplicate_id", s.uri, f"sample id {s.sample_id!r} appears again "
                 f"(first from {seen[s.sample_id].uri})", s.sample_id)
            continue
        seen[s.sample_id] = s
    return list(seen.values())


def label_names(card: dict[str, Any]) -> list[str]:
    """The card's class names in model-output order (``labels.names``, already resolved)."""
    return list(card["labels"]["names"])


def label_index(card: dict[str, Any], name: str) -> int | None:
    """Index of class ``name`` in ``labels.names``, matched case-insensitively; None if absent."""
    lowered = [n.lower() for n in label_names(card)]
    return lowered.index(name.lower()) if name.lower() in lowered else None


def code_table(card: dict[str, Any]) -> dict[str, str]:
    """``[labels.codes]``: stored label code (as a string) -> class name ("" = known, dropped).

    Codes whose name is not in ``labels.names`` are dropped too (e.g. AffectNet contempt in the
    7-class order). An absent table means the stored value is the class name itself.
    """
    return {str(k): str(v) for k, v in card["labels"].get("codes", {}).items()}


def resolve_code(card: dict[str, Any], code: str) -> tuple[str, int | None]:
    """Map a stored label to ``(name, index)``.

    Returns:
        ``(name, index)`` for a used class; ``(name, None)`` for a known code that the chosen
        label order drops; ``("", -1)`` for a code the card does not know (unknown label).
    """
    codes = code_table(card)
    code = str(code).strip()
    if codes:
        if code not in codes:
            try:  # "3.0000000e+00" (CK+) and "3" name the same code
                code = str(int(float(code)))
            except ValueError:
                return "", -1
            if code not in codes:
                return "", -1
        name = codes[code]
    else:
        name = code
    index = label_index(card, name) if name else None
    if index is None and not codes:
        return "", -1
    return (label_names(card)[index] if index is not None else name), index


def split_of(card: dict[str, Any], corpus_split: str) -> str | None:
    """Our split name for the corpus's own split name (card ``[splits]`` table), or None."""
    table = card.get("splits", {}).get("names", {})
    for ours, theirs in table.items():
        if corpus_split == theirs or (isinstance(theirs, list) and corpus_split in theirs):
            return ours
    return corpus_split if corpus_split in SPLITS else None


def rel(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (the path itself when outside the root)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else None (``NULL``, empty, NaN)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def make_sample(card: dict[str, Any], root: Path, path: Path, split: str, label: int, *,
                suffix: str = "", **fields) -> Sample:
    """A :class:`Sample` of ``card``'s corpus for the media at ``path``.

    ``sample_id = <corpus>/<path relative to root><suffix>``; ``video_id`` without the suffix.
    ``label = -1`` gives ``label_name = ""``. Other :class:`Sample` fields pass through.
    """
    corpus = card["corpus"]["name"]
    relative = rel(root, path)
    names = label_names(card)
    name = names[label] if label >= 0 else ""
    fields.setdefault("labels", (name,) if name else ())
    return Sample(corpus=corpus, sample_id=f"{corpus}/{relative}{suffix}", video_id=f"{corpus}/{relative}",
                  uri=str(Path(path).resolve()), split=split, label=label, label_name=name,
                  modality=card["corpus"].get("modality", "video"), **fields)


def require(card: dict[str, Any], section: str, key: str):
    """``card[section][key]``; raises :class:`CardError` naming the card when absent."""
    try:
        return card[section][key]
    except KeyError as exc:
        raise CardError(f"{card['card_path']}: [{section}] lacks {key!r}") from exc


def media_files(folder: Path, extensions: Iterable[str]) -> Iterator[Path]:
    """Files under ``folder`` (sorted, recursive) whose suffix is one of ``extensions``."""
    exts = {e.lower() for e in extensions}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in exts:
            yield p
