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


def load_card(name_or_path: str | Path) -> dict[str, Any]:
    """Load a corpus card by name (``sample``) or path.

    Returns:
        The parsed TOML as a dict, with ``card_path`` added.

    Raises:
        CardError: unknown name, unreadable file, TOML syntax error or a missing required
            section (``corpus``, ``labels``).
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = CARDS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise CardError(f"no corpus card {path} (known cards: {', '.join(available_cards())})")
    try:
        card = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"{path}: cannot read card: {exc}") from exc
    for section in ("corpus", "labels"):
        if section not in card:
            raise CardError(f"{path}: missing [{section}] section")
    card["card_path"] = str(path)
    return card


def corpus_root(card: dict[str, Any], root: str | Path | None) -> Path:
    """The corpus root: ``root`` when given, else the card's ``corpus.root`` (repo-relative)."""
    if root:
        return Path(root).expanduser().resolve()
    declared = Path(card["corpus"].get("root", "."))
    return declared if declared.is_absolute() else REPO / declared
