"""Contact sheet of one shard: look at what an extraction run stored.

    python -m pipelines.preview SHARD [--out PNG] [--rows N] [--sample-id ID] [--layout NAME]

``SHARD`` is one of a shard's files (``clips-NNNNN-of-MMMMM.parquet``,
``videos-NNNNN-of-MMMMM.parquet`` or ``shard-NNNNN-of-MMMMM.h5``) or a run folder (then its first
shard by file name; with ``--sample-id`` every shard of the folder is searched in that order).

**Reading.** The preview reads the two Parquet files of the shard with ``pyarrow`` only (the
``clips`` and ``videos`` tables, :mod:`schemas.shards`); it never opens the HDF5 file, which
holds the same arrays but not the PNG super-images or the label names, so a folder of Parquet
files is enough. Given an ``.h5`` path, its sibling Parquet files are read. Only the columns used
below are read, so columns added by later schema versions do not matter, but the file's
``affectzoo_schema_version`` must be the one this affectzoo reads.

**The sheet.** One row per sample (the first ``--rows`` samples of the shard in storage order,
which is sorted by ``sample_id``, or the one ``--sample-id``). Each row is a header band with
``sample_id | label_name | split``, a caption band naming each tile, then the tiles left to
right:

1. *Super-images* (video and image corpora): one tile per clip, the ``superimage_png`` of the
   clips table decoded as stored (its K face crops tiled row-major, pixel for pixel, no resize).
2. *Skeleton*: the stored keypoints in the layout's bones (:data:`schemas.keypoints.LAYOUTS`),
   joints as filled discs coloured per joint (:func:`joint_colours`), bones in light grey,
   ``SKELETON_SIDE`` pixels square. Video / image corpora: the main person's keypoints of the
   first clip frame that has a full-body crop, drawn on that crop (``fullbody_png`` tile k,
   resized to the tile; source pixels map through ``body_boxes``); when no clip frame has one,
   the keypoints of clip 0 frame 0 on a black canvas of the stored ``frame_shape``, letterboxed.
   Joints with a non-finite coordinate or a score below ``min_score`` are not drawn. Skeleton
   corpora (``frame_shape`` 0): the middle stored frame ``(num_frames - 1) // 2`` of the videos
   table's ``keypoints`` seen from the side: y up (the gaits' vertical axis), against x or z,
   whichever spans more over the sample's frames (the walking direction), scaled so that the
   whole gait fits the tile within ``SKELETON_PAD`` pixels.
3. *Timeline* (ACCM input, seed_specs 1.7), :func:`timeline_image`: the x tracks (channels 2j)
   above the y tracks (channels 2j+1), separated by a grey row; a pixel (position bin, time
   column) takes the colour of the joint found there (the highest joint index when several
   share a bin), black where none is; resized to ``TIMELINE_SIDE`` square, nearest neighbour.
4. *Embedding* (skeleton corpora with 16 ProxEmo joints): the VS-GCNN image
   (:func:`pipelines.represent.embedding.gait_embedding` of ``keypoints[:num_frames]``, seed_specs
   2.4; R, G, B = x, y, z, rows = time, columns = joints) rounded to uint8, 244 pixels square.

**Geometry** (:func:`sheet_geometry`): tiles of column i are ``w_i`` wide (the widest of that
column over the rows), a row's tile band is ``panel_h`` high (the tallest tile), tiles are
top-left aligned in their cell. ``width = GAP + sum(w_i + GAP)``,
``row_h = HEADER_H + CAPTION_H + panel_h + GAP``, ``height = GAP + rows * row_h``; tile i of
row r has its top-left corner at ``x = GAP + sum_{j<i}(w_j + GAP)``,
``y = GAP + r * row_h + HEADER_H + CAPTION_H``. Background ``BACKGROUND`` (dark grey).

Keypoint layout: ``--layout`` or inferred from V and the corpus kind (:func:`infer_layout`): the
shards do not name it.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import pyarrow as pa

from pipelines.shardset import Shard, manifest_beside, shards_in_folder
from schemas.keypoints import LAYOUTS, Layout
from schemas.shards import ShardSchemaError

__all__ = ["PreviewError", "ShardFiles", "SampleView", "ClipView", "resolve_shard", "read_samples",
           "infer_layout", "joint_colours", "draw_skeleton", "skeleton_tile", "timeline_image",
           "embedding_tile", "sample_tiles", "sheet_geometry", "SheetGeometry", "SkeletonTile", "render_sheet", "write_sheet", "main",
           "GAP", "HEADER_H", "CAPTION_H", "SKELETON_SIDE", "TIMELINE_SIDE", "BACKGROUND"]

GAP = 6
"""Pixels around and between tiles and rows."""
HEADER_H = 20
"""Height of a row's header band (``sample_id | label_name | split``)."""
CAPTION_H = 16
"""Height of a row's caption band (one caption above each tile)."""
SKELETON_SIDE = 224
"""Side of the skeleton tile in pixels."""
TIMELINE_SIDE = 224
"""Side of the timeline tile in pixels."""
BACKGROUND = (40, 40, 40)
"""RGB of the sheet behind the tiles (and of the letterbox around a frame canvas)."""
BONE_COLOUR = (200, 200, 200)
JOINT_RADIUS = 3
BONE_THICKNESS = 2
SEPARATOR = (96, 96, 96)
"""RGB of the row between the x and y tracks of the timeline image."""
SKELETON_PAD = 12
"""Margin in pixels kept around a skeleton-corpus gait on its canvas."""

