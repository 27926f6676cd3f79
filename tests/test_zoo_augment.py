"""Training-time inputs of the zoo: CAER augmentation at load time (seed_specs 5.2), CAER class
weights (5.3), SISTCM per-epoch redraw of the C x K face frames (1.1), the keyed sampler."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipelines.sampling import clip_positions, random_clip_positions
from pipelines.represent import pose_features as pf
from zoo.caer_augment import CaerPoseView, caer_pose_features, frame_time_axis
from zoo.data import ShardDataset
from zoo.optim import KeyedSampler
from zoo import transforms as TR
from zoo.superimage_sampling import FaceRedraw
from zoo.tasks import Task, resolve_class_weights
from zoo.train import main


# ------------------------------------------------------------------------------------------------
# Class weights
# ------------------------------------------------------------------------------------------------
NAMES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "other"]


def test_resolve_class_weights():
    assert resolve_class_weights("uniform_other_zero", NAMES) == (1.0,) * 7 + (0.0,)
    assert resolve_class_weights("uniform_other_zero", ["A", "Other", "B"]) == (1.0, 0.0, 1.0)
    assert resolve_class_weights("uniform_other_zero", NAMES[:7]) is None   # no 'other' class, no logit
    assert resolve_class_weights("uniform", NAMES) is None and resolve_class_weights(None, NAMES) is None
    with pytest.raises(ValueError, match="class_weights"):
        resolve_class_weights("balanced", NAMES)
    with pytest.raises(ValueError, match="multiclass"):
        Task("multilabel", class_weights=(1.0, 0.0))


def test_other_class_weight_zero_in_the_loss():
    torch.manual_seed(0)
    weights = resolve_class_weights("uniform_other_zero", NAMES)
    logits = torch.randn(6, 8, dtype=torch.float64)
    target = torch.tensor([0, 7, 3, 7, 5, 1])
    # without smoothing: rows labelled 'other' contribute nothing, the rest is the plain CE mean
    x = logits.clone().requires_grad_(True)
    loss = Task(class_weights=weights).loss(x, target)
    loss.backward()
    keep = target != 7
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], target[keep]))
    assert not x.grad[~keep].any() and x.grad[keep].abs().sum() > 0
    # with label smoothing eps: sum_i [(1-eps) w_y (-log p_y) + eps/C sum_c w_c (-log p_c)] / sum_i w_y
    eps, w = 0.1, torch.tensor(weights, dtype=torch.float64)
    logp = torch.log_softmax(logits, 1)
    by_hand = ((1 - eps) * w[target] * -logp[torch.arange(6), target] + eps / 8 * (-logp * w).sum(1)).sum() / w[target].sum()
    torch.testing.assert_close(Task(label_smoothing=eps, class_weights=weights).loss(logits, target), by_hand)
    assert not torch.isclose(Task(label_smoothing=eps).loss(logits, target), by_hand)  # unweighted differs
    # the smoothing term never pulls the 'other' logit up when its weight is 0 (it does with weight 1)
    low = torch.zeros(4, 8, dtype=torch.float64)
    low[:, 7] = -20.0
    for kind, pulled_up in (("uniform", True), ("uniform_other_zero", False)):
        z = low.clone().requires_grad_(True)
        Task(label_smoothing=eps, class_weights=(1.0,) * 7 + ((1.0,) if kind == "uniform" else (0.0,))).loss(
            z, torch.tensor([0, 1, 2, 3])).backward()
        assert (z.grad[:, 7] < -1e-4).all() == pulled_up and (z.grad[:, 7] >= 0).all() != pulled_up
    # a batch of 'other' rows only: zero loss and zero gradient, not NaN
    z = logits.clone().requires_grad_(True)
    only_other = Task(class_weights=weights).loss(z, torch.full((6,), 7))
    only_other.backward()
    assert only_other.item() == 0.0 and not z.grad.any()
    with pytest.raises(ValueError, match="8 class weights for 3 logits"):
        Task(class_weights=weights).loss(logits[:, :3], target % 3)


# ------------------------------------------------------------------------------------------------
# Super-image redraw sampler and keyed sampler (pure)
# ------------------------------------------------------------------------------------------------
def test_random_clip_positions_follow_get_video():
    rng = np.random.default_rng(0)
    n, c, k = 23, 5, 2                                  # inter = 4; the last clip is positions 16..22
    ranges = [(0, 4), (4, 8), (8, 12), (12, 16), (16, 23)]
    counts = np.zeros(n, int)
    for _ in range(700):
        pos = random_clip_positions(n, c, k, rng)
        assert pos.shape == (c, k) and pos.dtype == np.int64
        for j, (lo, hi) in enumerate(ranges):
            assert lo <= pos[j, 0] < pos[j, 1] < hi        # distinct, sorted, inside clip j
        np.add.at(counts, pos.ravel(), 1)
    # uniform over each clip's range: K/len draws per position and draw
    expected = np.concatenate([np.full(hi - lo, 700 * k / (hi - lo)) for lo, hi in ranges])
    assert np.abs(counts - expected).max() < 0.2 * expected.max()
    again = [random_clip_positions(n, c, k, np.random.default_rng(5)) for _ in range(2)]
    np.testing.assert_array_equal(*again)
    # short sequences: all frames, the last repeated, in C groups of K (= the stored plan)
    np.testing.assert_array_equal(random_clip_positions(7, 5, 2, rng), [[0, 1], [2, 3], [4, 5], [6, 6], [6, 6]])
    np.testing.assert_array_equal(random_clip_positions(10, 5, 2, rng), clip_positions(10, 5, 2))
    with pytest.raises(ValueError, match=">= 1"):
        random_clip_positions(0, 5, 2, rng)


def test_keyed_sampler_gives_each_draw_its_own_key():
    gen = torch.Generator().manual_seed(3)
    sampler = KeyedSampler(torch.utils.data.RandomSampler(range(5), generator=gen), gen)
    first, second = list(sampler), list(sampler)
    assert len(sampler) == 5 and sorted(i for i, _ in first) == list(range(5))
    keys = [key for _, key in first]
    assert keys == list(range(keys[0], keys[0] + 5)) and second[0][1] != keys[0]   # new base every epoch
    state = torch.Generator().manual_seed(3).get_state()
    gen.set_state(state)
    assert list(sampler) == first                                                     # resumable


# ------------------------------------------------------------------------------------------------
# CAER load-time features (synthetic tracks)
# ------------------------------------------------------------------------------------------------
def _walking_tracks(frames: int = 100) -> np.ndarray:
    """One person walking right (torso 100 px), an absent second person: float32 [2, T, 17, 3]."""
    base = np.array([[0, -160], [-8, -168], [8, -168], [-16, -164], [16, -164], [-40, -100], [40, -100],
                     [-50, -50], [50, -50], [-55, 0], [55, 0], [-20, 0], [20, 0], [-22, 80], [22, 80],
                     [-24, 160], [24, 160]], np.float32)
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    xy = base[None] + np.concatenate([2.0 * t + 300, 400 + 3 * np.sin(t / 5)], axis=2)
    tracks = np.full((2, frames, 17, 3), np.nan, np.float32)
    tracks[0, ..., :2], tracks[0, ..., 2] = xy, 0.9
    return tracks


def test_frame_time_axis():
    fps = 29.97003
    idx = np.array([29, 31, 33, 10_001])
    np.testing.assert_array_equal(frame_time_axis((idx / fps).astype(np.float32), fps), idx)
    np.testing.assert_array_equal(frame_time_axis(np.full(3, np.nan, np.float32), float("nan")), [0, 1, 2])


def test_training_crop_is_random_and_evaluation_crop_is_centred():
    tracks, times = _walking_tracks(100), np.arange(100.0)
    full = caer_pose_features(tracks, times, seq_len=100)               # every frame, no crop
    assert np.abs(full).sum() > 0
    np.testing.assert_array_equal(caer_pose_features(tracks, times), full[18:82])      # (100 - 64) // 2
    view = CaerPoseView(aug_prob=0.0)
    video = {"tracks": tracks, "timestamps_s": (times / 25.0).astype(np.float32), "fps": 25.0, "num_frames": 100}
    np.testing.assert_array_equal(view(video), full[18:82])
    starts = set()
    for key in range(12):
        out = view(video, np.random.default_rng(key))
        match = [s for s in range(37) if np.array_equal(out, full[s:s + 64])]
        assert len(match) == 1
        starts.add(match[0])
    assert len(starts) > 3
    with pytest.raises(ValueError, match="frame_times must be"):
        caer_pose_features(tracks, times[:50])
    with pytest.raises(ValueError, match="aug_prob"):
        CaerPoseView(aug_prob=1.5)


# ------------------------------------------------------------------------------------------------
# On real shards of the sample corpus
# ------------------------------------------------------------------------------------------------
def _stored(shards, field, group="videos"):
    out = {}
    for h5 in sorted(shards.glob("shard-*.h5")):
        with h5py.File(h5, "r") as f:
            for sid, row in zip(f[f"{group}/sample_id"].asstr()[()], f[f"{group}/{field}"][()]):
                out.setdefault(sid, []).append(row)
    return out


def test_evaluation_rows_equal_the_stored_features(extracted):
    ds = ShardDataset(extracted["out"], "pose_features", split=None, train_view=CaerPoseView())
    assert len(ds) == 6
    moving = 0
    for i in range(len(ds)):
        video = ds.video(i)
        assert video["fps"] > 0 and video["timestamps_s"].shape == (30,)
        stored = ds[i][0].numpy()
        moving += bool(np.abs(stored[:, 3::7]).sum() > 0)                  # some velocity
        np.testing.assert_array_equal(ds.train_view(video), stored)          # exact, not close
        # aug_prob 0 and fewer than 64 frames: training items are the stored rows too
        np.testing.assert_array_equal(CaerPoseView(aug_prob=0.0)(video, np.random.default_rng(i)), stored)
    assert moving >= 3


def test_flip_only_item_equals_the_hand_flipped_features(extracted):
    flip_only = TR.Compose((TR.RandomApply(TR.RandomFlip(), 1.0),))
    ds = ShardDataset(extracted["out"], "pose_features", "train", train_view=CaerPoseView(1.0, augmentation=flip_only))
    swap = np.arange(17)
    for left, right in TR.COCO17_FLIP_PAIRS:
        swap[left], swap[right] = right, left
    flipped = 0
    for i in range(len(ds)):
        video = ds.video(i)
        n = video["num_frames"]
        item, _ = ds[(i, 12345)]
        try:
            kin = pf.kinematics(np.transpose(video["tracks"][:, :n], (1, 0, 2, 3)),
                                frame_time_axis(video["timestamps_s"][:n], video["fps"]), pf.ProcCfg(keep_people=2))
        except pf.SampleRejected:                                     # nobody kept: zeros, as stored
            assert not item.any() and not ds[i][0].any()
            continue
        flipped += 1
        seen = np.zeros((64, 2, 17), bool)
        seen[:n] = np.isfinite(kin["kin_keypoints"][..., 0])
        stored = ds[i][0].numpy().reshape(64, 2, 17, 7)
        expected = stored[:, :, swap].copy()                         # left <-> right joints
        expected[..., 0] = np.where(seen[:, :, swap], 1.0 - expected[..., 0], 0.0)  # x -> 1 - x
        expected[..., [3, 5]] *= -1.0                                # vx, ax
        np.testing.assert_array_equal(item.numpy(), expected.reshape(64, 238))
    assert flipped >= 1


def test_seed_augmentation_items_are_keyed(extracted):
    ds = ShardDataset(extracted["out"], "pose_features", "train", train_view=CaerPoseView(1.0))
    a, b, c = ds[(0, 7)][0], ds[(0, 7)][0], ds[(0, 8)][0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (64, 238) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert not torch.equal(a, ds[0][0])                          # integer index: the stored row


def test_redraw_draws_from_the_face_pool(extracted):
    shards = extracted["out"]
    manifest = json.loads((shards / "manifest.json").read_text())["config"]
    c, k = manifest["clips"], manifest["frames_per_clip"]
    ds = ShardDataset(shards, "faces", "train", "clips", stack_clips=True, train_view=FaceRedraw(c, k))
    drawn, changed = set(), 0
    for i in range(len(ds)):
        video = ds.video(i)
        pool, n = video["face_pool"], video["num_frames"]
        assert pool.shape == (30, 112, 112, 3) and n == 30 and pool.any()
        # the stored plan: the pool holds the same crops as clips/faces
        np.testing.assert_array_equal(ds.train_view(video), ds[i][0].numpy())
        for key in range(4):
            item = ds[(i, key)][0].numpy()
            pos = random_clip_positions(n, c, k, np.random.default_rng(key))
            np.testing.assert_array_equal(item, pool[pos])
            drawn.add(pos.tobytes())
            changed += not np.array_equal(item, ds[i][0].numpy())
    assert len(drawn) == 4 and changed >= 4


def test_redraw_without_a_pool_fails_when_the_dataset_opens(extracted, tmp_path):
    import shutil

    from shard_fixtures import restamp

    copy = tmp_path / "shards"
    shutil.copytree(extracted["out"], copy)
    for h5 in copy.glob("shard-*.h5"):                  # as extracted with face_pool = false
        with h5py.File(h5, "a") as f:
            rows = f["videos/face_pool"].shape[0]
            for name, shape in (("face_pool", (rows, 0, 112, 112, 3)), ("face_pool_found", (rows, 0))):
                del f[f"videos/{name}"]
                f.create_dataset(f"videos/{name}", shape=shape, dtype=np.uint8 if name == "face_pool" else bool)
            f.attrs["shapes"] = json.dumps({**json.loads(f.attrs["shapes"]), "pool_frames": 0})
        restamp(h5)  # an edit on purpose: past the integrity check, on to the pool check
    with pytest.raises(ValueError, match=r"shard-0000\d-of-00002.h5: videos/face_pool holds nothing .*representations"
                                         r"\.face_pool = true \(--face-pool\)"):
        ShardDataset(copy, "faces", "train", "clips", stack_clips=True, train_view=FaceRedraw(3, 2))
    empty = {"face_pool": np.zeros((0, 112, 112, 3), np.uint8), "num_frames": 30, "source": "x.h5: videos row 0"}
    with pytest.raises(ValueError, match="x.h5: videos row 0.*face_pool = true"):
        FaceRedraw(3, 2)(empty, np.random.default_rng(0))


def _losses(run):
    rows = (run / "history.csv").read_text().splitlines()[1:]
    return [tuple(float(v) for v in r.split(",")[1:4]) for r in rows]


def test_trainer_augments_caer_and_resumes_exactly(extracted, tmp_path, capsys, monkeypatch):
    import dataclasses

    from zoo.registry import MODELS

    # a constant learning rate, so that a 2-epoch run is the first 2 epochs of a 3-epoch run
    # (the recipe's cosine schedule spans --epochs)
    spec = MODELS["caer-deepresidualpreact"]
    monkeypatch.setitem(MODELS, "caer-constant-lr", dataclasses.replace(
        spec, name="caer-constant-lr", defaults={**spec.defaults, "schedule": "none"}))
    shards = str(extracted["out"])
    common = ["caer-constant-lr", "--shards", shards, "--no-progress", "--no-tensorboard", "--aug-prob", "1"]
    assert main(common + ["--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    main(common + ["--epochs", "2", "--out", str(tmp_path / "half")])
    main(common + ["--epochs", "3", "--out", str(tmp_path / "half"), "--resume", str(tmp_path / "half" / "last.pt")])
    assert _losses(tmp_path / "half") == _losses(tmp_path / "full")                   # bit-exact
    main(common + ["--epochs", "1", "--out", str(tmp_path / "plain"), "--no-augment"])
    assert _losses(tmp_path / "plain")[0] != _losses(tmp_path / "full")[0]
    config = torch.load(tmp_path / "full" / "last.pt", map_location="cpu", weights_only=False)["config"]
    assert (config["augment"], config["aug_prob"], config["train_view"]) == (True, 1.0, "CaerPoseView")
    assert config["class_weights"] == "uniform_other_zero" and config["loss_class_weights"] is None
    plain = torch.load(tmp_path / "plain" / "last.pt", map_location="cpu", weights_only=False)["config"]
    assert plain["train_view"] is None
    assert main(["accm", "--shards", shards, "--augment", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "--augment does not apply to accm" in capsys.readouterr().err
