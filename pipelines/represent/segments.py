"""TSN crops and face masks of the EmoReact models (seed 3, seed_specs §3.3-§3.4).

Source: nkegke/deep-affective-bodily-expression-recognition@863cf98 ``EmoReact/dataset.py``
(``_load_image``, ``get_bounding_box``). The TSN segment offsets (``_sample_indices``,
``_get_val_indices``, ``_get_test_indices``, the 1-based frame numbering and the frame-count
quirk) are samplers: :func:`pipelines.sampling.segment_offsets` and its neighbours.

**Crops** (:func:`tsn_crops`) are made from our own detections instead of the seed's OpenFace and
MediaPipe landmarks: the face box ``[x1, y1, x2, y2]`` plays the role of the landmarks' bounding
box, the body box is the bounding box of the valid body keypoints. Each box is rounded
(``round``, half to even, as the seed), grown by ``round(0.1 * width)`` / ``round(0.1 * height)``
pixels on each side and clamped to the frame (:func:`pipelines.crops.expand_box`). Inputs:

- ``face``: the face region; the whole frame when there is no face.
- ``body``: the face region is blacked out (set to 0) first, then the body region is cropped.
- ``fullbody``: the body region without blacking out.
- ``fusion``: the ``body`` crop plus the face crop taken from the original (unblacked) frame.

A missing body (no valid keypoint) or an empty region gives the whole frame, as the seed does
for an empty landmark row; where the seed would raise (all-NaN face landmarks in ``body`` mode),
we black out nothing. The seed also reads the landmark row of 0-based index ``p`` for the frame
file ``p`` (1-based), i.e. the next frame's landmarks; our detections are indexed by the frame
itself, so that one-frame shift is not reproduced.

**Face masks** (:func:`mask_polygon`, :func:`apply_face_mask`, :func:`preview`): the seed trains
on videos masked beforehand and does not say how (seed_specs §3.2, §8 item 2). Ours (our own
method, not the seed's) draws a filled "medical mask" polygon over nose, mouth and chin from the
five face landmarks (two eyes, nose, two mouth corners, e.g. DBFace's), see :func:`mask_polygon`.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipelines.crops import body_region, crop_region, face_region, zero_region

__all__ = [
    "INPUTS",
    "tsn_crops",
    "MASK_COLOR",
    "mask_polygon",
    "mask_landmarks",
    "apply_face_mask",
    "preview",
]

#: The seed's ``--input`` choices.
INPUTS = ("face", "body", "fullbody", "fusion")


# ----------------------------------------------------------------------------------------- crops

def tsn_crops(frame: np.ndarray, mode: str, face_box=None, keypoints: np.ndarray | None = None,
              min_score: float = 0.5) -> tuple[np.ndarray, np.ndarray | None]:
    """The crop(s) one TSN input mode takes from one frame (seed_specs §3.3).

    Args:
        frame: ``uint8 [H, W, 3]``.
        mode: ``face``, ``body``, ``fullbody`` or ``fusion``.
        face_box: ``[x1, y1, x2, y2]`` source pixels of the person's face, or None / NaN.
        keypoints: ``[V, 3]`` body keypoints (pixels), or None.
        min_score: keypoint validity threshold for the body region.

    Returns:
        ``(crop, face_crop)``: ``crop`` is the mode's image; ``face_crop`` is the face image of
        ``fusion`` (from the original frame; the whole frame when there is no face) and None
        for the other modes.

    Raises:
        ValueError: unknown mode, frame not ``[H, W, 3]``.
    """
    if mode not in INPUTS:
        raise ValueError(f"mode must be one of {INPUTS}, got {mode!r}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be [H, W, 3], got shape {frame.shape}")
    hw = frame.shape[:2]
    face = face_region(face_box, hw)
    if mode == "face":
        return crop_region(frame, face), None
    body = body_region(keypoints, hw, min_score) if keypoints is not None else None
    source = zero_region(frame, face) if mode in ("body", "fusion") else frame
    crop = crop_region(source, body)
    return crop, (crop_region(frame, face) if mode == "fusion" else None)


# ------------------------------------------------------------------------------------ face masks

#: Fill colour of the synthetic mask (RGB, a light surgical-mask blue).
MASK_COLOR = (168, 204, 230)

# Mask outline in face coordinates (a, b): a along the eye axis in inter-ocular distances from
# the eye midpoint, b towards the mouth in units of the eye-to-mouth distance. The top edge
# (b ~ 0.3) sits on the nose bridge below the eyes, the sides pass outside the mouth corners,
# the bottom wraps the chin (b ~ 1.8).
_MASK_OUTLINE = np.array([
    (-0.95, 0.45), (-0.5, 0.33), (0.0, 0.28), (0.5, 0.33), (0.95, 0.45),
    (1.05, 1.0), (0.8, 1.5), (0.35, 1.75), (0.0, 1.8), (-0.35, 1.75), (-0.8, 1.5), (-1.05, 1.0),
])


def mask_polygon(landmarks: np.ndarray) -> np.ndarray:
    """Outline of our synthetic medical mask from five face landmarks.

    Args:
        landmarks: ``[5, 2]`` (x, y) pixels: two eyes, nose, two mouth corners (either eye / corner
            first, e.g. DBFace or MTCNN order).

    Returns:
        ``float64 [12, 2]`` polygon in pixels. With ``e`` the eye midpoint, ``d`` the inter-ocular
        distance, ``u`` the unit eye axis and ``v`` the unit normal to it pointing to the mouth,
        ``h = (mouth midpoint - e) . v``, point ``(a, b)`` of the outline maps to
        ``e + a*d*u + b*h*v``; the outline covers nose bridge to chin and cheek to cheek.

    Raises:
        ValueError: not ``[5, 2]`` finite, coincident eyes, or a mouth not below the eye line.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be 5 finite (x, y) points, got shape {lm.shape}")
    eye_mid, mouth_mid = lm[:2].mean(0), lm[3:].mean(0)
    axis = lm[1] - lm[0]
    d = float(np.hypot(*axis))
    if d == 0:
        raise ValueError("landmarks: the two eyes coincide")
    u = axis / d
    v = np.array([-u[1], u[0]])
    if (mouth_mid - eye_mid) @ v < 0:
        v = -v
    h = float((mouth_mid - eye_mid) @ v)
    if h <= 0:
        raise ValueError("landmarks: the mouth is not below the eye line")
    return eye_mid + _MASK_OUTLINE[:, :1] * d * u + _MASK_OUTLINE[:, 1:] * h * v


