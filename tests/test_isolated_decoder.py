"""The isolated decoder's look-ahead (pipelines/isolated_decoder.py): order, no lost or repeated
frames when the child dies with later files outstanding, and dropped streams."""
import os
import select
import signal
from pathlib import Path

import numpy as np
import pytest

from pipelines.decode import decode_window
from pipelines.isolated_decoder import DecoderCrashed, DecodeRequest, IsolatedDecoder

CLIPS = Path(__file__).resolve().parents[1] / "samples" / "videos"
HIKERS, GROUP = str(CLIPS / "hikers_walking.mp4"), str(CLIPS / "group_event_smiling.mp4")
REQUESTS = [DecodeRequest(HIKERS, window=(0.0, 2.0, 15.0)), DecodeRequest(GROUP, window=(0.5, 1.0, 10.0)),
            DecodeRequest(str(CLIPS / "missing.mp4"), window=(0.0, 1.0, 5.0)),
            DecodeRequest(HIKERS, frame_indices=(3, 40, 41, 200))]


def _expected(req: DecodeRequest) -> np.ndarray:
    if req.window is not None:
        return decode_window(req.uri, *req.window).frames
    from pipelines.decoders import read_frames
    return read_frames(req.uri, req.frame_indices)


def _collect(result) -> tuple[np.ndarray, list[int]]:
    firsts, parts = [], []
    for first, frames in result.chunks:
        firsts.append(first)
        parts.append(frames)
    return np.concatenate(parts), firsts


def test_decode_many_equals_in_process_decoding_in_order():
    with IsolatedDecoder(chunk_frames=8) as dec:
        results = []
        for result in dec.decode_many(REQUESTS, ahead=2):
            if result.error is not None:
                results.append((result.request, None))
                continue
            frames, firsts = _collect(result)
            assert firsts == list(range(0, len(result.plan.frame_indices), 8))
            results.append((result.request, frames))
        assert [r for r, _ in results] == REQUESTS
        assert results[2][1] is None  # the missing file is an error, the others decode
        for req, frames in results:
            if frames is not None:
                assert np.array_equal(frames, _expected(req))
        assert dec.restarts == 0


def test_the_next_file_is_decoded_before_it_is_asked_for():
    with IsolatedDecoder() as dec:
        stream = dec.decode_many(REQUESTS[:2], ahead=1)
        _collect(next(stream))
        # the second file's plan is already waiting in the pipe before the caller asks for it
        assert select.select([dec._proc.stdout.fileno()], [], [], 30)[0]
        second = next(stream)
        assert np.array_equal(_collect(second)[0], _expected(REQUESTS[1]))


def test_a_crash_with_later_files_outstanding_resumes_without_loss():
    # the child dies while the first file is half delivered and the second already requested:
    # the first is resumed alone from its first undelivered frame; nothing is lost or repeated
    with IsolatedDecoder(chunk_frames=4) as dec:
        stream = dec.decode_many(REQUESTS[:2], ahead=1)
        first = next(stream)
        got = [next(first.chunks)]
        os.kill(dec.pid, signal.SIGSEGV)
        got += list(first.chunks)
        assert [f for f, _ in got] == list(range(0, 30, 4))
        assert np.array_equal(np.concatenate([x for _, x in got]), _expected(REQUESTS[0]))
        assert np.array_equal(_collect(next(stream))[0], _expected(REQUESTS[1]))
        assert dec.restarts == 1


def test_a_file_that_crashes_again_alone_is_the_one_reported():
    with IsolatedDecoder(chunk_frames=4) as dec:
        stream = dec.decode_many(REQUESTS[:2], ahead=1)
        first = next(stream)
        next(first.chunks)
        os.kill(dec.pid, signal.SIGSEGV)
        next(first.chunks)  # resumed alone in a fresh child
        os.kill(dec.pid, signal.SIGABRT)
        with pytest.raises(DecoderCrashed, match=f"{HIKERS}: decoder process died \\(signal SIGABRT\\)"):
            list(first.chunks)
        assert np.array_equal(_collect(next(stream))[0], _expected(REQUESTS[1]))
        assert dec.restarts == 2


def test_a_dropped_stream_does_not_disturb_the_next_file():
    with IsolatedDecoder(chunk_frames=4) as dec:
        stream = dec.decode_many(REQUESTS[:2], ahead=1)
        next(stream)  # not consumed
        second = next(stream)
        assert np.array_equal(_collect(second)[0], _expected(REQUESTS[1]))
        plan, chunks = dec.decode(GROUP, window=(0.0, 1.0, 5.0))  # the decoder is usable again
        assert np.array_equal(np.concatenate([f for _, f in chunks]), decode_window(GROUP, 0.0, 1.0, 5.0).frames)


def test_an_abandoned_call_does_not_block_the_next_one():
    # a bundle that failed downstream leaves decode_many suspended with files outstanding; the
    # retried bundle gets the decoder in a clean state
    with IsolatedDecoder() as dec:
        stream = dec.decode_many(REQUESTS[:2], ahead=1)
        next(next(stream).chunks)
        got = [_collect(result)[0] for result in dec.decode_many(REQUESTS[1:2])]
        assert len(got) == 1 and np.array_equal(got[0], _expected(REQUESTS[1]))
