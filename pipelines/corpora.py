"""``python -m pipelines.corpora``: validate a local copy of a corpus against its card.

``check <name> <root>`` reads the copy with the card's reader, collecting every problem
instead of stopping at the first: missing files, unknown labels, duplicate ids, unreadable
annotations, media that do not decode to the end (truncated), and the counts per split and
class against the published counts of the card's ``[counts]`` table. It prints one line per
problem (kind, file, reason), a table of the counts, and exits with status 1 when anything is
wrong (0 otherwise, 2 for a bad card). ``list`` prints the cards.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.cards import CardError, available_cards, corpus_root, load_card
from pipelines.isolated_decoder import IsolatedDecoder
from pipelines.readers.base import KINDS, Problem
from pipelines.readers.media import MediaError, verify_sample_media
from pipelines.readers import read_samples
from pipelines.samples import Sample


@dataclass
class CheckReport:
    """Result of :func:`check_corpus`.

    Attributes:
        corpus: card name. root: the folder checked.
        samples: the samples that read cleanly (bad ones are left out).
        problems: every problem found, in discovery order.
        counts: ``{split: {class: n}}`` of the good samples.
    """

    corpus: str
    root: str
    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "root": self.root, "samples": len(self.samples), "ok": self.ok,
                "problems": [p.to_dict() for p in self.problems], "counts": self.counts}


def count_samples(samples: list[Sample]) -> dict[str, dict[str, int]]:
    """``{split: {class name: n, "total": n}}`` (a multi-label sample counts once per active class)."""
    out: dict[str, Counter] = {}
    for s in samples:
        c = out.setdefault(s.split, Counter())
        c["total"] += 1
        for name in (s.labels or ((s.label_name,) if s.label_name else ())):
            c[name] += 1
    return {split: dict(c) for split, c in sorted(out.items())}


def compare_counts(card: dict[str, Any], counts: dict[str, dict[str, int]]) -> list[Problem]:
    """``count_mismatch`` problems for every published count (card ``[counts]``) that differs.

    ``[counts.all]`` is compared with the sum over splits. Classes outside the card's label
    order (e.g. AffectNet contempt in the 7-class order) are not compared.
    """
    published = card.get("counts", {})
    names = {n.lower(): n for n in card["labels"]["names"]}
    problems = []
    for split, table in published.items():
        if split == "all":
            got = Counter()
            for c in counts.values():
                got.update(c)
        else:
            got = Counter(counts.get(split, {}))
        for cls, expected in table.items():
            if cls != "total" and cls.lower() not in names:
                continue
            key = "total" if cls == "total" else names[cls.lower()]
            if got.get(key, 0) != int(expected):
                problems.append(Problem("count_mismatch", card["card_path"],
                                        f"{split}/{cls}: {got.get(key, 0)} found, {expected} published"))
    return problems


def check_corpus(name: str, root: str | Path | None = None, *, media: bool = True, counts: bool = True,
                 label_order: str | None = None) -> CheckReport:
    """Validate a local copy of corpus ``name`` (card name or path) at ``root``.

    Args:
        media: decode every media file completely (slow on a full corpus; off = annotations only);
            videos through the extraction's decoding path (PyAV in the isolated child process),
            so what ``check`` calls decodable is what ``extract`` decodes. Any failure reading a
            file (a decompression bomb, an oversized image, a decoder crash) is a problem of the
            copy, reported with the path, never a traceback.
        counts: compare with the card's published counts (off for partial copies).
        label_order: one of the card's ``[labels.orders]`` (corpora with disputed orders).

    Raises:
        CardError: the card is missing or malformed (not a problem of the copy).
    """
    card = load_card(name, label_order=label_order)
    folder = corpus_root(card, root)
    report = CheckReport(card["corpus"]["name"], str(folder))
    if not folder.is_dir():
        report.problems.append(Problem("missing_file", str(folder), "corpus root folder does not exist"))
        return report
    problems: list[Problem] = []
    samples = read_samples(card, folder, problems)
    if media:
        verdict: dict[str, str | None] = {}  # one decode per file (Friends: many faces per episode)
        good = []
        # videos decode as in extract: the pipeline's back-end in the isolated child process
        with IsolatedDecoder() as decoder:
            for s in samples:
                key = f"{s.uri}#{s.key}" if s.key else s.uri
                if key not in verdict:
                    try:
                        verify_sample_media(s, decoder)
                        verdict[key] = None
                    except MediaError as exc:
                        verdict[key] = str(exc).removeprefix(f"{s.uri}: ")
                    except Exception as exc:  # noqa: BLE001 - a hostile file is a problem of the copy, not a crash
                        verdict[key] = f"cannot read media: {type(exc).__name__}: {exc}"
                    if verdict[key] is not None:
                        problems.append(Problem("truncated_media", s.uri, verdict[key], s.sample_id))
                if verdict[key] is None:
                    good.append(s)
        samples = good
    report.samples = samples
    report.counts = count_samples(samples)
    if counts:
        problems.extend(compare_counts(card, report.counts))
    report.problems = problems
    return report


def format_report(report: CheckReport) -> str:
    """Human-readable report: problems grouped by kind, then counts per split and class."""
    lines = [f"corpus {report.corpus} at {report.root}: {len(report.samples)} samples read cleanly, "
             f"{len(report.problems)} problem(s)"]
    for kind in KINDS:
        group = [p for p in report.problems if p.kind == kind]
        if group:
            lines.append(f"  {kind} ({len(group)}):")
            lines += [f"    {p.path}: {p.reason}" for p in group]
    for split, table in report.counts.items():
        classes = ", ".join(f"{k} {v}" for k, v in sorted(table.items()) if k != "total")
        lines.append(f"  {split}: {table.get('total', 0)} ({classes})")
    lines.append("OK" if report.ok else "PROBLEMS FOUND")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.corpora",
                                 description="Validate local copies of the corpora against their cards.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the corpus cards")
    chk = sub.add_parser("check", help="check a local copy; exit status 1 when any problem is found",
                         description="Reports every problem at once: missing files, unknown labels, duplicate ids, "
                                     "unreadable annotations, truncated media, counts against the published counts.")
    chk.add_argument("name", help=f"card name or path ({', '.join(available_cards())})")
    chk.add_argument("root", nargs="?", default=None, help="corpus root folder (default: the card's root)")
    chk.add_argument("--no-media", action="store_true", help="do not decode the media (annotations only; fast)")
    chk.add_argument("--no-counts", action="store_true", help="do not compare with the published counts (partial copies)")
    chk.add_argument("--label-order", default=None, help="one of the card's [labels.orders] (e.g. ewalk: step)")
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    if args.command == "list":
        for name in available_cards():
            card = load_card(name)
            print(f"{name:10s} {card['corpus'].get('modality', 'video'):8s} {card['corpus']['layout']:16s} "
                  f"{card['corpus'].get('title', '')}")
        return 0
    try:
        report = check_corpus(args.name, args.root, media=not args.no_media, counts=not args.no_counts,
                              label_order=args.label_order)
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
