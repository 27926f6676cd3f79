"""Decoder conformance: files written by the tests (PyAV encodes them, 64x48, 16 frames; see
``tests/conformance_files.py``) and the real B-frame AVIs of ../shared decode to the same frames
with every back-end, or fail with a one-line :class:`pipelines.decoders.DecodeError` that names the
file, what was found and what to try.

Frame ``i`` is the ``i``-th frame FFmpeg shows: the reference is plain PyAV decoding (frames in
the decoder's output order, which is presentation order; packets the decoder refuses skipped, as
the ``ffmpeg`` tool does), turned by the rotation metadata: frames are compared **as displayed**
(the convention of :class:`pipelines.decoders.PyAVDecoder` and OpenCV). Files whose packets are
not frames are covered: an edit list that hides leading frames, a trailing packet without a
picture (an end-of-sequence NAL unit; bytes the decoder refuses), a header frame count that is
wrong; and variable frame rate, rotation 90/180/270, open GOP, MKV, WebM (VP9), MOV, AVI (MJPEG,
MPEG-4), MPEG-PS, MPEG-TS, 10-bit.

The pipeline's back-end (PyAV) must match the reference on every file, for a full pass and for
random access (backwards, repeats, the last frames). decord 0.6 and OpenCV 4.12 bundle their own
FFmpeg builds; where they deviate, the deviation is listed with its cause: wrong frames in
:data:`KNOWN_DEVIATIONS` (asserted as a strict xfail, so the list stays true), refusals in
:data:`REFUSED` (asserted: the error names the file and says what to try).
"""
from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from conformance_files import (END_OF_SEQUENCE, GARBAGE, H, N, W, append_packet, cut_with_edit_list, encode,
                               patch_avi_frame_count, pattern, still_image)
from pipelines.decoders import DecodeError, make_decoder, read_frames

F = fractions.Fraction

#: name -> encoder settings of :func:`conformance_files.encode` (codec, container by extension, ...)
CASES = {
    "avi_bframes.avi": dict(codec="mpeg4", options={"bf": "2"}),
    "vfr.mp4": dict(codec="libx264", options={"bf": "2"}, time_base=F(1, 1000),
                    pts=[0, 100, 150, 400, 420, 700, 710, 720, 1000, 1100, 1300, 1310, 1500, 1600, 1700, 1900]),
    "rotated90.mp4": dict(codec="libx264", rotation=90),
    "rotated180.mp4": dict(codec="libx264", rotation=180),
    "rotated270.mp4": dict(codec="libx264", rotation=-90),
    "odd_size.mp4": dict(codec="libx264", w=65, h=49, pix_fmt="yuv444p"),
    "odd_size_420.avi": dict(codec="mpeg4", w=65, h=49),
    "mjpeg.avi": dict(codec="mjpeg", pix_fmt="yuvj420p"),
    "mpeg2.mpg": dict(codec="mpeg2video", options={"bf": "2"}, rate=25),
    "yuv444p.mp4": dict(codec="libx264", pix_fmt="yuv444p"),
    "10bit.mp4": dict(codec="libx264", pix_fmt="yuv420p10le"),
    "longer_audio.mp4": dict(codec="libx264", audio_s=3.0),
    "gop8.mp4": dict(codec="libx264", options={"bf": "2", "g": "8"}),
    "open_gop.mp4": dict(codec="libx264", options={"bf": "2", "x264-params":
                                                   "open-gop=1:keyint=8:min-keyint=8:scenecut=0"}),
    "h264.mkv": dict(codec="libx264", options={"bf": "2"}),
    "vp9.webm": dict(codec="libvpx-vp9"),
    "h264.mov": dict(codec="libx264", options={"bf": "2"}),
    "h264.ts": dict(codec="libx264", options={"bf": "2"}),
}
#: name -> (source case, how it is derived, frames of the source it shows)
DERIVED = {
    "edit_list.mp4": ("gop8.mp4", lambda src, dst: cut_with_edit_list(src, dst, hidden=2), slice(2, None)),
    "trailing_end_of_sequence.mp4": ("gop8.mp4", lambda src, dst: append_packet(src, dst, END_OF_SEQUENCE),
                                     slice(None)),
    "trailing_refused_packet.mp4": ("gop8.mp4", lambda src, dst: append_packet(src, dst, GARBAGE), slice(None)),
    "wrong_header_count.avi": ("mjpeg.avi", lambda src, dst: patch_avi_frame_count(src, dst, 1000), slice(None)),
}
#: real files of ../shared/data/videos: AVIs whose frames leave the decoder labelled out of order
#: (face_closeup_makeup: MPEG-4 with packed B-frames, which FFmpeg's encoder cannot write;
#: ntu_single_person: H.264 with B-frames in AVI)
SHARED = ["face_closeup_makeup.avi", "ntu_single_person.avi"]

