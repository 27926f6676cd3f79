"""Keypoint layouts (joint names, skeleton edges) and the mappings between them.

Keypoint arrays follow the MMAction2 / PySKL convention used across affectzoo: ``float32 [..., V, C]``
with ``C = (x, y, score)`` in source-image pixels (x right, y down, origin at the top-left pixel),
NaN where a joint is absent. 3-D layouts (MPII-16 from the 3-D PoseNet, ProxEmo-16 gaits) carry
``C = (x, y, z)`` instead; the mapping functions take ``has_score`` to tell the two apart.

Layouts (:data:`LAYOUTS`, by name):

===============  ===  ==========================================================================
name             V    source
===============  ===  ==========================================================================
``coco17``       17   COCO keypoints (PoseNet, MMPose, CAER zoo)
``openpose18``   18   OpenPose body COCO-18 (pytorch-openpose)
``mpii16``       16   MPII human pose (3-D PoseNet of pose_emotion)
``proxemo16``    16   EWalk / ELMD / STEP gaits as ProxEmo reads them
``kinect25``     25   Microsoft Kinect v2 body joints (ESVG ``.pose`` files)
``emilya28``     28   Emilya mocap ``.xls`` sheets; joint names NOT known
``blazepose33``  33   MediaPipe BlazePose GHUM (``C`` = 8, :data:`BLAZEPOSE_CHANNELS`)
===============  ===  ==========================================================================

A :class:`Mapping` gives, for every joint of the target layout, the source joints it is made
from: one joint (copied), several joints (their mean, an approximation, named in the mapping's
notes) or none (the joint does not exist in the source: NaN). :func:`map_keypoints` applies it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "COCO17", "OPENPOSE18", "MPII16", "PROXEMO16", "KINECT25", "EMILYA28",
    "BLAZEPOSE33", "BLAZEPOSE_CHANNELS", "WORLD_LAYOUTS",
    "COCO17_HEAD", "EMILYA28_UPPER_BODY",
    "Layout", "LAYOUTS", "Mapping", "MAPPINGS",
    "get_layout", "map_keypoints", "coco17_to_openpose18", "mpii16_to_proxemo16",
    "coco17_to_proxemo16", "kinect25_to_openpose18", "kinect25_to_proxemo16", "coco17_to_mpii16",
]

#: COCO-17 order (PoseNet, MMPose, CAER zoo). Source: COCO keypoint annotation format.
COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: OpenPose body COCO-18 order (pytorch-openpose ``body.py``).
OPENPOSE18 = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

#: MPII-16 order, the output channels of the 3-D PoseNet (``fusion_3d_var.pth``).
#: Left / right are the person's own sides.
MPII16 = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)

#: ProxEmo / EWalk / ELMD gait order (``sample_data/README.md`` of vijay4313/proxemo).
PROXEMO16 = (
    "root", "spine", "neck", "head",
    "left_shoulder", "left_elbow", "left_hand",
    "right_shoulder", "right_elbow", "right_hand",
    "left_hip", "left_knee", "left_foot",
    "right_hip", "right_knee", "right_foot",
)

#: Kinect v2 ``JointType`` order (0 SpineBase ... 24 ThumbRight); the same names and indices as
#: the ``BODY_PARTS`` dict of FER_BGER ``Gesture/pre/x_y_oneroot.py``.
KINECT25 = (
    "spine_base", "spine_mid", "neck", "head",
    "shoulder_left", "elbow_left", "wrist_left", "hand_left",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right",
    "hip_left", "knee_left", "ankle_left", "foot_left",
    "hip_right", "knee_right", "ankle_right", "foot_right",
    "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right",
)

#: Emilya mocap joints: 28 per frame, 3 values (x, y, z) each, on sheet index 2 of the ``.xls``
#: files (row 0 = header). The seed repo never names them (seed_specs §1.6, §8 item 1), so the
#: names are placeholders in storage order.
EMILYA28 = tuple(f"joint_{j:02d}" for j in range(28))

#: Joints of FER_BGER's "upper body" variants: the first 14 Emilya joints (``i < 40, step 3``).
EMILYA28_UPPER_BODY = tuple(range(14))

#: MediaPipe BlazePose GHUM 33 landmarks (``pose_landmark_topology.svg``; the person's own sides).
BLAZEPOSE33 = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

#: Channels of ``blazepose33`` keypoints (``extractors.blazepose``): image x, y (source pixels),
#: visibility and presence (0..1), z (depth relative to the hips, pixels at the x scale), then
#: the metric world coordinates (metres, origin between the hips, x right, y down, z away from
#: the camera).
BLAZEPOSE_CHANNELS = ("x", "y", "visibility", "presence", "z", "world_x", "world_y", "world_z")
#: Layouts whose keypoints carry metric 3-D (world) coordinates, with their channel names: the
#: extraction stores them whole (``videos/joints3d``) next to their COCO-17 2-D view.
WORLD_LAYOUTS = {"blazepose33": BLAZEPOSE_CHANNELS}

#: Head joints of COCO-17 (used to place a head region for face detection).
COCO17_HEAD = tuple(COCO17.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))


@dataclass(frozen=True)
class Layout:
    """A keypoint layout: joint names in storage order and the skeleton's edges (bones).

    Attributes:
        name: registry key in :data:`LAYOUTS`.
        joints: joint names; index = position on the joint axis ``V``.
        edges: ``(a, b)`` joint-index pairs drawn as bones (0-based); empty when unknown.
        source: where the order comes from (paper / repo / seed_specs section).
        notes: caveats (approximate or unknown names).
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    source: str
    notes: str = ""

    @property
    def num_joints(self) -> int:
        """V, the number of joints."""
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of ``joint``; raises ``KeyError`` naming the layout and its joints."""
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"layout {self.name!r} has no joint {joint!r}; joints: {self.joints}") from None


def _edges(names: tuple[str, ...], pairs) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


_COCO17_EDGES = _edges(COCO17, [
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"), ("left_eye", "right_eye"), ("nose", "left_eye"),
    ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
])
# pytorch-openpose limbSeq (1-based in the repo), the 17 drawn limbs; its two extra PAF limbs
# (shoulder -> ear) are not bones.
_OPENPOSE18_EDGES = tuple((a - 1, b - 1) for a, b in (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
    (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18)))
_MPII16_EDGES = _edges(MPII16, [
    ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "pelvis"),
    ("left_hip", "pelvis"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("pelvis", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
    ("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"), ("right_shoulder", "thorax"),
    ("left_shoulder", "thorax"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
])
_PROXEMO16_EDGES = _edges(PROXEMO16, [
    ("root", "spine"), ("spine", "neck"), ("neck", "head"),
    ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_hand"),
    ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_hand"),
    ("root", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_foot"),
    ("root", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_foot"),
])
# FER_BGER x_y_oneroot.py POSE_PAIRS (0-based Kinect indices), 24 bones.
_KINECT25_EDGES = (
    (3, 2), (2, 20), (20, 4), (20, 8), (20, 1), (1, 0), (4, 5), (5, 6), (6, 7), (6, 22), (7, 21),
    (8, 9), (9, 10), (10, 11), (10, 24), (11, 23), (0, 12), (0, 16), (12, 13), (13, 14), (14, 15),
    (16, 17), (17, 18), (18, 19),
)

# MediaPipe POSE_CONNECTIONS (solutions/pose_connections.py), 35 bones.
_BLAZEPOSE33_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
    (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

#: Every layout by name.
LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (
    Layout("coco17", COCO17, _COCO17_EDGES, "COCO keypoints (CAER)",
           "edges: the COCO annotation 'skeleton' (19 bones)"),
    Layout("openpose18", OPENPOSE18, _OPENPOSE18_EDGES,
           "Hzzone/pytorch-openpose@5ee71dc src/body.py",
           "edges: the first 17 limbSeq pairs; heatmap channel 18 (background) is not a joint"),
    Layout("mpii16", MPII16, _MPII16_EDGES,
           "MPII Human Pose; xingyizhou/pytorch-pose-hg-3d fusion_3d_var heads",
           "names are the standard MPII order; the seed repo does not name them"),
    Layout("proxemo16", PROXEMO16, _PROXEMO16_EDGES,
           "vijay4313/proxemo@98c4e21 sample_data/README.md",
           "rows of EWalk/ELMD features*.h5 are T x 48 = 16 joints x (x, y, z)"),
    Layout("kinect25", KINECT25, _KINECT25_EDGES,
           "Kinect v2 JointType; Janie1996/FER_BGER@b6d53bd Gesture/pre/x_y_oneroot.py",
           "edges: the seed's POSE_PAIRS; ESVG text lines hold joint j at fields 2+6j (x), 3+6j (y)"),
    Layout("blazepose33", BLAZEPOSE33, _BLAZEPOSE33_EDGES,
           "google-ai-edge/mediapipe modules/pose_landmark (pose_landmark_topology.svg, "
           "solutions/pose_connections.py)",
           "C = 8: BLAZEPOSE_CHANNELS (x, y, visibility first, like the 2-D layouts)"),
    Layout("emilya28", EMILYA28, (),
           "Emilya .xls, Janie1996/FER_BGER@b6d53bd Gesture/pre",
           "joint names and bones are NOT FOUND in the seeds: 28 joints x (x, y, z) per row of "
           "sheet 2 (row 0 header); the first 14 joints are the 'upper body' (EMILYA28_UPPER_BODY)"),
)}


def get_layout(name: str) -> Layout:
    """The layout called ``name``; raises ``KeyError`` listing the known names."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint layout {name!r}; known: {', '.join(LAYOUTS)}") from None


