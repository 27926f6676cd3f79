"""Reader for corpora annotated by CSV tables: one table per split, one row per media file.

EmoReact (Nojavanasghari et al., ICMI 2016) as the seed uses it (seed spec 3.1): ``train.csv``,
``val.csv``, ``test.csv`` with an unnamed index column, ``video`` and 8 binary emotion columns +
``Valence``; the videos in ``AllVideos/``. AffectNet (Mollahosseini et al., 2017; seed spec 4.2):
``training.csv`` / ``validation.csv`` with ``subDirectory_filePath``, the face box
(``face_x, face_y, face_width, face_height``), ``expression`` (11 codes), ``valence``,
``arousal``; the images under ``Manually_Annotated_Images/``.

Card ``[layout]`` keys: ``tables`` (our split -> CSV file), ``media_dir``, ``path_column``;
either ``label_columns`` (multi-label: one 0/1 column per class, in ``labels.names`` order) or
``label_column`` (one code per row, mapped by ``[labels.codes]``); optional ``box_columns``
(x, y, width, height in pixels), ``valence_column``, ``arousal_column``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

from pipelines.cards import CardError
from pipelines.readers.base import confine, fail, finite_or_none, make_sample, require, resolve_code
from pipelines.samples import Sample


def _box(row: dict[str, str], columns: list[str] | None) -> tuple | None:
    """(x1, y1, x2, y2) from an (x, y, w, h) box in ``columns``; None when absent or NULL."""
    if not columns:
        return None
    values = [finite_or_none(row.get(c)) for c in columns]
    if any(v is None for v in values) or values[2] <= 0 or values[3] <= 0:
        return None
    x, y, w, h = values
    return (x, y, x + w, y + h)


def _multi_hot(card, row, columns, problems, table, line) -> tuple[tuple[float, ...], list[str]] | None:
    """Targets and active names of a multi-label row; reports non-0/1 values."""
    targets = []
    for name in columns:
        value = (row.get(name) or "").strip()
        if value not in ("0", "1", "0.0", "1.0"):
            fail(problems, "unknown_label", table, f"line {line}: column {name!r} is {value!r}, expected 0 or 1")
            return None
        targets.append(float(value))
    active = [n for n, t in zip(card["labels"]["names"], targets) if t]
    return tuple(targets), active


def _rows(table: Path, problems: list | None, needed: list[str]) -> list[tuple[int, dict]] | None:
    """``(line number, row)`` pairs of a CSV table; reports a missing / unreadable table."""
    if not table.is_file():
        fail(problems, "missing_annotation", table, "annotation table is missing")
        return None
    try:
        with open(table, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        origin: list[int] = []  # file line number of each line the CSV parser sees

        def clean():
            for n, text in enumerate(lines, 1):
                if "\x00" in text:  # the csv module refuses the whole table; only this row is bad
                    fail(problems, "bad_value", table, f"line {n} holds a NUL byte; its row is left out")
                    continue
                origin.append(n)
                yield text

        reader = csv.DictReader(clean())
        header = reader.fieldnames or []
        missing = [c for c in needed if c not in header]
        if missing:
            fail(problems, "unreadable_annotation", table, f"header lacks columns {missing} (has {header})")
            return None
        return [(origin[reader.line_num - 1], row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        fail(problems, "unreadable_annotation", table, f"cannot parse CSV: {exc}")
        return None


def read_csv_table(card: dict[str, Any], root: Path, problems: list | None = None, *,
                   allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one sample per annotated row of the card's split tables.

    Multi-label rows get ``targets`` (multi-hot over ``labels.names``) and ``label`` = the first
    active class (-1 when none is active, a frequent case in EmoReact). Single-label rows whose
    code the card maps to a class outside the chosen order (AffectNet contempt, none,
    uncertain, non-face in the 7-class order) are left out silently; unknown codes are problems.
    Media that do not exist are ``missing_file`` problems. Every table, the media folder and
    every media path of a row are confined to ``root`` (:func:`pipelines.readers.base.confine`):
    ``../`` or absolute names, links out of the root (unless ``allow_outside_root``), broken or
    looping links are problems and their rows are left out.

    Raises:
        CardError: ``[layout]`` lacks ``tables``, ``media_dir`` or ``path_column``, or has
            neither ``label_columns`` nor ``label_column``.
        CorpusError: a problem while ``problems`` is None.
    """
    layout = card.get("layout", {})
    tables = require(card, "layout", "tables")
    media_name = require(card, "layout", "media_dir")
    media_dir = confine(root, Path(root) / media_name, problems, allow_outside_root=allow_outside_root,
                        source=f"{card['card_path']} [layout] media_dir")
    if media_dir is None:
        return
    path_col = require(card, "layout", "path_column")
    multi = layout.get("label_columns")
    single = layout.get("label_column")
    if not multi and not single:
        raise CardError(f"{card['card_path']}: [layout] needs label_columns or label_column")
    box_cols = layout.get("box_columns")
    val_col, aro_col = layout.get("valence_column"), layout.get("arousal_column")
    needed = [path_col] + (list(multi) if multi else [single]) + list(box_cols or [])
    needed += [c for c in (val_col, aro_col) if c]
    modality = card["corpus"].get("modality", "video")
    for split, table_name in tables.items():
        table = confine(root, Path(root) / table_name, problems, allow_outside_root=allow_outside_root,
                        source=f"{card['card_path']} [layout] tables")
        if table is None:
            continue
        rows = _rows(table, problems, needed)
        for line, row in rows or []:
            name = (row.get(path_col) or "").strip()
            if not name:
                fail(problems, "unreadable_annotation", table, f"line {line}: empty {path_col!r}")
                continue
            media = confine(root, media_dir / name, problems, allow_outside_root=allow_outside_root,
                            source=f"{table_name} line {line}")
            if media is None:
                continue
            extra: dict[str, Any] = {"meta": {"table": table_name, "line": line}}
            if multi:
                got = _multi_hot(card, row, multi, problems, table, line)
                if got is None:
                    continue
                extra["targets"], active = got
                extra["labels"] = tuple(active)
                label = card["labels"]["names"].index(active[0]) if active else -1
            else:
                code = (row.get(single) or "").strip()
                _, label = resolve_code(card, code)
                if label is None:
                    continue  # known code, not used by this label order
                if label < 0:
                    fail(problems, "unknown_label", table, f"line {line}: {single} {code!r} is not a known code "
                         f"({sorted(card['labels'].get('codes', {}))})")
                    continue
            if not media.is_file():
                fail(problems, "missing_file", media, f"listed in {table_name} line {line} but not found")
                continue
            if box_cols:
                extra["box"] = _box(row, box_cols)
            if val_col:
                extra["valence"] = finite_or_none(row.get(val_col))
            if aro_col:
                extra["arousal"] = finite_or_none(row.get(aro_col))
            if modality == "images":
                extra["frames"] = (str(media.resolve()),)
            yield make_sample(card, root, media, split, label, **extra)
