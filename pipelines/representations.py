"""The stored representations: one table, :data:`REPRESENTATIONS`, that says for each what it
needs, what it stores and which card options switch or size it.

In the spirit of PySKL's pipeline steps (each declares the keys it reads and adds), a
:class:`Representation` declares:

* ``inputs``: the :class:`pipelines.record.SampleRecord` fields it reads (``faces`` = the face
  detector's output per position, ``clip`` = the per-clip face and body crops);
* its outputs: the :data:`schemas.shards.COLUMNS` tagged with its name (Parquet columns and
  HDF5 datasets with dtype, per-row shape as a function of :class:`schemas.shards.ShardShapes`,
  table, HDF5-only or not), :attr:`Representation.columns`;
* ``options``: the :class:`pipelines.config.ExtractConfig` fields (card ``[representations]``
  keys or flags) it depends on;
* ``module``: where its computation lives; ``record`` / ``skeleton``: the :class:`RecordStep`
  that adds its record fields (keys read, keys added; :func:`pipelines.record.build_record` runs
  them in table order); and the two row builders ``video`` (its ``videos`` row fields) and
  ``clip`` (its ``clips`` row fields).

:func:`pipelines.rows.video_row` and :func:`pipelines.rows.clip_rows` merge the builders' fields
in table order; :func:`schemas.shards.video_schema`, :func:`schemas.shards.clip_schema` and
:data:`schemas.shards.H5_LAYOUT` are derived from ``COLUMNS``. See docs/architecture.md,
"Adding a representation".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from pipelines import assemble
from pipelines.crops import black_out_face
from pipelines.represent.clip_faces import face_person_at, face_pool_of, masked_face
from pipelines.represent.superimage import tile_superimage
from schemas.shards import Column, columns_of

__all__ = ["Representation", "RecordStep", "ClipView", "REPRESENTATIONS", "representation", "encode_png",
           "targets_vector", "annotation_columns", "fold_index", "pad_frames", "sample_ids"]


@dataclass(frozen=True)
class ClipView:
    """What the clip builders of one clip share.

    Attributes:
        record: the :class:`pipelines.record.SampleRecord`; cfg: the run's ExtractConfig.
        index: the clip index c; positions: int [K] its sampled-frame positions (``clip_plan[c]``).
        faces: per clip frame the :func:`pipelines.represent.clip_faces.face_at` tuple
            ``(face, box, score, found, landmarks)``.
        bodies: per clip frame ``(uint8 [S, S, 3] full-body crop, float32 [4] box)`` (zeros and
            NaN where there is none).
        face_person: ``{position: person id}`` of the attributed faces
            (:func:`pipelines.persons.attribute_faces`); None = unknown.
    """

    record: Any
    cfg: Any
    index: int
    positions: np.ndarray
    faces: list[tuple]
    bodies: list[tuple]
    face_person: dict | None


@dataclass(frozen=True)
class RecordStep:
    """How a representation fills its :class:`pipelines.record.SampleRecord` fields.

    Attributes:
        run: ``run(got: dict, cfg: ExtractConfig) -> dict`` (the ``*_step`` functions of
            :mod:`pipelines.assemble`).
        needs: keys it reads from the record being built: the builder's inputs (see
            :func:`pipelines.record.build_record`) or fields an earlier table line adds.
        adds: the keys it returns, no more and no fewer (record fields, and ``head_crops``: the
            crops the face detector is run on).
    """

    run: Callable[[dict, Any], dict]
    needs: tuple[str, ...]
    adds: tuple[str, ...]


@dataclass(frozen=True)
class Representation:
    """One stored representation (see the module docstring).

    ``record`` builds its record fields for video and image samples, ``skeleton`` for skeleton
    samples (None: it adds none, or the record field keeps its default there). ``switch`` says
    how a run stores it when no true/false card option switches it (see
    :meth:`switched_on_by`)."""

    name: str
    module: str
    inputs: tuple[str, ...]
    options: tuple[str, ...] = ()
    video: Callable[[Any, Any, dict], dict[str, Any]] | None = None
    clip: Callable[[ClipView], dict[str, Any]] | None = None
    record: RecordStep | None = None
    skeleton: RecordStep | None = None
    switch: str = ""

    def switched_on_by(self) -> str:
        """How a run stores it when it can be off (its outputs then have a zero-length axis):
        its true/false card options with their flags, else its ``switch`` text; "" = always
        stored."""
        from pipelines.config import card_options

        options = card_options()
        switches = [options[o] for o in self.options if o in options and options[o].parse is bool]
        if switches:
            return " and ".join(f"the card's {o.key} = true ({o.flag})" for o in switches)
        return self.switch

    @property
    def columns(self) -> list[Column]:
        """Its outputs: the :data:`schemas.shards.COLUMNS` it fills, in table order."""
        return columns_of(representation=self.name)


# ------------------------------------------------------------------------------ small helpers
def _or_nan(value: float | None) -> float:
    """``value``, NaN for None (a 0.0 stays 0.0)."""
    return np.nan if value is None else value


def pad_frames(a: np.ndarray, length: int, fill) -> np.ndarray:
    """``a`` cut or padded with ``fill`` along its first (frame) axis to ``length``."""
    out = np.full((length,) + a.shape[1:], fill, dtype=a.dtype)
    out[: len(a)] = a[:length]
    return out


def _pad_persons(a: np.ndarray, length: int) -> np.ndarray:
    """[P, T', ...] padded with NaN along its frame axis to [P, length, ...]."""
    return pad_frames(a.transpose(1, 0, 2, 3), length, np.nan).transpose(1, 0, 2, 3)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def sample_ids(sample: dict[str, Any]) -> dict[str, Any]:
    """The id and label fields every row carries."""
    keys = ("corpus", "sample_id", "video_id", "uri", "split", "label", "label_name")
    return {k: sample[k] for k in keys}


def fold_index(sample: dict[str, Any]) -> int:
    """The sample's 1-based cross-validation fold (CK+), -1 when the corpus has none."""
    fold = sample.get("fold")
    return -1 if fold is None or (isinstance(fold, float) and not np.isfinite(fold)) else int(fold)


def targets_vector(sample: dict[str, Any], classes: int) -> np.ndarray:
    """float32 [classes]: the sample's multi-hot / soft ``targets`` when the corpus gives them,
    else the one-hot of its ``label`` (all zero for ``label < 0``).

    Raises:
        ValueError: targets of another length than ``classes`` or not finite, or a label that is
            not an integer (the message names the sample and the field).
    """
    given = sample.get("targets")
    who = sample.get("sample_id", "sample")
    if given:
        out = np.asarray(given, np.float32)
        if out.shape != (classes,) or not np.isfinite(out).all():
            raise ValueError(f"{who}: targets {list(given)} must be {classes} finite values")
        return out
    label = sample["label"]
    if isinstance(label, float) and not label.is_integer():
        raise ValueError(f"{who}: label {label!r} is not a class index")
    out = np.zeros(classes, np.float32)
    if 0 <= int(label) < classes:
        out[int(label)] = 1.0
    return out


def annotation_columns(sample: dict[str, Any]) -> dict[str, Any]:
    """``targets`` (list of float), ``valence``, ``arousal``, ``fold`` of a sample dict (None = absent)."""
    return {"targets": [float(v) for v in sample.get("targets") or ()], "valence": sample.get("valence"),
            "arousal": sample.get("arousal"), "fold": sample.get("fold")}


# ------------------------------------------------------------------------------ row builders
def _ids_video(record, cfg, faces) -> dict:
    return sample_ids(record.sample)


def _ids_clip(clip: ClipView) -> dict:
    return sample_ids(clip.record.sample)


def _window_video(record, cfg, faces) -> dict:
    sample, t = record.sample, cfg.frames
    return {"start_s": sample["start_s"], "end_s": _or_nan(sample["end_s"]), "fps": record.fps,
            "num_frames": len(record.frame_indices), "frame_indices": pad_frames(record.frame_indices, t, -1),
            "timestamps_s": pad_frames(record.timestamps_s, t, np.nan), "frame_shape": record.frame_shape}


def _window_clip(clip: ClipView) -> dict:
    r, pos = clip.record, clip.positions
    return {"clip_index": clip.index, "frame_indices": r.frame_indices[pos].astype(np.int32),
            "timestamps_s": r.timestamps_s[pos].astype(np.float32)}


def _keypoints_video(record, cfg, faces) -> dict:
    return {"keypoints": pad_frames(record.keypoints, cfg.frames, np.nan),
            "persons": pad_frames(record.persons, cfg.frames, 0)}


def _keypoints_clip(clip: ClipView) -> dict:
    return {"keypoints": clip.record.keypoints[clip.positions]}


def _persons_video(record, cfg, faces) -> dict:
    t = cfg.frames
    return {"shots": pad_frames(record.shots.astype(np.int32), t, -1),
            "person_ids": record.person_ids.astype(np.int32),
            "main_present": pad_frames(np.isfinite(record.tracks[0, ..., 0]).any(axis=-1), t, False),
            "tracks": _pad_persons(record.tracks, t)}


def _persons_clip(clip: ClipView) -> dict:
    return {"shots": clip.record.shots[clip.positions].astype(np.int32)}


def _timeline_video(record, cfg, faces) -> dict:
    return {"timeline": record.timeline}


def _pose_features_video(record, cfg, faces) -> dict:
    return {"pose_features": record.pose_features}


def _annotations_video(record, cfg, faces) -> dict:
    sample = record.sample
    return {**annotation_columns(sample), "targets_vector": targets_vector(sample, len(cfg.label_names)),
            "fold_index": fold_index(sample)}


def _annotations_clip(clip: ClipView) -> dict:
    return {"fold_index": fold_index(clip.record.sample)}


def _face_pool_video(record, cfg, faces) -> dict:
    return dict(zip(("face_pool", "face_pool_found"), face_pool_of(record, faces or {}, cfg)))


def _faces_clip(clip: ClipView) -> dict:
    got = clip.faces
    crops = np.stack([g[0] for g in got])
    image, layout = tile_superimage(crops)
    return {"face_boxes": np.stack([g[1] for g in got]).astype(np.float32),
            "face_scores": np.array([g[2] for g in got], np.float32),
            "face_found": [bool(g[3]) for g in got],
            "face_person": np.array([face_person_at(clip.record, clip.face_person, int(p), g[3])
                                     for p, g in zip(clip.positions, got)], np.int32),
            "superimage_png": encode_png(image), "superimage_layout": json.dumps(layout, sort_keys=True),
            "faces": crops}


def _faces_masked_clip(clip: ClipView) -> dict:
    masked = np.stack([masked_face(g[0], g[4]) for g in clip.faces])
    return {"faces_masked": masked[: clip.cfg.shapes.masked_frames]}


def _body_clip(clip: ClipView) -> dict:
    bodies = clip.bodies
    return {"body_boxes": np.stack([b[1] for b in bodies]),
            "fullbody_png": encode_png(tile_superimage(np.stack([b[0] for b in bodies]))[0]),
            "fullbody": np.stack([b[0] for b in bodies]),
            "body": np.stack([black_out_face(b[0], b[1], g[1]) for b, g in zip(bodies, clip.faces)])}


def _joints3d_video(record, cfg, faces) -> dict:
    """The HDF5-only 3-D datasets of a record made with a 3-D pose extractor (``joints3d``
    padded to T with NaN, ``gait``, ``gait_embedding``); none for a 2-D one (the shard writer
    then stores them with zero-length axes)."""
    if record.joints3d is None:
        return {}
    return {"joints3d": _pad_persons(record.joints3d, cfg.frames), "gait": record.gait,
            "gait_embedding": record.gait_embedding}


#: Every stored representation, in record-building and row-building order (a record step reads
#: only what earlier lines add). Outputs: ``schemas.shards.COLUMNS`` with the same name; a test
#: checks that every column has its representation and back.
REPRESENTATIONS: tuple[Representation, ...] = (
    Representation("ids", "pipelines.samples", ("sample",), ("label_names",), _ids_video, _ids_clip),
    Representation("window", "pipelines.sampling", ("sample", "frame_indices", "timestamps_s", "fps", "frame_shape",
                                                    "clip_plan"),
                   ("window_s", "sample_fps", "max_frames", "clips", "frames_per_clip", "frame_rate"),
                   _window_video, _window_clip,
                   record=RecordStep(assemble.window_step, ("frame_indices", "frames"), ("frame_shape", "clip_plan")),
                   skeleton=RecordStep(assemble.skeleton_window_step, ("frame_indices",),
                                       ("frame_shape", "clip_plan"))),
    Representation("persons", "pipelines.persons", ("tracks", "person_ids", "shots", "clip_plan"),
                   ("pose_extractor", "min_keypoint_score"), _persons_video, _persons_clip,
                   record=RecordStep(assemble.persons_step, ("poses", "identity"),
                                ("tracks", "persons", "person_ids", "shots")),
                   skeleton=RecordStep(assemble.skeleton_persons_step, ("frame_indices",),
                                  ("tracks", "persons", "person_ids", "shots"))),
    Representation("keypoints", "schemas.keypoints", ("keypoints", "persons", "clip_plan"),
                   ("pose_extractor", "joints", "min_keypoint_score"), _keypoints_video, _keypoints_clip,
                   record=RecordStep(assemble.keypoints_step, ("tracks",), ("keypoints",)),
                   skeleton=RecordStep(assemble.skeleton_keypoints_step, ("joints", "keep"), ("keypoints",))),
    Representation("timeline", "pipelines.represent.timeline", ("timeline",),
                   ("timeline_size", "timeline_length", "timeline_pad", "coordinate_scale"), _timeline_video,
                   record=RecordStep(assemble.timeline_step, ("keypoints",), ("timeline",)),
                   skeleton=RecordStep(assemble.skeleton_timeline_step, ("joints",), ("timeline",))),
    Representation("pose_features", "pipelines.represent.pose_features", ("pose_features",),
                   ("min_keypoint_score",), _pose_features_video,
                   record=RecordStep(assemble.pose_features_step, ("tracks", "frame_indices"), ("pose_features",)),
                   skeleton=RecordStep(assemble.skeleton_pose_features_step, (), ("pose_features",))),
    Representation("annotations", "pipelines.samples", ("sample",), ("label_names",), _annotations_video,
                   _annotations_clip),
    Representation("face_pool", "pipelines.represent.clip_faces", ("head_boxes", "given_faces", "faces"),
                   ("face_pool", "face_size", "face_extractor"), _face_pool_video),
    Representation("faces", "pipelines.represent.clip_faces", ("clip_plan", "head_boxes", "given_faces", "faces"),
                   ("face_size", "face_extractor", "face_crop", "given_box_margin"), clip=_faces_clip,
                   record=RecordStep(assemble.faces_step, ("sample", "tracks", "frames", "frame_indices"),
                                ("head_crops", "head_boxes", "given_faces"))),
    Representation("faces_masked", "pipelines.represent.segments", ("clip",), ("face_mask",),
                   clip=_faces_masked_clip),
    Representation("body", "pipelines.assemble", ("body_crops", "clip"), ("face_size",), clip=_body_clip,
                   record=RecordStep(assemble.body_step, ("tracks", "frames"), ("body_crops",))),
    Representation("joints3d", "pipelines.represent.joints3d", ("joints3d", "gait", "gait_embedding"),
                   ("world_joints",), _joints3d_video,
                   record=RecordStep(assemble.joints3d_step, ("world", "identity", "person_ids"),
                                ("joints3d", "gait", "gait_embedding")),
                   switch="a 3-D pose extractor (--body blazepose-ghum, or the card's extractors.pose)"),
)


def representation(name: str) -> Representation:
    """The :data:`REPRESENTATIONS` entry called ``name``.

    Raises:
        KeyError: no such representation (the message lists the known ones).
    """
    for rep in REPRESENTATIONS:
        if rep.name == name:
            return rep
    raise KeyError(f"unknown representation {name!r}; known: {[r.name for r in REPRESENTATIONS]}")