_COLOUR = "its bundled FFmpeg converts {} to RGB with other rounding than PyAV's swscale"
#: (back-end, file) -> why that back-end returns other frames; asserted as strict xfail
KNOWN_DEVIATIONS = {
    ("decord", "avi_bframes.avi"): "decord 0.6 returns the frame before the last one when it seeks near the end of "
                                   "a B-frame stream (a full sequential pass is right)",
    ("decord", "mpeg2.mpg"): "decord 0.6 returns the frame before the last one when it seeks near the end of a "
                             "B-frame stream (a full sequential pass is right)",
    ("decord", "open_gop.mp4"): "decord 0.6 returns other frames after a seek into an open GOP (the leading "
                                "B-frames of a group reference the group before)",
    ("decord", "ntu_single_person.avi"): "decord 0.6 sometimes returns another frame when the last frame is asked "
                                         "for alone (after a seek) in this H.264 B-frame AVI (not every run)",
    ("decord", "face_closeup_makeup.avi"): "decord 0.6 sometimes returns another frame when the last frame is asked "
                                           "for alone (after a seek) in this packed B-frame AVI (not every run)",
    ("opencv", "mpeg2.mpg"): "OpenCV's CAP_PROP_POS_FRAMES seek in MPEG-PS lands on another frame when the last "
                             "frame is asked for alone (its frame count is now PyAV's index: 16, not the header "
                             "estimate of 14)",
    ("decord", "odd_size_420.avi"): _COLOUR.format("4:2:0 frames of odd size"),
    ("opencv", "odd_size_420.avi"): _COLOUR.format("4:2:0 frames of odd size"),
    ("decord", "10bit.mp4"): _COLOUR.format("10-bit frames"),
    ("opencv", "10bit.mp4"): _COLOUR.format("10-bit frames"),
}
#: (back-end, file) -> words of the one-line DecodeError it ends with (the reason)
REFUSED = {
    ("decord", "rotated90.mp4"): "cannot turn frames by the video's rotation metadata",
    ("decord", "rotated180.mp4"): "cannot turn frames by the video's rotation metadata",
    ("decord", "rotated270.mp4"): "cannot turn frames by the video's rotation metadata",
    ("decord", "edit_list.mp4"): "decord numbers packets, and this file's edit list hides 2 of them",
    # the refused packet stops decord's and OpenCV's readers before the last frames leave the decoder
    ("decord", "trailing_refused_packet.mp4"): "decord failed decoding frames",
    ("opencv", "trailing_refused_packet.mp4"): "opencv could not decode frame 14",
    # H.264 in MPEG-TS written by PyAV: decord's reader gives no frame at all; OpenCV's neither when
    # decord decoded in the same process before (not every run otherwise)
    ("decord", "h264.ts"): "decord failed decoding frames",
    ("opencv", "h264.ts"): "opencv could not decode frame 0",
}
#: deviations that do not show on every run (decord's seek near the end depends on timing)
INTERMITTENT = {("decord", "ntu_single_person.avi"), ("decord", "face_closeup_makeup.avi"), ("opencv", "h264.ts")}
BACKENDS = ["pyav", "decord", "opencv"]


