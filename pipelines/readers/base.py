"""Shared pieces of the corpus readers: problems, label look-up, ids and the sample factory.

Every reader has the signature ``reader(card, root, problems, *, allow_outside_root=False) ->
Iterator[Sample]``. A bad entry (missing media, unknown label, unreadable annotation, a path
that leaves the root, a broken or looping link) is reported through :func:`fail`: with
``problems=None`` it raises :class:`CorpusError` (a run that must not go on), with a list it is
appended as a :class:`Problem` and the reader skips the entry and continues, so
``python -m pipelines.corpora check`` can report every problem of a copy at once and an
extraction run can write them to ``errors.jsonl`` while the good samples still land.

Every path a reader takes from a card, a CSV / JSON / list annotation or a folder listing goes
through :func:`confine` before anything opens it: a path that names a place outside the corpus
root (``../../outside/secret.png``, ``/etc/hostname``) is an ``outside_root`` problem, always; a
symlink inside the root that resolves outside it is one too unless ``allow_outside_root`` is
set (``read_samples(..., allow_outside_root=True)``, for copies assembled from links into
another disk); a broken link is a ``broken_link`` problem, a link loop a ``link_loop`` problem,
a NUL byte or a name longer than the file system allows a ``bad_value`` problem.
"""
from __future__ import annotations

import errno
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pipelines.cards import CardError
from pipelines.samples import Sample

#: Problem kinds, in the order ``check`` prints them.
KINDS = ("missing_file", "missing_annotation", "unreadable_annotation", "unknown_label", "duplicate_id", "truncated_media",
         "bad_value", "count_mismatch", "outside_root", "broken_link", "link_loop")

#: Longest file-name component (bytes) and path the readers try to open (Linux NAME_MAX, PATH_MAX).
NAME_MAX, PATH_MAX = 255, 4096

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
    """``path`` relative to ``root`` in POSIX form: as written (a link inside the root keeps its
    own name), else resolved, else the path itself when outside the root."""
    lexical = Path(os.path.normpath(os.path.abspath(path)))
    try:
        return lexical.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        pass
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _printable(path) -> str:
    return str(path).replace("\x00", "\\x00")


def confine(root: Path, path: str | Path, problems: list | None, *, allow_outside_root: bool = False,
            source: str = "", sample_id: str | None = None) -> Path | None:
    """``path`` (a file or folder under ``root``, built from a card, an annotation or a listing)
    when it may be read, else None after reporting why through :func:`fail`.

    Refused (and reported): a NUL byte or an over-long name (``bad_value``); a path that names a
    place outside ``root`` after normalising ``..`` (``outside_root``, whatever the flag); a
    symlink (the path or a folder on it) that resolves outside ``root`` (``outside_root``, unless
    ``allow_outside_root``); a link loop (``link_loop``); a link to nothing (``broken_link``). A
    path that simply does not exist is returned: the caller reports it in its own words.

    Args:
        source: where the path came from (``training.csv line 5``), added to the reason.

    Raises:
        CorpusError: a problem while ``problems`` is None.
    """
    where = f" (from {source})" if source else ""
    text = str(path)
    if "\x00" in text:
        fail(problems, "bad_value", _printable(text), f"path holds a NUL byte{where}", sample_id)
        return None
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in Path(text).parts), default=0)
    if longest > NAME_MAX or len(text.encode("utf-8", "surrogateescape")) > PATH_MAX:
        fail(problems, "bad_value", text[:200] + ("..." if len(text) > 200 else ""),
             f"name longer than the file system allows ({longest} bytes in one part, {NAME_MAX} max){where}", sample_id)
        return None
    root_abs = Path(os.path.abspath(root))
    lexical = Path(os.path.normpath(os.path.abspath(text)))
    if not lexical.is_relative_to(root_abs):
        fail(problems, "outside_root", text, f"names a path outside the corpus root {root_abs}{where}", sample_id)
        return None
    try:
        real = Path(text).resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError for a link loop
        if isinstance(exc, OSError) and exc.errno not in (errno.ELOOP, None):
            fail(problems, "bad_value", text, f"cannot resolve: {exc}{where}", sample_id)
        else:
            fail(problems, "link_loop", text, f"symbolic link loop{where}", sample_id)
        return None
    if not os.path.exists(text):
        if os.path.lexists(text) or _dangling_parent(root_abs, lexical):
            target = os.readlink(text) if os.path.islink(text) else str(real)
            fail(problems, "broken_link", text, f"symbolic link to {target}, which does not exist{where}", sample_id)
            return None
        return Path(text)
    if not allow_outside_root and not real.is_relative_to(Path(root).resolve()):
        fail(problems, "outside_root", text, f"is a symbolic link that leads outside the corpus root to {real}"
             f"{where}; pass allow_outside_root (extract: --allow-outside-root) to read it", sample_id)
        return None
    return Path(text)


def _dangling_parent(root: Path, lexical: Path) -> bool:
    """A folder on the way from ``root`` to ``lexical`` is a link to nothing."""
    for parent in list(lexical.relative_to(root).parents)[:-1]:
        folder = root / parent
        if os.path.islink(folder) and not os.path.exists(folder):
            return True
    return False


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


def media_files(folder: Path, extensions: Iterable[str], root: Path | None = None, problems: list | None = None,
                *, allow_outside_root: bool = False) -> Iterator[Path]:
    """Files under ``folder`` (sorted, recursive) whose suffix is one of ``extensions``.

    Symbolic links (files or folders) go through :func:`confine` against ``root`` (default
    ``folder``): links that leave the root (unless ``allow_outside_root``), lead nowhere or loop
    are reported, not skipped silently; a linked folder inside the root is walked like a folder.
    A folder that cannot be listed is a ``missing_file`` problem.
    """
    exts = {e.lower() for e in extensions}
    root = Path(folder if root is None else root)
    found: list[Path] = []

    def walk(d: Path, ancestors: frozenset) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            fail(problems, "missing_file", d, f"cannot list folder: {exc.strerror or exc}")
            return
        for e in entries:
            p = Path(e.path)
            if e.is_symlink():
                is_media = p.suffix.lower() in exts
                if not is_media and not os.path.isdir(p) and os.path.exists(p):
                    continue  # a link to a file that is not media: not ours to judge
                if confine(root, p, problems, allow_outside_root=allow_outside_root,
                           source=f"a link in {rel(root, d) or '.'}") is None:
                    continue
                if os.path.isdir(p):
                    real = p.resolve()
                    if real in ancestors:
                        fail(problems, "link_loop", p, f"links back to the folder {real} it is in")
                        continue
                    walk(p, ancestors | {real})
                elif os.path.isfile(p) and is_media:
                    found.append(p)
            elif e.is_dir(follow_symlinks=False):
                walk(p, ancestors | {p.resolve()})
            elif e.is_file(follow_symlinks=False) and p.suffix.lower() in exts:
                found.append(p)

    walk(Path(folder), frozenset({Path(folder).resolve()}))
    yield from sorted(found)
