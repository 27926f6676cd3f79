"""Make tests/data/blazepose_goldens.json with MediaPipe's own runtime (not run by the tests).

Run once in a throwaway environment that holds ``mediapipe==0.10.21``, ``numpy<2`` and
``ai-edge-litert`` (mediapipe pins numpy < 2, so it cannot share the project's venv)::

    python3 -m venv /tmp/mpenv
    /tmp/mpenv/bin/pip install mediapipe==0.10.21 "numpy<2" ai-edge-litert==2.3.0
    /tmp/mpenv/bin/python tests/data/blazepose_make_goldens.py FRAMES_DIR OUT.json

FRAMES_DIR holds ``hikers_NNNN.png``: frame NNNN of ``samples/videos/hikers_walking.mp4``
decoded by PyAV as RGB24 (the project's decoder) and written losslessly, so the tests
rebuild the same pixels.

Two levels:

- ``raw``: the two TFLite graphs run by LiteRT's interpreter (XNNPACK, float32) on inputs cut
  from a frame by slicing only (no resampling): the detector on ``frame[::2, ::2][8:232,
  48:272]`` scaled ``x / 127.5 - 1``, the landmark model on ``frame[100:356, 200:456]``
  scaled ``x / 255``.
- ``solution``: ``mediapipe.solutions.pose`` (static image mode, model complexity 1 =
  ``pose_landmark_full``) per frame: the first detection, its ROI and the 33 landmarks
  (normalised image x, y, z, visibility, presence) and world landmarks (metres).
"""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import pose as mp_pose

MODULES = Path(mp_pose.__file__).resolve().parents[2] / "modules"
DET = MODULES / "pose_detection" / "pose_detection.tflite"
LMK = MODULES / "pose_landmark" / "pose_landmark_full.tflite"


def _run(path, x):
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x[None].astype(np.float32))
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"])[0] for d in interp.get_output_details()}


def _r(a, nd=6):
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


def raw_goldens(frame):
    det_in = frame[::2, ::2][8:232, 48:272].astype(np.float32) / 127.5 - 1.0
    det = _run(DET, det_in)
    boxes, scores = det["Identity"], det["Identity_1"][:, 0]
    top = np.argsort(-scores, kind="stable")[:16]
    lmk_in = frame[100:356, 200:456].astype(np.float32) / 255.0
    lmk = _run(LMK, lmk_in)
    return {
        "detector": {"scores": _r(scores, 5), "top_anchors": top.tolist(),
                     "top_boxes": _r(boxes[top], 4)},
        "landmark": {"landmarks": _r(lmk["Identity"], 4), "pose_flag": _r(lmk["Identity_1"]),
                     "world": _r(lmk["Identity_4"], 6),
                     "heatmap_ch0": _r(lmk["Identity_3"][..., 0], 4),
                     "heatmap_max": _r(lmk["Identity_3"].max(axis=(0, 1)), 4)},
    }


def _landmarks(lst, n=5):
    if lst is None:
        return None
    return [[p.x, p.y, p.z, p.visibility, p.presence][:n] for p in lst.landmark]


def solution_goldens(frames):
    sol = SolutionBase(
        binary_graph_path=mp_pose._BINARYPB_FILE_PATH,
        side_inputs={"model_complexity": 1, "smooth_landmarks": False,
                      "enable_segmentation": False, "smooth_segmentation": False,
                      "use_prev_landmarks": False},
        outputs=["pose_landmarks", "pose_world_landmarks", "pose_detection",
                 "pose_rect_from_detection"])
    out = {}
    for name, rgb in frames.items():
        res = sol.process(rgb)
        det, roi = res.pose_detection, res.pose_rect_from_detection
        rec = {"landmarks": _landmarks(res.pose_landmarks),
               "world_landmarks": _landmarks(res.pose_world_landmarks)}
        if det is not None:
            bb = det.location_data.relative_bounding_box
            rec["detection"] = {"score": det.score[0],
                                "box": [bb.xmin, bb.ymin, bb.width, bb.height],
                                "keypoints": [[k.x, k.y] for k in
                                              det.location_data.relative_keypoints]}
        if roi is not None:
            rec["roi"] = [roi.x_center, roi.y_center, roi.width, roi.height, roi.rotation]
        out[name] = json.loads(json.dumps(rec), parse_float=lambda s: round(float(s), 6))
    sol.close()
    return out


def main(frames_dir, out_path):
    frames = {p.stem: cv2.imread(str(p))[..., ::-1].copy()
              for p in sorted(Path(frames_dir).glob("hikers_*.png"))}
    first = next(iter(frames))
    goldens = {"mediapipe": "0.10.21", "raw_frame": first, "raw": raw_goldens(frames[first]),
               "solution": solution_goldens(frames)}
    Path(out_path).write_text(json.dumps(goldens, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
