"""Skeleton annotations in the MMAction2 / PySKL convention.

Format (MMAction2 ``PoseDataset`` / PySKL 2-D skeleton annotations): one dict per sample with

- ``frame_dir`` (str): the sample's unique id,
- ``label`` (int): class index,
- ``img_shape`` and ``original_shape`` (``(height, width)`` ints, pixels),
- ``total_frames`` (int): T,
- ``keypoint``: ``float32 [M, T, V, 2]`` (x, y) in pixels of ``img_shape``,
- ``keypoint_score``: ``float32 [M, T, V]``;

and an annotation file ``{"split": {name: [frame_dir, ...]}, "annotations": [dict, ...]}``
(pickled). M = persons, V = joints of the layout the tracks use (OpenPose-18 in affectzoo
shards, COCO-17 from PoseNet).

Missing joints: affectzoo stores NaN; the PySKL tools expect numbers, so :func:`annotation`
writes a missing joint (x, y or score not finite: NaN or +-inf) as ``(0, 0)`` with score 0 (the
convention of PySKL's own pickles) unless ``fill_missing=None`` writes it as ``(NaN, NaN)``, score 0.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from extractors.tracking import track_prominence

__all__ = ["annotation", "annotation_file", "validate_annotation", "ANNOTATION_KEYS"]

ANNOTATION_KEYS = ("frame_dir", "label", "img_shape", "original_shape", "total_frames",
                   "keypoint", "keypoint_score")


def _shape(value, field: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be (height, width), got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{field} must be positive (height, width), got {value!r}")
    return h, w


def annotation(tracks: np.ndarray, frame_dir: str, label: int, img_shape: Sequence[int],
               original_shape: Sequence[int] | None = None, max_persons: int | None = None,
               fill_missing: float | None = 0.0, min_score: float = 0.2) -> dict:
    """One MMAction2 / PySKL annotation from person tracks.

    Args:
        tracks: ``float [M, T, V, 3]`` (x, y, score) pixels, NaN where a person / joint is not seen
            (:func:`extractors.tracking.track_poses` output, or ``main_track(...)[None]``).
        frame_dir: sample id. label: class index.
        img_shape: ``(height, width)`` of the frames the keypoints refer to.
        original_shape: ``(height, width)`` of the source video; default ``img_shape``.
        max_persons: keep at most this many tracks, the most prominent first
            (:func:`extractors.tracking.track_prominence` with ``min_score``); None keeps all in order.
        fill_missing: value written for the x, y of missing joints (x, y or score NaN / +-inf;
            their score becomes 0); None writes NaN.

    Returns:
        The annotation dict (:data:`ANNOTATION_KEYS`); ``total_frames = T``.

    Raises:
        ValueError: tracks not ``[M, T, V, 3]`` with M, T, V >= 1 (an annotation without a person
            or a frame cannot be sampled by MMAction2's pose pipelines), a bad shape field, or a
            label that is not an int.
    """
    tr = np.asarray(tracks, np.float32)
    if tr.ndim != 4 or tr.shape[-1] != 3:
        raise ValueError(f"{frame_dir}: tracks must be [M, T, V, 3] (x, y, score), got shape {tr.shape}")
    if min(tr.shape[:3]) < 1:
        raise ValueError(f"{frame_dir}: tracks must hold at least one person, frame and joint "
                         f"([M, T, V, 3] with M, T, V >= 1), got shape {tr.shape}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise ValueError(f"{frame_dir}: label must be an int, got {label!r}")
    if max_persons is not None and tr.shape[0] > max_persons:
        order = np.argsort(-track_prominence(tr, min_score), kind="stable")[:max_persons]
        tr = tr[order]
    keypoint = np.ascontiguousarray(tr[..., :2])
    score = np.ascontiguousarray(tr[..., 2])
    missing = ~np.isfinite(keypoint).all(axis=-1) | ~np.isfinite(score)
    keypoint[missing] = np.nan if fill_missing is None else fill_missing
    score[missing] = 0.0
    img = _shape(img_shape, "img_shape")
    return {
        "frame_dir": str(frame_dir),
        "label": int(label),
        "img_shape": img,
        "original_shape": _shape(original_shape, "original_shape") if original_shape is not None else img,
        "total_frames": int(tr.shape[1]),
        "keypoint": keypoint.astype(np.float32),
        "keypoint_score": score.astype(np.float32),
    }


def validate_annotation(ann: dict) -> None:
    """Check one annotation against the format; raise ``ValueError`` naming the sample and field."""
    name = ann.get("frame_dir", "<no frame_dir>")
    missing = [k for k in ANNOTATION_KEYS if k not in ann]
    if missing:
        raise ValueError(f"{name}: annotation lacks {missing}")
    kp, sc = ann["keypoint"], ann["keypoint_score"]
    if not (isinstance(kp, np.ndarray) and kp.dtype == np.float32 and kp.ndim == 4 and kp.shape[-1] == 2):
        raise ValueError(f"{name}: keypoint must be float32 [M, T, V, 2]")
    if not (isinstance(sc, np.ndarray) and sc.dtype == np.float32 and sc.shape == kp.shape[:-1]):
        raise ValueError(f"{name}: keypoint_score must be float32 {kp.shape[:-1]}")
    if ann["total_frames"] != kp.shape[1]:
        raise ValueError(f"{name}: total_frames {ann['total_frames']} != keypoint T {kp.shape[1]}")


def annotation_file(annotations: Iterable[dict], splits: dict[str, Sequence[str]]) -> dict:
    """The annotation-file object ``{"split": {...}, "annotations": [...]}``.

    Args:
        annotations: dicts from :func:`annotation`; splits: split name -> frame_dirs.
    Raises:
        ValueError: an invalid annotation, a duplicate ``frame_dir``, or a split naming an unknown one.
    """
    anns = list(annotations)
    for ann in anns:
        validate_annotation(ann)
    names = [a["frame_dir"] for a in anns]
    if len(set(names)) != len(names):
        raise ValueError("duplicate frame_dir in annotations")
    known = set(names)
    for split, members in splits.items():
        unknown = [m for m in members if m not in known]
        if unknown:
            raise ValueError(f"split {split!r} names unknown frame_dir {unknown[:3]}")
    return {"split": {k: list(v) for k, v in splits.items()}, "annotations": anns}
