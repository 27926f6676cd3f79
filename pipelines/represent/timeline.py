"""FER_BGER body-joint representations: the ACCM timeline and the one-channel PoTion.

Both follow ``Janie1996/FER_BGER@b6d53bd`` (seed spec sections 1.7 and 1.8). The reference reads
Emilya ``.xls`` sheets whose first row is a header, so a sequence of ``T`` frames is a sheet with
``nrows = T + 1`` rows; the time sampling below keeps that count (QUIRK, reproduced on purpose).

Coordinates are whatever the joints are given in (pixels with y down for PoseNet, millimetres for
the x1000 STEP gaits); only differences matter after the per-frame min/max normalisation, except
for the integer truncation, which depends on the absolute values and the offsets.

Per-frame normalisation (shared by both representations), for one axis:
``p = integer pixel coordinates``, ``lo = min(p) - margin``, ``hi = max(p) + margin``,
``scale = min(size / (hi_x - lo_x), size / (hi_y - lo_y))`` (one isotropic scale per frame) and
``bin = int((p - lo) * scale)``. Our additions, which never change a result the reference could
produce without an error:

- Missing joints (NaN in x or y) are left out of min/max and get no bin; so are joints with an
  infinite coordinate (``+-inf``), which would otherwise make the frame's range infinite, move
  every other joint of the frame to bin 0 and give the joint itself an undefined integer bin.
- A frame with no valid joint gives an empty column (timeline) / an all-zero heat map (PoTion).
- Zero-range guard: an axis whose range ``hi - lo`` is 0 (only possible with ``margin=0`` and all
  joints on one coordinate) is left out of the scale; if both axes have zero range every bin is 0.
  The reference would divide by zero (``ZeroDivisionError``).
- Clamp: a bin is clipped to ``size - 1``. With ``margin > 0`` the largest bin is
  ``int((range - margin) * size / range) < size``, so the clamp never fires on reference inputs;
  with ``margin = 0`` the extreme joint lands on bin ``size`` and the reference would raise
  ``IndexError``.
"""
from __future__ import annotations

import numpy as np

from pipelines.sampling import TIMELINE_PAD_MODES as PAD_MODES
from pipelines.sampling import timeline_frame_indices


def _check_joints(joints: np.ndarray) -> np.ndarray:
    """Return ``joints`` as float64 [T, V, 2]; raise ValueError on a bad shape or T == 0."""
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"joints must be [T, V, 2] (x, y), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"joints must have T >= 1 frames and V >= 1 joints, got {arr.shape}")
    return arr


def _check_params(size: int, length: int, margin: int, pad: str) -> None:
    """Raise ValueError for a non-positive size/length, a negative margin or an unknown pad."""
    if int(size) < 1 or int(length) < 1:
        raise ValueError(f"size and length must be >= 1, got size={size}, length={length}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")


def normalise_frame(px: np.ndarray, py: np.ndarray, size: int, margin: int) -> tuple:
    """Bin one frame's integer joint coordinates into ``[0, size)`` with one isotropic scale.

    Source: per-frame block of ``Janie1996/FER_BGER@b6d53bd:Gesture/pre/x_y_root_size_length.py
    x_y1`` (also ``x_y_one_potion.py x_y``); the module docstring lists our guards.

    Args:
        px, py: float64 [V] integer-valued coordinates, NaN (or +-inf) for a missing joint.
        size: number of bins; margin: integer units added on each side of the min/max box.

    Returns:
        (nx, ny, valid): int64 [V] bins (0 where not valid) and bool [V] valid mask (both
        coordinates finite).
    """
    valid = np.isfinite(px) & np.isfinite(py)
    nx = np.zeros(px.shape, dtype=np.int64)
    ny = np.zeros(py.shape, dtype=np.int64)
    if not valid.any():
        return nx, ny, valid
    x, y = px[valid], py[valid]
    lo_x, lo_y = x.min() - margin, y.min() - margin
    ranges = (x.max() + margin - lo_x, y.max() + margin - lo_y)
    scales = [size / r for r in ranges if r > 0]  # zero-range guard
    scale = min(scales) if scales else 0.0
    nx[valid] = np.minimum(np.trunc((x - lo_x) * scale), size - 1)
    ny[valid] = np.minimum(np.trunc((y - lo_y) * scale), size - 1)
    return nx, ny, valid


def _frame_bins(px: np.ndarray, py: np.ndarray, size: int, margin: int) -> np.ndarray:
    """Bins of every frame: int64 [T, V, 2] (nx, ny), -1 for missing joints."""
    bins = np.full(px.shape + (2,), -1, dtype=np.int64)
    for t in range(px.shape[0]):
        nx, ny, valid = normalise_frame(px[t], py[t], size, margin)
        bins[t, valid, 0] = nx[valid]
        bins[t, valid, 1] = ny[valid]
    return bins