_VIDEO_COLUMNS = ("sample_id", "label_name", "split", "num_frames", "keypoints", "timeline", "frame_shape")
_CLIP_COLUMNS = ("sample_id", "clip_index", "superimage_png", "superimage_layout", "keypoints",
                 "body_boxes", "fullbody_png")
#: Layout guessed from (skeleton corpus?, V); the shards store V but not the layout's name.
_LAYOUT_BY_JOINTS = {(False, 18): "openpose18", (False, 17): "coco17", (True, 16): "proxemo16",
                     (True, 25): "kinect25", (True, 28): "emilya28", (True, 18): "openpose18",
                     (True, 17): "coco17"}


class PreviewError(ValueError):
    """A shard cannot be previewed: missing file, not a shard, missing column, unknown sample."""


# --------------------------------------------------------------------------------------- files
#: One shard's files (:class:`pipelines.shardset.Shard`; the preview reads its Parquet tables).
ShardFiles = Shard


def _shard_of_file(path: Path) -> Shard:
    try:
        files = Shard.of_file(path)
    except ValueError as exc:
        raise PreviewError(str(exc)) from None
    for p in (files.clips, files.videos):
        if not p.is_file():
            raise PreviewError(f"{p}: not found; the preview reads a shard's Parquet files ({path} given)")
    return files


def resolve_shard(path: str | Path) -> list[ShardFiles]:
    """The shard(s) a ``SHARD`` argument names.

    Args:
        path: a shard file (``clips-*.parquet``, ``videos-*.parquet``, ``shard-*.h5``) or a run
            folder holding ``videos-*.parquet`` files.

    Returns:
        One :class:`ShardFiles` for a file; every shard of a folder, sorted by file name.

    Raises:
        PreviewError: the path does not exist, is not a shard file name, a sibling Parquet file is
            missing, or the folder holds no shard.
    """
    path = Path(path)
    if path.is_dir():
        found = shards_in_folder(path)
        if not found:
            raise PreviewError(f"{path}: no videos-NNNNN-of-MMMMM.parquet shard in this folder")
        return [_shard_of_file(s.videos) for s in found]
    if not path.exists():
        raise PreviewError(f"{path}: no such file or folder")
    return [_shard_of_file(path)]


def _check_table_file(files: Shard, table: str) -> pa.Schema:
    """The Arrow schema of the shard's ``table`` after checking that it is this version's
    ``table`` shard (:meth:`pipelines.shardset.Shard.schema`)."""
    try:
        return files.schema(table)
    except ShardSchemaError:
        raise
    except ValueError as exc:
        raise PreviewError(str(exc)) from None


