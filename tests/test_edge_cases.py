"""Edge cases of every representation builder, one test line per (representation, case).

The four cases of issue 4 ("Checks"):

- ``a``: fewer frames than the representation needs (0, 1, fewer than C*K / S / the window / 64);
- ``b``: missing joints (NaN or zero-confidence joints, a whole limb absent, an all-missing frame);
- ``c``: one person where two are expected;
- ``d``: NaN / inf inputs.

Every expected value below is written out by hand, with the derivation in a comment that cites the
section of ``shared/specs/seed_specs.md`` that fixes the rule; where a function rejects its input
the test matches the error message. A representation without persons (super-images, ProxEmo
gaits, face windows) has no ``c`` line. Tests marked ``xfail(strict=True)`` document bugs in
modules owned by someone else: they fail now and will turn into errors (XPASS) once fixed.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipelines import assemble as A
from pipelines import crops as C
from pipelines import export as E
from pipelines import rows as R
from pipelines import sampling as SP
from pipelines.represent import embedding as EM
from pipelines.represent import face_windows as FW
from pipelines.represent import pose_features as PF
from pipelines.represent import segments as SG
from pipelines.represent import superimage as SI
from pipelines.represent import timeline as TL
from pipelines.sampling import clip_positions
from pipelines.represent.skeleton import annotation, validate_annotation
from schemas.shards import ShardShapes
from zoo import transforms as TR

CASES: list = []


def case(name: str, xfail: str | None = None):
    """Register a check as test id ``name`` (``representation-case_detail``)."""
    def register(fn):
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        CASES.append(pytest.param(fn, id=name, marks=marks))
        return fn
    return register


# Minimal stand-in for ExtractConfig: the assemble helpers tested here read only these fields.
CFG = SimpleNamespace(min_keypoint_score=0.2, timeline_size=8, timeline_length=4, timeline_pad="faithful",
                      shapes=ShardShapes(frames=8, joints=18, clips=5, frames_per_clip=2, face_size=8,
                                         timeline_size=8, timeline_length=4))


# =============================================================================================
# ACCM timeline (seed_specs 1.7) and PoTion without timeline (1.8)
# =============================================================================================
def _timeline(joints, **kw):
    """skeleton_timeline with offset 0, margin 1, 8 bins, 4 columns (small hand-checkable sizes)."""
    return TL.skeleton_timeline(np.asarray(joints, np.float64), size=8, length=4, offset=(0.0, 0.0),
                                margin=1, **kw)


def _marks(shape, marks):
    """Array of zeros with ``value`` at each ``(index, value)`` of ``marks``."""
    out = np.zeros(shape, np.float32)
    for index, value in marks:
        out[index] = value
    return out


@case("timeline-a_T0_raises")
def _():
    with pytest.raises(ValueError, match=r"T >= 1 frames"):
        _timeline(np.zeros((0, 2, 2)))


@case("timeline-a_T1_faithful_pad")
def _():
    # 1.7: joints (0, 0) and (6, 3); px = int(x), py = int(y) (offset 0 here).
    # x box 0-1 .. 6+1 -> range 8; y box -1 .. 4 -> range 5; scale = min(8/8, 8/5) = 1.
    # nx = [1, 7], ny = [1, 4]. Joint j writes j + 1: joint 0 -> 1, joint 1 -> 2.
    # Time: T = 1, nrows = 2 < length 4 -> column 0 = frame 0; the faithful pad (QUIRK of 1.7,
    # "only fills one column") fills column T = 1 with the last frame; columns 2, 3 stay 0.
    want = _marks((4, 8, 4), [((0, 1, c), 1) for c in (0, 1)] + [((1, 1, c), 1) for c in (0, 1)]
                  + [((2, 7, c), 2) for c in (0, 1)] + [((3, 4, c), 2) for c in (0, 1)])
    np.testing.assert_array_equal(_timeline([[[0, 0], [6, 3]]]), want)


@case("timeline-a_T1_repeat_pad")
def _():
    # Same bins as a_T1_faithful_pad; pad="repeat" (our alternative) fills columns 1..3 too.
    want = _marks((4, 8, 4), [((0, 1, c), 1) for c in range(4)] + [((1, 1, c), 1) for c in range(4)]
                  + [((2, 7, c), 2) for c in range(4)] + [((3, 4, c), 2) for c in range(4)])
    np.testing.assert_array_equal(_timeline([[[0, 0], [6, 3]]], pad="repeat"), want)


@case("timeline-a_T_length_minus_1_last_column_empty")
def _():
    # 1.7: T = 3, nrows = T + 1 = 4 >= length 4 -> picks = int(linspace(0, 4, 4, endpoint=False))
    # = [0, 1, 2, 3]; pick 3 has no data row (3 >= T), so column 3 stays empty (QUIRK).
    # One joint at (0, 0): box -1 .. 1, range 2 both axes, scale 8/2 = 4, bin int(1 * 4) = 4.
    want = _marks((2, 8, 4), [((0, 4, c), 1) for c in range(3)] + [((1, 4, c), 1) for c in range(3)])
    np.testing.assert_array_equal(_timeline(np.zeros((3, 1, 2))), want)


# Frame 0 of the missing-joint cases: joints 0 and 3 at (0, 0) and (4, 4); joints 1, 2 (a limb) absent.
# 1.7: x box -1 .. 5, range 6, same for y; scale 8/6; bins int(1 * 8/6) = 1 and int(5 * 8/6) = 6.
# Frame 1 has no valid joint -> empty column. Time: T = 2, nrows 3 >= 2 -> picks int(linspace(0, 3,
# 2, endpoint=False)) = [0, 1]: column 0 = frame 0, column 1 = frame 1.
LIMB_WANT = _marks((8, 8, 2), [((0, 1, 0), 1), ((1, 1, 0), 1), ((6, 6, 0), 4), ((7, 6, 0), 4)])


def _limb_joints(missing):
    joints = np.array([[[0, 0], [missing, 2], [3, missing], [4, 4]], [[missing, missing]] * 4], np.float64)
    return joints


@case("timeline-b_limb_absent_and_all_missing_frame")
def _():
    out = TL.skeleton_timeline(_limb_joints(np.nan), size=8, length=2, offset=(0, 0), margin=1)
    np.testing.assert_array_equal(out, LIMB_WANT)


@case("timeline-c_second_person_slot_empty")
def _():
    # The second person of a one-person window is an all-NaN track (assemble.person_tracks):
    # every frame has no valid joint, so every column is empty (module docstring of timeline.py).
    np.testing.assert_array_equal(_timeline(np.full((5, 3, 2), np.nan)), np.zeros((6, 8, 4), np.float32))


@case("timeline-d_inf_joint_is_missing")
def _():
    # +-inf coordinates are missing joints, exactly like NaN: same output as the b case. (Before
    # the fix an inf joint made the frame's range infinite: every other joint fell to bin 0.)
    for bad in (np.inf, -np.inf):
        out = TL.skeleton_timeline(_limb_joints(bad), size=8, length=2, offset=(0, 0), margin=1)
        np.testing.assert_array_equal(out, LIMB_WANT)


@case("potion-a_T1_faithful_pad")
def _():
    # 1.8: px = 1000 - (int(x) + 80) * 2, py = 1000 - (int(y) + 10) * 2.
    # Joint 0 (0, 0) -> (840, 980); joint 1 (3, 2) -> (834, 976).
    # x box 834-5 .. 840+5, range 16; y box 971 .. 985, range 14; scale = min(8/16, 8/14) = 0.5.
    # nx = [int(11 * .5) = 5, int(5 * .5) = 2]; ny = [int(9 * .5) = 4, int(5 * .5) = 2].
    # Slots (length 3): T = 1, nrows 2 < 3 -> slot 0 = frame 0, faithful pad slot 1 = frame 0,
    # slot 2 empty. Weights t / (length - 1) = 0, 0.5 -> P[0, 5, 4] = P[1, 2, 2] = 0 + 0.5.
    out = TL.potion_one_channel(np.array([[[0.0, 0.0], [3.0, 2.0]]]), size=8, length=3)
    np.testing.assert_array_equal(out, _marks((2, 8, 8), [((0, 5, 4), 0.5), ((1, 2, 2), 0.5)]))


@case("potion-a_length1_weight_zero")
def _():
    # 1.8: t / (T - 1) divides by zero for one slot in the reference; our guard gives weight 0.
    out = TL.potion_one_channel(np.array([[[0.0, 0.0], [3.0, 2.0]]]), size=8, length=1)
    np.testing.assert_array_equal(out, np.zeros((2, 8, 8), np.float32))


@case("potion-a_T0_raises")
def _():
    with pytest.raises(ValueError, match=r"T >= 1 frames"):
        TL.potion_one_channel(np.zeros((0, 2, 2)), size=8, length=3)


def _potion_missing(bad):
    # T = 2, length 2: nrows 3 >= 2 -> slots [0, 1], weights 0 and 1. Frame 0 only has weight 0.
    # Frame 1: joint 1 missing; joint 0 alone: box p-5 .. p+5, range 10 both axes, scale 0.8,
    # bins int(5 * 0.8) = 4 -> P[0, 4, 4] = 1.
    joints = np.array([[[1.0, 2.0], [7.0, 9.0]], [[5.0, 5.0], [bad, 3.0]]])
    out = TL.potion_one_channel(joints, size=8, length=2)
    np.testing.assert_array_equal(out, _marks((2, 8, 8), [((0, 4, 4), 1.0)]))


@case("potion-b_missing_joint")
def _():
    _potion_missing(np.nan)


@case("potion-b_all_missing_frame")
def _():
    # Same slots; frame 1 (the only weighted slot) has no joint -> all zero.
    joints = np.array([[[1.0, 2.0], [7.0, 9.0]], [[np.nan, np.nan], [np.nan, np.nan]]])
    np.testing.assert_array_equal(TL.potion_one_channel(joints, size=8, length=2), np.zeros((2, 8, 8), np.float32))


@case("potion-d_inf_joint_is_missing")
def _():
    _potion_missing(np.inf)
    _potion_missing(-np.inf)


@case("assemble.timeline_of-b_zero_confidence_joint")
def _():
    # assemble.timeline_of: OpenPose-18 [T, 18, 3]; scores below min_keypoint_score (0.2) are
    # missing. Joints 0 (0, 0, .9), 1 (6, 3, .9), 2 (100, 100, 0.1) -> dropped; others NaN.
    # 1.7 with the reference offset (1000, 50), margin 5: px = [1000, 1006], py = [50, 53];
    # x box 995 .. 1011 (16), y box 45 .. 58 (13); scale min(8/16, 8/13) = 0.5;
    # nx = [int(5*.5) = 2, int(11*.5) = 5], ny = [int(5*.5) = 2, int(8*.5) = 4].
    # T = 1 < length 4 -> columns 0 and (faithful pad) 1.
    op18 = np.full((1, 18, 3), np.nan)
    op18[0, :3] = [[0, 0, 0.9], [6, 3, 0.9], [100, 100, 0.1]]
    want = _marks((36, 8, 4), [((0, 2, c), 1) for c in (0, 1)] + [((1, 2, c), 1) for c in (0, 1)]
                  + [((2, 5, c), 2) for c in (0, 1)] + [((3, 4, c), 2) for c in (0, 1)])
    np.testing.assert_array_equal(A.timeline_of(op18, CFG), want)


@case("assemble.timeline_of-c_absent_person_all_zero")
def _():
    # An all-NaN OpenPose-18 track (nobody found) -> every column empty.
    np.testing.assert_array_equal(A.timeline_of(np.full((3, 18, 3), np.nan), CFG), np.zeros((36, 8, 4), np.float32))


# =============================================================================================
# Face super-images: the C x K plan (seed_specs 1.1), tiling, SISTCM views (1.3)
# =============================================================================================
@case("superimage.plan-a_0_frames_raises")
def _():
    with pytest.raises(ValueError, match="at least one frame"):
        clip_positions(0, 5, 2)


@case("superimage.plan-a_1_frame")
def _():
    # 1.1: n_frames <= C*K -> all frames, padded to C*K with the last one, split into C groups of K.
    np.testing.assert_array_equal(clip_positions(1, 5, 2), np.zeros((5, 2), np.int64))


@case("superimage.plan-a_fewer_than_CK")
def _():
    # 1.1: 7 frames < C*K = 10 -> [0..6, 6, 6, 6] in groups of K = 2.
    np.testing.assert_array_equal(clip_positions(7, 5, 2), [[0, 1], [2, 3], [4, 5], [6, 6], [6, 6]])
    # exactly C*K: every frame once, in order (the padding branch with nothing to pad).
    np.testing.assert_array_equal(clip_positions(10, 5, 2), np.arange(10).reshape(5, 2))


@case("superimage.tile-a_K0_raises")
def _():
    with pytest.raises(ValueError, match=r"uint8 \[K>=1, H, W, 3\]"):
        SI.tile_superimage(np.zeros((0, 2, 2, 3), np.uint8))


@case("superimage.tile-a_K1_and_short_last_row")
def _():
    crop = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    image, layout = SI.tile_superimage(crop)
    np.testing.assert_array_equal(image, crop[0])      # one tile: the image is the crop
    assert layout == {"k": 1, "rows": 1, "cols": 1, "tile_h": 2, "tile_w": 2, "order": "row-major"}
    # K = 1 in a 3-column grid: tiles 1, 2 of the single row are black.
    image, layout = SI.tile_superimage(crop, cols=3)
    want = np.zeros((2, 6, 3), np.uint8)
    want[:, :2] = crop[0]
    np.testing.assert_array_equal(image, want)
    np.testing.assert_array_equal(SI.untile_superimage(image, layout), crop)


@case("superimage.tile-b_missing_face_is_black_tile")
def _():
    # A clip frame without a face is stored as a zero crop (assemble._face_of); it tiles to a black
    # tile and comes back as zeros.
    face = np.full((1, 2, 2, 3), 200, np.uint8)
    crops = np.concatenate([face, np.zeros_like(face)])
    image, layout = SI.tile_superimage(crops)
    want = np.zeros((2, 4, 3), np.uint8)
    want[:, :2] = 200
    np.testing.assert_array_equal(image, want)
    np.testing.assert_array_equal(SI.untile_superimage(image, layout), crops)


@case("superimage.tile-d_float_crops_rejected")
def _():
    # NaN cannot be stored in a uint8 crop: float crops (where a NaN could hide) are refused.
    with pytest.raises(ValueError, match=r"crops must be uint8"):
        SI.tile_superimage(np.full((2, 2, 2, 3), np.nan, np.float32))


@case("superimage.sistcm-a_K1")
def _():
    # 1.3 step 3 with K = 1: A[h, w] = F[0, h, w] (the frame itself), B[w, h] = F[0, h, w] (its
    # transpose). F = [[0, 1, 2], [3, 4, 5]].
    f = torch.arange(6.0).reshape(1, 1, 1, 2, 3)
    a, b = SI.sistcm_views(f)
    assert torch.equal(a, torch.tensor([[[[0.0, 1, 2], [3, 4, 5]]]]))
    assert torch.equal(b, torch.tensor([[[[0.0, 3], [1, 4], [2, 5]]]]))
    fa, fb = SI.sistcm_unviews(a, b, 1)
    assert torch.equal(fa, f) and torch.equal(fb, f)


@case("superimage.sistcm-a_K0_raises")
def _():
    with pytest.raises(ValueError, match="for K=0"):
        SI.sistcm_unviews(torch.zeros(1, 1, 2, 0), torch.zeros(1, 1, 0, 0), 0)


@case("superimage.sistcm-d_nan_moves_to_interleaved_pixel")
def _():
    # 1.3: A[n,c,h,w*K+k] = F[n,c,k,h,w], B[n,c,w,h*K+k] = F[n,c,k,h,w]. K = 2, H = 1, W = 2:
    # F[k=0] = [[0, 1]], F[k=1] = [[10, nan]] -> A[0] = [0, 10, 1, nan]; B = [[0, 10], [1, nan]].
    f = torch.tensor([[[[[0.0, 1.0]], [[10.0, float("nan")]]]]])
    a, b = SI.sistcm_views(f)
    torch.testing.assert_close(a, torch.tensor([[[[0.0, 10.0, 1.0, float("nan")]]]]), equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(b, torch.tensor([[[[0.0, 10.0], [1.0, float("nan")]]]]), equal_nan=True, rtol=0, atol=0)
    for back in SI.sistcm_unviews(a, b, 2):
        torch.testing.assert_close(back, f, equal_nan=True, rtol=0, atol=0)


# =============================================================================================
# ProxEmo embedding (seed_specs 2.4) and augment3D view augmentation (2.3)
# =============================================================================================
def _gait_t2():
    """T = 2: x = t (0, 1) for every joint, y = joint index 0..15, z = 0."""
    g = np.zeros((2, 16, 3))
    g[1, :, 0] = 1.0
    g[:, :, 1] = np.arange(16)
    return g


@case("embedding-a_T0_T1_raise")
def _():
    for t in (0, 1):
        with pytest.raises(ValueError, match=rf"a gait needs T >= 2 frames, got T = {t}"):
            EM.gait_embedding(np.zeros((t, 48)))


@case("embedding-a_T2_hand_computed")
def _():
    # 2.4: img[t, j, c] = (max_c - v) * 255 / (max_c - min_c), then cv2.resize (bilinear) to 4 x 4.
    # x: rows t = 0, 1 -> 255, 0; bilinear 2 -> 4 rows samples source row (i + .5) / 2 - .5 =
    #    -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1) -> 255, 191.25, 63.75, 0.
    # y: columns j -> (15 - j) * 17; 16 -> 4 columns samples j = (i + .5) * 4 - .5 = 1.5, 5.5, 9.5,
    #    13.5 -> (238 + 221)/2 = 229.5, (170 + 153)/2 = 161.5, 93.5, 25.5.
    # z: constant 0 -> max == min -> on_constant="zero" (default) -> 0.
    out = EM.gait_embedding(_gait_t2(), size=4)
    want = np.zeros((4, 4, 3), np.float32)
    want[..., 0] = np.array([255.0, 191.25, 63.75, 0.0])[:, None]
    want[..., 1] = np.array([229.5, 161.5, 93.5, 25.5])[None, :]
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-3)


@case("augment3d-a_T1_raises")
def _():
    with pytest.raises(ValueError, match=r"a gait needs T >= 2 frames, got T = 1"):
        EM.augment3d(np.zeros((1, 48)), 90.0, 0.0, 1.0)


@case("augment3d-a_T2_hand_computed")
def _():
    # 2.3 with theta = 90, trans = 0, scale = 1: x' = c x + s z + trans c = z, y' = y,
    # z' = -s x + c z = -x. Gait: x = t, y = j, z = 0 -> x' = 0, y' = j, z' = -t.
    out = EM.augment3d(_gait_t2(), 90.0, 0.0, 1.0)
    want = np.zeros((2, 16, 3))
    want[:, :, 1] = np.arange(16)
    want[1, :, 2] = -1.0
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)


@case("embedding-b_missing_joint_raises")
def _():
    # A NaN joint (missing) would turn the whole coordinate channel NaN in the reference min/max:
    # rejected, naming the frame.
    g = _gait_t2()
    g[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"gait: 3 non-finite values \(NaN/inf\) in frames \[1\]"):
        EM.gait_embedding(g)


@case("embedding-b_all_missing_frame_raises")
def _():
    g = np.zeros((3, 48))
    g[0] = np.nan
    with pytest.raises(ValueError, match=r"48 non-finite values \(NaN/inf\) in frames \[0\]"):
        EM.view_embeddings(g)


@case("augment3d-b_missing_limb_raises")
def _():
    g = _gait_t2()
    g[:, 4:7] = np.nan                                   # arm 4-6 absent in both frames
    with pytest.raises(ValueError, match=r"18 non-finite values \(NaN/inf\) in frames \[0, 1\]"):
        EM.training_views(g)


@case("embedding-d_inf_raises")
def _():
    g = _gait_t2()
    g[0, 0, 2] = np.inf
    with pytest.raises(ValueError, match=r"1 non-finite values \(NaN/inf\) in frames \[0\]"):
        EM.gait_embedding(g)


@case("embedding-d_constant_channel_policies")
def _():
    # 2.4: z is constant (max == min): the reference divides by zero -> NaN channel
    # (on_constant="nan", faithful); our default gives 0; "raise" names the coordinate.
    faithful = EM.gait_embedding(_gait_t2(), size=4, on_constant="nan")
    assert np.isnan(faithful[..., 2]).all() and np.isfinite(faithful[..., :2]).all()
    with pytest.raises(ValueError, match="coordinate z is constant"):
        EM.gait_embedding(_gait_t2(), on_constant="raise")


# =============================================================================================
# CAER pose features: kinematics (seed_specs 5.1) and the 238-feature sequence (5.2)
# =============================================================================================
def _person(frames):
    """One COCO-17 person [T, 17, 3] in pixels, scores 0.9: hips 11 (110, 200), 12 (90, 200);
    shoulders 5 (110, 150), 6 (90, 150); left wrist 9 at (130 + 5 t, 175); every other joint at
    (100, 175).

    5.1 normalisation: centre = mid-hip (100, 200); torso = |mid-shoulder (100, 150) - centre| =
    50; L_SH - R_SH = (20, 0) is already on +x (no rotation). Normalised: other joints
    (0, -0.5); hips (+-0.2, 0); shoulders (+-0.2, -1); wrist ((30 + 5 t) / 50, -0.5) =
    (0.6 + 0.1 t, -0.5). Velocity (unit time step): wrist (0.1, 0) from t = 1, others 0;
    acceleration 0.
    """
    kp = np.zeros((frames, 17, 3), np.float32)
    kp[..., :2] = (100.0, 175.0)
    kp[..., 2] = 0.9
    kp[:, 11, :2], kp[:, 12, :2] = (110.0, 200.0), (90.0, 200.0)
    kp[:, 5, :2], kp[:, 6, :2] = (110.0, 150.0), (90.0, 150.0)
    kp[:, 9, 0] = 130.0 + 5.0 * np.arange(frames)
    kp[:, 9, 1] = 175.0
    return kp


def _person_rows(frames):
    """Hand-computed per-frame features [T, 17, 7] of _person (see its docstring)."""
    rows = np.zeros((frames, 17, 7), np.float32)
    rows[..., 1] = -0.5
    rows[..., 2] = 0.9
    rows[:, 11, :2], rows[:, 12, :2] = (0.2, 0.0), (-0.2, 0.0)
    rows[:, 5, :2], rows[:, 6, :2] = (0.2, -1.0), (-0.2, -1.0)
    rows[:, 9, 0] = 0.6 + 0.1 * np.arange(frames)
    rows[1:, 9, 3] = 0.1
    return rows


def _features(rows_person0, rows_person1=None, seq_len=64):
    """[seq_len, 238]: 5.2 layout person-major, then joint, then [x, y, conf, vx, vy, ax, ay];
    frames after the data and a missing person are zeros."""
    out = np.zeros((seq_len, 2, 17, 7), np.float32)
    out[:len(rows_person0), 0] = rows_person0
    if rows_person1 is not None:
        out[:len(rows_person1), 1] = rows_person1
    return out.reshape(seq_len, 238)


@case("pose_features-a_T0_rejected")
def _():
    with pytest.raises(PF.SampleRejected, match="no_frames") as err:
        PF.kinematics(np.zeros((0, 2, 17, 3), np.float32))
    assert err.value.reason == "no_frames"


@case("pose_features-a_T1_T2_rejected_by_gates")
def _():
    # 5.1 gates on the p95 of speed / acceleration; with no valid velocity (T = 1) or no valid
    # acceleration (T = 2) the reference's p95 is inf, so the track is rejected.
    for frames, reason in ((1, "speed_p95"), (2, "acc_p95")):
        with pytest.raises(PF.SampleRejected) as err:
            PF.kinematics(_person(frames))
        assert err.value.reason == "all_tracks_filtered"
        assert [s["reason"] for s in err.value.record["track_stats"]] == [reason, "missing_track"]


@case("pose_features-a_T3_zero_padded_to_64")
def _():
    # T = 3 is the shortest kept track (acceleration valid at t = 2, p95 0 <= 6; speed p95 0.1).
    # 5.2: zero-pad at the end to 64 frames; the missing second person is zeros.
    kin = PF.kinematics(_person(3))
    np.testing.assert_allclose(PF.pose_feature_sequence(kin), _features(_person_rows(3)), rtol=0, atol=1e-6)


@case("pose_features-a_assemble_pose_features_of_short")
def _():
    # pose_features.tracks_pose_features (assemble.pose_features_of): 0 frames or a track the gates reject -> all-zero features.
    for frames in (0, 1, 2):
        tracks = np.full((2, frames, 17, 3), np.nan, np.float32)
        tracks[0] = _person(frames)
        out = PF.tracks_pose_features(tracks, np.arange(frames))
        np.testing.assert_array_equal(out, np.zeros((64, 238), np.float32))


@case("pose_features-b_limb_absent_nan_joint_all_missing_frame")
def _():
    # T = 5. Left elbow 7 and left wrist 9 have score 0 in every frame (limb absent); left ear 3
    # has x = NaN with score 0.9; frame 1 has every score 0 (all-missing frame).
    # 5.1: a joint is valid when x, y, score are finite and score >= 0.2. Invalid joints: x, y
    # NaN -> 0 in the features (5.2 NaN -> 0); conf keeps the raw score (0 or 0.9, QUIRK kept).
    # Velocity is valid where frames t-1 and t are valid (t = 3, 4 here), acceleration at t = 4;
    # both are 0 for the static joints, so the gates pass (p95 0). Frame 1: every x, y invalid and
    # every score 0 -> an all-zero row. Hips and shoulders stay valid in the other frames, so the
    # normalisation is the one of _person.
    kp = _person(5)
    kp[:, [7, 9], 2] = 0.0
    kp[:, 3, 0] = np.nan
    kp[1, :, 2] = 0.0
    rows = _person_rows(5)
    rows[:, [7, 9]] = 0.0                   # x, y invalid -> 0; conf 0; wrist velocity never valid
    rows[:, 3, :2] = 0.0                    # conf stays 0.9
    rows[1] = 0.0
    np.testing.assert_allclose(PF.pose_feature_sequence(PF.kinematics(kp)), _features(rows), rtol=0, atol=1e-6)


@case("pose_features-c_one_person_second_slot_zero")
def _():
    # 5.1 keeps the top-2 tracks; with one track the second slot is "missing_track", NaN keypoints
    # and zero kinematics; 5.2 "missing person -> zeros".
    kin = PF.kinematics(_person(4)[:, None])
    assert kin["record"]["track_stats"][1] == {"kept": False, "reason": "missing_track"}
    want = _features(_person_rows(4))
    np.testing.assert_allclose(PF.pose_feature_sequence(kin), want, rtol=0, atol=1e-6)
    # the same through assemble: person_tracks' all-NaN second track
    tracks = np.full((2, 4, 17, 3), np.nan, np.float32)
    tracks[0] = _person(4)
    np.testing.assert_allclose(PF.tracks_pose_features(tracks, np.arange(4)), want, rtol=0, atol=1e-6)


@case("pose_features-c_kin_with_one_slot_padded")
def _():
    # 5.2 "Pad people dimension if needed": a kin triple with K = 1 and num_people = 2.
    kin = PF.PoseKinematics(np.full((2, 1, 17, 3), 0.5, np.float32), np.full((2, 1, 17, 2), 0.25, np.float32),
                            np.full((2, 1, 17, 2), -1.0, np.float32))
    rows = np.tile(np.array([0.5, 0.5, 0.5, 0.25, 0.25, -1.0, -1.0], np.float32), (2, 17, 1))
    np.testing.assert_array_equal(PF.pose_feature_sequence(kin, seq_len=3), _features(rows, seq_len=3))


@case("pose_features-d_inf_coordinate_and_inf_score")
def _():
    # Left ear 3: x = +inf (score 0.9) -> not finite -> invalid: x, y 0, conf 0.9 (raw score).
    # Right ear 4: score = +inf -> not finite -> invalid: x, y 0; its conf is written NaN (our
    # guard; the reference keeps inf, which 5.2's nan_to_num turns into float32 max) -> 0.
    kp = _person(3)
    kp[:, 3, 0] = np.inf
    kp[:, 4, 2] = np.inf
    rows = _person_rows(3)
    rows[:, 3, :2] = 0.0
    rows[:, 4, :3] = 0.0
    out = PF.pose_feature_sequence(PF.kinematics(kp))
    np.testing.assert_allclose(out, _features(rows), rtol=0, atol=1e-6)


@case("pose_features-d_all_nan_track_zero_features")
def _():
    # 5.2: NaN -> 0, so an all-NaN kin gives zeros; tracks_pose_features of all-NaN tracks
    # (rejected in stage 1: low_valid_frac) gives zeros too.
    kin = {"keypoints": np.full((5, 2, 17, 3), np.nan), "vel": np.full((5, 2, 17, 2), np.nan),
           "acc": np.full((5, 2, 17, 2), np.nan)}
    np.testing.assert_array_equal(PF.pose_feature_sequence(kin), np.zeros((64, 238), np.float32))
    tracks = np.full((2, 5, 17, 3), np.nan, np.float32)
    np.testing.assert_array_equal(PF.tracks_pose_features(tracks, np.arange(5)), np.zeros((64, 238), np.float32))


@case("pose_features-d_inf_in_kin_clipped_like_seed")
def _():
    # 5.2 / train_bilstm.py uses np.nan_to_num(x, nan=0.0): +-inf become +-float32 max (kept,
    # documented in pose_feature_sequence).
    vel = np.zeros((1, 1, 17, 2), np.float32)
    vel[0, 0, 0] = (np.inf, -np.inf)
    kin = PF.PoseKinematics(np.zeros((1, 1, 17, 3), np.float32), vel, np.zeros((1, 1, 17, 2), np.float32))
    out = PF.pose_feature_sequence(kin, seq_len=1, num_people=1)
    big = np.finfo(np.float32).max
    want = np.zeros((1, 119), np.float32)
    want[0, 3], want[0, 4] = big, -big
    np.testing.assert_array_equal(out, want)


@case("pose_features.time_warp-a_T3_unchanged")
def _():
    # 5.2 time warp: the seed returns sequences shorter than 4 frames unchanged.
    sample = PF.PoseKinematics(np.arange(3 * 17 * 3, dtype=np.float32).reshape(3, 1, 17, 3),
                               np.ones((3, 1, 17, 2), np.float32), np.zeros((3, 1, 17, 2), np.float32))
    out = TR.time_warp(sample, 0.8)
    for got, want in zip(out, sample):
        np.testing.assert_array_equal(got, want)


# =============================================================================================
# TSN segments and crops (seed_specs 3.3, 3.4)
# =============================================================================================
@case("segments.offsets-a_0_and_1_frame")
def _():
    # 3.4: num_frames = frame_count - 1 (QUIRK, faithful). One-frame video -> num_frames 0:
    # val: 0 > S - 1 is false -> all offsets 1; test: tick 0 -> int(0) + 1 = 1; train: avg 0 and
    # 0 > S false -> zeros + 1. All map to decoder frame 0.
    n = SP.record_num_frames(1)
    assert n == 0
    for phase in ("train", "val", "test"):
        off = SP.segment_offsets(n, 5, phase, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(off, np.ones(5, np.int64))
        np.testing.assert_array_equal(SP.offsets_to_indices(off, 1), np.zeros(5, np.int64))
    # A video with no frame cannot be sampled at all.
    with pytest.raises(ValueError, match="the video has no frames"):
        SP.offsets_to_indices(SP.val_offsets(SP.record_num_frames(0), 5), 0)


@case("segments.offsets-a_fewer_frames_than_segments")
def _():
    # 3.4 with S = 5. num_frames 3: val -> 3 > 5 false -> [1]*5; test: tick 0.6 ->
    # int(0.3 + 0.6 s) = 0, 0, 1, 2, 2 -> +1 = [1, 1, 2, 3, 3]; train: avg 3 // 5 = 0 and 3 > 5 false
    # -> zeros + 1.
    np.testing.assert_array_equal(SP.val_offsets(3, 5), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(SP.test_offsets(3, 5), [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(SP.train_offsets(3, 5, np.random.default_rng(0)), [1, 1, 1, 1, 1])
    # num_frames 5 = S: val guard 5 > 5 false -> ones; train avg = 1 -> s + U{0} + 1 = [1..5].
    np.testing.assert_array_equal(SP.val_offsets(5, 5), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(SP.train_offsets(5, 5, np.random.default_rng(0)), [1, 2, 3, 4, 5])
    # num_frames 6: tick 1.2 -> int(0.6 + 1.2 s) = 0, 1, 3, 4, 5 -> [1, 2, 4, 5, 6].
    np.testing.assert_array_equal(SP.val_offsets(6, 5), [1, 2, 4, 5, 6])


def _frame():
    """uint8 [40, 60, 3], every pixel non-zero."""
    return (np.arange(40 * 60 * 3) % 250 + 1).astype(np.uint8).reshape(40, 60, 3)


@case("segments.crops-b_nan_and_low_score_joints")
def _():
    # 3.3 body box = bbox of the valid joints (score >= 0.5), grown by round(0.1 w), round(0.1 h)
    # per side and clamped. Valid: (10, 5), (30, 25); NaN joint and the 0.3 joint (far away) are
    # left out. Box (10, 5)-(30, 25): margins 2, 2 -> (8, 3, 32, 27).
    kp = np.array([[10, 5, 0.9], [np.nan, np.nan, 0.9], [30, 25, 0.8], [59, 39, 0.3]])
    assert C.body_region(kp, (40, 60)) == (8, 3, 32, 27)
    crop, _ = SG.tsn_crops(_frame(), "fullbody", None, kp)
    np.testing.assert_array_equal(crop, _frame()[3:27, 8:32])


@case("segments.crops-b_all_joints_missing_whole_frame")
def _():
    # 3.3: no valid landmark -> the whole frame (the seed's empty landmark row).
    kp = np.array([[10, 5, 0.1], [np.nan, np.nan, np.nan]] * 3)
    assert C.body_region(kp, (40, 60)) is None
    crop, _ = SG.tsn_crops(_frame(), "fullbody", None, kp)
    np.testing.assert_array_equal(crop, _frame())


@case("segments.crops-c_absent_person_body_mode")
def _():
    # One person where the crop asks for another: that person's keypoints are all NaN -> no body
    # region -> the whole frame, with the face region blacked out (3.3 body mode). Face box
    # (20, 10)-(30, 20): margins round(1.0) = 1 -> region (19, 9, 31, 21).
    frame = _frame()
    crop, _ = SG.tsn_crops(frame, "body", [20, 10, 30, 20], np.full((17, 3), np.nan))
    want = frame.copy()
    want[9:21, 19:31] = 0
    np.testing.assert_array_equal(crop, want)


@case("segments.crops-d_nan_inf_face_box_and_joints")
def _():
    frame = _frame()
    for bad in (np.nan, np.inf):
        # face box not finite -> no face -> 3.3 "If landmarks are NaN/missing, use the whole frame".
        crop, _ = SG.tsn_crops(frame, "face", [bad, 10, 30, 20])
        np.testing.assert_array_equal(crop, frame)
        # a joint with a non-finite coordinate is left out of the body box
        kp = np.array([[10, 5, 0.9], [bad, 39, 0.9], [30, 25, 0.8]])
        assert C.body_region(kp, (40, 60)) == (8, 3, 32, 27)
    with pytest.raises(ValueError, match="box must be 4 finite numbers"):
        C.expand_box([0, 0, np.inf, 5], (40, 60))


@case("segments.mask-d_nan_landmarks_raise")
def _():
    lm = np.array([[40, 40], [60, 40], [50, np.nan], [43, 62], [57, 62]], np.float64)
    with pytest.raises(ValueError, match="landmarks must be 5 finite"):
        SG.apply_face_mask(_frame(), lm)


# =============================================================================================
# VTT 4-frame face windows (seed_specs 4.2)
# =============================================================================================
@case("face_windows-a_window_frames_short_video")
def _():
    # 4.2 window p-2, p-1, p, p+1, clamped to the video (our rule; the seed has none).
    np.testing.assert_array_equal(SP.window_frames(0, 1), [0, 0, 0, 0])
    np.testing.assert_array_equal(SP.window_frames(2, 3), [0, 1, 2, 2])
    with pytest.raises(ValueError, match=r"annotated frame 0 is outside the video's 0 frames"):
        SP.window_frames(0, 0)
    with pytest.raises(ValueError, match=r"window \[-2, -1, 0, 1\] leaves the video's 2 frames"):
        SP.window_frames(0, 2, clamp=False)


@case("face_windows-a_one_frame_video_crops")
def _():
    # One-frame video: the window is [0, 0, 0, 0], four copies of the frame's crop.
    # 4.2 friends rule, box (2, 2)-(6, 6): w = h = 4, m = 0.3 * 8 = 2.4, side int(sqrt(6.4^2)) = 6;
    # centre (int(2 + 2), int(2 + 2)) = (4, 4); columns/rows 4 - 3 .. 4 + 3 - 1 = 1 .. 6. size 6 =
    # side, so the resize keeps the pixels.
    frame = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    out = FW.window_crops(frame[None], 0, [2, 2, 6, 6], size=6)
    np.testing.assert_array_equal(out, np.stack([frame[1:7, 1:7]] * 4))


@case("face_windows-b_missing_face_box_raises")
def _():
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="box must be finite"):
        FW.window_crops(frame[None], 0, None, size=6)


@case("face_windows-d_nan_inf_box_raises")
def _():
    frame = np.zeros((8, 8, 3), np.uint8)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="box must be finite"):
            FW.vtt_face_crop(frame, [2, 2, bad, 6], size=6)


# =============================================================================================
# MMAction2 / PySKL skeleton arrays (issue 4, representation 7) and the export's person choice
# =============================================================================================
@case("skeleton-a_T0_raises")
def _():
    with pytest.raises(ValueError, match=r"v: tracks must hold at least one person, frame and joint"):
        annotation(np.zeros((1, 0, 17, 3)), "v", 0, (10, 20))


@case("skeleton-a_T1")
def _():
    tracks = np.array([[[[1.0, 2.0, 0.5], [3.0, 4.0, 0.25]]]])          # M = 1, T = 1, V = 2
    ann = annotation(tracks, "v", 2, (10, 20))
    validate_annotation(ann)
    assert ann["total_frames"] == 1 and ann["img_shape"] == (10, 20)
    np.testing.assert_array_equal(ann["keypoint"], [[[[1, 2], [3, 4]]]])
    np.testing.assert_array_equal(ann["keypoint_score"], [[[0.5, 0.25]]])


@case("skeleton-b_missing_joints_and_frame")
def _():
    # A NaN joint -> (0, 0), score 0 (PySKL convention); a low-score joint is kept as it is (the
    # score tells); an all-missing frame -> zeros.
    tracks = np.array([[[[1, 2, 0.9], [np.nan, np.nan, np.nan]],
                        [[5, 6, 0.1], [7, 8, 0.9]],
                        [[np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]]]], np.float32)
    ann = annotation(tracks, "v", 0, (10, 20))
    np.testing.assert_array_equal(ann["keypoint"], [[[[1, 2], [0, 0]], [[5, 6], [7, 8]], [[0, 0], [0, 0]]]])
    np.testing.assert_allclose(ann["keypoint_score"], [[[0.9, 0], [0.1, 0.9], [0, 0]]])
    kept = annotation(tracks, "v", 0, (10, 20), fill_missing=None)       # --keep-nan
    assert np.isnan(kept["keypoint"][0, 2]).all() and np.isnan(kept["keypoint"][0, 0, 1]).all()
    np.testing.assert_allclose(kept["keypoint_score"], ann["keypoint_score"])


@case("skeleton-c_one_person_where_two_kept")
def _():
    # max_persons=2 with one track: M stays 1 (PySKL pads persons in its own pipeline).
    ann = annotation(np.ones((1, 2, 3, 3), np.float32), "v", 0, (10, 20), max_persons=2)
    np.testing.assert_array_equal(ann["keypoint"], np.ones((1, 2, 3, 2), np.float32))
    # export: of the two track slots only the person seen at least once is exported ...
    row = {"num_frames": 2, "frame_shape": [10, 20], "keypoints": np.zeros((4, 18, 3), np.float32),
           "tracks": np.full((2, 4, 17, 3), np.nan, np.float32)}
    row["tracks"][0, :2] = 1.0
    np.testing.assert_array_equal(E._people(row, "all"), np.ones((1, 2, 17, 3), np.float32))
    # ... and with nobody tracked one all-missing person (M >= 1).
    row["tracks"][0] = np.nan
    people = E._people(row, "all")
    assert people.shape == (1, 2, 17, 3) and np.isnan(people).all()
    with pytest.raises(ValueError, match="at least one person"):
        annotation(np.zeros((0, 2, 17, 3)), "v", 0, (10, 20))


@case("skeleton-d_inf_is_missing")
def _():
    # x = inf, or score = inf / NaN: not finite -> missing -> (0, 0), score 0; --keep-nan writes NaN.
    tracks = np.array([[[[np.inf, 1, 1], [1, 1, 1]], [[1, 1, np.inf], [1, 1, np.nan]]]], np.float32)
    ann = annotation(tracks, "v", 0, (10, 20))
    np.testing.assert_array_equal(ann["keypoint"], [[[[0, 0], [1, 1]], [[0, 0], [0, 0]]]])
    np.testing.assert_array_equal(ann["keypoint_score"], [[[0, 1], [0, 0]]])
    kept = annotation(tracks, "v", 0, (10, 20), fill_missing=None)
    want = np.array([[[[np.nan, np.nan], [1, 1]], [[np.nan, np.nan], [np.nan, np.nan]]]], np.float32)
    np.testing.assert_array_equal(kept["keypoint"], want)
    np.testing.assert_array_equal(kept["keypoint_score"], [[[0, 1], [0, 0]]])


# =============================================================================================
# Assembly helpers (pipelines/assemble.py)
# =============================================================================================
def _pose(x0, score=0.9):
    """A COCO-17 pose [17, 3]: joint j at (x0 + 3 j, 5 j), all scores ``score``."""
    p = np.zeros((17, 3), np.float32)
    p[:, 0] = x0 + 3.0 * np.arange(17)
    p[:, 1] = 5.0 * np.arange(17)
    p[:, 2] = score
    return p


def _frame_poses(*poses):
    arr = np.stack(poses) if poses else np.zeros((0, 17, 3), np.float32)
    return (np.ones(len(arr), np.float32), arr)


@case("assemble.person_tracks-a_no_frames_and_empty_frame")
def _():
    tracks, persons = A.person_tracks([], CFG)
    assert tracks.shape == (2, 0, 17, 3) and persons.shape == (0,) and persons.dtype == np.int16
    # a frame without any pose: NaN there, 0 persons, the track goes on after it
    tracks, persons = A.person_tracks([_frame_poses(_pose(0)), _frame_poses(), _frame_poses(_pose(1))], CFG)
    np.testing.assert_array_equal(persons, [1, 0, 1])
    np.testing.assert_array_equal(tracks[0, 0], _pose(0))
    np.testing.assert_array_equal(tracks[0, 2], _pose(1))
    assert np.isnan(tracks[0, 1]).all() and np.isnan(tracks[1]).all()


@case("assemble.person_tracks-b_zero_confidence_joints")
def _():
    # Joints below min_keypoint_score do not take part in the matching, but are stored as given.
    p1 = _pose(2)
    p1[5:10, 2] = 0.0                                   # an arm and more at score 0
    tracks, _ = A.person_tracks([_frame_poses(_pose(0)), _frame_poses(p1)], CFG)
    np.testing.assert_array_equal(tracks[0], np.stack([_pose(0), p1]))
    assert np.isnan(tracks[1]).all()


@case("assemble.person_tracks-c_one_person")
def _():
    poses = [_frame_poses(_pose(t)) for t in range(3)]
    tracks, persons = A.person_tracks(poses, CFG)
    np.testing.assert_array_equal(tracks[0], np.stack([_pose(t) for t in range(3)]))
    assert np.isnan(tracks[1]).all()
    np.testing.assert_array_equal(persons, [1, 1, 1])


def _swap_check(bad):
    # Person A at x0 = 0, person B at x0 = 500 in both frames; in frame 1, B's joint 4 has a
    # non-finite coordinate with score 0.9. Each person must stay on its own track (B is matched
    # on its 16 finite joints), whatever the order of the poses in frame 1.
    b1 = _pose(500)
    b1[4, 0] = bad
    for frame1 in (_frame_poses(b1, _pose(0)), _frame_poses(_pose(0), b1)):
        tracks, _ = A.person_tracks([_frame_poses(_pose(0), _pose(500)), frame1], CFG)
        starts = tracks[:, 0, 0, 0]
        a_track, b_track = int(np.flatnonzero(starts == 0)[0]), int(np.flatnonzero(starts == 500)[0])
        assert tracks[a_track, 1, 0, 0] == 0 and tracks[b_track, 1, 0, 0] == 500


@case("assemble.person_tracks-d_nan_joint_keeps_identities")
def _():
    _swap_check(np.nan)


@case("assemble.person_tracks-d_inf_joint_keeps_track")
def _():
    _swap_check(np.inf)


@case("rows.targets_vector-b_missing_label")
def _():
    # No targets and label -1 (no class) -> all zero; a label gives its one-hot.
    np.testing.assert_array_equal(R.targets_vector({"label": -1}, 3), [0, 0, 0])
    np.testing.assert_array_equal(R.targets_vector({"label": 2, "targets": []}, 3), [0, 0, 1])


@case("rows.targets_vector-d_nan_soft_target_rejected")
def _():
    with pytest.raises(ValueError, match="targets"):
        R.targets_vector({"label": 1, "targets": [0.5, float("nan"), 1.0]}, 3)


@case("rows.targets_vector-d_wrong_length_rejected")
def _():
    with pytest.raises(ValueError, match="targets"):
        R.targets_vector({"label": 1, "targets": [0.5, 1.0]}, 3)


@case("rows.targets_vector-d_nan_label_clear_error")
def _():
    with pytest.raises(ValueError, match="label"):
        R.targets_vector({"label": float("nan")}, 3)


@case("rows.fold_index-b_no_fold")
def _():
    assert R.fold_index({}) == -1 and R.fold_index({"fold": None}) == -1 and R.fold_index({"fold": 3}) == 3


@case("rows.fold_index-d_nan_fold_is_no_fold")
def _():
    assert R.fold_index({"fold": float("nan")}) == -1


@case("assemble.given_face_square-d_nan_box_rejected")
def _():
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="face box"):
            A.given_face_square([bad, 0, 10, 10], 0.3)


@case("sampling.even_positions-a_fewer_frames_than_kept")
def _():
    # skeleton records keep cfg.frames evenly spaced rows: all rows when there are fewer.
    np.testing.assert_array_equal(SP.even_positions(0, 4), np.zeros(0, np.int64))
    np.testing.assert_array_equal(SP.even_positions(3, 4), [0, 1, 2])
    np.testing.assert_array_equal(SP.even_positions(8, 4), [0, 2, 4, 6])


# =============================================================================================
@pytest.mark.parametrize("check", CASES)
def test_edge_case(check):
    check()
