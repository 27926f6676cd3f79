"""Reader for the Friends episodes of the VTT project: episode videos + per-episode visual JSON.

Annotation format as the seed parses it (``JanghoonChoi/VTT_vid_emotion@e142d7d``
``src/parse_Friends.py``, ``parse_friends_new.ipynb``; seed spec 4.2): a file
``s01_epXX_tag2_visual_Final_180809.json`` per episode with ``visual_results``: a list of
periods with ``period_num``, ``start_time`` / ``end_time`` (``HH:MM:SS;FF`` at 24 fps),
``image`` (the annotated frame: ``Fr_<n>.jpg`` or ``<letter><n>.jpg``, n = 0-based frame number
of the episode video) and ``person``: ``[{<character>: [{"emotion": ..., "face_rect":
{"min_x", "min_y", "max_x", "max_y"}}]}]``. Coordinates may be strings and hold a stray second
number after two spaces (the seed keeps the first). Entries whose emotion or rectangle is
``none`` and empty rectangles are skipped, as the seed does.

One sample per annotated face: the frames ``n - before .. n + after`` (seed window of 4:
``p-2, p-1, p, p+1``) of the episode video, the face rectangle as ``box``. The episode video
is ``<videos>/<sXX_epYY>.<ext>`` (our naming; the seed numbered the sorted ``*.mkv`` files).
Card ``[splits] val_episodes`` (seed: S01 episodes 1-10) go to ``val``, the rest to ``train``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from pipelines.readers.base import confine, fail, make_sample, require, resolve_code
from pipelines.samples import Sample

EPISODE = re.compile(r"(s\d+_ep\d+)", re.IGNORECASE)


def timecode_frames(hmsf: str, fps: int = 24) -> int:
    """Frame number of a ``HH:MM:SS;FF`` timecode at ``fps`` (seed ``hmsf_to_fnum``).

    Raises:
        ValueError: malformed timecode.
    """
    hms, frames = hmsf.split(";")
    h, m, s = (int(v) for v in hms.split(":"))
    return (h * 3600 + m * 60 + s) * fps + int(frames)


def frame_of_image(name: str) -> int:
    """Frame number from the ``image`` field: ``Fr_123.jpg`` -> 123, ``f00123.jpg`` -> 123.

    Raises:
        ValueError: no number where the seed expects it.
    """
    stem = name.split(".")[0]
    return int(stem.split("_")[1]) if stem.startswith("Fr") else int(stem[1:])


def coordinate(value) -> int:
    """One rectangle coordinate: an int, or a string whose first number counts (seed rule).

    Raises:
        ValueError: not a number (e.g. ``none``).
    """
    return int(str(value).split("  ")[0].strip())


def _episode_video(videos: Path, episode: str, extensions: list[str], root: Path, problems, allow: bool,
                   source: str) -> Path | None | bool:
    """The episode's video; False when a candidate was refused (reported by ``confine``)."""
    for ext in extensions:
        path = videos / f"{episode}{ext}"
        if not (path.is_file() or path.is_symlink()):
            continue
        if confine(root, path, problems, allow_outside_root=allow, source=source) is None:
            return False
        if path.is_file():
            return path
    return None


def _faces(period: dict) -> Iterator[tuple[str, str, Any]]:
    for people in period.get("person", []) or []:
        for char, entries in (people or {}).items():
            for entry in entries or []:
                yield char, str(entry.get("emotion", "none")).strip().lower(), entry.get("face_rect") or {}


def read_vtt_json(card: dict[str, Any], root: Path, problems: list | None = None, *,
                  allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one video sample per annotated face of every episode annotation file.

    Problems: no annotation file, JSON that does not parse or lacks ``visual_results``, an
    episode without its video, a period without a usable ``image`` frame number, an emotion the
    card does not know; annotation files and videos outside the root, broken or looping links
    (:func:`pipelines.readers.base.confine`; links out allowed with ``allow_outside_root``).

    Raises:
        CardError: ``[layout]`` lacks ``annotations`` or ``videos``.
        CorpusError: a problem while ``problems`` is None.
    """
    pattern = require(card, "layout", "annotations")
    keep = {"allow_outside_root": allow_outside_root}
    videos = confine(root, Path(root) / require(card, "layout", "videos"), problems,
                     source=f"{card['card_path']} [layout] videos", **keep)
    if videos is None:
        return
    extensions = card["layout"].get("extensions", [".mkv", ".mp4", ".avi"])
    before = int(card.get("windows", {}).get("frames_before", 2))
    after = int(card.get("windows", {}).get("frames_after", 1))
    val_episodes = {e.lower() for e in card.get("splits", {}).get("val_episodes", [])}
    try:
        files = sorted(Path(root).glob(pattern))
    except (ValueError, NotImplementedError) as exc:  # an absolute pattern
        fail(problems, "outside_root", pattern, f"annotation pattern cannot be used under the root: {exc}")
        return
    if not files:
        fail(problems, "missing_annotation", Path(root) / pattern, "no annotation file matches")
        return
    for ann in files:
        if confine(root, ann, problems, source=f"{card['card_path']} [layout] annotations", **keep) is None:
            continue
        match = EPISODE.search(ann.name)
        if not match:
            fail(problems, "unreadable_annotation", ann, "file name names no episode (sNN_epNN)")
            continue
        episode = match.group(1).lower()
        try:
            periods = json.loads(ann.read_text(encoding="utf-8"))["visual_results"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            fail(problems, "unreadable_annotation", ann, f"cannot read visual_results: {type(exc).__name__}: {exc}")
            continue
        video = _episode_video(videos, episode, extensions, root, problems, allow_outside_root, f"episode of {ann.name}")
        if video is False:
            continue
        if video is None:
            fail(problems, "missing_file", videos / f"{episode}{extensions[0]}", f"video of episode {episode} is missing "
                 f"(annotated in {ann.name})")
            continue
        split = "val" if episode in val_episodes else "train"
        for n, period in enumerate(periods):
            try:
                frame = frame_of_image(str(period["image"]))
            except (KeyError, ValueError, IndexError, TypeError):
                fail(problems, "unreadable_annotation", ann, f"visual_results[{n}]: no frame number in image "
                     f"{period.get('image') if isinstance(period, dict) else period!r}")
                continue
            for char, emotion, rect in _faces(period):
                if emotion == "none":
                    continue
                try:
                    box = tuple(float(coordinate(rect[k])) for k in ("min_x", "min_y", "max_x", "max_y"))
                except (KeyError, ValueError):
                    continue  # 'none' rectangles are skipped by the seed
                if box[0] >= box[2] or box[1] >= box[3]:
                    continue
                _, index = resolve_code(card, emotion)
                sid_suffix = f"#{frame:06d}-{char}"
                if index is None or index < 0:
                    if index is None:
                        continue
                    fail(problems, "unknown_label", ann, f"visual_results[{n}] {char}: emotion {emotion!r} is not "
                         f"one of {sorted(card['labels'].get('codes', {}))}", f"{card['corpus']['name']}/"
                         f"{video.name}{sid_suffix}")
                    continue
                # clamped at the first frame (the window keeps its length; face_windows.window_frames)
                indices = tuple(max(i, 0) for i in range(frame - before, frame + after + 1))
                yield make_sample(card, root, video, split, index, suffix=sid_suffix, box=box, frame_indices=indices,
                                  start_s=indices[0] / 24.0,
                                  meta={"episode": episode, "period": period.get("period_num"), "character": char,
                                        "frame": frame, "annotation": ann.name})