def _read(files: Shard, table: str, columns: Sequence[str], ids: Optional[list[str]] = None) -> pa.Table:
    try:
        return files.read_table(table, columns, ids)
    except ShardSchemaError:
        raise
    except KeyError as exc:
        raise PreviewError(exc.args[0]) from None
    except ValueError as exc:
        raise PreviewError(str(exc)) from None


# ------------------------------------------------------------------------------------- samples
@dataclass
class ClipView:
    """One clip row: ``superimage`` uint8 [rows*S, cols*S, 3] RGB as stored, its ``layout``,
    ``keypoints`` float32 [K, V, 3] (source pixels), ``body_boxes`` float32 [K, 4] (source
    pixels, NaN = no crop) and ``fullbody`` uint8 [K, S, S, 3] RGB."""

    clip_index: int
    superimage: np.ndarray
    layout: dict
    keypoints: np.ndarray
    body_boxes: np.ndarray
    fullbody: np.ndarray


@dataclass
class SampleView:
    """What the sheet shows of one sample (videos row + its clip rows, clip order).

    ``keypoints`` float32 [T, V, 3], ``timeline`` float32 [2V, size, length], ``frame_shape``
    (H, W) source pixels (0 for skeleton corpora).
    """

    sample_id: str
    label_name: str
    split: str
    num_frames: int
    keypoints: np.ndarray
    timeline: np.ndarray
    frame_shape: tuple[int, int]
    clips: list[ClipView] = field(default_factory=list)
    #: what produced the stored keypoints, from the run's manifest (e.g. ``PoseNet COCO-17``); "" unknown
    pose_source: str = ""

    @property
    def is_skeleton(self) -> bool:
        """True for skeleton corpora (no frames: ``frame_shape`` is 0)."""
        return min(self.frame_shape) <= 0


