"""Run report (pipelines/report.py): which shards count as missing."""
from types import SimpleNamespace

from pipelines.report import missing_shards
from pipelines.shards import shard_of


def test_missing_shards_only_counts_shards_that_should_hold_a_sample():
    ids = [f"sample/{i}" for i in range(12)]
    samples = [SimpleNamespace(sample_id=i) for i in ids]
    by_shard = {}
    for i in ids:
        by_shard.setdefault(shard_of(i, 16), []).append(i)
    shards = sorted(by_shard)
    assert len(shards) < 16  # some of the 16 shards hold no sample: never missing
    done = {shards[0]: {}}
    failed_shard = shards[1]
    errors = [{"sample_id": i} for i in by_shard[failed_shard]]  # every sample of it failed
    assert missing_shards(samples, errors, 16, done) == shards[2:]
    assert missing_shards(samples, [], 16, {s: {} for s in shards}) == []
