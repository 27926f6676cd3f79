"""Loading of ``python -m zoo.predict``: a model name or file -> a predictor.

Every model name resolves through the zoo's one model table (:func:`zoo.registry.resolve`): a
pretrained model (:data:`zoo.registry.PRETRAINED`, e.g. ``mini-xception-fer2013``) gives a
:class:`zoo.predict.face.FacePredictor`; a trainable zoo model is told to train first. Files: a
Keras ``.hdf5`` mini-Xception gives a face predictor, a ``zoo.train`` checkpoint (or its run
folder) a :class:`zoo.predict.checkpoint.CheckpointPredictor`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pipelines import cli
from pipelines.decode import DEFAULT_BACKEND
from zoo.predict.checkpoint import CheckpointPredictor
from zoo.predict.core import PredictError
from zoo.predict.face import DEFAULT_DETECTOR, FacePredictor

#: File suffixes of face-model weights files (Keras HDF5 mini-Xception).
FACE_WEIGHTS_SUFFIXES = (".hdf5", ".h5")


def looks_like_path(model: str) -> bool:
    """Whether ``model`` reads as a file path rather than a model name."""
    return any(sep in model for sep in ("/", "\\")) or Path(model).suffix.lower() in (".pt",) + FACE_WEIGHTS_SUFFIXES


def unknown_model_message(model: str) -> str:
    """Why ``model`` names no usable model and no file: a missing file, a zoo.train model name
    (train it first: zoo.predict takes the checkpoint it writes), or an unknown name with
    :func:`zoo.registry.resolve`'s "did you mean" hint."""
    if looks_like_path(model):
        return f"{model}: no such checkpoint or model file"
    from zoo import registry

    try:
        registry.resolve(model, listing="face models: " + ", ".join(registry.PRETRAINED)
                         + ", or a zoo.train checkpoint.pt / run folder")
    except registry.UnknownModelError as exc:
        return str(exc)
    return (f"{model!r} is a zoo.train model: train it first (python -m zoo.train {model}), then predict with "
            f"its checkpoint (python -m zoo.predict runs/{model}/latest/checkpoint.pt VIDEO)")


def pretrained_name(model: str) -> Optional[str]:
    """``model`` when it names a :data:`zoo.registry.PRETRAINED` model, else None."""
    from zoo import registry

    return model if model in registry.PRETRAINED else None


def load_predictor(model: str, device: str = "cpu", detector: str = DEFAULT_DETECTOR,
                   shards: Optional[str] = None, decoder: str = DEFAULT_BACKEND):
    """A :class:`FacePredictor` or :class:`CheckpointPredictor` for a model name or file.

    Args:
        model: a pretrained model name (``mini-xception-fer2013``); a Keras ``.hdf5``
            mini-Xception file; a ``checkpoint.pt`` of ``zoo.train`` or its run folder.
        detector: face detector of face models (:func:`extractors.registry.resolve`, role face).
        shards: the extraction folder of a checkpoint, when its recorded one has moved.
        decoder: decoder back-end (:data:`pipelines.decoders.DECODER_BACKENDS`).

    Raises:
        PredictError: unknown name / missing file / unusable checkpoint / unknown detector /
            CUDA asked for but absent.
    """
    problem = cli.check_device(device)
    if problem:
        raise PredictError(problem)
    path = Path(model)
    from zoo.predict.gait import is_gait_checkpoint, load_gait_predictor
    from zoo.registry import PRETRAINED

    if model in PRETRAINED and PRETRAINED[model].input == "walking-video" \
            or path.exists() and is_gait_checkpoint(path):
        return load_gait_predictor(model, device, decoder)
    if pretrained_name(model):
        return FacePredictor(device, detector, decoder=decoder, model=model)
    if path.suffix.lower() in FACE_WEIGHTS_SUFFIXES and path.is_file():
        return FacePredictor(device, detector, weights=str(path), decoder=decoder)
    if path.exists():
        return CheckpointPredictor(path, device, shards, decoder=decoder)
    raise PredictError(unknown_model_message(model))
