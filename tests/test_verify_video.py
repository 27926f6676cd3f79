"""``corpora check``'s video check (pipelines.readers.media.verify_video): packets without a
picture are not a loss, a header that declares more frames than there are packets is."""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance_files import END_OF_SEQUENCE, N, append_packet, cut_with_edit_list, encode, patch_avi_frame_count
from pipelines.readers.media import MediaError, declared_and_packets, verify_video


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    return encode(tmp_path_factory.mktemp("v") / "plain.mp4", "libx264")


def test_an_edit_list_is_not_truncation(mp4, tmp_path):
    cut = cut_with_edit_list(mp4, tmp_path / "cut.mp4", hidden=2)
    assert verify_video(str(cut)) == N - 2


def test_a_trailing_packet_without_a_picture_is_not_truncation(mp4, tmp_path):
    tail = append_packet(mp4, tmp_path / "tail.mp4", END_OF_SEQUENCE)
    declared, packets = declared_and_packets(str(tail))
    assert packets == N + 1
    assert verify_video(str(tail)) == N


def test_an_avi_declaring_more_frames_than_it_holds_is_truncated(tmp_path):
    avi = encode(tmp_path / "plain.avi", "mjpeg", pix_fmt="yuvj420p")
    patched = patch_avi_frame_count(avi, tmp_path / "long.avi", 1000)
    assert declared_and_packets(str(patched)) == (1000, N)
    with pytest.raises(MediaError, match=f"declares 1000 frames, only {N} packets"):
        verify_video(str(patched))
