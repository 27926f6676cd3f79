"""``python -m zoo.predict MODEL_OR_CHECKPOINT VIDEO_OR_PHOTO...``: predict emotions on videos and photos.

Photos (image files, folders of images, globs; every face of each, one ``image`` line and one
``emotion`` line per face) and folders of frames read as a video (``--frames-as-video``, at
``--fps``) are :mod:`zoo.predict.photos`; the rest of this docstring is about videos.

Two kinds of model:

* **face models** (the pretrained models of :data:`zoo.registry.PRETRAINED`, e.g.
  ``mini-xception-fer2013``; :mod:`zoo.predict.face`): decode sampled frames through the pipeline's
  decoder interface (:class:`pipelines.decoders.FrameDecoder`, PyAV by default, ``--decoder``;
  in chunks, never the whole video; the pipeline's pixel limit and corrupt-frame refusal apply),
  detect faces on the whole frame with a face extractor of :mod:`extractors.registry`
  (``--detector``; BlazeFace back model, 256 px, by default: it finds the small faces of whole
  scenes that the front model misses), track them (:mod:`extractors.face_tracks`), classify
  each tracked face with mini-Xception on ``fer``'s exact crop
  (:func:`zoo.face_preprocess.fer_face_input`) and write one JSON line per face per sampled
  frame in the VTT format, then one summary line per track.
* **zoo checkpoints** (``checkpoint.pt`` of ``python -m zoo.train``; :mod:`zoo.predict.checkpoint`):
  cut the video into the windows of the extraction config the checkpoint was trained on, run
  that config's decode (:func:`pipelines.decode.decode_window`, the pipeline's window plan),
  pose estimation, tracking and representation (the pipeline's own functions), classify each
  window and write per-window and per-video class probabilities.

JSON lines (``--out`` file, else stdout), per video in input order::

    {"type": "video", "video": ..., "model": ..., "detector": ..., "fps": ..., ...,
     "message": null | "no face found ...", "error": null | "..."}
    {"type": "emotion", "class": "happy", "scores": {...}, "frame": 12, "seconds": 0.4,
     "coordinates": [x1, y1, x2, y2], "id": 0, "person": 0, "shot": 0, "confidence": 0.93, "video": ...}
    {"type": "emotion_summary", "video": ..., "person": 0, "tracks": [0, 3], "class": ..., "scores": {mean},
     "frames": n, ...}
    {"type": "window", ...} / {"type": "video_prediction", "class": ..., "scores": {...}, ...}

``id`` is a face track (one run of one person inside one shot); ``person`` is stable over the
whole video (re-identified after an occlusion or a cut, :mod:`extractors.identity`), and the
summary is per person. ``--format vtt`` writes only the VTT form of the face lines,
``{"type": "emotion", "class": ..., "seconds": ..., "object": person}`` (plus ``"video"`` when
there are several videos).

One video runs in-process; several (``--beam`` or more than ``BEAM_MIN_VIDEOS``) go through a
small Apache Beam pipeline (DirectRunner, :mod:`zoo.predict.beam`) that calls the same per-video
function. A video with no
face is a result with a message (exit 0); a missing or corrupt video is an error record naming
it, the other videos still run; the exit status is 1 only when every video failed (or any, with
``--fail-on-error``), 2 for a bad command line, model, device or output path (checked before
any video is read).

This module is the command line; the other modules of the package, one job each, are listed in
:mod:`zoo.predict`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from pipelines import cli
from pipelines.decode import DEFAULT_BACKEND
from pipelines.decoders import DECODER_BACKENDS
from zoo.predict.core import DEFAULT_FPS, Options, PredictError, Sampling, VideoPrediction, predict_one
from zoo.predict.face import DEFAULT_DETECTOR, check_body, check_detector
from zoo.predict.load import load_predictor
from zoo.predict.photos import Input, PhotoPrediction, expand_inputs, predict_stills

#: More videos than this go through the Beam pipeline without ``--beam``.
BEAM_MIN_VIDEOS = 4
#: Decoder back-ends offered on the command line (as ``pipelines.extract --decoder``).
DECODERS = tuple(DECODER_BACKENDS)


def predict_videos(args, options: Options, beam: bool, videos: list[str],
                   predictor=None) -> tuple[list[VideoPrediction], Optional[str]]:
    """``(results in input order, warning note or None)`` of ``videos``: in-process
    (:func:`zoo.predict.core.predict_one`, with ``predictor`` or one loaded from ``args``) or
    through Beam (:func:`zoo.predict.beam.predict_many`).

    Raises:
        PredictError: the model cannot be loaded.
    """
    if beam:
        from zoo.predict.beam import predict_many

        return predict_many(args.model, videos, options, args.device, args.detector, args.shards,
                            args.decoder), None
    predictor = predictor or load_predictor(args.model, args.device, args.detector, args.shards, args.decoder)
    return [predict_one(predictor, v, options) for v in videos], getattr(predictor, "note", None)


def predict_inputs(args, options: Options, inputs: list[Input], beam: bool) -> tuple[list, Optional[str]]:
    """``(results in input order, note)`` of videos (:func:`predict_videos`) and photos, folders of
    frames and unreadable names (:func:`zoo.predict.photos.predict_stills`), one model load.

    Raises:
        PredictError: the model cannot be loaded.
    """
    videos = [i.path for i in inputs if i.kind == "video"]
    stills = [i for i in inputs if i.kind != "video"]
    needs_model = any(i.kind != "error" for i in stills) or (videos and not beam)
    predictor = load_predictor(args.model, args.device, args.detector, args.shards, args.decoder) \
        if needs_model else None
    results, note = predict_videos(args, options, beam, videos, predictor) if videos else ([], None)
    rest = iter(predict_stills(predictor, stills, options, args.fps, with_videos=bool(videos)))
    done = iter(results)
    return [next(done) if i.kind == "video" else next(rest) for i in inputs], note


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m zoo.predict`` (bad values exit 2 with argparse's message)."""
    ap = argparse.ArgumentParser(prog="python -m zoo.predict", description=__doc__.split("\n")[0],
                                 formatter_class=cli.HelpFormatter)
    ap.add_argument("model", help="pretrained face model (python -m zoo.train --list), a Keras .hdf5 "
                                  "mini-Xception file, or a zoo.train checkpoint.pt / run folder")
    ap.add_argument("videos", nargs="+", metavar="INPUT",
                    help="video files, photos (.jpg, .png, ...), folders of photos or quoted globs ('shots/*.jpg')")
    ap.add_argument("--out", default=None, help="JSON-lines output file (default: stdout)")
    ap.add_argument("--format", default="jsonl", choices=("jsonl", "vtt"),
                    help="jsonl: every line; vtt: only {type, class, seconds, object = person} per face")
    ap.add_argument("--overlay", default=None, metavar="MP4",
                    help="write an annotated video (H.264 when FFmpeg has an encoder; several videos: MP4.<video>.mp4); "
                         "photos: a PNG each (OUT.png; several inputs: OUT.<photo>.png)")
    ap.add_argument("--sheet", default=None, metavar="PNG",
                    help="write a contact sheet of the annotated sampled frames (several videos: PNG.<video>.png); "
                         "photos: one sheet of all (PNG, or PNG.photos.png next to videos)")
    ap.add_argument("--every", type=int, default=None, metavar="N", help="predict on every N-th frame")
    ap.add_argument("--fps", type=float, default=None,
                    help=f"predict on F frames per second (default {DEFAULT_FPS:g}); with --frames-as-video, "
                         "the rate of the folders' frames")
    ap.add_argument("--frames-as-video", action="store_true",
                    help="read each folder as one video: its image files in numbered order are its frames, at "
                         "--fps F (every frame predicted, or every N-th with --every)")
    ap.add_argument("--max-frames", type=int, default=None, metavar="N",
                    help="at most N sampled frames per video (default: all)")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    ap.add_argument("--torch-threads", type=int, default=None, metavar="N",
                    help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME",
                    help="face detector of face models, a face extractor of extractors.registry: "
                         "blazeface-back = whole scenes, blazeface-front = close-ups, dbface-*")
    ap.add_argument("--body", nargs="?", const="posenet", default=None, metavar="POSE",
                    help="face models: also run a pose extractor (default posenet) and join each face to the "
                         "pose whose head keypoints it holds: a body box per line, the skeleton on overlays, "
                         "one person id for both")
    ap.add_argument("--decoder", default=DEFAULT_BACKEND, choices=DECODERS,
                    help="video decoder back-end (pipelines.decoders; the same frames from each)")
    ap.add_argument("--shards", default=None, help="extraction folder of a checkpoint, if it has moved")
    ap.add_argument("--beam", action="store_true",
                    help=f"use the Beam pipeline (automatic above {BEAM_MIN_VIDEOS} videos)")
    ap.add_argument("--fail-on-error", action="store_true", help="exit 1 if any video failed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    cli.add_verbose(ap)
    args = ap.parse_args(argv)
    if args.every is not None and args.fps is not None and not args.frames_as_video:
        ap.error("argument --fps: not allowed with argument --every")
    if args.frames_as_video and args.fps is None:
        ap.error("--frames-as-video needs --fps F: the rate the frames were taken at (e.g. --fps 25)")
    if args.every is not None and args.every < 1:
        ap.error("--every must be >= 1")
    if args.fps is not None and args.fps <= 0:
        ap.error("--fps must be > 0")
    if args.max_frames is not None and args.max_frames < 1:
        ap.error("--max-frames must be >= 1")
    if args.torch_threads is not None and args.torch_threads < 1:
        ap.error("--torch-threads must be >= 1")
    return args


def _describe(result: VideoPrediction) -> list[str]:
    """The report lines of one video (counts, per-track or per-video classes, notes, errors)."""
    h = result.header
    if result.error and not result.records:
        return [f"  {result.video}: ERROR {result.error}"]
    lines = []
    if "detector" in h:
        lines.append(f"  {result.video}: {h['sampled_frames']} of {h['num_frames']} frames sampled, "
                     f"{_count(h['faces'], 'face')}, {_count(h['tracks'], 'track')}, "
                     f"{_count(h.get('persons', len(result.summary)), 'person')}"
                     + (f", {_count(h['shots'], 'shot')}" if "shots" in h else ""))
        for s in result.summary:
            lines.append(f"    person {s['person']}: {s['class']} ({s['scores'][s['class']]:.2f} mean), "
                         f"{_count(s['frames'], 'frame')}, frames {s['first_frame']}-{s['last_frame']}")
    else:
        lines.append(f"  {result.video}: {_count(h['windows'], 'window')} of {h['window_s']:g} s")
        for s in result.summary:
            top = sorted(s["scores"].items(), key=lambda kv: -kv[1])
            who = f"person {s['person']}: " if "person" in s else ""  # gait models: one summary per walker
            lines.append("    " + who + ", ".join(f"{k} {v:.2f}" for k, v in top))
    if result.message:
        lines.append(f"    {result.message}")
    if result.error:
        lines.append(f"    ERROR (partial result) {result.error}")
    for key in ("overlay", "sheet"):
        if key in h:
            lines.append(f"    {key}: {h[key]}")
    if h.get("sheet_left_out"):
        lines.append(f"    sheet leaves out frames {', '.join(map(str, h['sheet_left_out']))}")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def check_outputs(args) -> Optional[str]:
    """The first problem with ``--out`` / ``--overlay`` / ``--sheet`` (None when all can be written)."""
    for flag in ("out", "overlay", "sheet"):
        problem = cli.check_writable_file(getattr(args, flag), f"--{flag}")
        if problem:
            return problem
    return None


def main(argv=None) -> int:
    """``python -m zoo.predict``: exit 0, 1 (every video failed, or any with --fail-on-error) or 2."""
    args = parse_args(argv)
    cli.quiet_library_logs(args.verbose)
    from pipelines.decoders import backend_status

    problem = (cli.check_device(args.device) or check_outputs(args)
               or (f"--decoder {args.decoder}: {backend_status()[args.decoder]}"
                   if backend_status()[args.decoder] else None)
               or check_detector(args.detector) or check_body(args.body))
    if problem:
        return cli.fail(problem)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    sampling = Sampling(every=args.every, fps=None if args.every else (args.fps or DEFAULT_FPS),
                        max_frames=args.max_frames)
    inputs = expand_inputs(args.videos, args.frames_as_video)
    options = Options(sampling, args.overlay, args.sheet, not args.no_progress, len(inputs) > 1, body=args.body)
    videos = sum(i.kind == "video" for i in inputs)
    use_beam = videos > 0 and (args.beam or videos > BEAM_MIN_VIDEOS)
    try:
        results, note = predict_inputs(args, options, inputs, use_beam)
    except PredictError as exc:
        return cli.fail(str(exc))
    except KeyboardInterrupt:
        return cli.interrupted()
    vtt = args.format == "vtt"
    lines = [json.dumps(line) for r in results
             for line in (r.vtt_lines(len(results) > 1) if vtt and hasattr(r, "vtt_lines") else r.lines())]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("".join(line + "\n" for line in lines))
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))
    report = sys.stdout if args.out else sys.stderr
    head = next((r.header for r in results if {"sampling", "detector"} <= set(r.header)), None) or next(
        (r.header for r in results if "detector" in r.header), {})
    detector = f" (detector {head['detector']}" + (f", {head['sampling']})" if "sampling" in head else ")") \
        if head else ""
    print(f"zoo.predict {args.model}" + detector
          + f", device {args.device}" + (f", decoder {args.decoder}" if videos else "")
          + (", Beam DirectRunner" if use_beam else ""),
          file=report)
    if note:
        print(f"  warning: {note}", file=report)
    for r in results:
        print("\n".join(r.describe() if isinstance(r, PhotoPrediction) else _describe(r)), file=report)
    failed = [r for r in results if r.error]
    if args.out:
        print(f"wrote {_count(len(lines), 'line')} to {args.out}", file=report)
    if failed:
        noun = "video" if videos == len(results) else "input"
        print(f"{len(failed)} of {_count(len(results), noun)} failed", file=report)
    if failed and (len(failed) == len(results) or args.fail_on_error):
        return 1
    return 0