@dataclass(frozen=True)
class Mapping:
    """How to build the joints of layout ``dst`` from the joints of layout ``src``.

    Attributes:
        src, dst: layout names.
        sources: one entry per ``dst`` joint: the ``src`` joint indices it is made from; one index
            = copy, several = their mean (coordinates) and their minimum (score), none = absent.
        notes: which joints are approximations and why.
    """

    src: str
    dst: str
    sources: tuple[tuple[int, ...], ...]
    notes: str = ""


def _mapping(src: str, dst: str, rules: dict[str, tuple[str, ...]], notes: str = "") -> Mapping:
    """Build a :class:`Mapping` from ``{dst joint: (src joints...)}``; unlisted joints are absent."""
    s, d = LAYOUTS[src], LAYOUTS[dst]
    unknown = set(rules) - set(d.joints)
    if unknown:
        raise KeyError(f"mapping {src}->{dst}: {sorted(unknown)} are not {dst} joints")
    sources = tuple(tuple(s.index(n) for n in rules.get(j, ())) for j in d.joints)
    return Mapping(src, dst, sources, notes)


#: Every mapping by ``(src, dst)``; ``("mpii16", "proxemo16")`` is the seed's, see
#: :func:`mpii16_to_proxemo16` for the anatomical variant.
MAPPINGS: dict[tuple[str, str], Mapping] = {(m.src, m.dst): m for m in (
    _mapping("coco17", "openpose18",
             {**{n: (n,) for n in OPENPOSE18 if n != "neck"}, "neck": ("left_shoulder", "right_shoulder")},
             "neck = midpoint of the shoulders (the rule of the shared OpenPose reference renderer)"),
    # seed_specs §2.1: by MPII index [6,7,8,9,12,11,10,13,14,15,3,4,5,2,1,0]
    Mapping("mpii16", "proxemo16", tuple((i,) for i in (6, 7, 8, 9, 12, 11, 10, 13, 14, 15, 3, 4, 5, 2, 1, 0)),
            "zykev/pose_emotion show_emo.load_pose_data order (QUIRK: ProxEmo's left arm is MPII's "
            "right arm and vice versa, while the legs keep their sides)"),
    _mapping("coco17", "proxemo16", {
        "root": ("left_hip", "right_hip"),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "neck": ("left_shoulder", "right_shoulder"), "head": ("nose",),
        "left_shoulder": ("left_shoulder",), "left_elbow": ("left_elbow",), "left_hand": ("left_wrist",),
        "right_shoulder": ("right_shoulder",), "right_elbow": ("right_elbow",), "right_hand": ("right_wrist",),
        "left_hip": ("left_hip",), "left_knee": ("left_knee",), "left_foot": ("left_ankle",),
        "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_foot": ("right_ankle",)},
        "approximations (COCO has no trunk joints): root = mid-hip, spine = mean of hips and "
        "shoulders (midpoint of mid-hip and mid-shoulder), neck = mid-shoulder, head = nose, "
        "hand = wrist, foot = ankle"),
    _mapping("coco17", "mpii16", {
        **{n: (n,) for n in MPII16 if n in COCO17},
        "pelvis": ("left_hip", "right_hip"), "thorax": ("left_shoulder", "right_shoulder")},
        "pelvis = mid-hip, thorax = mid-shoulder (approximations); upper_neck and head_top have "
        "no COCO counterpart (NaN)"),
    _mapping("kinect25", "openpose18", {
        "nose": ("head",), "neck": ("spine_shoulder",),
        "right_shoulder": ("shoulder_right",), "right_elbow": ("elbow_right",), "right_wrist": ("wrist_right",),
        "left_shoulder": ("shoulder_left",), "left_elbow": ("elbow_left",), "left_wrist": ("wrist_left",),
        "right_hip": ("hip_right",), "right_knee": ("knee_right",), "right_ankle": ("ankle_right",),
        "left_hip": ("hip_left",), "left_knee": ("knee_left",), "left_ankle": ("ankle_left",)},
        "nose = Kinect head centre (approximation); OpenPose neck (mid-shoulder) = Kinect "
        "SpineShoulder; eyes and ears have no Kinect counterpart (NaN)"),
    _mapping("openpose18", "coco17", {n: (n,) for n in COCO17},
             "the 17 joints COCO names, by name; the neck is dropped"),
    _mapping("kinect25", "proxemo16", {
        "root": ("spine_base",), "spine": ("spine_mid",), "neck": ("spine_shoulder",), "head": ("head",),
        "left_shoulder": ("shoulder_left",), "left_elbow": ("elbow_left",), "left_hand": ("hand_left",),
        "right_shoulder": ("shoulder_right",), "right_elbow": ("elbow_right",), "right_hand": ("hand_right",),
        "left_hip": ("hip_left",), "left_knee": ("knee_left",), "left_foot": ("foot_left",),
        "right_hip": ("hip_right",), "right_knee": ("knee_right",), "right_foot": ("foot_right",)},
        "ProxEmo neck (where the arms attach) = Kinect SpineShoulder, not Kinect Neck"),
    _mapping("blazepose33", "proxemo16", {
        "root": ("left_hip", "right_hip"),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "neck": ("left_shoulder", "right_shoulder"), "head": ("left_ear", "right_ear"),
        "left_shoulder": ("left_shoulder",), "left_elbow": ("left_elbow",), "left_hand": ("left_wrist",),
        "right_shoulder": ("right_shoulder",), "right_elbow": ("right_elbow",), "right_hand": ("right_wrist",),
        "left_hip": ("left_hip",), "left_knee": ("left_knee",), "left_foot": ("left_ankle",),
        "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_foot": ("right_ankle",)},
        "root = mid-hip (the pelvis joint of the mocap skeletons EWalk / ELMD / STEP use, and "
        "BlazePose's world origin); spine = midpoint of mid-hip and mid-shoulder (the STEP "
        "fixtures put it at 0.49 of root -> neck); neck = mid-shoulder (where ProxEmo's arms "
        "attach); head = mid-ear (head centre); hand = wrist and foot = ankle (the CMU / ELMD "
        "BVH 'Hand' and 'Foot' joints sit at the wrist and ankle); arms and legs on the "
        "person's own sides"),
    _mapping("blazepose33", "coco17", {n: (n,) for n in COCO17},
             "the 17 joints COCO names, by name (BlazePose names them alike)"),
)}