def _decode_png(data: bytes, where: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data or b"", np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise PreviewError(f"{where}: not a decodable PNG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _tensors(table: pa.Table, names: Sequence[str]) -> dict[str, np.ndarray]:
    return {n: table.column(n).combine_chunks().to_numpy_ndarray() for n in names}


def _clip_views(table: pa.Table, path: Path) -> dict[str, list[ClipView]]:
    t = _tensors(table, ("keypoints", "body_boxes"))
    cols = {c: table.column(c).to_pylist() for c in ("sample_id", "clip_index", "superimage_png",
                                                     "superimage_layout", "fullbody_png")}
    out: dict[str, list[ClipView]] = {}
    for i, sid in enumerate(cols["sample_id"]):
        where = f"{path} (sample {sid}, clip {cols['clip_index'][i]})"
        layout = json.loads(cols["superimage_layout"][i])
        fullbody_image = _decode_png(cols["fullbody_png"][i], f"{where} fullbody_png")
        try:
            from pipelines.represent.superimage import untile_superimage  # imports torch: only when used

            fullbody = untile_superimage(fullbody_image, layout)
        except (ValueError, KeyError) as exc:
            raise PreviewError(f"{where}: fullbody_png does not match superimage_layout ({exc})") from exc
        out.setdefault(sid, []).append(ClipView(int(cols["clip_index"][i]),
                                                _decode_png(cols["superimage_png"][i], f"{where} superimage_png"),
                                                layout, t["keypoints"][i], t["body_boxes"][i], fullbody))
    for clips in out.values():
        clips.sort(key=lambda c: c.clip_index)
    return out


def read_samples(files: ShardFiles, rows: int = 4, sample_id: Optional[str] = None) -> list[SampleView]:
    """Read what the sheet shows of a shard's first ``rows`` samples (or of ``sample_id``).

    Only ``pyarrow`` is used; only the needed columns are read.

    Returns:
        Up to ``rows`` :class:`SampleView` in storage order (empty when ``sample_id`` is not in
        this shard).

    Raises:
        PreviewError: not a Parquet file, not an affectzoo shard, a needed column missing, an
            undecodable PNG. ShardSchemaError: another schema version.
    """
    videos = _read(files, "videos", _VIDEO_COLUMNS)
    _check_table_file(files, "clips")
    ids = videos.column("sample_id").to_pylist()
    pick = [ids.index(sample_id)] if sample_id is not None and sample_id in ids else []
    if sample_id is None:
        pick = list(range(min(int(rows), len(ids))))
    if not pick:
        return []
    videos = videos.take(pick)
    chosen = [ids[i] for i in pick]
    clips = _clip_views(_read(files, "clips", _CLIP_COLUMNS, chosen), files.clips)
    t = _tensors(videos, ("keypoints", "timeline", "frame_shape"))
    cols = {c: videos.column(c).to_pylist() for c in ("label_name", "split", "num_frames")}
    return [SampleView(sid, cols["label_name"][i], cols["split"][i], int(cols["num_frames"][i]),
                       t["keypoints"][i], t["timeline"][i], tuple(int(v) for v in t["frame_shape"][i]),
                       clips.get(sid, []))
            for i, sid in enumerate(chosen)]


# ------------------------------------------------------------------------------------- drawing
def infer_layout(num_joints: int, skeleton_corpus: bool) -> Optional[Layout]:
    """The keypoint layout of stored keypoints with V = ``num_joints`` joints.

    Video and image corpora store OpenPose-18 (V = 18); skeleton corpora their card's joints:
    16 = ProxEmo (EWalk, ELMD), 25 = Kinect v2, 28 = Emilya (no bones known). Returns None when
    V matches no layout (joints are then drawn without bones).
    """
    name = _LAYOUT_BY_JOINTS.get((bool(skeleton_corpus), int(num_joints)))
    return LAYOUTS[name] if name else None


def joint_colours(num_joints: int) -> np.ndarray:
    """uint8 [V, 3] RGB: joint j gets ``COLORMAP_TURBO`` at ``round(255 * j / (V - 1))`` (0 for V = 1).

    The same colours mark a joint in the skeleton tile and in the timeline image.
    """
    levels = np.round(np.linspace(0, 255, max(int(num_joints), 1))).astype(np.uint8)[:, None]
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_TURBO)[:, 0]
    return np.ascontiguousarray(bgr[:, ::-1])


def draw_skeleton(img: np.ndarray, points: np.ndarray, valid: np.ndarray, edges, colours: np.ndarray,
                  radius: int = JOINT_RADIUS, thickness: int = BONE_THICKNESS) -> np.ndarray:
    """Draw bones then joints on ``img`` in place (OpenCV, no anti-aliasing: exact colours).

    Args:
        img: uint8 [H, W, 3] RGB, drawn on in place.
        points: float [V, 2] (x, y) in ``img`` pixels (x right, y down).
        valid: bool [V]; only bones between two valid joints and valid joints are drawn.
        edges: ``(a, b)`` joint-index pairs (a layout's ``edges``).
        colours: uint8 [V, 3] RGB per joint; bones use :data:`BONE_COLOUR`.
        radius: joint disc radius; thickness: bone line width, in pixels.

    Returns:
        ``img``. Joints are drawn in index order, so a later joint covers an earlier one.
    """
    pts = np.round(np.nan_to_num(np.asarray(points, np.float64))).astype(np.int64)
    for a, b in edges:
        if valid[a] and valid[b]:
            cv2.line(img, (int(pts[a, 0]), int(pts[a, 1])), (int(pts[b, 0]), int(pts[b, 1])),
                     BONE_COLOUR, thickness, cv2.LINE_8)
    for j in np.flatnonzero(valid):
        cv2.circle(img, (int(pts[j, 0]), int(pts[j, 1])), radius, tuple(int(c) for c in colours[j]), -1, cv2.LINE_8)
    return img


@dataclass
class SkeletonTile:
    """A skeleton tile: ``image`` uint8 [S, S, 3], the ``background`` it was drawn on, the joint
    positions ``points`` float [V, 2] (tile pixels), ``valid`` bool [V], the ``layout`` (None =
    unknown) and a ``caption``."""

    image: np.ndarray
    background: np.ndarray
    points: np.ndarray
    valid: np.ndarray
    layout: Optional[Layout]
    caption: str


def _video_placement(sample: SampleView, side: int):
    """(background, keypoints [V, 3] source pixels, source->tile scale (sx, sy), offset (ox, oy), what)."""
    for clip in sample.clips:
        for k, box in enumerate(clip.body_boxes):
            if np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]:
                bg = cv2.resize(clip.fullbody[k], (side, side), interpolation=cv2.INTER_LINEAR)
                sx, sy = side / float(box[2] - box[0]), side / float(box[3] - box[1])
                return bg, clip.keypoints[k], (sx, sy), (-box[0] * sx, -box[1] * sy), f"c{clip.clip_index} k{k}"
    bg = np.empty((side, side, 3), np.uint8)
    bg[:] = BACKGROUND
    kp = sample.clips[0].keypoints[0] if sample.clips else sample.keypoints[0]
    h, w = sample.frame_shape
    s = side / float(max(h, w))
    ox, oy = (side - w * s) / 2.0, (side - h * s) / 2.0
    bg[int(round(oy)):int(round(oy + h * s)), int(round(ox)):int(round(ox + w * s))] = 0
    return bg, kp, (s, s), (ox, oy), "c0 k0, no crop"


