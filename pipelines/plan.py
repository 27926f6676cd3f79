"""Which samples go into which shard, and which shards a run still has to write.

Shard membership is decided up front, in the driver: sample ``s`` belongs to shard
``crc32(s.sample_id) % num_shards`` (:func:`pipelines.shards.shard_of`), and a shard's samples
are written in ``sample_id`` order. A shard is therefore a pure function of the planned samples
that map to it, which is what makes a shard the unit of work (one Beam element per shard, as
video2dataset does) and makes resuming exact:

* a shard is **reused** when its done marker has the run's config hash and lists every one of
  the shard's planned samples (``sample_ids`` written + ``failed_ids`` reported);
* otherwise it is **redone** whole, with the reason (a trial ``--limit 4`` run, a grown corpus,
  another config): no planned sample is ever skipped because its shard has *a* marker.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.shards import shard_of


@dataclass
class ShardPlan:
    """The shards of one run.

    Attributes:
        members: ``{shard index: [Sample, ...]}`` of every planned sample, ``sample_id`` order.
        todo: indices of the shards this run writes, ascending.
        reused: ``{index: done marker}`` of shards whose marker already covers their plan.
        redo_reasons: ``{index: why}`` for shards with a marker that does not cover their plan.
    """

    members: dict[int, list]
    todo: list[int] = field(default_factory=list)
    reused: dict[int, dict] = field(default_factory=dict)
    redo_reasons: dict[int, str] = field(default_factory=dict)

    def elements(self) -> list[tuple[int, list]]:
        """``(shard index, samples)`` of the shards to write: the pipeline's input elements."""
        return [(i, self.members[i]) for i in self.todo]


def shard_members(samples: list, num_shards: int) -> dict[int, list]:
    """``{shard: samples sorted by sample_id}`` (only shards that get at least one sample)."""
    members: dict[int, list] = {}
    for s in sorted(samples, key=lambda s: s.sample_id):
        members.setdefault(shard_of(s.sample_id, num_shards), []).append(s)
    return members


def marker_covers(marker: dict, planned_ids: set[str]) -> str | None:
    """None when ``marker`` lists every id of ``planned_ids`` (written or failed); else why not.

    Samples a marker lists beyond the plan (a later, smaller ``--limit``) do not make it stale.
    """
    listed = set(marker.get("sample_ids", [])) | set(marker.get("failed_ids", []))
    new = planned_ids - listed
    if not new:
        return None
    return (f"its done marker lacks {len(new)} planned sample{'s' * (len(new) != 1)} "
            f"(e.g. {sorted(new)[0]})")


def plan_shards(samples: list, num_shards: int, done: dict[int, dict], elsewhere: set[str] = frozenset()
                ) -> ShardPlan:
    """Decide which shards to write, given the done markers already in the output folder.

    Args:
        samples: the planned samples (:class:`pipelines.samples.Sample`).
        done: ``{index: marker}`` of markers with the run's config hash
            (:func:`pipelines.shards.finished_shards`).
        elsewhere: ids already written outside the main shards (``retry-NN/`` folders): they
            count as covered and are left out of the shards this run writes.
    """
    plan = ShardPlan(members=shard_members([s for s in samples if s.sample_id not in elsewhere], num_shards))
    for index in sorted(plan.members):
        marker = done.get(index)
        reason = "no done marker" if marker is None else marker_covers(
            marker, {s.sample_id for s in plan.members[index]})
        if reason is None:
            plan.reused[index] = marker
        else:
            plan.todo.append(index)
            if marker is not None:
                plan.redo_reasons[index] = reason
    return plan
