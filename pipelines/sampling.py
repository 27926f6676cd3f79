"""Frame and clip sampling: every plan of which frames (or windows) a sample uses.

Pure index maths, numpy in, numpy out; no decoding, no pixels. Each function is named by what it
samples:

* :func:`plan_window`: the frames of one time window at a sampling rate (the decode plan).
* :func:`window_starts`: start times of consecutive windows over a whole video (checkpoint
  prediction).
* :func:`even_positions`: ``keep`` evenly spaced positions of a longer sequence (image
  sequences, skeleton sequences).
* :func:`clip_positions`: the deterministic C x K clip plan (FER_BGER ``sample_video``), and
  :func:`random_clip_positions`: its per-epoch random redraw (``get_video``).
* :func:`train_offsets`, :func:`val_offsets`, :func:`test_offsets`, :func:`segment_offsets`:
  TSN segment offsets (EmoReact seed), with :func:`record_num_frames` and
  :func:`offsets_to_indices` for the seed's 1-based frame numbering.
* :func:`window_frames`: the VTT window of 4 frames around an annotated frame.
* :func:`timeline_frame_indices`: the frame of each column of the ACCM skeleton timeline.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "plan_window", "window_starts", "even_positions", "clip_positions", "random_clip_positions",
    "record_num_frames", "train_offsets", "val_offsets", "test_offsets", "segment_offsets",
    "offsets_to_indices", "VTT_WINDOW_SIZE", "window_frames", "TIMELINE_PAD_MODES", "timeline_frame_indices",
]


# ------------------------------------------------------------------------------- time windows

def plan_window(start_s: float, length_s: float, sample_fps: float, fps: float, n_video: int) -> np.ndarray:
    """Frame indices of a window sampled at ``sample_fps``.

    Frame ``i`` of the plan is the video frame shown at ``start_s + i / sample_fps``
    (``floor(t * fps)``); indices past the end of the video are dropped.

    Returns:
        int32 [T'] with ``T' <= round(length_s * sample_fps)``, non-decreasing.
    """
    count = int(round(length_s * sample_fps))
    times = start_s + np.arange(count) / sample_fps
    idx = np.floor(times * fps + 1e-6).astype(np.int64)
    return idx[idx < n_video].astype(np.int32)


def window_starts(duration_s: float, window_s: float) -> list[float]:
    """Start times (seconds) of consecutive ``window_s`` windows over a video ``duration_s`` long.

    The last, shorter window is kept when it is at least half a window long, or when it is the
    only one.

    Returns:
        ``[0.0, window_s, 2 * window_s, ...]`` as Python floats.
    """
    starts = list(np.arange(0.0, duration_s, window_s))
    if len(starts) > 1 and duration_s - starts[-1] < window_s / 2:
        starts.pop()
    return [float(s) for s in starts]


def segment_window_starts(start: float, end: float, length: float, stride: float) -> list[float]:
    """Start times (seconds, rounded to ms) of ``length`` windows every ``stride`` seconds that
    fit whole inside ``[start, end]`` (a card's ``[[segments]]``; unlike :func:`window_starts`,
    no shorter last window)."""
    starts, t = [], start
    while t + length <= end + 1e-6:
        starts.append(round(t, 3))
        t += stride
    return starts


def even_positions(num_frames: int, keep: int) -> np.ndarray:
    """``keep`` evenly spaced positions of a sequence (all of them when it is not longer).

    Returns:
        int64 [min(num_frames, keep)] increasing, starting at 0.
    """
    if num_frames <= keep:
        return np.arange(num_frames)
    return np.linspace(0, num_frames, keep, endpoint=False).astype(np.int64)


# ---------------------------------------------------------------------------------- C x K clips

def _clip_bounds(num_frames: int, clips: int) -> list[tuple[int, int]]:
    """``[(lo, hi)]`` of the C clips of a sequence: ``inter = num_frames // C``, clip j covers
    ``[j * inter, (j + 1) * inter)`` and the last clip runs to the end (seed_specs 1.1)."""
    inter = num_frames // clips
    return [(j * inter, num_frames if j == clips - 1 else (j + 1) * inter) for j in range(clips)]


def _short_plan(num_frames: int, clips: int, frames_per_clip: int) -> np.ndarray:
    """int64 [C, K]: all positions, the last repeated up to C*K, split into C groups of K."""
    return np.minimum(np.arange(clips * frames_per_clip), num_frames - 1).reshape(clips, frames_per_clip)


def clip_positions(num_frames: int, clips: int, frames_per_clip: int) -> np.ndarray:
    """Deterministic C x K frame plan over a sequence (FER_BGER ``sample_video``, seed_specs §1.1).

    Clip j covers positions ``[j * inter, (j + 1) * inter)`` with ``inter = num_frames // C``
    (the last clip runs to the end); inside a clip of length n, frame k is position
    ``int(n / K * k)``. Sequences shorter than ``C * K`` repeat the last frame (as the seed's
    padding does).

    Returns:
        int64 [C, K] positions into the sequence (0-based).

    Raises:
        ValueError: ``num_frames < 1``.
    """
    if num_frames < 1:
        raise ValueError("clip_positions needs at least one frame")
    if num_frames <= clips * frames_per_clip:
        return _short_plan(num_frames, clips, frames_per_clip)
    out = np.empty((clips, frames_per_clip), dtype=np.int64)
    for j, (lo, hi) in enumerate(_clip_bounds(num_frames, clips)):
        seg = (hi - lo) / frames_per_clip
        out[j] = [lo + min(int(seg * k), hi - lo - 1) for k in range(frames_per_clip)]
    return out


def random_clip_positions(num_frames: int, clips: int, frames_per_clip: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Random C x K frame positions of ``get_video`` (seed_specs 1.1): the per-epoch redraw.

    - ``num_frames > C*K``: the clips of :func:`clip_positions`; in each, K distinct positions
      are drawn uniformly without replacement and sorted.
    - otherwise: all positions, padded to C*K by repeating the last one, split into C
      consecutive groups of K (no randomness; the same as the deterministic plan).

    Args:
        num_frames: frames in the sequence (>= 1).
        clips: C (>= 1). frames_per_clip: K (>= 1).
        rng: the generator of the draw.

    Returns:
        int64 [C, K] positions (0-based), increasing within each clip.

    Raises:
        ValueError: a count < 1.
    """
    if num_frames < 1 or clips < 1 or frames_per_clip < 1:
        raise ValueError(f"random_clip_positions needs num_frames, clips, frames_per_clip >= 1, got "
                         f"{num_frames}, {clips}, {frames_per_clip}")
    if num_frames <= clips * frames_per_clip:
        return _short_plan(num_frames, clips, frames_per_clip)
    out = np.empty((clips, frames_per_clip), np.int64)
    for j, (lo, hi) in enumerate(_clip_bounds(num_frames, clips)):
        out[j] = np.sort(lo + rng.choice(hi - lo, size=frames_per_clip, replace=False))
    return out


# ------------------------------------------------------------------------------- TSN segments
# Source: nkegke/deep-affective-bodily-expression-recognition@863cf98 ``EmoReact/dataset.py``
# (seed_specs §3.2). Offsets are 1-based frame numbers (the seed's ``%06d.jpg`` files).

def record_num_frames(frame_count: int, faithful: bool = True) -> int:
    """``num_frames`` as the TSN seed's ``VideoRecord`` holds it.

    Args:
        frame_count: frames in the container (``cv2.CAP_PROP_FRAME_COUNT`` or ``len(VideoReader)``).
        faithful: True = ``frame_count - 1`` (the seed's QUIRK, needed for identical offsets);
            False = ``frame_count`` (every frame may be sampled).
    Raises:
        ValueError: negative ``frame_count``.
    """
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    return int(frame_count) - 1 if faithful else int(frame_count)


def _check_segments(num_segments: int, new_length: int) -> None:
    if num_segments < 1 or new_length < 1:
        raise ValueError(f"num_segments and new_length must be >= 1, got {num_segments}, {new_length}")


def train_offsets(num_frames: int, num_segments: int, rng: np.random.Generator,
                  new_length: int = 1) -> np.ndarray:
    """Random TSN offsets for training (``_sample_indices``), 1-based.

    ``avg = (num_frames - new_length + 1) // S``; if ``avg > 0``: segment s gives
    ``s * avg + U{0, avg-1}``; elif ``num_frames > S``: S sorted draws from ``U{0, num_frames -
    new_length}`` (unreachable for ``new_length = 1``); else zeros. Then ``+ 1``.

    Args:
        num_frames: :func:`record_num_frames` of the video.
        rng: the seeded generator that makes the draws (the seed uses numpy's global
            ``randint``, so its exact draws cannot be reproduced; the distribution is the same).

    Returns:
        ``int64 [S]``.
    """
    _check_segments(num_segments, new_length)
    avg = (num_frames - new_length + 1) // num_segments
    if avg > 0:
        offsets = np.arange(num_segments) * avg + rng.integers(0, avg, size=num_segments)
    elif num_frames > num_segments:
        offsets = np.sort(rng.integers(0, num_frames - new_length + 1, size=num_segments))
    else:
        offsets = np.zeros(num_segments, np.int64)
    return offsets.astype(np.int64) + 1


def _ticks(num_frames: int, num_segments: int, new_length: int) -> np.ndarray:
    tick = (num_frames - new_length + 1) / float(num_segments)
    # int() truncates toward zero, also for the negative ticks of num_frames < 0 ... 0
    return np.array([int(tick / 2.0 + tick * x) for x in range(num_segments)], np.int64)


def val_offsets(num_frames: int, num_segments: int, new_length: int = 1) -> np.ndarray:
    """Centre-of-segment offsets for validation (``_get_val_indices``), 1-based ``int64 [S]``.

    ``tick = (num_frames - new_length + 1) / S``; offset s = ``int(tick/2 + tick*s) + 1`` when
    ``num_frames > S + new_length - 1``, else all 1.
    """
    _check_segments(num_segments, new_length)
    if num_frames > num_segments + new_length - 1:
        return _ticks(num_frames, num_segments, new_length) + 1
    return np.ones(num_segments, np.int64)


def test_offsets(num_frames: int, num_segments: int, new_length: int = 1) -> np.ndarray:
    """Offsets for testing (``_get_test_indices``): the :func:`val_offsets` formula without its
    guard, so short videos repeat frames (``num_frames = 2, S = 3`` -> ``[1, 2, 2]``); 1-based."""
    _check_segments(num_segments, new_length)
    return _ticks(num_frames, num_segments, new_length) + 1


test_offsets.__test__ = False  # a sampler, not a pytest test


def segment_offsets(num_frames: int, num_segments: int = 5, phase: str = "val",
                    rng: np.random.Generator | None = None, new_length: int = 1) -> np.ndarray:
    """Offsets of one phase: ``train`` (needs ``rng``), ``val`` or ``test``; 1-based ``int64 [S]``.

    Raises:
        ValueError: unknown phase, or ``train`` without ``rng``.
    """
    if phase == "train":
        if rng is None:
            raise ValueError("phase 'train' draws random offsets: pass rng=np.random.default_rng(seed)")
        return train_offsets(num_frames, num_segments, rng, new_length)
    if phase == "val":
        return val_offsets(num_frames, num_segments, new_length)
    if phase == "test":
        return test_offsets(num_frames, num_segments, new_length)
    raise ValueError(f"phase must be 'train', 'val' or 'test', got {phase!r}")


def offsets_to_indices(offsets: np.ndarray, frame_count: int) -> np.ndarray:
    """0-based decoder frame indices of 1-based offsets: ``offsets - 1``.

    Raises:
        ValueError: ``frame_count == 0`` (the seed would try to open the missing ``000001.jpg``) or
            an offset outside ``1 .. frame_count``.
    """
    idx = np.asarray(offsets, np.int64) - 1
    if frame_count <= 0:
        raise ValueError("the video has no frames: no segment can be sampled")
    if idx.size and (idx.min() < 0 or idx.max() >= frame_count):
        raise ValueError(f"offsets {np.asarray(offsets).tolist()} outside frames 1..{frame_count}")
    return idx


# --------------------------------------------------------------------------------- VTT windows

#: Frames of a VTT face window (JanghoonChoi/VTT_vid_emotion, seed_specs §4.2).
VTT_WINDOW_SIZE = 4


def window_frames(frame: int, num_frames: int | None = None, size: int = VTT_WINDOW_SIZE,
                  clamp: bool = True) -> np.ndarray:
    """0-based frame indices of the VTT window around annotated frame ``frame``.

    Args:
        frame: the annotated frame (0-based).
        num_frames: frames in the video; None = no bounds check.
        size: window length (4 in the seed).
        clamp: indices outside ``0 .. num_frames-1`` are clamped to the nearest frame (our rule;
            the seed has none); False raises instead.

    Returns:
        ``int64 [size]`` = ``frame - size//2 + i``, e.g. ``[p-2, p-1, p, p+1]``.

    Raises:
        ValueError: ``frame`` outside the video, or a window index outside it with ``clamp=False``.
    """
    idx = frame - size // 2 + np.arange(size, dtype=np.int64)
    if num_frames is None:
        return idx
    if not 0 <= frame < num_frames:
        raise ValueError(f"annotated frame {frame} is outside the video's {num_frames} frames")
    if clamp:
        return np.clip(idx, 0, num_frames - 1)
    if idx.min() < 0 or idx.max() >= num_frames:
        raise ValueError(f"window {idx.tolist()} leaves the video's {num_frames} frames (clamp=False)")
    return idx


# ---------------------------------------------------------------------------- timeline columns

#: How :func:`timeline_frame_indices` fills the columns past a short sequence.
TIMELINE_PAD_MODES = ("faithful", "repeat", "zero")


def timeline_frame_indices(num_frames: int, length: int, pad: str = "faithful") -> np.ndarray:
    """Frame index per column of the ACCM skeleton timeline, as the FER_BGER sheet readers choose it.

    Source: ``Janie1996/FER_BGER@b6d53bd:Gesture/pre/x_y_root_size_length.py x_y1`` (same
    loop in ``Gesture/pre/x_y_one_potion.py x_y``).

    Args:
        num_frames: T, the number of data frames (the sheet has ``nrows = T + 1``, header row).
        length: number of output columns.
        pad: only used when ``nrows < length`` (all frames copied, then padding):
            ``"faithful"`` (QUIRK of the reference: only column T gets the last frame),
            ``"repeat"`` (columns T..length-1 all get the last frame), ``"zero"`` (none).

    Returns:
        int64 [length]: frame index per column, -1 where the column stays empty. When
        ``nrows >= length`` data row ``i`` fills the next column if
        ``i in np.linspace(0, nrows, length, endpoint=False).astype(int)``; an index ``>= T``
        (possible when ``nrows == length``) has no data row, so its column stays empty (QUIRK).

    Raises:
        ValueError: num_frames < 1, length < 1 or an unknown pad.
    """
    if num_frames < 1 or length < 1:
        raise ValueError(f"num_frames and length must be >= 1, got {num_frames}, {length}")
    if pad not in TIMELINE_PAD_MODES:
        raise ValueError(f"pad must be one of {TIMELINE_PAD_MODES}, got {pad!r}")
    nrows = num_frames + 1
    out = np.full(length, -1, dtype=np.int64)
    if nrows >= length:
        picks = np.linspace(0, nrows, length, endpoint=False).astype(int)
        # nrows >= length makes the step >= 1, so the picks are distinct and increasing.
        picks = picks[picks < num_frames]
        out[: len(picks)] = picks
        return out
    out[:num_frames] = np.arange(num_frames)
    if pad == "faithful":
        out[num_frames] = num_frames - 1
    elif pad == "repeat":
        out[num_frames:] = num_frames - 1
    return out
