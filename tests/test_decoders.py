"""Decoder back-ends behind one interface (pipelines.decoders): the same frames as decord on the
shipped sample videos for sparse, dense, out-of-order and mid-video requests; clear errors on
corrupt files; PyAV seeks to key frames; torchcodec's unavailability is explained."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from pipelines.decoders import (DECODER_BACKENDS, BackendUnavailable, DecodeError, DecordDecoder, PyAVDecoder,
                                available_backends, make_decoder, read_frames)

VIDEOS = Path(__file__).resolve().parents[1] / "samples" / "videos"
CLIPS = sorted(VIDEOS.glob("*.mp4"))
#: back-ends compared with decord: (name, constructor options)
OTHERS = [("pyav", {}), ("pyav", {"thread_type": "AUTO", "threads": 0}), ("opencv", {})]


def requests(n: int) -> dict[str, list[int]]:
    """Index lists over an ``n``-frame video: sparse, dense from the middle, out of order with repeats."""
    mid = n // 2 + 1  # not a key frame on the sample videos: a seek must decode forward to it
    return {"sparse": list(range(0, n, 9)),
            "dense_middle": list(range(mid, min(n, mid + 40))),
            "unordered": [n - 1, 3, mid, 3, n // 3, 0, n - 2]}


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.stem)
def test_every_backend_gives_decords_frames(clip):
    with DecordDecoder() as ref:
        info = ref.open(str(clip))
        wanted = {name: (idx, ref.get_batch(idx)) for name, idx in requests(info.num_frames).items()}
    for backend, options in OTHERS:
        with make_decoder(backend, **options) as dec:
            other = dec.open(str(clip))
            assert (other.num_frames, other.width, other.height) == (info.num_frames, info.width, info.height)
            assert other.fps == pytest.approx(info.fps, rel=1e-6)
            for name, (idx, frames) in wanted.items():  # one open, several requests: seeks back and forth
                got = dec.get_batch(idx)
                assert got.dtype == np.uint8 and got.shape == frames.shape, (backend, name)
                assert np.array_equal(got, frames), f"{backend} {options} differs from decord on {clip.name} {name}"


def test_pyav_seeks_to_the_key_frame_before_the_wanted_frame():
    uri = str(VIDEOS / "hikers_walking.mp4")  # key frames every 30 frames
    dec = PyAVDecoder()
    seeks = []
    seek = dec._seek
    dec._seek = lambda key: (seeks.append(key), seek(key))
    with dec:
        dec.open(uri)
        frames = dec.get_batch([455, 456, 10])  # visited in ascending order: 10, 455, 456
        assert seeks == [0, 450]  # 10 from key frame 0; 455 from key frame 450, not by decoding 11-454
        assert dec._pos == 456
        again = dec.get_batch([35])  # behind the decoder: back to key frame 30
        assert seeks == [0, 450, 30]
    assert np.array_equal(frames, read_frames(uri, [455, 456, 10], "decord"))
    assert np.array_equal(again, read_frames(uri, [35], "decord"))


def _corrupt_files(tmp: Path) -> dict[str, Path]:
    group = (VIDEOS / "group_event_smiling.mp4").read_bytes()
    files = {"empty": tmp / "empty.mp4", "truncated": tmp / "truncated.mp4", "audio_only": tmp / "audio.mp4",
             "damaged": tmp / "damaged.mp4"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(group[: len(group) // 3])
    wavfile.write(str(files["audio_only"]), 16000, (np.sin(np.arange(16000) / 5.0) * 3000).astype(np.int16))
    data, rng = bytearray(group), random.Random(5)
    for i in rng.sample(range(len(group) // 2, len(group) - 1000), 200):  # frame data only, header intact
        data[i] ^= 0xFF
    files["damaged"].write_bytes(bytes(data))
    return files


@pytest.mark.parametrize("backend", ["decord", "pyav", "opencv"])
def test_corrupt_files_raise_clear_errors(tmp_path, backend):
    files = _corrupt_files(tmp_path)
    expect = {"empty": "empty (0 bytes)", "truncated": "", "audio_only": ""}
    for name, words in expect.items():
        path = str(files[name])
        with pytest.raises(DecodeError) as err:
            read_frames(path, range(0, 90, 2), backend)
        assert path in str(err.value) and words in str(err.value), (backend, name, str(err.value))
    with pytest.raises(DecodeError, match="directory"):
        read_frames(str(tmp_path), [0], backend)


def test_truncated_file_names_the_missing_frames(tmp_path):
    path = str(_corrupt_files(tmp_path)["truncated"])
    # 23 packets are left, the last one cut short (FFmpeg marks it corrupt and its decoder refuses it): 22
    # frames, as FFmpeg shows them; decord counts packets, and its count is capped by PyAV's frame index
    for backend in ("decord", "pyav"):
        with pytest.raises(DecodeError, match=r"frame 60 is out of range: \w+ finds 22 frames \(the header "
                                              r"declares 90"):
            read_frames(path, [0, 60], backend)


def test_pyav_refuses_concealed_frames_that_decord_returns(tmp_path):
    path = str(_corrupt_files(tmp_path)["damaged"])
    good = read_frames(str(VIDEOS / "group_event_smiling.mp4"), [40], "decord")
    concealed = read_frames(path, [40], "decord")  # decord hands back the concealed frame silently
    assert not np.array_equal(concealed, good)
    with pytest.raises(DecodeError, match=r"frame 31 is corrupt"):
        read_frames(path, [40], "pyav")
    kept = read_frames(path, [40], "pyav", on_corrupt="keep")
    assert np.array_equal(kept, concealed)
    assert np.array_equal(read_frames(path, [0, 20], "pyav"), read_frames(path, [0, 20], "decord"))  # before the damage


def test_frame_size_limit_and_bad_requests():
    uri = str(VIDEOS / "tears_of_steel_excerpt.mp4")
    for backend in ("decord", "pyav", "opencv"):
        with pytest.raises(DecodeError, match="640x360 exceeds the decoder limit of 1000 pixels"):
            make_decoder(backend, max_pixels=1000).open(uri)
        with make_decoder(backend) as dec:
            with pytest.raises(DecodeError, match="before open"):
                dec.get_batch([0])
            dec.open(uri)
            with pytest.raises(DecodeError, match="frame 240 is out of range"):
                dec.get_batch([0, 240])
            assert dec.get_batch([]).shape == (0, 360, 640, 3)
    with pytest.raises(KeyError, match="unknown decoder back-end 'ffmpeg'"):
        make_decoder("ffmpeg")
    assert set(DECODER_BACKENDS) == {"decord", "pyav", "opencv", "torchcodec"}


def test_torchcodec_unavailable_is_explained():
    if available_backends()["torchcodec"]:
        pytest.skip("torchcodec can load FFmpeg here; nothing to explain")
    with pytest.raises(BackendUnavailable) as err:
        read_frames(str(VIDEOS / "hikers_walking.mp4"), [0], "torchcodec")
    assert isinstance(err.value, ImportError)
    message = str(err.value)
    assert "'torchcodec' is unavailable" in message
    if importlib.util.find_spec("torchcodec") is None:
        assert "the package 'torchcodec' is not installed" in message
    else:  # installed without system FFmpeg: the missing shared libraries are named
        assert "FFmpeg 4-9 shared libraries" in message and "libavutil.so." in message
