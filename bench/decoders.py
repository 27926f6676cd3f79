"""``python -m bench.decoders``: decoder back-ends compared on the same clips, for speed and reliability.

Speed (in this process, every back-end single-threaded unless its name says otherwise): frames
per second and the ratio against decord measured in the same run, on

* ``windows``: the sample card's windows (2 s at 15 frames/s, every 2nd frame) over the three
  shipped videos, one open per window as the pipeline does;
* ``dense``: the same windows at the videos' own rate (every frame, 30 or 24 frames/s);
* ``whole``: every frame of each shipped video, one open per video.

Each back-end's frames are checked against decord's (``np.array_equal``). Opening is timed with
decoding (decord and PyAV index the packets when they open a file).

Reliability: each back-end opens the corrupt-input suite's files (generated as
``tests/test_corrupt_inputs.py`` does: zero-byte, truncated, bit-flipped, wrong container, audio
only, huge frames, a directory, a missing path; and an MJPEG AVI named .mp4 as a control that
must decode) in a child process with a timeout, so that a crash or a hang is observed rather
than suffered. Outcomes: ``clear error`` (DecodeError naming the path; the cell shows the
message after the path), ``ok`` (all frames equal
to decord's frames of the intact source), ``WRONG FRAMES`` / ``PARTIAL`` (returned silently),
``HANG`` (timeout), ``CRASH`` (the process died). Cases the shared file checks decide are also
run with the checks off (``bare``) to show what the library does on its own.

torchcodec needs FFmpeg shared libraries from the system; where it cannot load it is reported
with the reason. Results are appended to ``bench/results_decoders.md``.

``--indexing`` (issue 21): the PyAV back-end's frame index (frames as FFmpeg shows them:
edit-list packets dropped, a tail check, :mod:`pipelines.frame_index`) against the packet index
it replaced (:class:`PacketIndexPyAV`, the code of commit a354ee4), round-robin in one run on the
same plans, frames checked identical; the index cache is emptied before every timed run (one
index per video per run, as a fresh decoder child pays) and, in a third row, before every open
(the worst case). ``--conformance``: the conformance table (file kind x back-end) of
``tests/test_decoder_conformance.py``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, best_seconds, machine, record

DATE = "2026-11-21"
VIDEOS = REPO / "samples" / "videos"
#: speed rows: (label, back-end name, constructor options)
SPEED_BACKENDS = [("decord", "decord", {}), ("pyav", "pyav", {}), ("opencv", "opencv", {}),
                  ("torchcodec", "torchcodec", {}),
                  ("pyav, thread_type=AUTO (all cores)", "pyav", {"thread_type": "AUTO", "threads": 0}),
                  ("decord, num_threads=0 (all cores)", "decord", {"threads": 0})]


# --- clips ---------------------------------------------------------------------------------------

def sample_windows(limit: int | None) -> list[tuple[str, float]]:
    """``(uri, start_s)`` of the sample card's windows, round-robin over its videos (at most ``limit``)."""
    from pipelines.cards import corpus_root, load_card
    from pipelines.readers import read_samples

    card = load_card("sample")
    by_video: dict[str, list] = {}
    for s in read_samples(card, corpus_root(card, None)):
        by_video.setdefault(s.uri, []).append(s.start_s)
    out, lists = [], [[(u, t) for t in starts] for u, starts in by_video.items()]
    while any(lists) and (limit is None or len(out) < limit):
        for lst in lists:
            if lst and (limit is None or len(out) < limit):
                out.append(lst.pop(0))
    return out


