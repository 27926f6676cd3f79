"""Extract the rows of a shard's samples: decoding, batched inference, assembly, rows.

The per-shard Beam stage (:class:`pipelines.stages.ExtractShard`) calls :func:`shard_items`,
which yields ``(sample, outcome)`` for every sample of the shard, in order: ``outcome`` is the
sample's ``(video_row, clip_rows)`` or the exception that stopped it, tagged with the step it
failed in (:class:`StepFailed`). Nothing is dropped: one outcome per sample.

Video samples::

    DecodeAhead (isolated children) --uint8 [T, H, W, 3] per sample-->
    group samples until >= batch_frames frames --> pose model on the group's frames (one call)
    --> per sample: shots and person ids on all its frames (pipelines.persons.identify)
    --> tracking, main person, head crops (pipelines.record.video_record)
    --> face model on the group's head crops (one call)
    --> the main person's faces, rows (pipelines.rows.sample_rows)

Image samples load their images and skip the pose model; skeleton samples go straight to the
rows. Inference runs on a group of samples so that a GPU sees large batches; when a group's
call fails, each of its samples is retried alone, so one bad frame costs only its sample.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from pipelines import assemble
from pipelines.config import ExtractConfig
from pipelines.decode_ahead import DecodeAhead, DecodedSample, request_of
from pipelines.readers.media import load_gait, load_images, load_sheet
from pipelines.persons import identify
from pipelines.record import SampleRecord, image_record, skeleton_record, video_record
from pipelines.rows import sample_rows
from pipelines.sampling import even_positions


class StepFailed(Exception):
    """A sample failed in ``step`` (``decode``, ``pose``, ``assemble``, ``face``, ``represent``,
    ``load_images``, ``load_skeleton``); ``__cause__`` is the original exception."""

    def __init__(self, step: str, exc: BaseException):
        super().__init__(f"{step}: {type(exc).__name__}: {exc}")
        self.step, self.exc = step, exc


class StepTimer:
    """Times each step and hands ``(step, milliseconds)`` to ``report``; the shard stage
    (:class:`pipelines.stages.ExtractShard`) adds them up into the shard's log file, which the
    driver merges into the run's summary and manifest (no Beam metrics: not every runner has
    them)."""

    def __init__(self, report: Callable[[str, int], None] | None = None):
        self.report = report or (lambda step, ms: None)

    def run(self, step: str, fn: Callable, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        except StepFailed:
            raise
        except Exception as exc:
            raise StepFailed(step, exc) from exc
        finally:
            self.report(step, int((time.perf_counter() - start) * 1000))


def _try(timer: StepTimer, step: str, fn: Callable, *args):
    """``fn(*args)`` timed, or the :class:`StepFailed` it raised (returned, not raised)."""
    try:
        return timer.run(step, fn, *args)
    except StepFailed as failure:
        return failure


def _meta(sample, decoded: DecodedSample) -> dict[str, Any]:
    plan = decoded.plan
    return {"sample": sample.to_dict(), "frame_indices": plan.frame_indices,
            "timestamps_s": plan.timestamps_s, "fps": plan.fps}


def _infer_each(fn: Callable, per_sample: list[list], timer: StepTimer, step: str) -> list:
    """``fn`` over the concatenated inputs of several samples in one call; on failure, per
    sample. Returns per sample the list of results or a :class:`StepFailed`."""
    flat = [x for xs in per_sample for x in xs]
    whole = _try(timer, step, fn, flat) if flat else []
    if not isinstance(whole, StepFailed):
        out, k = [], 0
        for xs in per_sample:
            out.append(whole[k: k + len(xs)])
            k += len(xs)
        return out
    return [_try(timer, step, fn, xs) if xs else [] for xs in per_sample]


def _waited(items: Iterator, timer: StepTimer) -> Iterator:
    """``items`` with the time spent waiting for each reported as step ``decode_wait`` (the
    decoding that inference did not hide)."""
    while True:
        start = time.perf_counter()
        item = next(items, _END)
        if item is _END:
            return
        timer.report("decode_wait", int((time.perf_counter() - start) * 1000))
        yield item


_END = object()


def _groups(items: Iterator, batch_frames: int) -> Iterator[list]:
    """Consecutive ``(sample, DecodedSample | Exception)`` items grouped until the group holds
    at least ``batch_frames`` decoded frames."""
    group, frames = [], 0
    for item in items:
        group.append(item)
        if isinstance(item[1], DecodedSample):
            frames += len(item[1].frames)
        if frames >= batch_frames:
            yield group
            group, frames = [], 0
    if group:
        yield group


def _finish_group(group: list, crops_of: list, records: list, models, cfg: ExtractConfig,
                  timer: StepTimer) -> Iterator[tuple[Any, Any]]:
    """Face detection on the group's head crops, then rows, per sample."""
    positions = [sorted(c) if isinstance(c, dict) else [] for c in crops_of]
    dets = _infer_each(models.faces, [[c[p] for p in ps] for c, ps in zip(crops_of, positions)], timer, "face")
    for (sample, _), record, crops, ps, det in zip(group, records, crops_of, positions, dets):
        if isinstance(record, Exception):
            yield sample, record
        elif isinstance(det, StepFailed):
            yield sample, det
        else:
            faces = {p: (crops[p], d) for p, d in zip(ps, det)}
            yield sample, _try(timer, "represent", sample_rows, record, faces, cfg)


