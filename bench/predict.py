"""``python -m bench.predict``: throughput of ``zoo.predict``'s face path against decoding alone.

On the same sampled frames of a shipped clip (default: every 2nd frame of
``hikers_walking.mp4``, 640x480, 0-10 faces per frame), times

* ``decode``: the default decoder back-end, in ``zoo.predict``'s chunks (the baseline);
* ``decode + detect``: plus the face detector (``--detector``, BlazeFace back) on the whole frames;
* ``predict``: the whole per-video function (decode, detect, track, fer crops, mini-Xception,
  records), ``FacePredictor.predict_video``;

and prints frames per second and the ratio to the baseline (best of ``--repeats``), then the
faces BlazeFace front and back find on whole frames of the three shipped clips. Results are
appended to ``bench/results_predict.md`` with date, machine, cores and device.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench.common import REPO, best_seconds, record

LOAD = os.getloadavg()[0]
CLIPS = ("group_event_smiling.mp4", "hikers_walking.mp4", "tears_of_steel_excerpt.mp4")


def detector_table(device: str, step: int = 15) -> list[str]:
    """Faces found by BlazeFace front and back on every ``step``-th frame of the shipped clips
    (whole frames, default thresholds): the evidence for ``zoo.predict``'s default detector."""
    import decord

    from extractors.blazeface import detect_faces, load_blazeface

    models = {v: load_blazeface(v, device) for v in ("front", "back")}
    rows = ["", f"Faces found on whole frames (every {step}th frame), BlazeFace front vs back:", "",
            "| clip | frames | front: faces / frames with a face | back: faces / frames with a face |",
            "|---|---|---|---|"]
    for clip in CLIPS:
        vr = decord.VideoReader(str(REPO / "samples/videos" / clip))
        frames = list(vr.get_batch(list(range(0, len(vr), step))).asnumpy())
        cells = []
        for v in ("front", "back"):
            found = [len(d) for d in detect_faces(models[v], frames, device)]
            cells.append(f"{sum(found)} / {sum(1 for f in found if f)}")
        rows.append(f"| {clip} | {len(frames)} | {cells[0]} | {cells[1]} |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--video", default=str(REPO / "samples/videos/hikers_walking.mp4"))
    ap.add_argument("--every", type=int, default=2, help="sample every N-th frame")
    ap.add_argument("--frames", type=int, default=64, help="sampled frames to time")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--detector", default="blazeface-back")
    ap.add_argument("--no-detector-table", action="store_true", help="skip the front/back face-count table")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to the results file")
    args = ap.parse_args(argv)

    import torch

    from zoo.predict.face import FacePredictor
    from zoo.predict.core import Sampling, frame_chunks, open_video

    sampling = Sampling(every=args.every, max_frames=args.frames)
    predictor = FacePredictor(args.device, args.detector)
    reader, info = open_video(args.video)
    plan = sampling.plan(info.fps, info.num_frames)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def decode():
        for _ in frame_chunks(reader, args.video, plan):
            pass

    def detect():
        for _, frames in frame_chunks(reader, args.video, plan):
            predictor.detector.detect(frames)
        sync()

    faces = {}

    def predict():
        faces["n"] = predictor.predict_video(args.video, sampling).header["faces"]
        sync()

    detector_lines = [] if args.no_detector_table else detector_table(args.device)
    predict()  # warm-up (model kernels, decoder)
    times = {"decode (baseline)": best_seconds(decode, args.repeats),
             "decode + detect": best_seconds(detect, args.repeats),
             "predict (decode, detect, track, classify)": best_seconds(predict, args.repeats)}
    reader.close()
    base = len(plan) / times["decode (baseline)"]
    device = args.device if not args.device.startswith("cuda") else f"{args.device} ({torch.cuda.get_device_name()})"
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, device {device}\n",
             f"{Path(args.video).name}, every {args.every} frames, {len(plan)} sampled frames, "
             f"{faces['n']} faces classified, detector {args.detector}, best of {args.repeats}\n",
             f"load average before the run (1 min): {LOAD:.1f} on {os.cpu_count()} cores\n",
             "| stage | frames/s | ratio to decode |", "|---|---|---|"]
    for name, seconds in times.items():
        rate = len(plan) / seconds
        lines.append(f"| {name} | {rate:.1f} | {rate / base:.2f} |")
    lines += detector_lines
    record(lines, "results_predict.md", "`python -m bench.predict`: zoo.predict face-path throughput",
           not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