def _gait_placement(sample: SampleView, side: int):
    """Side view of a skeleton-corpus gait: (background, keypoints [V, 2] tile-axis coordinates,
    scale, offset, what). The vertical axis is y (up in the gait, down in the tile); the
    horizontal one is x or z, whichever spans more over the sample's frames."""
    t = max(sample.num_frames, 1)
    gait = np.asarray(sample.keypoints[:t], np.float64)
    spans = [np.nanmax(gait[..., a]) - np.nanmin(gait[..., a]) if np.isfinite(gait[..., a]).any() else 0.0
             for a in (0, 2)]
    axis = 2 if spans[1] > spans[0] else 0
    xy = np.stack([gait[..., axis], -gait[..., 1]], axis=-1)  # y up -> y down
    ok = np.isfinite(xy).all(axis=-1)
    bg = np.zeros((side, side, 3), np.uint8)
    frame = (t - 1) // 2
    what = f"{'zx'[axis == 0]}-y view, frame {frame}"
    if not ok.any():
        return bg, xy[frame], (1.0, 1.0), (0.0, 0.0), what
    lo, hi = xy[ok].min(axis=0), xy[ok].max(axis=0)
    s = (side - 2 * SKELETON_PAD) / max(float((hi - lo).max()), 1e-9)
    centre = (lo + hi) / 2.0
    return bg, xy[frame], (s, s), (side / 2.0 - centre[0] * s, side / 2.0 - centre[1] * s), what


def skeleton_tile(sample: SampleView, layout: Optional[Layout] = None, side: int = SKELETON_SIDE,
                  min_score: float = 0.2) -> SkeletonTile:
    """The skeleton tile of a sample (placement rules: module docstring, item 2).

    Args:
        sample: from :func:`read_samples`.
        layout: keypoint layout; default :func:`infer_layout`.
        side: tile side in pixels.
        min_score: video / image corpora: joints scoring below are not drawn (the third channel
            of skeleton corpora is z, not a score, and is not used).

    Returns:
        :class:`SkeletonTile`; ``points`` are the joints in tile pixels: video / image corpora
        ``(x - x1) * S / (x2 - x1)``, ``(y - y1) * S / (y2 - y1)`` with the crop's body box
        (or the letterbox scale and offset on a frame canvas); skeleton corpora the side view.
    """
    skeleton = sample.is_skeleton
    num_joints = sample.keypoints.shape[-2]
    layout = layout or infer_layout(num_joints, skeleton)
    if layout is not None and layout.num_joints != num_joints:
        raise PreviewError(f"layout {layout.name!r} has {layout.num_joints} joints, the shard stores {num_joints}")
    if skeleton:
        bg, kp, (sx, sy), (ox, oy), what = _gait_placement(sample, side)
        valid = np.isfinite(kp[:, :2]).all(axis=1)
    else:
        bg, kp, (sx, sy), (ox, oy), what = _video_placement(sample, side)
        kp = np.asarray(kp, np.float64)
        valid = np.isfinite(kp).all(axis=1) & (np.nan_to_num(kp[:, 2], nan=-1.0) >= min_score)
    points = np.stack([kp[:, 0] * sx + ox, kp[:, 1] * sy + oy], axis=1)
    image = draw_skeleton(bg.copy(), points, valid, layout.edges if layout else (), joint_colours(num_joints))
    name = layout.name if layout else f"{num_joints} joints, no bones"
    if sample.pose_source and not skeleton:
        name += f" {sample.pose_source}"
    return SkeletonTile(image, bg, points, valid, layout, f"{name} {what}")


