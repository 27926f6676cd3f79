"""Beam stages of the extraction pipeline: small DoFns around the pure functions.

Every stage catches per-element failures and emits them on the ``errors`` output as
:func:`pipelines.errors.error_record` dicts, so one bad video never stops the run.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines import assemble
from pipelines.config import ExtractConfig
from pipelines.isolated_decoder import DECODER_TIMEOUT_S, DecodeRequest, IsolatedDecoder
from pipelines.errors import error_record
from pipelines.readers.media import load_gait, load_images, load_sheet
from pipelines.shards import shard_of, write_shard

ERRORS = "errors"


class _Stage(beam.DoFn):
    """Times each element (Beam distribution ``<stage>_ms``) and routes failures to ``errors``."""

    stage = "stage"

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self.ms = Metrics.distribution("affectzoo", f"{self.stage}_ms")
        self.failed = Metrics.counter("affectzoo", f"{self.stage}_failed")

    def run(self, element) -> Iterator:
        raise NotImplementedError

    def sample_of(self, element) -> dict | None:
        return None

    def process(self, element):
        start = time.perf_counter()
        try:
            yield from self.run(element)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead-letter record
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.sample_of(element), self.stage, exc))
        finally:
            self.ms.update(int((time.perf_counter() - start) * 1000))


class Decode(_Stage):
    """Batch of samples -> ``((sample_id, pos, keep), frame)`` per sampled frame + ``meta`` output.

    Decoding runs in an :class:`pipelines.isolated_decoder.IsolatedDecoder` child process (one
    per DoFn instance, started in ``setup``): a decoder that crashes, hangs past ``timeout_s``
    or exhausts its memory limit on a corrupt file becomes a dead-letter record for that sample
    only. The input is a list of samples (``beam.BatchElements`` upstream): while one sample's
    frames go downstream (pose inference runs as they are emitted), the child already decodes
    the next one (:meth:`IsolatedDecoder.decode_many`). Frames arrive in chunks
    (``pipelines.decode.CHUNK_FRAMES``) and are emitted as they come; the ``meta`` record is
    emitted after the last chunk, so a sample whose decoding fails midway has no meta and the
    assembly drops its partial frames.
    """

    stage = "decode"

    def __init__(self, cfg: ExtractConfig, timeout_s: float = DECODER_TIMEOUT_S):
        super().__init__(cfg)
        self.timeout_s = timeout_s
        self.decoder: IsolatedDecoder | None = None

    def setup(self):
        self.decoder = IsolatedDecoder(timeout_s=self.timeout_s, backend=self.cfg.decoder)

    def teardown(self):
        if self.decoder is not None:
            self.decoder.close()

    def _request(self, sample) -> DecodeRequest:
        if sample.frame_indices:  # explicit frames (Friends: the 4 frames around an annotation)
            return DecodeRequest(sample.uri, frame_indices=tuple(sample.frame_indices))
        return DecodeRequest(sample.uri, window=(sample.start_s, self.cfg.window_s, self.cfg.sample_fps))

    def process(self, batch):
        if self.decoder is None:
            self.setup()
        samples = list(batch)
        results = self.decoder.decode_many(self._request(s) for s in samples)
        for sample, result in zip(samples, results):  # timed and guarded per sample
            yield from super().process((sample, result))

    def sample_of(self, element):
        return element[0].to_dict()

    def run(self, element) -> Iterator:
        sample, result = element
        if result.error is not None:
            raise result.error
        plan = result.plan
        keep = assemble.kept_positions(len(plan.frame_indices), self.cfg)
        for first, frames in result.chunks:
            for i, frame in enumerate(frames):
                pos = first + i
                yield (sample.sample_id, pos, pos in keep), np.ascontiguousarray(frame)
        yield beam.pvalue.TaggedOutput("meta", (sample.sample_id, {
            "sample": sample.to_dict(), "frame_indices": plan.frame_indices,
            "timestamps_s": plan.timestamps_s, "fps": plan.fps}))


class LoadImages(_Stage):
    """Image sample (one image or a CK+ sequence) -> ``(sample_id, record)`` + ``faces`` requests.

    The entry stage of image corpora: no video decoding and no pose model (keypoints stay NaN,
    the timeline empty). Sequences longer than ``cfg.frames`` keep evenly spaced images; their
    time stamps are ``position / cfg.sample_fps``. An annotated box gives the face crops
    directly; without one the face detector searches each clip frame.
    """

    stage = "load_images"

    def sample_of(self, element):
        return element.to_dict()

    def run(self, sample) -> Iterator:
        keep = assemble.even_positions(len(sample.frames), self.cfg.frames)
        images = load_images([sample.frames[i] for i in keep])
        n = len(images)
        meta = {"sample": sample.to_dict(), "frame_indices": keep.astype(np.int32),
                "timestamps_s": (keep / self.cfg.sample_fps).astype(np.float32), "fps": self.cfg.sample_fps}
        no_pose = (np.zeros(0, np.float32), np.zeros((0, 17, 3), np.float32))
        clip_frames = assemble.kept_positions(n, self.cfg)
        record, crops = assemble.build_record(meta, {i: no_pose for i in range(n)},
                                              {i: images[i] for i in clip_frames}, self.cfg)
        for pos, crop in crops.items():
            yield beam.pvalue.TaggedOutput("faces", ((sample.sample_id, pos), crop))
        yield sample.sample_id, record


class LoadSkeleton(_Stage):
    """Skeleton sample (gait entry or mocap sheet) -> ``(sample_id, {"record": [..], "faces": []})``.

    The entry stage of skeleton corpora: the joint arrays go straight to the representations
    (:func:`pipelines.assemble.skeleton_record`), with no decoding, pose model or face detector.
    The ProxEmo image embedding (``pipelines.represent.embedding.gait_embedding``) is a pure
    function of the stored ``[T, 16, 3]`` keypoints and is computed by the trainer from them.
    """

    stage = "load_skeleton"

    def sample_of(self, element):
        return element.to_dict()

    def run(self, sample) -> Iterator:
        if sample.key is not None:
            joints = load_gait(sample.uri, sample.key, self.cfg.joints)
        else:
            joints = load_sheet(sample.uri, self.cfg.joints)
        record = assemble.skeleton_record(sample.to_dict(), joints, self.cfg)
        yield sample.sample_id, {"record": [record], "faces": []}


def _openpose18_to_coco17_index() -> list[int]:
    from schemas.keypoints import COCO17, OPENPOSE18

    return [OPENPOSE18.index(name) for name in COCO17]


def pose_by_sample(item, to_coco: bool = False) -> tuple[str, tuple]:
    """``((sample_id, pos, keep), PredictionResult)`` -> ``(sample_id, (pos, poses, frame|None))``.

    ``poses`` is ``(scores float32 [P], keypoints float32 [P, 17, 3])`` in COCO-17 order, the
    input of :func:`pipelines.assemble.build_record`. With ``to_coco`` the model gave OpenPose-18
    keypoints (``[P, 18, 3]``, :class:`extractors.handlers.OpenPoseHandler`): the 17 COCO joints
    are picked by name and the OpenPose neck is dropped (the assembly re-derives the neck as the
    mid-shoulder point, seed_specs §1.7).
    """
    (sample_id, pos, keep), result = item
    poses = result.inference
    if to_coco:
        scores, keypoints = poses
        poses = (scores, np.asarray(keypoints, np.float32)[:, _openpose18_to_coco17_index()])
    return sample_id, (pos, poses, result.example if keep else None)


class _GroupedStage(_Stage):
    """A stage after a CoGroupByKey whose ``primary`` tag carries the sample's record."""

    primary = "meta"

    def sample_of(self, element):
        records = element[1][self.primary]
        return records[0]["sample"] if records else {"sample_id": element[0]}


