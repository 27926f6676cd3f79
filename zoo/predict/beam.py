"""The Apache Beam path of ``python -m zoo.predict``: several videos, one element each.

Imported only when Beam is used (``--beam`` or more than :data:`zoo.predict.cli.BEAM_MIN_VIDEOS` videos), so
that ``zoo.predict --help`` and single-video runs never import Beam. The DoFn is a module-level
class holding plain values only (model name, device, options as a dict): Beam pickles it by
reference, never the ``__main__`` module of ``python -m zoo.predict`` (pickling a DoFn defined
inside a function of ``__main__`` dragged torch's ``_Classes`` along and failed).

Imports the shared core (:mod:`zoo.predict.core`) and the loading (:mod:`zoo.predict.load`);
neither imports this module.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.decode import DEFAULT_BACKEND
from zoo.predict.core import Options, VideoPrediction, predict_one
from zoo.predict.face import DEFAULT_DETECTOR
from zoo.predict.load import load_predictor

class PredictVideos(beam.DoFn):
    """``(position, video)`` -> writes ``<tmp>/<position>.json`` (a :class:`zoo.predict.core.VideoPrediction`)
    with :func:`zoo.predict.core.predict_one`; the predictor is loaded once per DoFn instance in ``setup``.

    Args:
        model, device, detector, shards, decoder: as :func:`zoo.predict.load.load_predictor`.
        options: :meth:`zoo.predict.core.Options.to_dict`.
        tmp: folder the results are written to.
    """

    def __init__(self, model: str, device: str, detector: str, shards: Optional[str], decoder: str,
                 options: dict, tmp: str):
        super().__init__()
        self.model, self.device, self.detector, self.shards, self.decoder = model, device, detector, shards, decoder
        self.options, self.tmp = dict(options), str(tmp)
        self.predictor = None

    def setup(self):
        """Load the predictor once per DoFn instance."""
        self.predictor = load_predictor(self.model, self.device, self.detector, self.shards, self.decoder)

    def process(self, element):
        """Predict one ``(position, video)`` element and write its result file; yields the position."""
        pos, video = element
        result = predict_one(self.predictor, video, Options.from_dict(self.options))
        Path(self.tmp, f"{pos}.json").write_text(result.to_json())
        yield pos


def predict_many(model: str, videos: Sequence[str], options: Options, device: str = "cpu",
                 detector: str = DEFAULT_DETECTOR, shards: Optional[str] = None,
                 decoder: str = DEFAULT_BACKEND) -> list[VideoPrediction]:
    """Predict several videos through an Apache Beam pipeline (DirectRunner), one element per
    video, with :func:`zoo.predict.core.predict_one`. Results come back in input order (a video
    whose element produced nothing gets an error record).

    Raises:
        PredictError: the model cannot be loaded (checked once in the driver first, before
            Beam starts).
    """
    load_predictor(model, device, detector, shards, decoder)  # fail fast on a bad model, before Beam starts
    with tempfile.TemporaryDirectory(prefix="zoo-predict-") as tmp:
        fn = PredictVideos(model, device, detector, shards, decoder, options.to_dict(), tmp)
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            (p | "Videos" >> beam.Create(list(enumerate(videos))) | "Reshuffle" >> beam.Reshuffle()
             | "Predict" >> beam.ParDo(fn))
        return [_result(tmp, pos, video) for pos, video in enumerate(videos)]


def _result(tmp: str, pos: int, video: str) -> VideoPrediction:
    f = Path(tmp, f"{pos}.json")
    if f.is_file():
        return VideoPrediction.from_json(f.read_text())
    return VideoPrediction(video, error=f"{video}: no result came back from the Beam pipeline")
