"""Identity bench: track and person ids on clips cut together from clips of different people.

``python -m bench.identity [--no-write]``

Clips are built by concatenating frames of shipped clips (``samples/videos``) and, when present,
shared ones (``../shared/data/videos``) with PyAV, so the truth is known by construction:
detections from different source clips are different people. Scenarios: a hard cut ``A | B``,
``A - B - A`` (A's person comes back), a fade ``A ~ B`` through black. Every clip is run through
the face detector of ``zoo.predict`` (BlazeFace back) and, in the same run, through

- BEFORE: the old greedy IoU tracker (:class:`extractors.face_tracks.FaceTracker`), id = track;
- AFTER: :class:`zoo.predict.face.FaceIdentity` (shots + appearance + PersonTracker), id = person.

Figures per scenario: ids, identity purity (share of each id's detections from its majority
source clip; the minimum over ids and the detection-weighted mean), cross-cut errors (ids holding
detections of two source clips), fragmentation (ids per source clip whose footage shows one
person), whether A's person id comes back, shots found vs cuts made, and the cost per frame of
shots and of appearance + tracking against the detector. ``group_event_smiling`` alone gives
ids against its 4-5 visible faces. Results go to ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from bench.common import REPO, machine, record

#: The shared test-only clips (``../shared`` beside the checkout, or ``$AFFECTZOO_SHARED``).
SHARED_VIDEOS = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared")) / "data" / "videos"
SIZE = (640, 360)   # width, height of the built clips


@dataclass(frozen=True)
class Segment:
    """Frames ``start, start + step, ... < stop`` of ``path`` (0-based decode order)."""

    path: Path
    start: int
    stop: int
    step: int = 6


def read_segment(seg: Segment, size=SIZE) -> list[np.ndarray]:
    """uint8 [H, W, 3] RGB frames of ``seg`` resized to ``size`` (PyAV decode)."""
    import av

    out = []
    with av.open(str(seg.path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= seg.stop:
                break
            if i >= seg.start and (i - seg.start) % seg.step == 0:
                out.append(cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA))
    if not out:
        raise ValueError(f"{seg.path}: no frame in [{seg.start}, {seg.stop})")
    return out


def build_frames(segments: Sequence[Segment], fade: int = 0,
                 size=SIZE) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Frames of the segments one after the other, ``int32 [T]`` segment index of each frame and
    ``int32 [T]`` truth: the index of its source clip among the distinct clips (one clip = its people).

    With ``fade`` > 0 each joint is a fade: the last ``fade`` frames of a segment fade to black and
    the first ``fade`` of the next fade in (linear ramps)."""
    frames, source, clips = [], [], []
    for k, seg in enumerate(segments):
        part = read_segment(seg, size)
        if fade and k < len(segments) - 1:   # fade out: the last frame black
            for i in range(fade):
                part[-fade + i] = (part[-fade + i] * (1 - (i + 1) / fade)).astype(np.uint8)
        if fade and k > 0:                   # fade in: the first frame black
            for i in range(fade):
                part[i] = (part[i] * (i / fade)).astype(np.uint8)
        frames += part
        source += [k] * len(part)
        clips += [sorted({str(s.path) for s in segments}).index(str(seg.path))] * len(part)
    return frames, np.asarray(source, np.int32), np.asarray(clips, np.int32)


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: int = 5) -> Path:
    """Encode RGB frames as an MPEG-4 Part 2 ``.mp4`` with PyAV (high bit rate, every frame a key frame)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate, stream.gop_size = 8_000_000, 1
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        container.mux(stream.encode())
    return path


def scenarios(shared: bool) -> dict[str, tuple[list[Segment], int]]:
    """Name -> (segments, fade frames). ``T`` = the single face of tears_of_steel 70-180,
    ``G`` = group_event_smiling (several people)."""
    sv = REPO / "samples" / "videos"
    tears, group = sv / "tears_of_steel_excerpt.mp4", sv / "group_event_smiling.mp4"
    out = {
        "cut G, T": ([Segment(group, 0, 48), Segment(tears, 70, 130)], 0),
        "A-B-A T, G, T": ([Segment(tears, 70, 124), Segment(group, 0, 60), Segment(tears, 124, 180)], 0),
        "fade G, T": ([Segment(group, 0, 60), Segment(tears, 70, 136)], 4),
    }
    if shared:
        close, room, ntu = (SHARED_VIDEOS / n for n in ("face_closeup_makeup.avi", "two_people_room.mp4",
                                                         "ntu_single_person.avi"))
        out["A-B-A close, room, close"] = ([Segment(close, 0, 80, 4), Segment(room, 0, 72, 3),
                                              Segment(close, 80, 164, 4)], 0)
        out["A-B-A close, ntu, close"] = ([Segment(close, 0, 80, 4), Segment(ntu, 0, 103, 4),
                                           Segment(close, 84, 164, 4)], 0)
        # a face of the room and the first hiker's face sit at one place (IoU 0.44 across the cut)
        out["cut room, H (faces at one place)"] = ([Segment(room, 0, 13, 2),
                                                     Segment(REPO / "samples/videos/hikers_walking.mp4", 0, 36, 6)], 0)
    return out


def run_ids(frames, dets, identity: bool) -> tuple[list[np.ndarray], np.ndarray, float, float]:
    """Per-frame ids (person ids AFTER, track ids BEFORE), shots, and seconds spent in shot
    detection and in appearance + tracking."""
    from extractors.appearance import appearance_embeddings
    from extractors.face_tracks import FaceTracker
    from extractors.identity import PersonTracker
    from extractors.shots import ShotDetector

    ids, shots, t_shots, t_track = [], [], 0.0, 0.0
    if not identity:
        tracker = FaceTracker()
        start = time.perf_counter()
        ids = [tracker.update(d) for d in dets]
        return ids, np.zeros(len(frames), np.int32), 0.0, time.perf_counter() - start
    detector, tracker = ShotDetector(), PersonTracker("face")
    for f, d in zip(frames, dets):
        t0 = time.perf_counter()
        shots.append(detector.update(f))
        t1 = time.perf_counter()
        emb = appearance_embeddings(f, d[:, :4])
        ids.append(tracker.update(shots[-1], d[:, :4], d[:, 4], emb)[1])
        t_shots, t_track = t_shots + t1 - t0, t_track + time.perf_counter() - t1
    return ids, np.asarray(shots, np.int32), t_shots, t_track


def id_figures(ids: list[np.ndarray], source: np.ndarray) -> dict:
    """ids, purity (min, weighted mean), cross-cut errors, ids per source clip (``source``: truth)."""
    pairs = [(int(i), int(s)) for frame_ids, s in zip(ids, source) for i in frame_ids if i >= 0]
    by_id: dict[int, list[int]] = {}
    for i, s in pairs:
        by_id.setdefault(i, []).append(s)
    majority = {i: np.bincount(v).max() for i, v in by_id.items()}
    purity = [majority[i] / len(v) for i, v in by_id.items()]
    per_source = {s: len({i for i, si in pairs if si == s}) for s in sorted(set(source.tolist()))}
    return {"ids": len(by_id), "purity_min": min(purity, default=1.0),
            "purity_mean": sum(majority.values()) / max(len(pairs), 1),
            "cross": sum(len(set(v)) > 1 for v in by_id.values()), "per_source": per_source, "by_id": by_id}


def comes_back(ids: list[np.ndarray], source: np.ndarray) -> Optional[bool]:
    """A-B-A: does an id of the first segment's detections appear again in the third?"""
    if source.max() < 2:
        return None
    first = {int(i) for f, s in zip(ids, source) if s == 0 for i in f}
    last = {int(i) for f, s in zip(ids, source) if s == 2 for i in f}
    return bool(first & last)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to bench/RESULTS.md")
    args = ap.parse_args(argv)
    from zoo.predict.face import FaceDetector

    detector = FaceDetector("blazeface-back")
    shared = SHARED_VIDEOS.is_dir()
    lines = [f"\n## {time.strftime('%Y-%m-%d')}: identity across shots (issue 20), card = CPU", "",
             f"`python -m bench.identity` on {machine()}; BEFORE = greedy IoU tracks "
             "(extractors.face_tracks), AFTER = persons of zoo.predict.face.FaceIdentity (shots + HSV "
             "part-histogram appearance + Kalman/Hungarian/ByteTrack PersonTracker); BlazeFace back "
             f"detector; clips {SIZE[0]}x{SIZE[1]} built with PyAV; shared clips "
             f"{'used' if shared else 'absent (skipped)'}.", "",
             "| scenario | frames | cuts made / shots found | ids before / after | purity min before / after "
             "| cross-cut errors before / after | ids per source before / after | A's id back before / after |",
             "|---|---|---|---|---|---|---|---|"]
    cost = {"detector": 0.0, "shots": 0.0, "track": 0.0, "frames": 0}
    cases = dict(scenarios(shared))
    cases["group_event_smiling (4-5 visible)"] = ([Segment(REPO / "samples/videos/group_event_smiling.mp4", 0, 90)], 0)
    for name, (segments, fade) in cases.items():
        frames, source, truth = build_frames(segments, fade)
        start = time.perf_counter()
        dets = detector.detect(frames)
        cost["detector"] += time.perf_counter() - start
        before_ids = run_ids(frames, dets, identity=False)[0]
        after_ids, shots, t_shots, t_track = run_ids(frames, dets, identity=True)
        cost["shots"] += t_shots
        cost["track"] += t_track
        cost["frames"] += len(frames)
        b, a = id_figures(before_ids, truth), id_figures(after_ids, truth)
        cuts = int((np.diff(source) != 0).sum())
        back = (comes_back(before_ids, source), comes_back(after_ids, source))
        lines.append(f"| {name} | {len(frames)} | {cuts} / {int(shots[-1])} | {b['ids']} / {a['ids']} "
                     f"| {b['purity_min']:.2f} / {a['purity_min']:.2f} | {b['cross']} / {a['cross']} "
                     f"| {list(b['per_source'].values())} / {list(a['per_source'].values())} "
                     f"| {'-' if back[0] is None else ('yes' if back[0] else 'no')} / "
                     f"{'-' if back[1] is None else ('yes' if back[1] else 'no')} |")
    n = cost["frames"]
    lines += ["", f"Cost per sampled frame ({n} frames): detector {cost['detector'] / n * 1e3:.1f} ms, shots "
              f"{cost['shots'] / n * 1e3:.2f} ms ({cost['shots'] / cost['detector']:.1%} of the detector), "
              f"appearance + tracking {cost['track'] / n * 1e3:.2f} ms "
              f"({cost['track'] / cost['detector']:.1%}); together "
              f"{(cost['shots'] + cost['track']) / cost['detector']:.1%} of the detector (target <= 10 %)."]
    record(lines, "RESULTS.md", "Benchmark results", write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
