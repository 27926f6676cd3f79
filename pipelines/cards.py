"""Corpus cards: the declarative ``datasets/<name>.toml`` files that describe each corpus."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CARDS_DIR = REPO / "datasets"


class CardError(ValueError):
    """A corpus card is missing or malformed; the message names the file and the problem."""


def available_cards() -> list[str]:
    """Names of the corpus cards shipped in ``datasets/``."""
    return sorted(p.stem for p in CARDS_DIR.glob("*.toml"))


def load_card(name_or_path: str | Path, label_order: str | None = None) -> dict[str, Any]:
    """Load a corpus card by name (``sample``) or path.

    Args:
        label_order: name of one of the card's ``[labels.orders]`` tables to use instead of
            the card's ``labels.order`` (corpora whose sources disagree on the order, e.g.
            EWalk, seed spec 2.6); None = the card's choice.

    Returns:
        The parsed TOML as a dict, with ``card_path`` added and ``labels.names`` resolved
        from ``labels.orders[labels.order]`` when the card declares orders.

    Raises:
        CardError: unknown name, unreadable file, TOML syntax error, a missing required
            section (``corpus``, ``labels``), an unknown label order or a malformed
            ``labels.names``.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = CARDS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        from pipelines.cli import unknown

        if Path(name_or_path).suffix == ".toml":
            raise CardError(f"no corpus card {path}")
        raise CardError(unknown("dataset", str(name_or_path), available_cards()) + f" (cards in {CARDS_DIR})")
    try:
        card = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"{path}: cannot read card: {exc}") from exc
    for section in ("corpus", "labels"):
        if section not in card:
            raise CardError(f"{path}: missing [{section}] section")
    card["card_path"] = str(path)
    _resolve_label_order(card, label_order)
    return card


def _resolve_label_order(card: dict[str, Any], override: str | None) -> None:
    """Set ``labels.names`` from ``labels.orders[order]``; check the names are unique strings."""
    labels, path = card["labels"], card["card_path"]
    orders = labels.get("orders", {})
    order = override or labels.get("order")
    if override and override not in orders:
        raise CardError(f"{path}: unknown label order {override!r} (card orders: {sorted(orders)})")
    if order:
        if order not in orders:
            raise CardError(f"{path}: labels.order {order!r} is not in [labels.orders] ({sorted(orders)})")
        labels["names"] = list(orders[order])
        labels["order"] = order
    names = labels.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise CardError(f"{path}: labels.names must be a non-empty list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise CardError(f"{path}: labels.names has duplicates: {names}")


def card_section(card: dict[str, Any], name: str) -> dict[str, Any]:
    """A required card table (``[layout]``, ``[splits]`` ...).

    Raises:
        CardError: the table is missing or not a table.
    """
    section = card.get(name)
    if not isinstance(section, dict):
        raise CardError(f"{card['card_path']}: missing [{name}] section")
    return section


def corpus_root(card: dict[str, Any], root: str | Path | None) -> Path:
    """The corpus root: ``root`` when given, else the card's ``corpus.root`` (repo-relative)."""
    if root:
        return Path(root).expanduser().resolve()
    declared = Path(card["corpus"].get("root", "."))
    return declared if declared.is_absolute() else REPO / declared