_MPII16_TO_PROXEMO16_ANATOMICAL = _mapping("mpii16", "proxemo16", {
    "root": ("pelvis",), "spine": ("thorax",), "neck": ("upper_neck",), "head": ("head_top",),
    "left_shoulder": ("left_shoulder",), "left_elbow": ("left_elbow",), "left_hand": ("left_wrist",),
    "right_shoulder": ("right_shoulder",), "right_elbow": ("right_elbow",), "right_hand": ("right_wrist",),
    "left_hip": ("left_hip",), "left_knee": ("left_knee",), "left_foot": ("left_ankle",),
    "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_foot": ("right_ankle",)},
    "the seed's order with the arms on their own sides")


def _apply(keypoints: np.ndarray, mapping: Mapping, has_score: bool) -> np.ndarray:
    src = LAYOUTS[mapping.src]
    kp = np.asarray(keypoints)
    if kp.ndim < 2 or kp.shape[-2] != src.num_joints:
        raise ValueError(f"{mapping.src}->{mapping.dst}: expected keypoints [..., {src.num_joints}, C], "
                         f"got shape {kp.shape}")
    if has_score and kp.shape[-1] < 2:
        raise ValueError(f"{mapping.src}->{mapping.dst}: has_score needs C >= 2, got shape {kp.shape}")
    kp = kp.astype(np.result_type(kp.dtype, np.float32), copy=False)
    out = np.full(kp.shape[:-2] + (len(mapping.sources), kp.shape[-1]), np.nan, dtype=kp.dtype)
    for j, idx in enumerate(mapping.sources):
        if not idx:
            continue
        picked = kp[..., list(idx), :]
        out[..., j, :] = picked.mean(axis=-2)  # NaN if any source is NaN
        if has_score:
            out[..., j, -1] = picked[..., -1].min(axis=-1)
    return out