def mask_landmarks(keypoints: np.ndarray) -> np.ndarray:
    """The five landmarks :func:`mask_polygon` takes, from either face detector's keypoints.

    Args:
        keypoints: ``[6, 2]`` BlazeFace (right eye, left eye, nose tip, mouth centre, right ear,
            left ear; ``extractors.blazeface.FACE_KEYPOINTS``) or ``[5, 2]`` DBFace (two eyes,
            nose, two mouth corners; ``extractors.dbface.LANDMARKS``), (x, y) pixels.

    Returns:
        float64 [5, 2]: DBFace's points unchanged; for BlazeFace ``[right eye, left eye, nose,
        mouth centre, mouth centre]`` (the ears are dropped; the mouth centre stands for both
        corners, so the corners' midpoint, the only mouth quantity the polygon uses, is exact).

    Raises:
        ValueError: neither shape.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.shape == (5, 2):
        return kp
    if kp.shape == (6, 2):
        return kp[[0, 1, 2, 3, 3]]
    raise ValueError(f"face keypoints must be [5, 2] (DBFace) or [6, 2] (BlazeFace), got shape {kp.shape}")


def apply_face_mask(frame: np.ndarray, landmarks: np.ndarray, color=MASK_COLOR) -> np.ndarray:
    """A copy of ``frame`` (``uint8 [H, W, 3]`` RGB) with :func:`mask_polygon` filled in ``color``
    (``cv2.fillPoly``, anti-aliased edge, polygon rounded to 1/16 px)."""
    out = np.ascontiguousarray(frame).copy()
    poly = np.round(mask_polygon(landmarks) * 16).astype(np.int32)
    cv2.fillPoly(out, [poly], tuple(int(c) for c in color), lineType=cv2.LINE_AA, shift=4)
    return out


def preview(frame: np.ndarray, landmarks: np.ndarray, path: str | Path, face_box=None) -> Path:
    """Write a PNG of the masked frame with the landmarks (red dots), the mask outline (white) and
    the face box (green) drawn, for checking the mask by eye.

    Args:
        frame: ``uint8 [H, W, 3]`` RGB. path: output ``.png``. face_box: optional ``[x1, y1, x2, y2]``.
    Returns:
        The written path.
    Raises:
        OSError: the PNG could not be written.
    """
    img = apply_face_mask(frame, landmarks)
    cv2.polylines(img, [np.round(mask_polygon(landmarks)).astype(np.int32)], True, (255, 255, 255), 1)
    for x, y in np.round(np.asarray(landmarks, np.float64)).astype(int):
        cv2.circle(img, (int(x), int(y)), 2, (255, 0, 0), -1)
    if face_box is not None and np.isfinite(np.asarray(face_box, np.float64)).all():
        x1, y1, x2, y2 = (int(round(float(c))) for c in face_box)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 1)
    path = Path(path)
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
