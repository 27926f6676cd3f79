"""Decode the samples of a shard ahead of inference, in one or more isolated decoder processes.

Each of ``workers`` :class:`pipelines.isolated_decoder.IsolatedDecoder` children decodes every
``workers``-th sample of the list (its own ``decode_many`` stream, so it starts on its next file
at once) from a feeding thread; the consumer receives whole samples, in the list's order, as
per-sample chunks ``uint8 [T, H, W, 3]``. One child is enough on CPU (decoding overlaps with
inference on the other core); on a GPU machine, several children keep the model fed.

Memory is bounded: each feeding thread holds at most :data:`QUEUED` decoded samples beyond the
one the consumer works on (the children add their own ``AHEAD_CHUNKS``).
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from pipelines.decode import VideoPlan
from pipelines.isolated_decoder import DECODER_TIMEOUT_S, DecodeRequest, IsolatedDecoder

#: Decoded samples a feeding thread may hold ahead of the consumer.
QUEUED = 2


@dataclass
class DecodedSample:
    """One sample's frames: ``frames uint8 [T, H, W, 3]`` RGB for the plan's T positions."""

    plan: VideoPlan
    frames: np.ndarray


def request_of(sample, window_s: float, sample_fps: float) -> DecodeRequest:
    """The decode request of a video sample: its explicit frames (Friends: the frames around an
    annotation), else its window ``(start_s, window_s, sample_fps)``."""
    if sample.frame_indices:
        return DecodeRequest(sample.uri, frame_indices=tuple(sample.frame_indices))
    return DecodeRequest(sample.uri, window=(sample.start_s, window_s, sample_fps))


class DecodeAhead:
    """A fixed set of isolated decoder children reused across shards (one per Beam DoFn).

    Args:
        workers: decoder processes (>= 1).
        timeout_s: seconds a child may go without answering before it is killed.
        backend: decoder back-end (:data:`pipelines.decoders.DECODER_BACKENDS`).
    """

    def __init__(self, workers: int = 1, timeout_s: float = DECODER_TIMEOUT_S, backend: str = "pyav"):
        if workers < 1:
            raise ValueError(f"decode workers must be >= 1, got {workers}")
        self.decoders = [IsolatedDecoder(timeout_s=timeout_s, backend=backend) for _ in range(workers)]

    def decode(self, requests: Sequence[DecodeRequest]) -> Iterator[DecodedSample | Exception]:
        """Yield, in order, one :class:`DecodedSample` or the decoding exception per request.

        Consume the iterator to the end (or close it): closing stops the feeding threads after
        their current sample.
        """
        n = min(len(self.decoders), max(1, len(requests)))
        queues = [queue.Queue(maxsize=QUEUED) for _ in range(n)]
        stop = threading.Event()
        threads = [threading.Thread(target=self._feed, args=(self.decoders[k], requests[k::n], queues[k], stop),
                                    daemon=True) for k in range(n)]
        for t in threads:
            t.start()
        try:
            for i in range(len(requests)):
                yield queues[i % n].get()
        finally:
            stop.set()
            for q in queues:  # unblock a thread waiting to put
                while not q.empty():
                    q.get_nowait()
            for t in threads:
                t.join()

    @staticmethod
    def _feed(decoder: IsolatedDecoder, requests: Sequence[DecodeRequest], out: queue.Queue,
              stop: threading.Event) -> None:
        delivered = 0
        try:
            for result in decoder.decode_many(requests):
                if not _put(out, _frames_of(result), stop):
                    return
                delivered += 1
        except Exception as exc:  # noqa: BLE001 - a broken stream fails its remaining samples
            for _ in range(delivered, len(requests)):
                if not _put(out, exc, stop):
                    return


    def close(self) -> None:
        for d in self.decoders:
            d.close()


def _frames_of(result) -> DecodedSample | Exception:
    """A whole sample from a :class:`pipelines.isolated_decoder.DecodeResult`, or its error."""
    try:
        if result.error is not None:
            raise result.error
        chunks = [f for _, f in result.chunks]
        if not chunks:
            raise ValueError(f"{result.request.uri}: the decoding plan holds no frame")
        return DecodedSample(result.plan, np.concatenate(chunks))
    except Exception as exc:  # noqa: BLE001 - the consumer reports it for this sample
        return exc


def _put(out: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer stopped; False when it did."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False