def video_items(samples: list, cfg: ExtractConfig, models, decoder: DecodeAhead, timer: StepTimer,
                batch_frames: int) -> Iterator[tuple[Any, Any]]:
    """``(sample, (video_row, clip_rows) | StepFailed)`` for each video sample, in order."""
    decoded = _waited(decoder.decode([request_of(s, cfg.window_s, cfg.sample_fps) for s in samples]), timer)
    items = ((s, d if isinstance(d, DecodedSample) else StepFailed("decode", d)) for s, d in zip(samples, decoded))
    for group in _groups(items, batch_frames):
        frames = [list(d.frames) if isinstance(d, DecodedSample) else [] for _, d in group]
        raw = _infer_each(models.raw_poses, frames, timer, "pose")
        records, crops_of = [], []
        for (sample, d), r in zip(group, raw):
            if isinstance(d, Exception) or isinstance(r, Exception):
                records.append(d if isinstance(d, Exception) else r)
                crops_of.append(None)
                continue
            p = [models.coco17(found) for found in r]
            world = [k for _, k in r] if cfg.world_joints else None
            identity = _try(timer, "identity", identify, p, d.frames, cfg.min_keypoint_score)
            if isinstance(identity, Exception):
                records.append(identity)
                crops_of.append(None)
                continue
            keep = assemble.kept_positions(len(d.frames), cfg)
            built = _try(timer, "assemble", video_record, _meta(sample, d), dict(enumerate(p)),
                         {i: d.frames[i] for i in keep}, cfg, identity, world)
            records.append(built if isinstance(built, Exception) else built[0])
            crops_of.append(None if isinstance(built, Exception) else built[1])
        yield from _finish_group(group, crops_of, records, models, cfg, timer)


def _image_record(sample, cfg: ExtractConfig) -> tuple[SampleRecord, dict]:
    keep = even_positions(len(sample.frames), cfg.frames)
    return image_record(sample.to_dict(), keep, load_images([sample.frames[i] for i in keep]), cfg)


def image_items(samples: list, cfg: ExtractConfig, models, timer: StepTimer, batch: int = 32
                ) -> Iterator[tuple[Any, Any]]:
    """``(sample, rows | StepFailed)`` for image samples (an image or a CK+ sequence): no pose
    model; annotated face boxes are used directly, else the face model searches the clip frames."""
    for start in range(0, len(samples), batch):
        group = [(s, None) for s in samples[start: start + batch]]
        built = [_try(timer, "load_images", _image_record, s, cfg) for s, _ in group]
        records = [b if isinstance(b, Exception) else b[0] for b in built]
        crops_of = [None if isinstance(b, Exception) else b[1] for b in built]
        yield from _finish_group(group, crops_of, records, models, cfg, timer)


def _skeleton_rows(sample, cfg: ExtractConfig) -> tuple[dict, list[dict]]:
    if sample.key is not None:
        joints = load_gait(sample.uri, sample.key, cfg.joints)
    else:
        joints = load_sheet(sample.uri, cfg.joints)
    record = skeleton_record(sample.to_dict(), joints, cfg)
    return sample_rows(record, {}, cfg)


def skeleton_items(samples: list, cfg: ExtractConfig, timer: StepTimer) -> Iterator[tuple[Any, Any]]:
    """``(sample, rows | StepFailed)`` for skeleton samples: joints straight into the rows."""
    for sample in samples:
        yield sample, _try(timer, "load_skeleton", _skeleton_rows, sample, cfg)


def shard_items(samples: list, cfg: ExtractConfig, models, decoder: DecodeAhead | None, timer: StepTimer,
                batch_frames: int) -> Iterator[tuple[Any, Any]]:
    """Every sample of a shard with its outcome, by ``cfg.modality``."""
    if cfg.modality == "skeleton":
        return skeleton_items(samples, cfg, timer)
    if cfg.modality == "images":
        return image_items(samples, cfg, models, timer)
    return video_items(samples, cfg, models, decoder, timer, batch_frames)