def skeleton_timeline(
    joints: np.ndarray,
    size: int = 64,
    length: int = 300,
    offset: tuple = (1000.0, 50.0),
    margin: int = 5,
    pad: str = "faithful",
) -> np.ndarray:
    """ACCM timeline image of a 2-D skeleton sequence (seed spec 1.7).

    Source: ``Janie1996/FER_BGER@b6d53bd:Gesture/pre/x_y_root_size_length.py x_y1(xls, joint,
    size, length)`` ([V, 2, size, length]) with the channels re-stacked as in
    ``Gesture/src/x_y_cnn.py main()`` (``m[:, 2j:2j+2] = y[:, j]``).

    Per frame: ``px = int(x + offset[0])``, ``py = int(y + offset[1])`` (Python ``int``,
    truncation toward zero), then the shared normalisation (module docstring) to ``size`` bins.
    Joint j writes the value ``j + 1`` (not 1) at row ``nx_j`` of channel ``2j`` (x track) and at
    row ``ny_j`` of channel ``2j + 1`` (y track), in the frame's column. Columns come from
    :func:`pipelines.sampling.timeline_frame_indices` (``nrows = T + 1`` QUIRK; ``pad="faithful"`` reproduces the
    reference's one-column padding QUIRK, ``"repeat"`` / ``"zero"`` are our alternatives).

    Args:
        joints: float64 [T, V, 2] (x, y) per frame and joint, any unit (reference: Emilya xls
            values; PoseNet pixels with y down work too); NaN (or +-inf) marks a missing joint.
        size: bins per track (rows). length: output columns (time).
        offset: (ox, oy) added before truncation (reference: 1000, 50).
        margin: integer units added around each frame's min/max box (reference: 5).
        pad: "faithful" | "repeat" | "zero", see :func:`pipelines.sampling.timeline_frame_indices`.

    Returns:
        float32 [2V, size, length] (channel, bin, column); 0 where no joint is.

    Raises:
        ValueError: bad joints shape, T == 0, size/length < 1, margin < 0 or unknown pad.
    """
    arr = _check_joints(joints)
    _check_params(size, length, margin, pad)
    px = np.trunc(arr[..., 0] + offset[0])
    py = np.trunc(arr[..., 1] + offset[1])
    bins = _frame_bins(px, py, size, margin)
    cols = timeline_frame_indices(arr.shape[0], length, pad)
    num_joints = arr.shape[1]
    out = np.zeros((2 * num_joints, size, length), dtype=np.float32)
    value = np.arange(1, num_joints + 1, dtype=np.float32)
    for col, frame in enumerate(cols):
        if frame < 0:
            continue
        valid = bins[frame, :, 0] >= 0
        joint = np.nonzero(valid)[0]
        out[2 * joint, bins[frame, joint, 0], col] = value[joint]
        out[2 * joint + 1, bins[frame, joint, 1], col] = value[joint]
    return out


def potion_one_channel(
    joints: np.ndarray,
    size: int = 64,
    length: int | None = None,
    pad: str = "faithful",
) -> np.ndarray:
    """One-channel PoTion ("without timeline" input, seed spec 1.8).

    Source: ``Janie1996/FER_BGER@b6d53bd:Gesture/pre/x_y_one_potion.py x_y(xls, length)`` (one-hot
    maps, module ``size = 64``) then ``Gesture/pre/new_Potion.py get_one_channel``.

    Per frame: ``px = 1000 - (int(x) + 80) * 2``, ``py = 1000 - (int(y) + 10) * 2`` (truncation
    toward zero of the raw coordinate; this flips both axes), then the shared normalisation with
    margin 5 (module docstring), and a one-hot ``H[t, j, nx, ny] = 1`` (first spatial index from
    x). Frames are sampled to ``length`` slots as in :func:`pipelines.sampling.timeline_frame_indices` (same
    ``nrows = T + 1`` and padding QUIRKs). Output ``P_j = sum_t H[t, j] * t / (length - 1)``
    (linear weight 0..1 over the slots, not normalised; a joint visiting one pixel in several
    slots accumulates).

    Args:
        joints: float64 [T, V, 2] (x, y), NaN or +-inf = missing joint (no one-hot in that slot).
        size: heat-map side. length: number of time slots; required, because the reference
            ``__main__`` never defines it (QUIRK). pad: "faithful" | "repeat" | "zero".

    Returns:
        float32 [V, size, size] (joint, x bin, y bin); weights summed in float64. With
        ``length == 1`` the reference divides by zero; here the single slot gets weight 0.

    Raises:
        ValueError: length missing or < 1, bad joints shape, T == 0, size < 1, unknown pad.
    """
    if length is None:
        raise ValueError("length is required (the reference leaves it undefined)")
    arr = _check_joints(joints)
    _check_params(size, length, 5, pad)
    px = 1000.0 - (np.trunc(arr[..., 0]) + 80.0) * 2.0
    py = 1000.0 - (np.trunc(arr[..., 1]) + 10.0) * 2.0
    bins = _frame_bins(px, py, size, 5)
    slots = timeline_frame_indices(arr.shape[0], length, pad)
    acc = np.zeros((arr.shape[1], size, size), dtype=np.float64)
    denom = max(length - 1, 1)  # length == 1: the reference divides by zero; weight 0 here
    for t, frame in enumerate(slots):
        if frame < 0:
            continue
        joint = np.nonzero(bins[frame, :, 0] >= 0)[0]
        np.add.at(acc, (joint, bins[frame, joint, 0], bins[frame, joint, 1]), t / denom)
    return acc.astype(np.float32)