def reference_frames(path: Path) -> np.ndarray:
    """uint8 [N, H, W, 3]: plain PyAV decoding (refused packets skipped), frames turned as displayed."""
    frames = []
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue
            frames += [np.rot90(f.to_ndarray(format="rgb24"), (f.rotation // 90) % 4) for f in decoded]
    return np.stack(frames)


def make_files(folder: Path) -> dict[str, Path]:
    """Every generated case of this suite, written into ``folder``."""
    files = {name: encode(folder / name, **kw) for name, kw in CASES.items()}
    for name, (source, derive, _) in DERIVED.items():
        files[name] = derive(files[source], folder / name)
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("conformance"))


def _path(name: str, files: dict[str, Path], shared: Path) -> Path:
    return files[name] if name in files else shared / "data/videos" / name


def _requests(n: int) -> dict[str, list[int]]:
    return {"all": list(range(n)), "backwards": [n - 1, 2, n // 2, 0, n - 2, 2],
            "tail": [n - 3, n - 2, n - 1], "last": [n - 1], "middle": list(range(n // 2 + 1, n))}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES) + list(DERIVED) + SHARED)
def test_every_backend_gives_the_reference_frames(files, shared, name, backend, request):
    if (backend, name) in REFUSED:
        path = str(_path(name, files, shared))
        try:
            with make_decoder(backend) as dec:
                dec.get_batch(range(dec.open(path).num_frames))
        except DecodeError as err:
            message = str(err)
            assert REFUSED[backend, name] in message and message.startswith(path) and "; try: " in message, message
            assert "\n" not in message
            return
        assert (backend, name) in INTERMITTENT, f"{backend} no longer refuses {name}: update REFUSED"
        request.applymarker(pytest.mark.xfail(reason=REFUSED[backend, name], strict=False,
                                              raises=(AssertionError, DecodeError)))
    reason = KNOWN_DEVIATIONS.get((backend, name))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=(backend, name) not in INTERMITTENT,
                                              raises=AssertionError))
    path = _path(name, files, shared)
    ref = reference_frames(path)
    if name in CASES and not CASES[name].get("audio_s"):
        assert len(ref) == N  # the encoder wrote every frame
    if name in DERIVED:  # the frames of the source that the derived file shows, no more, no less
        source, _, shown = DERIVED[name]
        assert np.array_equal(ref, reference_frames(files[source])[shown])
    with make_decoder(backend) as dec:
        info = dec.open(str(path))
        assert (info.num_frames, info.height, info.width) == ref.shape[:3], (backend, name)
        for what, idx in _requests(info.num_frames).items():
            got = dec.get_batch(idx)
            assert got.shape == (len(idx),) + ref.shape[1:] and got.dtype == np.uint8, (backend, name, what)
            same = [bool(np.array_equal(g, ref[i])) for g, i in zip(got, idx)]
            assert all(same), f"{backend} differs from the reference on {name} ({what}): {same}"


@pytest.mark.parametrize("name, degrees, turns", [("rotated90.mp4", 90, 1), ("rotated180.mp4", 180, 2),
                                                 ("rotated270.mp4", -90, 3)])
def test_rotation_metadata_frames_are_as_displayed(files, name, degrees, turns):
    """The display matrix turns 64x48 stored frames as FFmpeg's players show them (90 and 270
    degrees: 48x64); PyAV and OpenCV return them turned (``np.rot90`` counter-clockwise by the
    frame's rotation), decord (which cannot) refuses the file."""
    path = str(files[name])
    with av.open(path) as container:
        stored = next(container.decode(video=0))
        assert stored.rotation % 360 == degrees % 360 and (stored.width, stored.height) == (64, 48)
    want = np.rot90(stored.to_ndarray(format="rgb24"), turns)
    for backend in ("pyav", "opencv"):
        frames = read_frames(path, [0, 5], backend)
        assert frames.shape == (2,) + want.shape
        assert np.array_equal(frames[0], want), backend
    with pytest.raises(DecodeError, match="rotation metadata"):
        read_frames(path, [0], "decord")


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_count_is_what_ffmpeg_shows_and_the_header_a_hint(files, backend):
    """VideoInfo.num_frames counts shown frames; declared_frames keeps the header's count."""
    want = {"edit_list.mp4": (14, 16), "trailing_end_of_sequence.mp4": (16, 17),
            "trailing_refused_packet.mp4": (16, 17), "wrong_header_count.avi": (16, 1000)}
    for name, (frames, declared) in want.items():
        if (backend, name) == ("decord", "edit_list.mp4"):
            continue  # refused (REFUSED)
        with make_decoder(backend) as dec:
            info = dec.open(str(files[name]))
        assert (info.num_frames, info.declared_frames) == (frames, declared), (backend, name)


def test_pyav_windows_past_the_end_of_a_wrong_header_count_say_so(files):
    """A header that declares 1000 frames where 16 are: frames up to 15 decode; a window past them
    is refused naming both counts (the pipeline's truncation rule), never as damage."""
    from pipelines.decode import open_video

    path = str(files["wrong_header_count.avi"])
    dec, plan = open_video(path, frame_indices=range(16))
    with dec:
        assert plan.num_video_frames == 16 and len(dec.get_batch(plan.frame_indices)) == 16
    with pytest.raises(DecodeError, match=r"declares 1000 frames but only 16 can be decoded \(16 packets found\)"):
        open_video(path, window=(2.0, 1.0, 12.0))


#: what a non-video is, as the one-line error says it
NOT_VIDEO = {"audio_only.m4a": "not a video: it has no video stream",
             "empty_video_stream.mkv": "its video stream is empty",
             "still_image.png": "a still image, not a video"}


@pytest.fixture(scope="module")
def not_videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("not_videos")
    return {"audio_only.m4a": encode(folder / "audio_only.m4a", None, audio_s=1.0),
            "empty_video_stream.mkv": encode(folder / "empty_video_stream.mkv", "libx264", n=0, audio_s=0.5),
            "still_image.png": still_image(folder / "still_image.png")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_file_that_is_no_video_says_what_it_is(not_videos, backend):
    for name, words in NOT_VIDEO.items():
        path = str(not_videos[name])
        with pytest.raises(DecodeError) as err:
            read_frames(path, [0], backend)
        message = str(err.value)
        assert message.startswith(path) and words in message and "; try: " in message, (backend, message)
        assert "damaged" not in message and "\n" not in message


def test_the_pipelines_error_path_says_what_a_non_video_is(not_videos):
    """The extraction's decoder child reports the same one-line reason (what errors.jsonl records)."""
    from pipelines.isolated_decoder import IsolatedDecoder

    with IsolatedDecoder() as dec:
        for name, words in NOT_VIDEO.items():
            with pytest.raises(DecodeError, match=words):
                dec.decode_window(str(not_videos[name]), 0.0, 1.0, 5.0)


def test_variable_frame_rate_frames_follow_presentation_order(files):
    """Frame i of a VFR MP4 is the i-th frame shown (closest to source frame i), whatever the gaps
    between timestamps, in a full pass and when asked for out of order."""
    sources = np.stack([pattern(i, W, H) for i in range(N)]).astype(np.float32)

    def nearest(frames):
        return [int(np.argmin(((sources - f.astype(np.float32)) ** 2).mean(axis=(1, 2, 3)))) for f in frames]

    path = str(files["vfr.mp4"])
    assert nearest(read_frames(path, list(range(N)))) == list(range(N))
    assert nearest(read_frames(path, [13, 2, 7, 15])) == [13, 2, 7, 15]


def test_pyav_orders_b_frames_of_avi_that_are_labelled_out_of_order(shared):
    """The regression of issue 14: PyAV's frames carry pts 1, 2, 4, 3, ... on these AVIs; every
    request, including one that starts mid-stream, gives decord's frames."""
    for name in SHARED:
        path = str(shared / "data/videos" / name)
        with av.open(path) as container:
            labels = [f.pts for _, f in zip(range(8), container.decode(video=0))]
        assert labels != sorted(labels), name  # the files still show the problem
        idx = [2, 3, 4, 5, 6, 7, 40, 41, 2]
        assert np.array_equal(read_frames(path, idx, "pyav"), read_frames(path, idx, "decord")), name


def test_pyav_still_refuses_corrupt_frames_in_a_b_frame_avi(tmp_path, shared):
    """Counting frames in output order does not hide damage: flipped bytes in the frame data of a
    B-frame AVI are refused as corrupt (or as a damaged stream), never returned silently."""
    data = bytearray((shared / "data/videos/face_closeup_makeup.avi").read_bytes())
    rng = np.random.default_rng(3)
    for i in rng.choice(np.arange(len(data) // 3, len(data) - 20000), 300, replace=False):
        data[int(i)] ^= 0xFF
    path = tmp_path / "damaged.avi"
    path.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match=r"corrupt|damaged|decode"):
        read_frames(str(path), list(range(0, 160, 4)), "pyav")


def test_check_and_extract_agree_on_what_is_decodable(files, shared, tmp_path):
    """``corpora check`` decodes with the extraction's path (PyAV, open_video, in the child
    process): the B-frame AVIs are fine for both, a truncated and a damaged file fail for both."""
    from pipelines.decode import decode_window
    from pipelines.isolated_decoder import IsolatedDecoder
    from pipelines.readers.media import MediaError, verify_video

    good = [str(_path(n, files, shared)) for n in ["avi_bframes.avi", "vfr.mp4", "rotated90.mp4", "edit_list.mp4",
                                                  "trailing_end_of_sequence.mp4"] + SHARED]
    raw = (shared / "data/videos/face_closeup_makeup.avi").read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(raw[: len(raw) // 3])
    with IsolatedDecoder() as dec:
        for path in good:
            assert verify_video(path, dec) == len(reference_frames(Path(path)))
            decode_window(path, 0.0, 0.5, 10.0)  # extract's in-process equivalent
        with pytest.raises(MediaError, match="truncated"):
            verify_video(str(truncated), dec)
    with pytest.raises(DecodeError, match="truncated"):
        decode_window(str(truncated), 5.0, 1.0, 10.0)  # a window in the lost part fails in extract too
