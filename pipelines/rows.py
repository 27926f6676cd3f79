"""The shard rows of one sample: its ``videos`` row and its ``clips`` rows, with their arrays.

Made from a :class:`pipelines.record.SampleRecord` and the face detector's output; pure
functions (numpy in, dicts out), testable without Beam. A row is the merge, in table order, of
the fields each stored representation of :data:`pipelines.representations.REPRESENTATIONS`
builds; columns: :func:`schemas.shards.video_schema`, :func:`schemas.shards.clip_schema`; HDF5
arrays: :data:`schemas.shards.H5_LAYOUT` (all three derived from :data:`schemas.shards.COLUMNS`).

Faces: ``faces`` maps a sampled-frame position to ``(head_crop uint8 [S, S, 3], detections
float32 [D, 17 or 15])`` (the face model's rows for the head crop
:func:`pipelines.assemble.head_requests` made at that position).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.config import ExtractConfig
from pipelines.crops import landmarks_in_face_crop
from pipelines.persons import attribute_faces
from pipelines.record import SampleRecord
from pipelines.represent.clip_faces import face_at, face_pool_of, masked_face
from pipelines.representations import (REPRESENTATIONS, ClipView, annotation_columns, encode_png, fold_index,
                                       targets_vector)

__all__ = ["sample_rows", "video_row", "clip_rows", "face_at", "face_pool_of", "masked_face", "landmarks_in_face_crop",
           "encode_png", "targets_vector", "annotation_columns", "fold_index"]


def sample_rows(record: SampleRecord, faces: dict, cfg: ExtractConfig) -> tuple[dict[str, Any], list[dict]]:
    """The ``videos`` row and the ``clips`` rows of one sample.

    The face detections are first narrowed to the main person's face at every position
    (:func:`pipelines.persons.attribute_faces`), so the clip faces, their super-image and the
    redraw pool hold one identity; ``clips/face_person`` records whose face each crop is.

    Args:
        faces: ``{position: (head_crop uint8 [S, S, 3], detections float32 [D, 17 or 15])}``.
    """
    attributed = attribute_faces(record, faces, cfg.min_keypoint_score)
    return (video_row(record, cfg, attributed.faces),
            clip_rows(record, attributed.faces, cfg, attributed.person))


def video_row(record: SampleRecord, cfg: ExtractConfig, faces: dict | None = None) -> dict[str, Any]:
    """The ``videos`` table row of one sample (see :func:`schemas.shards.video_schema`) plus the
    HDF5-only arrays (``face_pool`` / ``face_pool_found`` from ``faces``: ``{position: (head_crop,
    detections)}``, as for :func:`clip_rows`; the 3-D datasets with a 3-D pose extractor) and the
    HDF5 sources ``targets_vector`` / ``fold_index``: the ``video`` fields of every
    :data:`pipelines.representations.REPRESENTATIONS` entry.

    Requires every record field but ``clip_plan`` and ``body_crops``; per-frame arrays are padded
    to ``cfg.frames`` (frame indices -1, times / keypoints / tracks NaN, persons 0, shots -1,
    ``main_present`` False). ``main_present`` marks the frames where the main person (``tracks``
    row 0) has a pose; ``person_ids`` names each ``tracks`` row. An unknown
    ``end_s`` (None) is NaN; an ``end_s`` of 0.0 stays 0.0."""
    row: dict[str, Any] = {}
    for rep in REPRESENTATIONS:
        if rep.video is not None:
            row.update(rep.video(record, cfg, faces))
    return row


def clip_rows(record: SampleRecord, faces: dict, cfg: ExtractConfig,
              face_person: dict | None = None) -> list[dict[str, Any]]:
    """The ``clips`` table rows of one sample, with their face crops: per clip, the ``clip``
    fields of every :data:`pipelines.representations.REPRESENTATIONS` entry.

    Requires ``sample``, ``frame_indices``, ``timestamps_s``, ``keypoints``, ``clip_plan``,
    ``head_boxes``, ``given_faces`` and ``body_crops``.

    Args:
        record: the sample record.
        faces: ``{position: (head_crop uint8 [S, S, 3], detections float32 [D, 17 or 15])}``.
        face_person: ``{position: person id}`` of the face at each position
            (:func:`pipelines.persons.attribute_faces`); missing = -1, an annotated box = 0.

    Returns:
        One dict per clip with the columns of :func:`schemas.shards.clip_schema` plus the HDF5
        arrays ``faces`` uint8 [K, size, size, 3] (clip frame k is :func:`face_at` of position
        ``clip_plan[c, k]``), ``faces_masked`` uint8 [K', size, size, 3] (:func:`masked_face`;
        K' = K with ``cfg.face_mask``, else 0), ``fullbody`` and ``body``.
    """
    rows = []
    plan = record.clip_plan
    empty_body = (np.zeros((cfg.face_size, cfg.face_size, 3), np.uint8), np.full(4, np.nan, np.float32))
    for c in range(plan.shape[0]):
        clip = ClipView(record=record, cfg=cfg, index=c, positions=plan[c],
                        faces=[face_at(record, faces, int(plan[c, k]), cfg.face_size) for k in range(plan.shape[1])],
                        bodies=[record.body_crops.get((c, k), empty_body) for k in range(plan.shape[1])],
                        face_person=face_person)
        row: dict[str, Any] = {}
        for rep in REPRESENTATIONS:
            if rep.clip is not None:
                row.update(rep.clip(clip))
        rows.append(row)
    return rows
