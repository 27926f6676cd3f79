"""The Apache Beam path of ``python -m zoo.predict``: several videos, one element each.

Imported only when Beam is used (``--beam`` or more than :data:`zoo.predict.BEAM_MIN_VIDEOS`
videos), so that ``zoo.predict --help`` and single-video runs never import Beam. The DoFn is a
module-level class holding plain values only (model name, device, options as a dict): Beam
pickles it by reference, never the ``__main__`` module of ``python -m zoo.predict`` (pickling a
DoFn defined inside a function of ``__main__`` dragged torch's ``_Classes`` along and failed).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from zoo import predict as P


class PredictVideos(beam.DoFn):
    """``(position, video)`` -> writes ``<tmp>/<position>.json`` (a :class:`zoo.predict.VideoPrediction`)
    with :func:`zoo.predict.predict_one`; the predictor is loaded once per DoFn instance in ``setup``.

    Args:
        model, device, detector, shards, decoder: as :func:`zoo.predict.load_predictor`.
        options: :meth:`zoo.predict.Options.to_dict`.
        tmp: folder the results are written to.
    """

    def __init__(self, model: str, device: str, detector: str, shards: Optional[str], decoder: str,
                 options: dict, tmp: str):
        super().__init__()
        self.model, self.device, self.detector, self.shards, self.decoder = model, device, detector, shards, decoder
        self.options, self.tmp = dict(options), str(tmp)
        self.predictor = None

    def setup(self):
        self.predictor = P.load_predictor(self.model, self.device, self.detector, self.shards, self.decoder)

    def process(self, element):
        pos, video = element
        result = P.predict_one(self.predictor, video, P.Options.from_dict(self.options))
        Path(self.tmp, f"{pos}.json").write_text(result.to_json())
        yield pos


def predict_many(model: str, videos: Sequence[str], options, device: str = "cpu",
                 detector: str = P.DEFAULT_DETECTOR, shards: Optional[str] = None,
                 decoder: str = P.DEFAULT_BACKEND) -> list:
    """Run :class:`PredictVideos` over ``videos`` on the DirectRunner; results in input order
    (a video whose element produced nothing gets an error record)."""
    with tempfile.TemporaryDirectory(prefix="zoo-predict-") as tmp:
        fn = PredictVideos(model, device, detector, shards, decoder, options.to_dict(), tmp)
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            (p | "Videos" >> beam.Create(list(enumerate(videos))) | "Reshuffle" >> beam.Reshuffle()
             | "Predict" >> beam.ParDo(fn))
        out = []
        for pos, video in enumerate(videos):
            f = Path(tmp, f"{pos}.json")
            out.append(P.VideoPrediction.from_json(f.read_text()) if f.is_file()
                       else P.VideoPrediction(video, error=f"{video}: no result came back from the Beam pipeline"))
        return out
