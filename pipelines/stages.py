"""The Beam stage of the extraction pipeline: one element per shard, written as it goes.

:class:`ExtractShard` takes ``(shard index, samples sorted by sample_id)`` (decided up front by
:func:`pipelines.plan.plan_shards`), extracts every sample (:func:`pipelines.extraction.shard_items`:
decoding ahead in isolated children, batched inference, assembly, rows) and appends its rows to
a :class:`pipelines.shards.ShardWriter`, so no stage holds a shard's rows, let alone the
corpus's. Every sample of the element ends written or reported: the shard's dead-letter records
(:func:`pipelines.errors.error_record`, one per failed sample; a failed shard write reports each
of the shard's samples) and its per-step times (decode_wait, pose, assemble, face, represent,
write, load_models, ...) go to the shard log (:func:`pipelines.report.write_shard_log`), written
just before the done marker. The one output is a small summary per shard, so the graph has a
single leaf and no tagged outputs: it runs unchanged on every Beam runner, Dask included (whose
runner computes only the last leaf and does not separate tagged outputs).

Models are loaded once per worker process (Beam's ``Shared``: the Dask runner calls ``setup``
once per partition, the local runner once per DoFn instance); progress is one byte per finished
sample appended to ``OUT/.progress/<host>-<pid>`` (read by the driver's progress bar).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.utils.shared import Shared

from pipelines.config import ExtractConfig
from pipelines.decode_ahead import DecodeAhead
from pipelines.errors import error_record
from pipelines.extraction import StepFailed, StepTimer, shard_items
from pipelines.isolated_decoder import DECODER_TIMEOUT_S
from pipelines.models import shared_models
from pipelines.report import write_shard_log
from pipelines.shards import ShardWriteError, ShardWriter

#: ``id()`` of the model sets this process has loaded (a load is a ``load_models`` step).
_LOADED: set[int] = set()


class ExtractShard(beam.DoFn):
    """``(index, [Sample])`` -> ``{"shard", "written", "failed"}``; writes the shard, its log and
    its done marker.

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
        self._load_ms: int | None = None

    def setup(self):
        if self.cfg.modality != "skeleton":
            start = time.perf_counter()
            self.models = shared_models(self._shared, self.cfg)
            if id(self.models) not in _LOADED:  # loaded now, not taken from this process's Shared
                _LOADED.add(id(self.models))
                self._load_ms = int((time.perf_counter() - start) * 1000)
        if self.cfg.modality == "video":
            self.decoder = DecodeAhead(self.cfg.decode_workers, self.timeout_s, self.cfg.decoder)

    def teardown(self):
        if self.decoder is not None:
            self.decoder.close()
            self.decoder = None

    def _tick(self) -> None:
        """One finished sample for the driver's progress bar."""
        progress = Path(self.cfg.out) / ".progress"
        progress.mkdir(parents=True, exist_ok=True)
        with open(progress / f"{socket.gethostname()}-{os.getpid()}", "ab") as f:
            f.write(b".")

    def process(self, element):
        if self.models is None and self.cfg.modality != "skeleton":
            self.setup()
        index, samples = element
        steps: dict[str, list[int]] = {}

        def report(step: str, ms: int) -> None:
            calls = steps.setdefault(step, [0, 0])
            calls[0] += 1
            calls[1] += ms

        if self._load_ms is not None:  # the first shard of the process carries the model load
            report("load_models", self._load_ms)
            self._load_ms = None

        def log(errors: list[dict]) -> None:
            write_shard_log(Path(self.cfg.out), index, errors, steps, f"{socket.gethostname()}:{os.getpid()}")

        failed = self._extract(index, samples, StepTimer(report), log)
        yield {"shard": index, "written": len(samples) - failed, "failed": failed}

    def _extract(self, index: int, samples: list, timer: StepTimer, log) -> int:
        """Write shard ``index`` and, before its done marker, ``log(dead-letter records)``;
        returns the number of failed samples."""
        writer, failed, errors = None, [], []
        try:
            writer = ShardWriter(Path(self.cfg.out), index, self.cfg.num_shards, self.cfg.shapes,
                                 self.config_hash, self.attrs)
            for sample, outcome in shard_items(samples, self.cfg, self.models, self.decoder, timer,
                                               self.batch_frames):
                if isinstance(outcome, StepFailed):
                    failed.append(sample.sample_id)
                    errors.append(error_record(sample.to_dict(), outcome.step, outcome.exc))
                else:
                    start = time.perf_counter()
                    writer.add(*outcome)
                    timer.report("write", int((time.perf_counter() - start) * 1000))
                self._tick()
            log(errors)
            if writer.sample_ids or self.keep_empty:
                writer.finish(failed)
            return len(failed)
        except Exception as exc:  # noqa: BLE001 - a failed write (ShardWriteError) or a broken shard
            stage = "write" if isinstance(exc, ShardWriteError) else "extract"
            done = set(failed)
            log(errors + [error_record(s.to_dict(), stage, exc) for s in samples if s.sample_id not in done])
            return len(samples)
        finally:
            if writer is not None:
                writer.abort()  # no-op after finish(); removes temporary files otherwise
