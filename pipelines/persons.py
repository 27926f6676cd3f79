"""Who is who in one sample: shots, person ids of the poses, the faces that belong to them.

The extraction's identity step (issue "one person is one person"): on the sampled frames of a
window it finds the shot boundaries (:func:`extractors.shots.detect_shots`), tracks the poses
within each shot by their boxes and re-identifies people across shots by appearance
(:class:`extractors.identity.PersonTracker` with
:func:`extractors.appearance.appearance_embeddings` of each pose box), so one **person id**
stays with one person over the whole window. :func:`pipelines.assemble.person_tracks` then
stacks each person's poses into one track; the **main person** is the one with the most screen
time, and every representation of the main person is built from that person's frames only.

Faces: the face detector searches a head crop placed from the main person's head keypoints, or
the whole frame where that person has no head keypoints, is not seen, or the window has no pose
at all. :func:`attribute_faces` keeps only the detections that belong to the main person: the
face holding their head keypoints, and on whole frames the faces the face tracker links to
those (:func:`face_persons`); in a window without poses, the face identity seen most. So a face
crop is never someone else's.

Pure functions (numpy in, numpy out), no state kept between samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipelines.crops import crop_to_source

__all__ = ["Identity", "identify", "attribute_faces", "face_persons", "FaceAttribution", "seen"]


#: :class:`extractors.identity.PersonTracker` settings for poses: PoseNet's pose score is the
#: mean of its 17 keypoint scores, so a partly hidden person falls under ByteTrack's default of
#: 0.6 (a walker of the shipped ``hikers_walking.mp4`` scores 0.53); from 0.2 (the keypoint
#: threshold) a pose starts a track, poses from 0.05 may only continue one.
BODY_TRACKING = {"high_threshold": 0.2, "low_threshold": 0.05}


@dataclass(frozen=True)
class Identity:
    """Shots and person ids of one sample's sampled frames.

    Attributes:
        shots: int32 [T'] 0-based shot index of every sampled frame (all 0 without pixels).
        pose_person: T' arrays int32 [P_t]: the person id of each pose of frame t (-1 = the pose
            was not tracked: no confident joint, or a low-score pose left unmatched).
    """

    shots: np.ndarray
    pose_person: list[np.ndarray]


def identify(poses: Sequence[tuple[np.ndarray, np.ndarray]], frames, min_score: float = 0.2) -> Identity:
    """Person ids of every pose of a window's sampled frames.

    Args:
        poses: per sampled frame ``(pose_scores float32 [P_t], keypoints float32 [P_t, 17, 3])``
            (COCO-17, x, y, score in source pixels).
        frames: the sampled frames ``uint8 [T', H, W, 3]`` RGB (or a list of them), or None when
            the pixels are not at hand: then every frame is shot 0 and people are tracked by
            motion only, without re-identification.
        min_score: joint confidence from which a joint counts for the pose box.

    Returns:
        :class:`Identity`.

    Raises:
        ValueError: ``frames`` given with another length than ``poses``.
    """
    from extractors.identity import PersonTracker, pose_boxes
    from extractors.shots import detect_shots

    n = len(poses)
    if frames is not None and len(frames) != n:
        raise ValueError(f"identify: {len(frames)} frames for {n} pose results")
    shots = detect_shots(frames) if frames is not None and n else np.zeros(n, np.int32)
    tracker = PersonTracker(kind="body", **BODY_TRACKING)
    out = []
    for t, (scores, keypoints) in enumerate(poses):
        ids = np.full(len(keypoints), -1, np.int32)
        boxes = pose_boxes(np.asarray(keypoints, np.float32), min_score) if len(keypoints) else np.zeros((0, 4))
        ok = np.flatnonzero(np.isfinite(boxes).all(axis=1)) if len(boxes) else np.zeros(0, int)
        emb = None
        if frames is not None and len(ok):
            from extractors.appearance import appearance_embeddings

            emb = appearance_embeddings(np.asarray(frames[t]), boxes[ok].astype(np.float32), kind="body")
        _, person = tracker.update(int(shots[t]), boxes[ok].astype(np.float32),
                                   np.asarray(scores, np.float32)[ok], emb)
        ids[ok] = person
        out.append(ids)
    return Identity(shots=np.asarray(shots, np.int32), pose_person=out)


@dataclass(frozen=True)
class FaceAttribution:
    """The main person's face per frame position after :func:`attribute_faces`.

    Attributes:
        faces: ``{position: (crop uint8 [S, S, 3], detections float32 [D', 17 or 15])}`` with
            D' <= 1: only the detection that belongs to the main person is left.
        person: ``{position: person id}`` of the face kept at each position (-1 = none).
    """

    faces: dict
    person: dict


def _inside(points: np.ndarray, box: np.ndarray, grow: float = 0.1) -> np.ndarray:
    """bool [N]: (x, y) points inside ``box`` (x1, y1, x2, y2) grown by ``grow`` of its size per side."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dx, dy = grow * (x2 - x1), grow * (y2 - y1)
    return ((points[:, 0] >= x1 - dx) & (points[:, 0] <= x2 + dx)
            & (points[:, 1] >= y1 - dy) & (points[:, 1] <= y2 + dy))


def _to_crop(points: np.ndarray, box: np.ndarray, side: int) -> np.ndarray:
    """Source-pixel points mapped into the pixels of a crop of ``box`` resized to ``side``."""
    scale = side / max(float(box[2] - box[0]), 1e-6)
    return (points - box[:2]) * scale


def _joined(dets: np.ndarray, pose: np.ndarray, crop_box: np.ndarray, side: int, min_score: float):
    """Row index of the detection (crop pixels) that holds the most confident head keypoints
    (COCO 0..4) of ``pose`` (then the highest score), None when none holds one. A pose without
    a confident head keypoint claims the detection whose centre lies in the upper half of its
    box of confident joints."""
    from schemas.keypoints import COCO17_HEAD

    head = pose[list(COCO17_HEAD)]
    ok = np.nan_to_num(head[:, 2], nan=0.0) >= min_score
    if ok.any():
        pts = _to_crop(head[ok, :2].astype(np.float64), crop_box, side)
        counts = np.array([_inside(pts, d).sum() for d in dets])
    else:
        joints = pose[np.nan_to_num(pose[:, 2], nan=0.0) >= min_score, :2]
        if not len(joints):
            return None
        lo, hi = joints.min(axis=0), joints.max(axis=0)
        upper = _to_crop(np.array([lo, [hi[0], (lo[1] + hi[1]) / 2]], np.float64), crop_box, side)
        centres = (dets[:, :2] + dets[:, 2:4]) / 2
        counts = _inside(centres, upper.ravel()).astype(int)
    if counts.max(initial=0) == 0:
        return None
    return int(np.lexsort((-dets[:, 4], -counts))[0])


def seen(track: np.ndarray) -> np.ndarray:
    """bool [T']: frames where a track ``[T', V, 3]`` has a pose (any finite joint)."""
    return np.isfinite(track[..., 0]).any(axis=-1)


def face_persons(record, faces: dict) -> dict:
    """Face person ids of every detection: the detections of all positions, in order, mapped to
    source pixels and tracked as faces (:class:`extractors.identity.PersonTracker`, kind
    ``face``, the record's shots). Whole-frame crops give appearance descriptors
    (:func:`extractors.appearance.appearance_embeddings`); head crops, zoomed around one head,
    give none (their histograms are not comparable with a whole frame's), so those faces are
    linked by motion within the shot.

    Returns:
        ``{position: int32 [D]}`` face person ids (-1 = not tracked), ids of this tracker only.
    """
    from extractors.appearance import appearance_embeddings
    from extractors.identity import PersonTracker

    tracker = PersonTracker(kind="face")
    ids = {}
    for pos in sorted(faces):
        crop, dets = faces[pos]
        box, kind = record.head_boxes[pos]
        src = np.stack([crop_to_source(d, box, crop.shape[0]) for d in dets]).astype(np.float32) \
            if len(dets) else np.zeros((0, 4), np.float32)
        emb = appearance_embeddings(crop, dets[:, :4].astype(np.float32), kind="face") if kind == "frame" else None
        _, ids[pos] = tracker.update(int(record.shots[pos]), src, dets[:, 4].astype(np.float32), emb)
    return ids


def _keep(faces: dict, ids: dict, wanted: set, person_id: int) -> FaceAttribution:
    """At every position, the best-scoring detection whose face person is in ``wanted``."""
    kept, person = {}, {}
    for pos, (crop, dets) in faces.items():
        hit = [j for j in np.argsort(-dets[:, 4]) if int(ids[pos][j]) in wanted] if len(dets) else []
        kept[pos] = (crop, dets[hit[:1]] if hit else dets[:0])
        person[pos] = person_id if hit else -1
    return FaceAttribution(kept, person)


def attribute_faces(record, faces: dict, min_score: float = 0.2) -> FaceAttribution:
    """Keep, at every position, only the face detection of the sample's main person.

    Requires the record's ``tracks`` (row 0 = the main person), ``person_ids``, ``shots`` and
    ``head_boxes``. Where the main person has a pose, a detection is theirs when it holds their
    head keypoints (:func:`_joined`). Where they have none (the whole frame was searched), a
    detection is theirs when the face tracker (:func:`face_persons`: motion within a shot,
    appearance across shots) gives it the face person of a face joined to their body. With no
    joined face, and the main person seen in under half of the frames (a close-up that the pose
    model mostly misses), the face identity seen at the most of those positions is kept, as in a
    window without any pose (its person id follows the pose persons'). Otherwise no face is kept
    there. Annotated face boxes (``given_faces``) pass unchanged.

    Args:
        record: the :class:`pipelines.record.SampleRecord`.
        faces: ``{position: (crop uint8 [S, S, 3], detections float32 [D, 17 or 15] in crop
            pixels)}`` from the face detector.

    Returns:
        :class:`FaceAttribution`.
    """
    ids = face_persons(record, faces)
    if not len(record.person_ids) or record.person_ids[0] < 0:
        return _most_seen_face(faces, ids, first_id=0)
    main, main_id = record.tracks[0], int(record.person_ids[0])
    present = seen(main)
    kept, person, joined, elsewhere = {}, {}, set(), {}
    for pos, (crop, dets) in faces.items():
        if not present[pos]:
            elsewhere[pos] = (crop, dets)
            continue
        box, _ = record.head_boxes[pos]
        j = _joined(dets, main[pos], box, crop.shape[0], min_score) if len(dets) else None
        kept[pos] = (crop, dets[j: j + 1] if j is not None else dets[:0])
        person[pos] = main_id if j is not None else -1
        if j is not None and ids[pos][j] >= 0:
            joined.add(int(ids[pos][j]))
    if joined or present.mean() >= 0.5:
        rest = _keep(elsewhere, ids, joined, main_id)
    else:
        rest = _most_seen_face(elsewhere, ids, first_id=int(record.person_ids.max()) + 1)
    kept.update(rest.faces)
    person.update(rest.person)
    return FaceAttribution(kept, person)


def _most_seen_face(faces: dict, ids: dict, first_id: int) -> FaceAttribution:
    """Faces without a body to join them to: keep the face person seen at the most positions;
    its person id is ``first_id`` + its face person (never a pose person's id)."""
    found = [ids[pos][ids[pos] >= 0] for pos in faces]
    found = np.concatenate(found) if found else np.zeros(0, np.int32)
    if not len(found):
        return _keep(faces, ids, set(), -1)
    face_id = int(np.bincount(found).argmax())
    return _keep(faces, ids, {face_id}, first_id + face_id)
