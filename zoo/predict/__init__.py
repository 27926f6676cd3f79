"""``python -m zoo.predict MODEL_OR_CHECKPOINT VIDEO_OR_PHOTO...``: emotions of the faces and walkers
in videos and photos (the command line and its JSON lines: :mod:`zoo.predict.cli`).

Modules, one job each, listed from the top of the import order down (no module imports one that
imports it back; ``core`` imports none of the others):

* :mod:`zoo.predict.cli`: the command line (arguments, output checks, JSON lines, the report);
* :mod:`zoo.predict.beam`: several videos through an Apache Beam pipeline (DirectRunner), one
  element each; imported only when Beam is used;
* :mod:`zoo.predict.photos`: photos, folders and globs of images, folders of frames read as a video;
* :mod:`zoo.predict.load`: a model name (:func:`zoo.registry.resolve`) or file -> a predictor;
* :mod:`zoo.predict.face`: a pretrained face model on detected faces, with tracks and persons;
* :mod:`zoo.predict.checkpoint`: a ``zoo.train`` checkpoint on the pipeline's windows;
* :mod:`zoo.predict.gait`: walkers: BlazePose 3-D joints -> ProxEmo gait windows -> VS-GCNN;
* :mod:`zoo.predict.core`: the shared core: options, results, decoding in chunks, one video.

The names below are importable from ``zoo.predict`` itself (``from zoo.predict import main``).
Each is loaded on first use (PEP 562), so importing one module of the package, or
``zoo.predict`` alone, never imports the others, torch or Beam.
"""
from __future__ import annotations

import importlib

#: Public name -> the module of this package that defines it.
PUBLIC = {
    "main": "cli", "parse_args": "cli", "BEAM_MIN_VIDEOS": "cli",
    "DEFAULT_FPS": "core", "Options": "core", "PredictError": "core", "Sampling": "core",
    "VideoPrediction": "core", "predict_one": "core",
    "load_predictor": "load",
    "DEFAULT_DETECTOR": "face", "FaceDetector": "face", "FacePredictor": "face",
    "CheckpointPredictor": "checkpoint",
    "GaitPredictor": "gait",
    "PhotoPrediction": "photos",
    "predict_many": "beam",
}

__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    """The public ``name`` from its module (:data:`PUBLIC`); AttributeError for any other name."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{PUBLIC[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