def clip_plans(windows: list[tuple[str, float]]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The three runs' requests: run name -> list of (uri, int64 frame indices), one open each."""
    from pipelines.decode import plan_window
    from pipelines.decoders import DecordDecoder

    info = {}
    for uri in sorted({u for u, _ in windows} | {str(p) for p in VIDEOS.glob("*.mp4")}):
        with DecordDecoder() as dec:
            info[uri] = dec.open(uri)
    plans = {"windows": [], "dense": []}
    for uri, start in windows:
        i = info[uri]
        plans["windows"].append((uri, plan_window(start, 2.0, 15.0, i.fps, i.num_frames).astype(np.int64)))
        plans["dense"].append((uri, plan_window(start, 2.0, i.fps, i.fps, i.num_frames).astype(np.int64)))
    plans["whole"] = [(str(p), np.arange(info[str(p)].num_frames)) for p in sorted(VIDEOS.glob("*.mp4"))]
    return plans


# --- indexing: the frame index against the packet index it replaced (issue 21) -------------------

def _packet_index_class():
    """:class:`pipelines.decoders.PyAVDecoder` with the packet index of commit a354ee4 (before issue
    21): frame ``i`` is the ``i``-th packet by pts (edit-list packets and packets without a
    picture counted), no tail check, no cache, frames after a seek identified by counting."""
    import av

    from pipelines.decoders import DecodeError, PyAVDecoder, VideoInfo

    class PacketIndexPyAV(PyAVDecoder):
        def _open(self, uri: str) -> VideoInfo:
            self._container = container = av.open(uri, metadata_errors="ignore")
            if not container.streams.video:
                raise DecodeError(f"{uri}: no video stream")
            self._stream = stream = container.streams.video[0]
            ctx = stream.codec_context
            self._check_pixels(uri, ctx.width, ctx.height)
            stream.thread_count = self.threads
            pts, keys = [], []
            for packet in container.demux(stream):
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None:
                    continue
                pts.append(t)
                keys.append(packet.is_keyframe)
            order = np.argsort(np.asarray(pts, np.int64), kind="stable")
            self._pts = np.asarray(pts, np.int64)[order]
            self._index = {int(t): i for i, t in enumerate(self._pts)}
            self._keys = sorted({0} | {int(i) for i, k in enumerate(np.asarray(keys, bool)[order]) if k})
            self._exact_pts = False  # counting after the first frame of a run
            self._frames_iter, self._pos = None, None
            self._reformatter = av.video.reformatter.VideoReformatter()
            rate = stream.average_rate or stream.guessed_rate
            self._quarter_turns = 0
            self._seek(0)
            first = next(iter(self._frames_iter), None)
            self._pos = self._frame_index(first) if first is not None else None
            return VideoInfo(len(self._pts), float(rate) if rate else float("nan"), int(ctx.width), int(ctx.height),
                             int(stream.frames or 0))

        def _seek(self, key: int) -> None:
            self._container.seek(int(self._pts[key]), stream=self._stream, backward=True, any_frame=False)
            self._frames_iter, self._pos = self._container.decode(self._stream), None

    return PacketIndexPyAV


def bench_indexing(plans, repeats: int) -> dict:
    """Per run: CPU and wall seconds of the packet index (old) and the frame index (new: index
    cache emptied per run; and no cache at all), interleaved per request (open + decode) so that
    a burst of load hits every variant alike; each request's best of ``repeats`` is summed.
    Ratios new / old (>1 = slower) and frame identity."""
    import time
    from collections import OrderedDict

    from pipelines import frame_index
    from pipelines.decoders import PyAVDecoder

    old_cls = _packet_index_class()
    variants = {"packet index (before, a354ee4)": (old_cls, False),
                "frame index, index cached per run": (PyAVDecoder, False),
                "frame index, no cache (every open indexes)": (PyAVDecoder, True)}
    saved, res = frame_index._CACHE, {}
    try:
        for run, requests in plans.items():
            frames = sum(len(i) for _, i in requests)
            best = {label: np.full((len(requests), 2), np.inf) for label in variants}
            identical = {label: True for label in variants}
            for rep in range(repeats + 1):  # pass 0 checks the frames (and warms the page cache)
                caches = {label: OrderedDict() for label in variants}  # per variant and run
                ref = []
                for k, (uri, idx) in enumerate(requests):
                    for label, (cls, every) in variants.items():
                        frame_index._CACHE = OrderedDict() if every else caches[label]
                        t, c = time.perf_counter(), time.process_time()
                        with cls() as dec:
                            dec.open(uri)
                            got = dec.get_batch(idx)
                        spent = (time.process_time() - c, time.perf_counter() - t)
                        if rep == 0:
                            ref = ref if label != "packet index (before, a354ee4)" else ref + [got]
                            identical[label] &= bool(np.array_equal(got, ref[k]))
                        else:
                            best[label][k] = np.minimum(best[label][k], spent)
            rows = {label: {"cpu": float(b[:, 0].sum()), "s": float(b[:, 1].sum()), "identical": identical[label]}
                    for label, b in best.items()}
            base = rows["packet index (before, a354ee4)"]
            for r in rows.values():
                r["fps"], r["ratio"], r["cpu_ratio"] = frames / r["cpu"], r["s"] / base["s"], r["cpu"] / base["cpu"]
            res[run] = {"requests": len(requests), "frames": frames, "rows": rows}
    finally:
        frame_index._CACHE = saved
    return res


def report_indexing(res: dict, repeats: int, load_before) -> list[str]:
    load = os.getloadavg()
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M')} — frame index vs packet index (issue 21) — {machine()}",
             f"Versions: {_versions()}. Load average before / after: {load_before[0]:.1f} / {load[0]:.1f}; best of "
             f"{repeats} repeats per request (open + decode), the variants interleaved request by request, best "
             f"summed; PyAV single-threaded. The process's CPU seconds are the measure (the machine is shared: wall "
             f"time swings with the other jobs); frames/s = frames / CPU s; ratios = seconds / seconds of the "
             f"packet index (>1 = slower).\n",
             "| run | PyAV indexing | frames per CPU s | CPU time ratio | wall time ratio | frames identical |",
             "|---|---|---|---|---|---|"]
    for run, r in res.items():
        what = {"windows": f"sample windows, 2 s at 15 frames/s ({r['requests']} opens, {r['frames']} frames)",
                "dense": f"same windows, every frame ({r['requests']} opens, {r['frames']} frames)",
                "whole": f"whole videos ({r['requests']} opens, {r['frames']} frames)"}[run]
        for label, row in r["rows"].items():
            lines.append(f"| {what} | {label} | {row['fps']:.0f} | {row['cpu_ratio']:.3f} | {row['ratio']:.3f} | "
                         f"{row['identical']} |")
    return lines