class Assemble(_GroupedStage):
    """Grouped poses of one sample -> record + head-crop requests (``faces`` output, keyed
    ``(sample_id, frame position)``)."""

    stage = "assemble"

    def run(self, element) -> Iterator:
        sample_id, grouped = element
        if not grouped["meta"]:
            return  # the decode stage already reported this sample
        meta = grouped["meta"][0]
        poses = {pos: p for pos, p, _ in grouped["poses"]}
        frames = {pos: f for pos, _, f in grouped["poses"] if f is not None}
        record, crops = assemble.build_record(meta, poses, frames, self.cfg)
        for pos, crop in crops.items():
            yield beam.pvalue.TaggedOutput("faces", ((sample_id, pos), crop))
        yield sample_id, record


def face_by_sample(item) -> tuple[str, tuple]:
    """``((sample_id, position), PredictionResult)`` -> ``(sample_id, (position, (crop, detections)))``.

    Face requests are keyed by the frame position in the window, so one detection serves the
    clip faces and the redraw pool (:func:`pipelines.assemble.face_at`).
    """
    (sample_id, pos), result = item
    return sample_id, (pos, (result.example, result.inference))


class Represent(_GroupedStage):
    """Record + face detections -> ``(shard, (video_row, clip_rows))``; marks progress."""

    stage = "represent"
    primary = "record"

    def run(self, element) -> Iterator:
        sample_id, grouped = element
        if not grouped["record"]:
            return
        record = grouped["record"][0]
        faces = dict(grouped["faces"])
        item = (assemble.video_row(record, self.cfg, faces), assemble.clip_rows(record, faces, self.cfg))
        progress = Path(self.cfg.out) / ".progress"
        progress.mkdir(parents=True, exist_ok=True)
        (progress / hashlib.sha1(sample_id.encode()).hexdigest()[:20]).touch()
        yield shard_of(sample_id, self.cfg.num_shards), item


class WriteShard(_Stage):
    """``(shard, [(video_row, clip_rows)])`` -> written shard files and its done marker."""

    stage = "write"

    def __init__(self, cfg: ExtractConfig, config_hash: str, attrs: dict[str, Any]):
        super().__init__(cfg)
        self.config_hash = config_hash
        self.attrs = attrs

    def sample_of(self, element):
        return {"sample_id": f"shard {element[0]}"}

    def run(self, element) -> Iterator:
        index, items = element
        yield write_shard(Path(self.cfg.out), index, self.cfg.num_shards, self.cfg.shapes, list(items),
                          self.config_hash, self.attrs)
