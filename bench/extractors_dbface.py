"""DBFace throughput: our batched detection against a one-frame-at-a-time loop, in one run.

``python -m bench.extractors_dbface [--device cpu] [--frames 32] [--batches 8 16]``

Frames: the first ``--frames`` 640x480 frames of the shipped clip
``samples/videos/group_event_smiling.mp4`` (several faces), decoded once with decord (RGB).

Baseline: the way dlunion/DBFace@b5fc28f ``main_small.py detect()`` processes a frame, written
here from its description (seed_specs §6): per frame, BGR flip, zero pad to a multiple of 32 with
numpy, float64 numpy normalisation, one forward of batch 1, 3x3 max-pool peak test, top-1000 on
the CPU, a Python loop decoding boxes and landmarks, and Python greedy NMS (+1-pixel IoU).
Ours: :func:`extractors.dbface.detect_faces` called on batches of the same frames (LUT
normalisation, channels-last forwards, decode and ``torchvision.ops.nms`` on the device; on
CPU a call's frames go through the network in chunks of ``CPU_FORWARD_PIXELS``, and the last
row forces the whole call into one forward to show why). The baseline runs the same network in the reference's NCHW layout. Same weights
(``dbface-small`` from the registry, e.g. ``AFFECTZOO_WEIGHTS``); the run is skipped with a
message when the weights are absent. The detections of both paths are compared
before timing (same counts; boxes within 0.05 px).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "videos" / "group_event_smiling.mp4"


def _signed_exp(v: float) -> float:
    return v * math.e if abs(v) < 1 else math.copysign(math.exp(abs(v)), v)


def _iou_plus_one(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = inter_w * inter_h
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _greedy_nms(objs: list, iou: float) -> list:
    objs = sorted(objs, key=lambda o: o[0][4], reverse=True)
    dropped = [False] * len(objs)
    keep = []
    for i, obj in enumerate(objs):
        if dropped[i]:
            continue
        keep.append(obj)
        for j in range(i + 1, len(objs)):
            if not dropped[j] and _iou_plus_one(obj[0], objs[j][0]) > iou:
                dropped[j] = True
    return keep


@torch.no_grad()
def baseline_detect(model, rgb: np.ndarray, device, threshold=0.3, nms_iou=0.3) -> np.ndarray:
    """One frame the ``main_small.py`` way; returns float32 [D, 15] like ``detect_faces``."""
    from extractors.dbface import MEAN_BGR, STD_BGR, pad_to_multiple

    bgr = pad_to_multiple(rgb[..., ::-1])
    x = ((bgr / 255.0 - MEAN_BGR) / STD_BGR).astype(np.float32).transpose(2, 0, 1)
    hm, tlrb, landmark = model(torch.from_numpy(x)[None].to(device))
    peaks = (hm == F.max_pool2d(hm, 3, 1, 1)).float() * hm
    scores, cells = peaks.view(1, -1).cpu().topk(min(1000, peaks.numel()))
    width = hm.shape[3]
    tlrb, landmark = tlrb[0].cpu().numpy(), landmark[0].cpu().numpy()
    objs = []
    for score, cell in zip(scores[0].tolist(), cells[0].tolist()):
        if score < threshold:
            break
        cy, cx = divmod(cell, width)
        l, t, r, b = tlrb[:, cy, cx].tolist()
        box = [(cx - l) * 4, (cy - t) * 4, (cx + r) * 4, (cy + b) * 4]
        lm = [_signed_exp(v * 4) for v in landmark[:, cy, cx].tolist()]
        points = [c for k in range(5) for c in ((lm[k] + cx) * 4, (lm[5 + k] + cy) * 4)]
        objs.append((box + [score], points))
    kept = _greedy_nms(objs, nms_iou)
    return np.asarray([box + points for box, points in kept], np.float32).reshape(-1, 15)


def _best_seconds(cases: dict, frames, repeats: int) -> dict:
    """Best (wall, CPU) seconds per case over ``repeats`` rounds; each round runs every case
    once, in turn, so that a load change on a shared machine hits all cases alike. CPU time
    (``time.process_time``, all threads of this process) is less sensitive to other users."""
    best = {name: (float("inf"), float("inf")) for name in cases}
    for _ in range(repeats):
        for name, (fn, batch) in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(frames), batch):
                fn(frames[i:i + batch])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def _check_agreement(ours: list, base: list) -> None:
    for i, (a, b) in enumerate(zip(ours, base)):
        if a.shape != b.shape or (a.size and np.abs(a[:, :4] - b[:, :4]).max() > 0.05):
            raise AssertionError(f"frame {i}: batched {a.shape} and baseline {b.shape} disagree")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0: torch's default); 1 is steadier on a busy machine")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from extractors import weights
    from extractors.dbface import detect_faces, load_dbface

    try:
        model = load_dbface("small", device=args.device)
        reference_model = load_dbface("small", device=args.device, channels_last=False)
    except weights.WeightsNotFoundError as exc:
        print(f"skipped: DBFace-Small-H weights are not installed ({exc})")
        return 0
    import decord

    reader = decord.VideoReader(str(CLIP), ctx=decord.cpu(0))
    frames = list(reader.get_batch(list(range(min(args.frames, len(reader))))).asnumpy())
    h, w = frames[0].shape[:2]

    def ours(batch):
        return detect_faces(model, batch)

    def ours_unchunked(batch):
        return detect_faces(model, batch, forward_batch=len(batch))

    def baseline(batch):
        return [baseline_detect(reference_model, f, args.device) for f in batch]

    found = ours(frames)
    _check_agreement(found, baseline(frames))
    n_faces = sum(len(d) for d in found)
    biggest = max(args.batches)
    cases = {("baseline: main_small.py-style loop", 1): (baseline, 1)}
    cases.update({("ours: detect_faces", b): (ours, b) for b in [1] + list(args.batches)})
    cases[("ours, whole call in one forward", biggest)] = (ours_unchunked, biggest)
    for b in sorted({1, *args.batches}):  # warm-up: kernel selection per batch shape
        ours_unchunked(frames[:b])
    best = _best_seconds(cases, frames, args.repeats)
    base_wall, base_cpu = best[("baseline: main_small.py-style loop", 1)]
    n = len(frames)
    lines = [f"## {time.strftime('%Y-%m-%d %H:%M')} — {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
             f"device {args.device}",
             f"{n} frames {w}x{h} of {CLIP.name}, {n_faces} faces found; best of "
             f"{args.repeats} interleaved rounds", "",
             "| path | batch | frames/s (wall) | ratio to baseline | CPU ms/frame | CPU ratio |",
             "|---|---|---|---|---|---|"]
    for (name, batch), (wall, cpu) in best.items():
        lines.append(f"| {name} | {batch} | {n / wall:.2f} | {base_wall / wall:.2f} | "
                     f"{1000 * cpu / n:.0f} | {base_cpu / cpu:.2f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