# --- conformance table ---------------------------------------------------------------------------

def conformance_table(backends: list[str]) -> list[str]:
    """File kind x back-end: ``ok`` (reference frames, full pass and random access), ``deviation``
    (listed in KNOWN_DEVIATIONS) or the error's reason, from a run of the suite's files here
    (intermittent deviations show only on some runs)."""
    sys.path.insert(0, str(REPO / "tests"))
    import test_decoder_conformance as conf
    from pipelines.decoders import DecodeError, make_decoder

    tmp = Path(tempfile.mkdtemp(prefix="bench_conformance_"))
    files = conf.make_files(tmp)
    nonvideo = {"audio_only.m4a": conf.encode(tmp / "audio_only.m4a", None, audio_s=1.0),
                "empty_video_stream.mkv": conf.encode(tmp / "empty_video_stream.mkv", "libx264", n=0, audio_s=0.5),
                "still_image.png": conf.still_image(tmp / "still_image.png")}
    lines = ["", "| file | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    for name, path in {**files, **nonvideo}.items():
        ref = None if name in nonvideo else conf.reference_frames(path)
        cells = []
        for backend in backends:
            try:
                with make_decoder(backend) as dec:
                    n = dec.open(str(path)).num_frames
                    ok = n == len(ref)
                    for idx in conf._requests(n).values():  # the suite's requests: full pass, seeks, last frames
                        ok = ok and all(np.array_equal(g, ref[i]) for g, i in zip(dec.get_batch(idx), idx))
                cells.append("ok" if ok else "deviation: " + conf.KNOWN_DEVIATIONS.get((backend, name), "OTHER FRAMES")
                             .split(" (")[0][:90])
            except DecodeError as exc:
                reason = str(exc).removeprefix(f"{path}: ").split("; found:")[0].replace("|", "/")
                cells.append(f"error: {reason[:110]}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


# --- speed ---------------------------------------------------------------------------------------

def decode_all(backend: str, options: dict, requests) -> list[np.ndarray]:
    """Open, decode and close every request with one back-end (a fresh decoder per request)."""
    from pipelines.decoders import make_decoder

    out = []
    for uri, idx in requests:
        with make_decoder(backend, **options) as dec:
            dec.open(uri)
            out.append(dec.get_batch(idx))
    return out


def bench_speed(plans, repeats: int) -> dict:
    """Per run and back-end: frames, best seconds, frames/s, ratio to decord, identical to decord."""
    from pipelines.decoders import backend_status

    status = backend_status()
    res: dict = {"status": status, "runs": {}}
    for run, requests in plans.items():
        frames = sum(len(i) for _, i in requests)
        ref = decode_all("decord", {}, requests)  # also warms the page cache
        rows: dict = {}
        usable = [(label, b, o) for label, b, o in SPEED_BACKENDS if status[b] is None]
        for label, backend, options in SPEED_BACKENDS:
            rows[label] = None
        for label, backend, options in usable:
            got = decode_all(backend, options, requests)
            rows[label] = {"s": float("inf"), "identical": all(np.array_equal(a, b) for a, b in zip(ref, got))}
        for _ in range(repeats):  # round-robin, so that a burst of load on the shared machine hits all back-ends
            for label, backend, options in usable:
                t = best_seconds(lambda: decode_all(backend, options, requests), 1)
                rows[label]["s"] = min(rows[label]["s"], t)
        for label, _, _ in usable:
            rows[label]["fps"] = frames / rows[label]["s"]
        base = rows["decord"]["s"]
        for r in rows.values():
            if r is not None:
                r["ratio"] = base / r["s"]
        res["runs"][run] = {"requests": len(requests), "frames": frames, "rows": rows}
    return res


# --- reliability ---------------------------------------------------------------------------------

def make_corrupt_files(root: Path) -> dict[str, dict]:
    """The corrupt-input suite (as tests/test_corrupt_inputs.py builds it) and what to ask of each.

    Returns:
        case name -> {"path", "indices" (frames requested), "source" (intact file whose decord
        frames are the truth, or None), "checked" (the shared file checks decide the case)}.
    """
    import cv2
    from scipy.io import wavfile

    root.mkdir(parents=True, exist_ok=True)
    group = (VIDEOS / "group_event_smiling.mp4").read_bytes()
    window = list(range(0, 90, 2))  # 3 s of group_event_smiling at 15 frames/s
    cases: dict[str, dict] = {}

    def add(name, path, indices=window, source=None, checked=False):
        cases[name] = {"path": str(path), "indices": list(indices), "source": source, "checked": checked}

    (root / "empty.mp4").write_bytes(b"")
    add("zero-byte file", root / "empty.mp4", checked=True)
    (root / "truncated.mp4").write_bytes(group[: len(group) // 3])
    add("truncated (first third of an MP4)", root / "truncated.mp4", source=str(VIDEOS / "group_event_smiling.mp4"))
    flipped, rng = bytearray(group), random.Random(3)
    for i in rng.sample(range(len(flipped)), 2000):
        flipped[i] ^= 0xFF
    (root / "bitflip.mp4").write_bytes(bytes(flipped))
    add("bit-flipped (2000 bytes)", root / "bitflip.mp4", source=str(VIDEOS / "group_event_smiling.mp4"))
    payload = bytearray(group)  # the header intact, 200 bytes flipped inside the frame data only
    rng = random.Random(5)
    for i in rng.sample(range(len(group) // 2, len(group) - 1000), 200):
        payload[i] ^= 0xFF
    (root / "bitflip_payload.mp4").write_bytes(bytes(payload))
    add("bit-flipped frame data (200 bytes, header intact)", root / "bitflip_payload.mp4",
        source=str(VIDEOS / "group_event_smiling.mp4"))
    (root / "not_a_video.mp4").write_text("sample_id,label\n" * 100)
    add("wrong container (CSV named .mp4)", root / "not_a_video.mp4")
    tone = (np.sin(np.arange(32000) / 5.0) * 3000).astype(np.int16)
    wavfile.write(str(root / "audio_only.mp4"), 16000, tone)
    add("audio only (WAV named .mp4)", root / "audio_only.mp4")
    writer = cv2.VideoWriter(str(root / "huge_frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (8192, 4608))
    for _ in range(3):
        writer.write(np.zeros((4608, 8192, 3), np.uint8))
    writer.release()
    add("huge frames (8192x4608 MJPEG)", root / "huge_frames.avi", indices=[0, 1, 2], checked=True)
    (root / "a_folder.mp4").mkdir(exist_ok=True)
    add("directory named .mp4", root / "a_folder.mp4", checked=True)
    add("missing file", root / "missing.mp4", checked=True)
    cap = cv2.VideoCapture(str(VIDEOS / "tears_of_steel_excerpt.mp4"))
    ok, frame = cap.read()
    writer = cv2.VideoWriter(str(root / "tears.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 24,
                             (frame.shape[1], frame.shape[0]))  # written as .avi: a real AVI container
    for _ in range(36):
        writer.write(frame)
        ok, frame = cap.read()
    writer.release()
    cap.release()
    os.replace(root / "tears.avi", root / "tears_as_avi.mp4")
    add("control: MJPEG AVI named .mp4 (must decode)", root / "tears_as_avi.mp4", indices=range(0, 36, 2),
        source="self")
    return cases


def _digests(frames: np.ndarray) -> list[str]:
    return [hashlib.sha1(np.ascontiguousarray(f).tobytes()).hexdigest() for f in frames]


def probe(request: dict) -> dict:
    """Child side: open + get_batch with one back-end; the outcome as a JSON-able dict."""
    from pipelines.decoders import BackendUnavailable, DecodeError, make_decoder

    options = {} if request["interface"] else {"check_files": False, "max_pixels": None}
    try:
        with make_decoder(request["backend"], **options) as dec:
            info = dec.open(request["path"])
            frames = dec.get_batch(request["indices"])
        return {"status": "frames", "info": [info.num_frames, info.fps, info.width, info.height],
                "shape": list(frames.shape), "digests": _digests(frames)}
    except BackendUnavailable as exc:
        return {"status": "unavailable", "type": type(exc).__name__, "message": str(exc)}
    except DecodeError as exc:
        return {"status": "error", "type": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - an unwrapped library error is itself a finding
        return {"status": "raw-error", "type": type(exc).__name__, "message": str(exc)}


def run_probe(backend: str, case: dict, interface: bool, timeout_s: float) -> dict:
    """Run :func:`probe` in a child process; adds ``hang`` / ``crash`` outcomes."""
    request = {"backend": backend, "path": case["path"], "indices": case["indices"], "interface": interface}
    cmd = [sys.executable, "-m", "bench.decoders", "--probe", json.dumps(request)]
    t = time.perf_counter()
    try:
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "hang", "seconds": timeout_s}
    seconds = time.perf_counter() - t
    lines = [l for l in run.stdout.splitlines() if l.startswith("{")]
    if run.returncode != 0 or not lines:
        how = (f"signal {signal.Signals(-run.returncode).name}" if run.returncode < 0
               else f"exit status {run.returncode}")
        return {"status": "crash", "how": how, "stderr": run.stderr[-300:], "seconds": seconds}
    return dict(json.loads(lines[-1]), seconds=seconds)


def classify(outcome: dict, case: dict, truth: list[str] | None) -> str:
    """One table cell for a probe outcome."""
    status = outcome["status"]
    if status == "hang":
        return f"HANG (killed after {outcome['seconds']:.0f} s)"
    if status == "crash":
        return f"CRASH ({outcome['how']})"
    if status == "unavailable":
        return "unavailable"
    if status in ("error", "raw-error"):
        msg = outcome["message"].replace("|", "/").replace("\n", " ")
        named = case["path"] in msg
        msg = msg.replace(case["path"] + ": ", "").replace(case["path"], "PATH")
        kind = "clear error" if status == "error" and named else "error without the path"
        return f"{kind}: {msg[:120]}"
    got, want = outcome["digests"], case["indices"]
    if truth is None:
        return f"{len(got)} frames returned (no intact source to compare)"
    if len(got) < len(want):
        return f"PARTIAL: {len(got)} of {len(want)} frames, silently"
    wrong = sum(a != b for a, b in zip(got, truth))
    if wrong:
        return f"WRONG FRAMES: {wrong} of {len(want)} differ from the intact video, silently"
    return "ok: frames identical to the intact video"


def bench_reliability(timeout_s: float, backends: list[str]) -> dict:
    """Every back-end on every corrupt case (child processes); returns case -> mode -> backend -> cell."""
    from pipelines.decoders import read_frames

    tmp = Path(tempfile.mkdtemp(prefix="bench_decoders_"))
    cases = make_corrupt_files(tmp)
    table: dict = {}
    for name, case in cases.items():
        truth = None
        if case["source"] is not None:
            source = case["path"] if case["source"] == "self" else case["source"]
            truth = _digests(read_frames(source, case["indices"], "decord"))
        for interface in ((True, False) if case["checked"] else (True,)):
            mode = "interface" if interface else "bare library"
            for backend in backends:
                outcome = run_probe(backend, case, interface, timeout_s)
                table.setdefault(name, {}).setdefault(mode, {})[backend] = classify(outcome, case, truth)
    return {"cases": table}


# --- report --------------------------------------------------------------------------------------

def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("decord", "av", "opencv-python-headless", "torchcodec"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def report(speed: dict | None, reliability: dict | None, backends: list[str], load_before, repeats: int,
           note: str = "") -> list[str]:
    """Markdown lines: header (machine, versions, load), speed table, reliability table."""
    load = os.getloadavg()
    lines = [f"\n## {DATE} {time.strftime('%H:%M')} — {machine()}" + (f" — {note}" if note else ""),
             f"Versions: {_versions()}. Load average before / after: {load_before[0]:.1f} / {load[0]:.1f} "
             f"(1 min; {os.cpu_count()} cores shared with other engineers' jobs): absolute frames/s are noisy, "
             f"the best of {repeats} repeats (taken round-robin over the back-ends) is kept and ratios are taken in the same run.\n"]
    if speed is not None:
        lines += ["| run | back-end | frames/s | ratio to decord (>1 = faster) | frames identical to decord |",
                  "|---|---|---|---|---|"]
        for run, r in speed["runs"].items():
            what = {"windows": f"sample windows, 2 s at 15 frames/s ({r['requests']} opens, {r['frames']} frames)",
                    "dense": f"same windows at 30/24 frames/s, every frame ({r['requests']} opens, {r['frames']} frames)",
                    "whole": f"whole videos ({r['requests']} opens, {r['frames']} frames)"}[run]
            for label, row in r["rows"].items():
                if row is None:
                    lines.append(f"| {what} | {label} | unavailable | - | - |")
                else:
                    lines.append(f"| {what} | {label} | {row['fps']:.0f} | {row['ratio']:.2f} | {row['identical']} |")
        for name, reason in speed["status"].items():
            if reason is not None:
                lines.append(f"\n{name}: {reason}.")
    if reliability is not None:
        lines += ["", "| corrupt input | mode | " + " | ".join(backends) + " |",
                  "|---|---|" + "---|" * len(backends)]
        for name, modes in reliability["cases"].items():
            for mode, cells in modes.items():
                lines.append(f"| {name} | {mode} | " + " | ".join(cells.get(b, "-") for b in backends) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per back-end and run (best kept)")
    ap.add_argument("--windows", type=int, default=0, help="sample windows to decode (0: all of the sample card)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a reliability probe counts as a hang")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-reliability", action="store_true")
    ap.add_argument("--note", default="", help="text added to the results heading (e.g. how torchcodec was loaded)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to the results file")
    ap.add_argument("--indexing", action="store_true", help="only the PyAV frame index against the packet "
                    "index it replaced (issue 21), on the sample windows and whole videos")
    ap.add_argument("--conformance", action="store_true", help="only the conformance table (file kind x back-end)")
    ap.add_argument("--runs", default="windows,dense,whole", help="runs of --indexing (comma-separated)")
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # child mode of the reliability table
    args = ap.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))), flush=True)
        return 0

    from pipelines.decoders import DECODER_BACKENDS, available_backends

    load_before = os.getloadavg()
    usable = available_backends()
    backends = [b for b in DECODER_BACKENDS if usable[b]]
    if args.indexing or args.conformance:
        lines = []
        if args.conformance:  # first: libvpx-vp9 once failed to open (EINVAL) after the timed runs in one process
            lines += [f"\n## {time.strftime('%Y-%m-%d %H:%M')} — conformance table (issue 21)"] + conformance_table(backends)
        if args.indexing:
            plans = {k: v for k, v in clip_plans(sample_windows(args.windows or None)).items()
                     if k in args.runs.split(",")}
            lines += report_indexing(bench_indexing(plans, args.repeats), args.repeats, load_before)
        record(lines, "results_decoders.md", "Decoder back-ends (`python -m bench.decoders`)", write=not args.no_write)
        return 0
    speed = None if args.skip_speed else bench_speed(clip_plans(sample_windows(args.windows or None)), args.repeats)
    reliability = None if args.skip_reliability else bench_reliability(args.timeout, backends)
    lines = report(speed, reliability, backends, load_before, args.repeats, args.note)
    record(lines, "results_decoders.md", "Decoder back-ends (`python -m bench.decoders`)", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
