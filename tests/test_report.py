"""Run report (pipelines/report.py): every planned sample is written, failed or lost; the
summary reads as text (no Python dicts, correct plurals)."""
from types import SimpleNamespace

from pipelines.report import _counts, account, plural


def test_account_sorts_every_planned_sample_into_written_failed_or_lost():
    samples = [SimpleNamespace(sample_id=f"sample/{i}") for i in range(6)]
    entries = [{"sample_ids": ["sample/0", "sample/1"]}, {"sample_ids": ["sample/2", "not/planned"]}]
    errors = [{"sample_id": "sample/3"}, {"sample_id": "sample/1"}, {"sample_id": "shard 4"}]
    got = account(samples, entries, errors)
    # sample/1 is written although an old record names it; a marker's unplanned id is not counted
    assert got == {"planned": 6, "written": 3, "failed": 1, "lost": ["sample/4", "sample/5"]}
    assert account(samples, [], [])["lost"] == [s.sample_id for s in samples]
    assert account([], entries, errors) == {"planned": 0, "written": 0, "failed": 0, "lost": []}


def test_summary_words():
    assert plural(1, "track") == "1 track" and plural(0, "track") == "0 tracks" and plural(2, "clip") == "2 clips"
    assert _counts({"read": 3, "decode": 5, "assemble": 3}) == "decode 5, assemble 3, read 3"