def timeline_image(timeline: np.ndarray) -> np.ndarray:
    """RGB rendering of an ACCM timeline at its own resolution.

    Args:
        timeline: float [2V, size, length]: channel 2j = joint j's x track, 2j+1 its y track
            (:func:`pipelines.represent.timeline.skeleton_timeline`), non-zero where the joint is.

    Returns:
        uint8 [2*size + 1, length, 3]: rows 0..size-1 the x tracks, row ``size`` the separator
        (:data:`SEPARATOR`), then the y tracks; pixel (bin, column) has the
        :func:`joint_colours` colour of the highest joint index present there, black if none.

    Raises:
        PreviewError: not a 3-D array with an even channel count.
    """
    tl = np.asarray(timeline)
    if tl.ndim != 3 or tl.shape[0] % 2:
        raise PreviewError(f"timeline must be [2V, size, length], got {tl.shape}")
    num_joints, size, length = tl.shape[0] // 2, tl.shape[1], tl.shape[2]
    lut = np.concatenate([np.zeros((1, 3), np.uint8), joint_colours(num_joints)])
    ranks = np.arange(1, num_joints + 1)[:, None, None]
    out = np.empty((2 * size + 1, length, 3), np.uint8)
    out[size] = SEPARATOR
    for axis, rows in ((0, slice(0, size)), (1, slice(size + 1, 2 * size + 1))):
        present = np.nan_to_num(tl[axis::2]) != 0
        out[rows] = lut[(present * ranks).max(axis=0)]
    return out


def embedding_tile(sample: SampleView) -> tuple[Optional[np.ndarray], str]:
    """(uint8 [244, 244, 3] RGB or None, caption) of a skeleton-corpus sample's VS-GCNN image.

    ``gait_embedding(keypoints[:num_frames])`` (values 0..255) rounded and clipped to uint8; None
    with the reason in the caption when the keypoints are not a 16-joint (x, y, z) gait, have
    fewer than 2 frames or hold NaN.
    """
    try:
        from pipelines.represent.embedding import gait_embedding

        image = gait_embedding(np.asarray(sample.keypoints[: sample.num_frames], np.float64),
                               name=f"{sample.sample_id} keypoints")
    except ValueError as exc:
        return None, f"embedding n/a: {str(exc).split(': ', 1)[-1][:60]}"
    return np.clip(np.round(image), 0, 255).astype(np.uint8), "embedding VS-GCNN x,y,z"


