"""BlazePose GHUM in torch (extractors/blazepose.py, extractors/tflite_graph.py) against
MediaPipe 0.10.21's own runtime.

Goldens: ``tests/data/blazepose_goldens.json``, made by ``tests/data/blazepose_make_goldens.py``
in a separate environment (LiteRT interpreter on the raw graphs; ``mediapipe.solutions.pose``
in static image mode) from frames 0, 80, ..., 480 of ``samples/videos/hikers_walking.mp4``
decoded by PyAV as RGB24.

Stated tolerances:

- raw graphs (same input tensor): detector logits within 2e-3 and box regressors within 2e-3
  px (of 224); landmark regressors within 5e-3 px (of 256), world landmarks within 1e-4 m,
  pose flag within 1e-4, heatmap logits within 1e-3 (goldens are rounded to 4-6 decimals).
- end to end (MediaPipe crops with OpenCV's fixed-point bilinear warp, we with
  ``grid_sample``; crops differ by about 0.1 grey level on average): best detection score
  within 0.01 and its keypoints within 2 px; region within 0.005 of the frame size and 0.01 rad;
  over the 7 frames, landmark image error / region side at the median <= 0.005 and the 90th
  percentile <= 0.015 (hand landmarks whose heatmap window shifts by a cell are the tail);
  world landmarks median <= 0.015 m and 90th percentile <= 0.04 m; visibility within 0.1.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from extractors import blazepose as B
from extractors import registry as R
from extractors.weights import verify
from schemas.keypoints import BLAZEPOSE_CHANNELS, LAYOUTS

REPO = Path(__file__).resolve().parents[1]
GOLDENS = json.loads((REPO / "tests" / "data" / "blazepose_goldens.json").read_text())
CLIP = REPO / "samples" / "videos" / "hikers_walking.mp4"


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    import av

    wanted = {int(name.split("_")[1]): name for name in GOLDENS["solution"]}
    out = {}
    with av.open(str(CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[wanted[i]] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    return out


@pytest.fixture(scope="module")
def model():
    return B.load_blazepose("cpu")


def test_raw_detector_graph(model, frames):
    frame = frames[GOLDENS["raw_frame"]]
    x = torch.from_numpy(frame[::2, ::2][8:232, 48:272].astype(np.float32) / 127.5 - 1)
    with torch.no_grad():
        boxes, logits = model.detector(x.permute(2, 0, 1)[None])
    gold = GOLDENS["raw"]["detector"]
    np.testing.assert_allclose(logits[0, :, 0].numpy(), gold["scores"], atol=2e-3)
    np.testing.assert_allclose(boxes[0, gold["top_anchors"]].numpy(), gold["top_boxes"], atol=2e-3)


def test_raw_landmark_graph(model, frames):
    frame = frames[GOLDENS["raw_frame"]]
    x = torch.from_numpy(frame[100:356, 200:456].astype(np.float32) / 255)
    with torch.no_grad():
        lmk, flag, _, heatmaps, world = model.landmark(x.permute(2, 0, 1)[None])
    gold = GOLDENS["raw"]["landmark"]
    np.testing.assert_allclose(lmk[0].numpy(), gold["landmarks"], atol=5e-3)
    np.testing.assert_allclose(world[0].numpy(), gold["world"], atol=1e-4)
    np.testing.assert_allclose(flag[0].numpy(), gold["pose_flag"], atol=1e-4)
    np.testing.assert_allclose(heatmaps[0, 0].numpy(), gold["heatmap_ch0"], atol=1e-3)
    np.testing.assert_allclose(heatmaps[0].amax((1, 2)).numpy(), gold["heatmap_max"], atol=1e-3)


def test_detections_and_regions_match_mediapipe(model, frames):
    for name, gold in GOLDENS["solution"].items():
        frame = frames[name]
        h, w = frame.shape[:2]
        images = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
        dets = B.detect_persons(model, images)[0]
        assert abs(float(dets[0, 12]) - gold["detection"]["score"]) < 0.01, name
        kps = dets[0, 4:12].numpy().reshape(4, 2) / [w, h]
        np.testing.assert_allclose(kps * [w, h], np.array(gold["detection"]["keypoints"]) * [w, h],
                                   atol=2.0, err_msg=name)
        roi = B.rois_from_detections(dets[:1])[0].numpy() / [w, h, w, h, 1]
        np.testing.assert_allclose(roi[:4], gold["roi"][:4], atol=5e-3, err_msg=name)
        assert abs(roi[4] - gold["roi"][4]) < 0.01, name


def test_landmarks_match_mediapipe_solution(model, frames):
    names = list(GOLDENS["solution"])
    results = B.estimate_poses(model, np.stack([frames[n] for n in names]))
    rel, world = [], []
    for name, (scores, kps) in zip(names, results):
        gold = GOLDENS["solution"][name]
        h, w = frames[name].shape[:2]
        assert kps.shape[1:] == (33, len(BLAZEPOSE_CHANNELS)) and len(scores) >= 1, name
        assert scores[0] >= 0.5
        lm, wl = np.array(gold["landmarks"]), np.array(gold["world_landmarks"])
        first = kps[0]
        side = gold["roi"][2] * w
        rel.append(np.linalg.norm(first[:, :2] - lm[:, :2] * [w, h], axis=1) / side)
        world.append(np.linalg.norm(first[:, 5:8] - wl[:, :3], axis=1))
        np.testing.assert_allclose(first[:, 2], lm[:, 3], atol=0.1, err_msg=name)
    rel, world = np.concatenate(rel), np.concatenate(world)
    assert np.median(rel) <= 0.005 and np.percentile(rel, 90) <= 0.015, np.percentile(rel, [50, 90])
    assert np.median(world) <= 0.015 and np.percentile(world, 90) <= 0.04


def test_world_landmarks_are_metric_and_hip_centred(model, frames):
    _, kps = B.estimate_poses(model, [frames["hikers_0240"]])[0]
    wl = kps[0, :, 5:8]
    hips = (wl[23] + wl[24]) / 2
    assert np.linalg.norm(hips) < 0.05  # origin between the hips
    height = wl[[29, 30], 1].mean() - wl[[1, 4], 1].mean()  # heels below eyes, y down
    assert 1.2 < height < 2.0, height


def test_registry_entry_layout_and_weights():
    entry = R.resolve("blazepose", role="pose")
    assert entry.name == "blazepose-ghum" and entry.keypoint_layout == "blazepose33"
    assert LAYOUTS["blazepose33"].num_joints == 33
    for name in entry.weight_files:
        assert verify(name).stat().st_size < 8_000_000


def test_registry_infer_batches_mixed_sizes_and_empty_frames(model, frames):
    entry = R.resolve("blazepose-ghum")
    small = np.ascontiguousarray(frames["hikers_0000"][::2, ::2])
    black = np.zeros((120, 160, 3), np.uint8)
    out = entry.infer(model, [frames["hikers_0000"], small, black])
    assert len(out) == 3 and len(out[0][0]) >= 1 and len(out[2][0]) == 0
    assert out[2][1].shape == (0, 33, 8)
    # the same person at half resolution lands at half the pixel coordinates (hips)
    full, half = out[0][1][0], out[1][1][0]
    np.testing.assert_allclose(half[[23, 24], :2] * 2, full[[23, 24], :2], atol=12.0)


def test_bad_frames_raise_one_line_errors(model):
    with pytest.raises(ValueError, match=r"frames\[1\]: expected uint8"):
        B.estimate_poses(model, [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])
    assert B.estimate_poses(model, []) == []



def test_to_coco17_picks_the_coco_joints_by_name():
    from schemas.keypoints import BLAZEPOSE33, COCO17

    kp = np.random.default_rng(0).random((2, 33, 8)).astype(np.float32)
    coco = R.to_coco17(kp, "blazepose33")
    assert coco.shape == (2, 17, 3)
    for j, name in enumerate(COCO17):
        np.testing.assert_array_equal(coco[:, j], kp[:, BLAZEPOSE33.index(name), :3])