def map_keypoints(keypoints: np.ndarray, src: str, dst: str, has_score: bool = True) -> np.ndarray:
    """Convert keypoints from layout ``src`` to layout ``dst`` with the registered mapping.

    Args:
        keypoints: ``[..., V_src, C]`` float (pixels, or 3-D units), NaN where absent.
        src, dst: layout names (see :data:`MAPPINGS` for the registered pairs).
        has_score: True when the last channel is a score (x, y, score): a joint made from
            several sources gets the mean of their coordinates and the minimum of their scores.
            False for coordinate-only channels (x, y, z): the mean of every channel.

    Returns:
        ``[..., V_dst, C]`` in the input's float dtype (float32 at least). A target joint is NaN
        (all channels) when it has no source or when any of its sources is NaN.

    Raises:
        KeyError: no mapping registered for ``(src, dst)``.
        ValueError: the joint axis does not match ``src``.
    """
    if src == dst:
        layout = get_layout(src)
        return _apply(keypoints, Mapping(src, dst, tuple((i,) for i in range(layout.num_joints))), has_score)
    try:
        mapping = MAPPINGS[(src, dst)]
    except KeyError:
        raise KeyError(f"no keypoint mapping {src}->{dst}; registered: "
                       f"{', '.join(f'{a}->{b}' for a, b in MAPPINGS)}") from None
    return _apply(keypoints, mapping, has_score)