# --------------------------------------------------------------------------------------- sheet
@dataclass(frozen=True)
class SheetGeometry:
    """Pixel geometry of a sheet (formulas in the module docstring)."""

    height: int
    width: int
    row_h: int
    panel_h: int
    xs: tuple[int, ...]
    widths: tuple[int, ...]

    def tile_origin(self, row: int, column: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of tile ``column`` of sample row ``row``."""
        return GAP + row * self.row_h + HEADER_H + CAPTION_H, self.xs[column]


def sheet_geometry(sizes: Sequence[Sequence[tuple[int, int]]]) -> SheetGeometry:
    """Geometry of a sheet whose row r has tiles of ``(h, w)`` = ``sizes[r][i]``.

    Raises:
        PreviewError: no rows, or rows with different tile counts.
    """
    if not sizes or len({len(r) for r in sizes}) != 1:
        raise PreviewError(f"every row needs the same tiles, got counts {[len(r) for r in sizes]}")
    widths = tuple(max(r[i][1] for r in sizes) for i in range(len(sizes[0])))
    panel_h = max(h for r in sizes for h, _ in r)
    xs = tuple(GAP + sum(w + GAP for w in widths[:i]) for i in range(len(widths)))
    row_h = HEADER_H + CAPTION_H + panel_h + GAP
    return SheetGeometry(GAP + len(sizes) * row_h, GAP + sum(w + GAP for w in widths), row_h, panel_h, xs, widths)


def _text(img: np.ndarray, text: str, x: int, baseline: int, max_w: int, scale: float = 0.4) -> None:
    """Write ``text`` (cut to fit ``max_w`` pixels) in white with its baseline at ``baseline``."""
    while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > max_w:
        text = text[:-2] + "~" if len(text) > 2 else ""
    cv2.putText(img, text, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _blank(h: int, w: int) -> np.ndarray:
    """A black uint8 [h, w, 3] tile (a missing clip row, an embedding that cannot be computed)."""
    return np.zeros((h, w, 3), np.uint8)


def sample_tiles(sample: SampleView, num_clips: int, layout: Optional[Layout] = None,
                 min_score: float = 0.2) -> list[tuple[str, np.ndarray]]:
    """The row of one sample: ``[(caption, uint8 [h, w, 3] RGB), ...]`` in sheet order.

    Video / image corpora: ``num_clips`` super-image tiles (black when a clip row is missing),
    skeleton, timeline. Skeleton corpora: skeleton, timeline, embedding.
    """
    tiles: list[tuple[str, np.ndarray]] = []
    if not sample.is_skeleton:
        ref = sample.clips[0].superimage.shape[:2] if sample.clips else (1, 1)
        by_index = {c.clip_index: c for c in sample.clips}
        for c in range(num_clips):
            clip = by_index.get(c)
            tiles.append((f"clip {c}", clip.superimage if clip is not None else _blank(*ref)))
    skel = skeleton_tile(sample, layout, min_score=min_score)
    tiles.append((skel.caption, skel.image))
    tl = cv2.resize(timeline_image(sample.timeline), (TIMELINE_SIDE, TIMELINE_SIDE), interpolation=cv2.INTER_NEAREST)
    tiles.append((f"timeline x | y ({sample.timeline.shape[1]}x{sample.timeline.shape[2]})", tl))
    if sample.is_skeleton:
        emb, caption = embedding_tile(sample)
        if emb is None:
            from pipelines.represent.embedding import EMBEDDING_SIZE
        tiles.append((caption, emb if emb is not None else _blank(EMBEDDING_SIZE, EMBEDDING_SIZE)))
    return tiles


def render_sheet(samples: Sequence[SampleView], layout: Optional[Layout] = None,
                 min_score: float = 0.2) -> np.ndarray:
    """The contact sheet of ``samples``: uint8 [height, width, 3] RGB (module docstring).

    Raises:
        PreviewError: no samples, or samples of different corpus kinds.
    """
    if not samples:
        raise PreviewError("no samples to preview")
    if len({s.is_skeleton for s in samples}) != 1:
        raise PreviewError("the samples mix skeleton and video corpora")
    num_clips = max((len(s.clips) for s in samples), default=0)
    rows = [sample_tiles(s, num_clips, layout, min_score) for s in samples]
    geo = sheet_geometry([[t.shape[:2] for _, t in row] for row in rows])
    sheet = np.empty((geo.height, geo.width, 3), np.uint8)
    sheet[:] = BACKGROUND
    for r, (sample, row) in enumerate(zip(samples, rows)):
        top = GAP + r * geo.row_h
        _text(sheet, f"{sample.sample_id} | {sample.label_name or '-'} | {sample.split or '-'}", GAP,
              top + HEADER_H - 6, geo.width - 2 * GAP, 0.45)
        for i, (caption, tile) in enumerate(row):
            y, x = geo.tile_origin(r, i)
            _text(sheet, caption, x, y - 4, geo.widths[i])
            sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return sheet


def pose_source(files) -> str:
    """What made the stored keypoints, read from the ``manifest.json`` beside a shard's files
    (``extractors.pose.name``): e.g. ``from PoseNet`` (the pipeline stores PoseNet's COCO-17
    joints in the OpenPose-18 order, the neck the shoulders' midpoint, so the sheet reads
    "openpose18 from PoseNet"; the name is the extractor's
    :attr:`extractors.registry.Entry.display_name`, or the manifest's name for an extractor this
    affectzoo does not know). "" when no manifest names it."""
    paths = [Path(files.videos), Path(files.clips)] if isinstance(files, ShardFiles) else [Path(files)]
    for p in paths:
        manifest = manifest_beside(p)
        if manifest is not None:
            try:
                name = manifest.get("extractors", {}).get("pose", {}).get("name", "")
            except AttributeError:
                return ""
            return _pose_source_of(name)
    return ""


def _pose_source_of(name: str) -> str:
    if not name:
        return ""
    from extractors import registry  # imports torch: only when a manifest names an extractor

    try:
        return f"from {registry.resolve(name, role='pose').display_name or name}"
    except ValueError:
        return name


def write_sheet(shard: str | Path, out: str | Path | None = None, rows: int = 4, sample_id: Optional[str] = None,
                layout: Optional[str] = None, min_score: float = 0.2) -> Path:
    """Render the contact sheet of ``shard`` and write it as a PNG.

    Args:
        shard: a shard file or run folder (:func:`resolve_shard`).
        out: PNG path; default ``preview-<NNNNN-of-MMMMM>.png`` in the current folder.
        rows: samples shown (the shard's first ones); ignored with ``sample_id``.
        sample_id: show only this sample (searched in every shard of a folder).
        layout: keypoint layout name (:data:`schemas.keypoints.LAYOUTS`); default inferred.

    Returns:
        The PNG path.

    Raises:
        PreviewError, ShardSchemaError: see :func:`resolve_shard` and :func:`read_samples`;
            ``sample_id`` in no shard; ``rows`` < 1; unknown layout; the PNG cannot be written.
    """
    if int(rows) < 1:
        raise PreviewError(f"--rows must be >= 1, got {rows}")
    if layout is not None and layout not in LAYOUTS:
        raise PreviewError(f"unknown keypoint layout {layout!r}; known: {', '.join(LAYOUTS)}")
    shards = resolve_shard(shard)
    samples: list[SampleView] = []
    used = shards[0]
    for files in (shards if sample_id is not None else shards[:1]):
        samples = read_samples(files, rows, sample_id)
        used = files
        if samples:
            break
    if not samples:
        what = f"sample {sample_id!r} is in no shard of" if sample_id is not None else "no samples in"
        raise PreviewError(f"{what} {shard}")
    source = pose_source(used)
    for s in samples:
        s.pose_source = source
    sheet = render_sheet(samples, LAYOUTS[layout] if layout else None, min_score)
    out = Path(out) if out is not None else Path(f"preview-{used.stem}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise PreviewError(f"{out}: cannot write the PNG")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status (0 written, 2 bad input)."""
    from pipelines import cli

    parser = argparse.ArgumentParser(
        prog="python -m pipelines.preview", formatter_class=cli.HelpFormatter,
        description="Render a contact sheet PNG of one shard: per sample its face super-images, a skeleton "
                    "overlay, the skeleton timeline and (skeleton corpora) the VS-GCNN image embedding. "
                    "Reads the shard's Parquet files with pyarrow only.")
    parser.add_argument("shard", help="a shard file (clips-/videos-NNNNN-of-MMMMM.parquet or shard-NNNNN-of-MMMMM.h5; "
                                      "an .h5 path previews its sibling Parquet files) or a run folder (then its "
                                      "first shard by file name; every shard when --sample-id is given)")
    parser.add_argument("--out", help="PNG to write (default: preview-NNNNN-of-MMMMM.png in the current folder)")
    parser.add_argument("--rows", type=int, default=4, help="samples shown, one per row (default 4)")
    parser.add_argument("--sample-id", help="show only this sample")
    parser.add_argument("--layout", choices=sorted(LAYOUTS),
                        help="keypoint layout of the stored keypoints (default: inferred from the joint count)")
    parser.add_argument("--min-score", type=float, default=0.2,
                        help="video corpora: joints scoring below are not drawn (default 0.2)")
    args = parser.parse_args(argv)
    try:
        out = write_sheet(args.shard, args.out, args.rows, args.sample_id, args.layout, args.min_score)
    except (PreviewError, ShardSchemaError) as exc:
        print(f"pipelines.preview: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
