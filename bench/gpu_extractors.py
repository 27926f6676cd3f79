"""Model-only throughput of the extractors, and CPU-vs-device parity, in one command.

``python -m bench.gpu_extractors --device cuda [--seconds 5] [--peak-tflops 790] [--json out.json]``
``python -m bench.gpu_extractors --device cpu --seconds 2``            (small batches on CPU)

Measures, on real 640x480 frames of ``samples/videos`` (read with OpenCV; no Beam, no PyAV):

- **PoseNet** (``posenet-mobilenet-v1-075``) at batch 1 / 32 / 128, **BlazeFace-front** at
  64 / 256 and **DBFace-small** at 256: frames/s of the registry's ``infer`` (upload of the
  uint8 chunk, device-side resize / letterbox, network, device-side decoding, the one transfer
  back), each after the entry's ``warmup`` at that batch size; and the network forward alone.
  DBFace-Small-H weights cannot ship: without them the real network runs with random weights
  (timing only; heatmap bias set to -4 so that no untrained "peak" floods the NMS) and the
  output says so.
- **OpenPose body network** at 368x496 (random weights; timing only): forward ms/frame and
  TFLOP/s in fp32 (TF32 off and on) and under bf16 / fp16 autocast (channels-last), with the
  share of the chip's bf16 dense peak (``--peak-tflops``, default 790 for an H200).
- **Parity** (``--device cuda``): each extractor's results for real frames on CPU (float32) and
  on the device (its ``preferred_dtype``, and float32): detections / people found and the max
  pixel difference of boxes / keypoints between matched detections. With ``--device cpu`` the
  comparison is the host path against the CUDA code path run on the CPU
  (``device_preprocess=True``). Random-weight models report the max difference of the raw
  network outputs instead.

Batches are capped at ``--max-batch`` (default: none on CUDA, 4 on CPU; the output names the
batch actually run). Each measurement runs ``--seconds`` after warm-up (at least one call), so
the whole run stays under 3 minutes on an H200 at the default 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = {"pose": "hikers_walking", "face": "group_event_smiling"}
OPENPOSE_HW = (368, 496)


def _frames(clip: str, n: int, hw=(480, 640)) -> np.ndarray:
    """uint8 [n, H, W, 3] RGB frames of a shipped clip (OpenCV), resized to ``hw`` if needed."""
    import cv2

    cap = cv2.VideoCapture(str(REPO / "samples" / "videos" / f"{clip}.mp4"))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            if not out:
                raise RuntimeError(f"cannot read {clip}.mp4 with OpenCV")
            break
        if bgr.shape[:2] != hw:
            bgr = cv2.resize(bgr, hw[::-1], interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack([out[i % len(out)] for i in range(n)])


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(fn, frames_per_call: int, seconds: float, device: str) -> tuple[float, int]:
    """(frames/s, calls) of ``fn`` over about ``seconds`` (at least one call)."""
    _sync(device)
    start = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return frames_per_call * calls / elapsed, calls


def _load(entry, device: str):
    """(model, note): the registry's weights, else the entry's untrained network (timing only)."""
    from extractors import weights as W

    try:
        return entry.load(device), "registered weights"
    except W.WeightsNotFoundError:
        note = "RANDOM weights (file absent; timing only)"
        if entry.role == "face":
            note += ", heatmap bias -4 (no detections)"
        return _same_weights(entry.untrained(), entry, device), note


def _same_weights(model, entry, device: str):
    """A copy of ``model`` on ``device`` (same weights; channels-last on CUDA)."""
    import copy

    import torch

    m = copy.deepcopy(model).to(device).eval()
    fmt = torch.channels_last if device.startswith("cuda") else torch.contiguous_format
    return m.to(memory_format=fmt)


def bench_extractor(name: str, batches, args, lines: list, report: dict) -> None:
    import torch

    from extractors import registry

    entry = registry.resolve(name)
    device = args.device
    model, note = _load(entry, device)
    dtype = entry.dtype_for(device)
    clip = CLIPS[entry.role]
    lines.append(f"{entry.name} ({note}; dtype {str(dtype).replace('torch.', '')}, 640x480)")
    for want in batches:
        b = min(want, args.max_batch) if args.max_batch else want
        chunk = _frames(clip, b)
        entry.warmup(model, device, size=chunk.shape[1:3], batch=b)
        fps, calls = _rate(lambda: entry.infer(model, chunk, device=device), b, args.seconds, device)
        x = entry.network_input(chunk, device)
        if device.startswith("cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        from extractors import _device as D

        def forward():
            with torch.no_grad(), D.autocast(device, dtype):
                model(x)

        forward()
        net_fps, _ = _rate(forward, b, max(args.seconds / 2, 0.1), device)
        shown = f"{want}" if b == want else f"{want} (run as {b})"
        lines.append(f"  batch {shown:>14s}: {fps:9.1f} frames/s extractor (infer), "
                     f"{net_fps:9.1f} frames/s network only  [{calls} calls]")
        report.setdefault(entry.name, {})[str(b)] = {"fps": fps, "network_fps": net_fps,
                                                     "weights": note, "dtype": str(dtype)}
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _conv_flops(model, x) -> float:
    """FLOPs (2 x multiply-adds) of the Conv2d layers of one forward of ``x``."""
    import torch

    total = [0.0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total[0] += 2.0 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0] / x.shape[0]


def bench_openpose_network(args, lines: list, report: dict) -> None:
    import torch

    from extractors import _device as D
    from extractors.openpose import BodyPoseModel

    device = args.device
    torch.manual_seed(0)
    model = BodyPoseModel().to(device).eval()
    b = args.openpose_batch if device.startswith("cuda") else min(args.openpose_batch, args.max_batch or 1)
    x = torch.randn(b, 3, *OPENPOSE_HW, device=device)
    flops = _conv_flops(model, x[:1])
    lines.append(f"openpose-body network {OPENPOSE_HW[0]}x{OPENPOSE_HW[1]} (random weights), batch {b}, "
                 f"{flops / 1e9:.0f} GFLOP/frame; bf16 peak {args.peak_tflops:g} TFLOP/s")
    modes = [("fp32", torch.float32, False)]
    if device.startswith("cuda"):
        modes += [("fp32+tf32", torch.float32, True), ("bf16", torch.bfloat16, False),
                  ("fp16", torch.float16, False)]
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    for label, dtype, tf32 in modes:
        if device.startswith("cuda"):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32

        def forward():
            with torch.no_grad(), D.autocast(device, dtype):
                model(x)

        forward()
        forward()
        fps, _ = _rate(forward, b, args.seconds, device)
        tflops = fps * flops / 1e12
        lines.append(f"  {label:10s}: {1000 / fps:7.2f} ms/frame, {tflops:7.1f} TFLOP/s, "
                     f"{100 * tflops / args.peak_tflops:5.1f} % of bf16 peak")
        report.setdefault("openpose-body-network", {})[label] = {
            "ms_per_frame": 1000 / fps, "tflops": tflops, "pct_bf16_peak": 100 * tflops / args.peak_tflops,
            "gflop_per_frame": flops / 1e9, "batch": b}
    if device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- parity

def _pose_diff(a, b, min_score: float = 0.5) -> float:
    """Max over people of ``a`` of the max |dx|, |dy| to the best-matching person of ``b``
    (joints confident in both, >= 3 of them); 0 when no person matches."""
    worst = 0.0
    for p in a[1]:
        best = np.inf
        for q in b[1]:
            ok = np.isfinite(p[:, 0]) & np.isfinite(q[:, 0]) & (p[:, 2] > min_score) & (q[:, 2] > min_score)
            if ok.sum() >= 3:
                best = min(best, float(np.abs(p[ok, :2] - q[ok, :2]).max()))
        if np.isfinite(best):
            worst = max(worst, best)
    return worst


def _face_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max over boxes of ``a`` of the max coordinate difference to the nearest box of ``b``."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    d = np.abs(a[:, None, :4] - b[None, :, :4]).max(-1)
    return float(d.min(1).max())


def parity(args, lines: list, report: dict) -> None:
    import torch

    from extractors import registry

    device = args.device
    cuda = device.startswith("cuda")
    lines.append("parity " + ("CPU float32 vs " + device if cuda else
                              "host path vs the CUDA code path run on CPU (device_preprocess=True)")
                 + " on real frames (max px difference of matched boxes / confident keypoints)")
    for entry in registry.entries():
        if not (cuda or entry.device_preprocessing):
            lines.append(f"  {entry.name:26s}: one path on every device: nothing to compare on CPU")
            continue
        try:
            cpu_model, note = _load(entry, "cpu")
        except Exception as exc:  # noqa: BLE001 - reported, the other checks still run
            lines.append(f"  {entry.name:26s}: not run ({type(exc).__name__}: {exc})")
            continue
        frames = _frames(CLIPS[entry.role], 2 if cuda else 1)
        if entry.close_ups:  # head-sized crops
            frames = np.ascontiguousarray(_frames(CLIPS["face"], 2 if cuda else 1)[:, 40:296, 200:456])
        if note.startswith("RANDOM"):
            dev_model = _same_weights(cpu_model, entry, device)
            x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 96, 128), np.float32))
            with torch.no_grad():
                ref = cpu_model(x)
                got = dev_model(x.to(device).contiguous(
                    memory_format=torch.channels_last if cuda else torch.contiguous_format))
            diff = max(float((r - g.float().cpu()).abs().max()) for r, g in zip(ref, got))
            lines.append(f"  {entry.name:26s}: random weights: network outputs max |diff| {diff:.2e} (float32)")
            report.setdefault("parity", {})[entry.name] = {"random_weights": True, "max_abs_output_diff": diff}
            continue
        ref = entry.infer(cpu_model, frames, device="cpu")
        runs = []
        if cuda:
            dev_model = entry.load(device)
            for dt in dict.fromkeys([entry.preferred_dtype, torch.float32]):
                runs.append((str(dt).replace("torch.", ""),
                             entry.infer(dev_model, frames, device=device, dtype=dt)))
        else:
            runs.append(("float32", entry.infer(cpu_model, frames, device="cpu", device_preprocess=True)))
        for label, got in runs:
            if entry.role == "pose":
                counts = ([len(r[0]) for r in ref], [len(r[0]) for r in got])
                diff = max(max(_pose_diff(r, g), _pose_diff(g, r)) for r, g in zip(ref, got))
            else:
                counts = ([len(r) for r in ref], [len(r) for r in got])
                diff = max(max(_face_diff(r, g), _face_diff(g, r)) for r, g in zip(ref, got))
            same = "same counts" if counts[0] == counts[1] else f"COUNTS DIFFER {counts[0]} vs {counts[1]}"
            lines.append(f"  {entry.name:26s} {label:9s}: {same} {counts[0]}, max {diff:.3f} px")
            report.setdefault("parity", {}).setdefault(entry.name, {})[label] = {
                "counts_cpu": counts[0], "counts_device": counts[1], "max_px": diff}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_extractors", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement (default 5)")
    ap.add_argument("--peak-tflops", type=float, default=790.0,
                    help="the chip's dense bf16 peak in TFLOP/s for the OpenPose share (default 790, H200)")
    ap.add_argument("--max-batch", type=int, default=None,
                    help="cap every batch size (default: none on CUDA, 4 on CPU)")
    ap.add_argument("--openpose-batch", type=int, default=16, help="OpenPose network batch (default 16)")
    ap.add_argument("--torch-threads", type=int, default=0, help="CPU threads (default: torch's)")
    ap.add_argument("--skip-parity", action="store_true", help="timing only")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.max_batch is None and not args.device.startswith("cuda"):
        args.max_batch = 4

    import torch

    from extractors import registry

    try:
        registry.prepare_device(args.device, torch_threads=args.torch_threads)  # TF32 off, cudnn benchmark
    except (RuntimeError, ValueError) as exc:  # no CUDA device, or a device string torch rejects
        print(f"python -m bench.gpu_extractors: {exc}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else platform.processor() or platform.machine()
    lines = [f"bench.gpu_extractors: device {args.device} ({name}), torch {torch.__version__}, "
             f"{os.cpu_count()} CPUs, {args.seconds:g} s per measurement"]
    report: dict = {"device": args.device, "device_name": name, "torch": torch.__version__,
                    "seconds": args.seconds, "peak_tflops": args.peak_tflops}
    start = time.perf_counter()

    def flush() -> None:  # print and save after every section: a cut-off run keeps what it has
        print("\n".join(lines), flush=True)
        lines.clear()
        report["total_s"] = time.perf_counter() - start
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")

    try:
        for ext, batches in (("posenet-mobilenet-v1-075", (1, 32, 128)), ("blazeface-front", (64, 256)),
                             ("dbface-small", (256,))):
            bench_extractor(ext, batches, args, lines, report)
            flush()
        bench_openpose_network(args, lines, report)
        flush()
        if not args.skip_parity:
            parity(args, lines, report)
    except KeyboardInterrupt:  # the sections already printed (and saved with --json) stay
        lines.append(f"interrupted after {time.perf_counter() - start:.0f} s")
        flush()
        return 130
    lines.append(f"total {time.perf_counter() - start:.0f} s")
    flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