def coco17_to_openpose18(keypoints: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Map COCO-17 keypoints to the OpenPose-18 layout.

    Args:
        keypoints: ``float32 [..., 17, 3]`` (x, y, score) in pixels, NaN where absent.
        min_score: joints whose score is below this become NaN before mapping.

    Returns:
        ``float32 [..., 18, 3]``. The neck (OpenPose joint 1) is the midpoint of the two
        shoulders with the smaller of their scores, NaN unless both shoulders are present
        (the rule used by the shared OpenPose reference renderer, reference README §3).

    Raises:
        ValueError: when the joint axis is not 17 long or the last axis is not 3.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape[-2:] != (17, 3):
        raise ValueError(f"expected [..., 17, 3] COCO-17 keypoints, got shape {kp.shape}")
    kp = kp.copy()
    kp[kp[..., 2] < min_score] = np.nan
    out = np.full(kp.shape[:-2] + (18, 3), np.nan, dtype=np.float32)
    for op_index, name in enumerate(OPENPOSE18):
        if name != "neck":
            out[..., op_index, :] = kp[..., COCO17.index(name), :]
    left, right = kp[..., 5, :], kp[..., 6, :]
    out[..., 1, :2] = (left[..., :2] + right[..., :2]) / 2.0
    out[..., 1, 2] = np.minimum(left[..., 2], right[..., 2])
    return out


def mpii16_to_proxemo16(keypoints: np.ndarray, faithful: bool = True) -> np.ndarray:
    """Reorder 3-D MPII-16 joints (PoseNet-3D output) into the ProxEmo-16 gait order.

    Args:
        keypoints: ``[..., 16, 3]`` (x, y, z), e.g. :func:`extractors.posenet3d.decode_3d` output.
        faithful: True (default) = the order of zykev/pose_emotion@4ef3385 ``show_emo.load_pose_data``,
            MPII index ``[6,7,8,9,12,11,10,13,14,15,3,4,5,2,1,0]``, which puts
            MPII's *right* arm on ProxEmo's *left* arm joints (and vice versa) but keeps the legs on
            their own sides (QUIRK, kept so that features match what the seed's VS-GCNN saw).
            False = every joint on its own side (pelvis, thorax, upper_neck, head_top as root,
            spine, neck, head).

    Returns:
        ``[..., 16, 3]`` in ProxEmo order, same float dtype (float32 at least).

    Raises:
        ValueError: the joint axis is not 16 long.
    """
    mapping = MAPPINGS[("mpii16", "proxemo16")] if faithful else _MPII16_TO_PROXEMO16_ANATOMICAL
    return _apply(keypoints, mapping, has_score=False)


def coco17_to_proxemo16(keypoints: np.ndarray, has_score: bool = True) -> np.ndarray:
    """COCO-17 -> ProxEmo-16 with approximated trunk joints (see ``MAPPINGS[("coco17", "proxemo16")].notes``).

    Args:
        keypoints: ``[..., 17, C]``; C = (x, y, score) when ``has_score`` else coordinates.
    Returns:
        ``[..., 16, C]``; root = mid-hip, spine = mean of hips and shoulders, neck = mid-shoulder,
        head = nose, hands = wrists, feet = ankles; NaN where a source joint is NaN.
    """
    return map_keypoints(keypoints, "coco17", "proxemo16", has_score)


def coco17_to_mpii16(keypoints: np.ndarray, has_score: bool = True) -> np.ndarray:
    """COCO-17 -> MPII-16: pelvis = mid-hip, thorax = mid-shoulder; upper_neck, head_top NaN."""
    return map_keypoints(keypoints, "coco17", "mpii16", has_score)


def kinect25_to_openpose18(keypoints: np.ndarray, has_score: bool = True) -> np.ndarray:
    """Kinect-25 -> OpenPose-18: nose = head, neck = SpineShoulder; eyes and ears NaN.

    Args:
        keypoints: ``[..., 25, C]`` Kinect v2 joints (e.g. ESVG colour-space x, y).
    Returns:
        ``[..., 18, C]``.
    """
    return map_keypoints(keypoints, "kinect25", "openpose18", has_score)


def kinect25_to_proxemo16(keypoints: np.ndarray, has_score: bool = False) -> np.ndarray:
    """Kinect-25 -> ProxEmo-16 (3-D camera-space joints by default: ``has_score=False``).

    Root = SpineBase, spine = SpineMid, neck = SpineShoulder, hands = Hand*, feet = Foot*.
    """
    return map_keypoints(keypoints, "kinect25", "proxemo16", has_score)
