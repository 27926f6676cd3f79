"""The Beam stage of the extraction pipeline: one element per shard, written as it goes.

:class:`ExtractShard` takes ``(shard index, samples sorted by sample_id)`` (decided up front by
:func:`pipelines.plan.plan_shards`), extracts every sample (:func:`pipelines.extraction.shard_items`:
decoding ahead in isolated children, batched inference, assembly, rows) and appends its rows to
a :class:`pipelines.shards.ShardWriter`, so no stage holds a shard's rows, let alone the
corpus's. It emits the shard's done marker on the main output and one dead-letter record
(:func:`pipelines.errors.error_record`) per failed sample on ``errors``: every sample of the
element ends written or reported. A failed shard write reports each of the shard's samples.

Per-step times go to Beam distributions ``affectzoo/<step>_ms`` (decode_wait, pose, assemble,
face, represent, write, ...); progress is one byte per finished sample appended to
``OUT/.progress/<pid>`` (read by the driver's progress bar on local runners).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from pipelines.config import ExtractConfig
from pipelines.decode_ahead import DecodeAhead
from pipelines.errors import error_record
from pipelines.extraction import StepFailed, StepTimer, shard_items
from pipelines.isolated_decoder import DECODER_TIMEOUT_S
from pipelines.models import shared_models
from pipelines.shards import ShardWriteError, ShardWriter

ERRORS = "errors"


class ExtractShard(beam.DoFn):
    """``(index, [Sample])`` -> done marker dict; ``errors`` output: one record per failed sample.

    Args:
        cfg: the run's config (``cfg.out`` is the shard folder).
        config_hash: :meth:`ExtractConfig.content_hash`, recorded in the done marker.
        attrs: HDF5 root attributes (:func:`pipelines.report.shard_attrs`).
        timeout_s: seconds a decoder child may go without answering.
        batch_frames: decoded frames gathered (across samples) before one pose-model call.
        keep_empty: write a shard none of whose samples succeeded (its marker records the failed
            ids, so a rerun reuses it); False in ``retry-NN/`` folders, where such a shard would
            only be an empty file set.
    """

    def __init__(self, cfg: ExtractConfig, config_hash: str, attrs: dict[str, Any],
                 timeout_s: float = DECODER_TIMEOUT_S, batch_frames: int | None = None, keep_empty: bool = True):
        self.cfg, self.config_hash, self.attrs, self.timeout_s = cfg, config_hash, attrs, timeout_s
        self.keep_empty = keep_empty
        self.batch_frames = batch_frames or cfg.max_batch_size
        self._shared = Shared()
        self.models = None
        self.decoder: DecodeAhead | None = None
        self._ms: dict[str, Any] = {}
        self.failed = Metrics.counter("affectzoo", "failed_samples")

    def setup(self):
        if self.cfg.modality != "skeleton":
            self.models = shared_models(self._shared, self.cfg)
        if self.cfg.modality == "video":
            self.decoder = DecodeAhead(self.cfg.decode_workers, self.timeout_s, self.cfg.decoder)

    def teardown(self):
        if self.decoder is not None:
            self.decoder.close()

    def _report(self, step: str, ms: int) -> None:
        if step not in self._ms:
            self._ms[step] = Metrics.distribution("affectzoo", f"{step}_ms")
        self._ms[step].update(ms)

    def _tick(self) -> None:
        """One finished sample for the driver's progress bar."""
        progress = Path(self.cfg.out) / ".progress"
        progress.mkdir(parents=True, exist_ok=True)
        with open(progress / str(os.getpid()), "ab") as f:
            f.write(b".")

    def _error(self, sample, stage: str, exc: BaseException):
        self.failed.inc()
        return beam.pvalue.TaggedOutput(ERRORS, error_record(sample.to_dict(), stage, exc))

    def process(self, element):
        if self.models is None and self.cfg.modality != "skeleton":
            self.setup()
        index, samples = element
        timer = StepTimer(self._report)
        writer, failed, reported = None, [], []
        try:
            writer = ShardWriter(Path(self.cfg.out), index, self.cfg.num_shards, self.cfg.shapes,
                                 self.config_hash, self.attrs)
            for sample, outcome in shard_items(samples, self.cfg, self.models, self.decoder, timer,
                                               self.batch_frames):
                if isinstance(outcome, StepFailed):
                    failed.append(sample.sample_id)
                    reported.append(self._error(sample, outcome.step, outcome.exc))
                else:
                    start = time.perf_counter()
                    writer.add(*outcome)
                    self._report("write", int((time.perf_counter() - start) * 1000))
                self._tick()
            if writer.sample_ids or self.keep_empty:
                yield writer.finish(failed)
            yield from reported
        except Exception as exc:  # noqa: BLE001 - a failed write (ShardWriteError) or a broken shard
            done = set(failed)
            yield from reported
            for sample in samples:
                if sample.sample_id not in done:
                    yield self._error(sample, "write" if isinstance(exc, ShardWriteError) else "extract", exc)
        finally:
            if writer is not None:
                writer.abort()  # no-op after finish(); removes temporary files otherwise
