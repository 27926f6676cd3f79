"""Arrow schemas and HDF5 layouts of affectzoo shards (schema version 4).

A run writes, per shard ``NNNNN`` of ``M``:

* ``clips-NNNNN-of-MMMMM.parquet``: one row per clip (a window's C clips of K frames each):
  ids, labels, frame indices, timestamps, the main person's face boxes and keypoints at those
  frames, and the face **super-image** (the K face crops tiled into one PNG, layout recorded).
* ``videos-NNNNN-of-MMMMM.parquet``: one row per sample (video or window): ids, labels, the
  sampled frame indices and timestamps, the main person's OpenPose-18 keypoints track and the
  **skeleton timeline** (FER_BGER ACCM input, seed_specs §1.7).
* ``shard-NNNNN-of-MMMMM.h5``: the same dense arrays for the trainer (see :data:`H5_LAYOUT`).
* ``shard-NNNNN-of-MMMMM.done.json``: written last; row counts and sha256 of each file.

Tensors in Parquet use Arrow's ``fixed_shape_tensor`` extension type (row-major), so any Arrow
reader gets their shapes; images are PNG bytes, so a shard can be viewed without affectzoo.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa

#: Version 2 added ``frame_shape``, ``tracks``, ``pose_features`` and the per-class ``targets``
#: to the videos table and HDF5 group, full-body clip crops (``fullbody``, ``body_boxes``) and
#: the per-row shape check (:func:`check_h5`). Version 3 added to the HDF5 layout
#: ``videos/timestamps_s`` (the sampled frames' times, for CAER kinematics at load time), the
#: SISTCM redraw pool ``videos/face_pool`` / ``videos/face_pool_found`` (the face crop of every
#: sampled frame of the window, card ``face_pool``) and ``clips/faces_masked`` (the clip faces
#: with the synthetic medical mask, TSN ``--mask``, card ``face_mask``); switched-off
#: representations keep their datasets with a zero-length frame axis
#: (:attr:`ShardShapes.pool_frames` / :attr:`ShardShapes.masked_frames` = 0). Version 4 made
#: ``tracks`` one track per *person* (identity across shots, the main person = most screen
#: time) and added ``shots``, ``person_ids`` and ``main_present`` to the videos table and
#: group, ``shots`` and ``face_person`` (whose face each clip crop is) to the clips, and the
#: HDF5-only 3-D datasets of a 3-D pose extractor (``--body blazepose-ghum``, seed 000):
#: ``videos/joints3d`` float32 [P, T, W, 8] (the ``tracks`` persons' BlazePose keypoints, channels
#: :data:`schemas.keypoints.BLAZEPOSE_CHANNELS`: image x, y px, visibility, presence, z, and
#: metric world x, y, z in metres; NaN where a person is not seen), ``videos/gait`` float32
#: [T, 16, 3] (the main person's ProxEmo-16 joints in the gait frame: y up, root-centred, body
#: height 0.92, gaps interpolated; zeros when the person is never fully seen; the EWalk layout,
#: so ``zoo.train vsgcnn --input gait`` trains on it) and ``videos/gait_embedding`` float32
#: [244, 244, 3] (ProxEmo's image embedding of that gait); with a 2-D extractor their axes are 0.
SCHEMA_VERSION = 4


@dataclass(frozen=True)
class ShardShapes:
    """Sizes that fix the tensor shapes of one run's shards.

    Attributes:
        frames: T, sampled frames per sample (window).
        joints: V, joints of the stored keypoint layout (18 for OpenPose-18).
        clips: C, clips per sample.
        frames_per_clip: K, frames per clip.
        face_size: side in pixels of each square face crop.
        timeline_channels: 2V, channels of the skeleton timeline.
        timeline_size: rows of the timeline (position bins).
        timeline_length: columns of the timeline (time).
        persons: P, people kept in ``tracks`` (the CAER features use 2).
        classes: L, length of the ``targets`` vector (the card's label count).
        feature_frames: frames of the CAER pose-feature sequence (64).
        pool_frames: frames of the face redraw pool ``videos/face_pool``: T when the card's
            ``face_pool`` is on, 0 when off (the datasets then hold no pixels).
        masked_frames: frames of ``clips/faces_masked``: K when the card's ``face_mask`` is on,
            0 when off.
        world_joints: W, joints of the 3-D pose layout stored in ``videos/joints3d`` (33 with
            ``blazepose-ghum``), 0 with a 2-D pose extractor (the 3-D datasets then hold
            nothing: zero-length joint and frame axes).
    """

    frames: int
    joints: int
    clips: int
    frames_per_clip: int
    face_size: int
    timeline_size: int
    timeline_length: int
    persons: int = 2
    classes: int = 1
    feature_frames: int = 64
    pool_frames: int = 0
    masked_frames: int = 0
    world_joints: int = 0

    @property
    def timeline_channels(self) -> int:
        return 2 * self.joints

    @property
    def gait_frames(self) -> int:
        """Frames of ``videos/gait``: T with a 3-D pose extractor, else 0."""
        return self.frames if self.world_joints else 0

    @property
    def gait_embedding_size(self) -> int:
        """Side of ``videos/gait_embedding`` (ProxEmo's 244) with a 3-D pose extractor, else 0."""
        return 244 if self.world_joints else 0

    @property
    def feature_dim(self) -> int:
        """Values per frame of the CAER pose features: P x 17 COCO joints x 7 (seed_specs 5.2)."""
        return self.persons * 17 * 7


#: Arrow value types of the numpy dtypes a :class:`Column` may hold.
_ARROW = {"float32": pa.float32(), "int32": pa.int32(), "int16": pa.int16(), "int64": pa.int64(),
          "bool": pa.bool_(), "str": pa.string(), "bytes": pa.binary()}


def _tensor(shape: tuple[int, ...], value_type=pa.float32()) -> pa.DataType:
    return pa.fixed_shape_tensor(value_type, list(shape))


def _bool_list(length) -> Callable[[ShardShapes], pa.DataType]:
    return lambda s: pa.list_(pa.bool_(), length(s))


@dataclass(frozen=True)
class Column:
    """One stored output of a representation: a Parquet column, an HDF5 dataset, or both.

    Attributes:
        table: ``videos`` (one row per sample) or ``clips`` (one row per clip).
        name: column name; the HDF5 dataset is ``<table>/<name>``.
        dtype: numpy dtype of the values (``str`` UTF-8 text, ``bytes`` PNG bytes).
        shape: per-row shape as a function of :class:`ShardShapes` (``()`` for a scalar).
        representation: the representation that fills it (a name of
            :data:`pipelines.representations.REPRESENTATIONS`).
        parquet: the Arrow type as a function of :class:`ShardShapes`; ``"tensor"`` derives it
            (a scalar of ``dtype``, else ``fixed_shape_tensor(dtype, shape)``); None = HDF5 only.
        h5: whether the HDF5 shard holds it.
        h5_dtype: the HDF5 dtype when it differs from ``dtype`` (ids are int64 there).
        nullable: whether the Parquet column may hold nulls.
        h5_source: the row key the HDF5 dataset is filled from when it is not ``name`` (the
            Parquet column keeps the row's own value: ``targets`` may be empty there and
            ``fold`` null, while HDF5 needs a dense vector and -1).
    """

    table: str
    name: str
    dtype: str
    shape: Callable[[ShardShapes], tuple[int, ...]]
    representation: str
    parquet: Callable[[ShardShapes], pa.DataType] | str | None = "tensor"
    h5: bool = True
    h5_dtype: str | None = None
    nullable: bool = True
    h5_source: str | None = None

    def arrow_field(self, s: ShardShapes) -> pa.Field:
        """The Parquet field of this column for one run's shapes."""
        if callable(self.parquet):
            kind = self.parquet(s)
        else:
            shape = self.shape(s)
            kind = _tensor(shape, _ARROW[self.dtype]) if shape else _ARROW[self.dtype]
        return pa.field(self.name, kind, nullable=self.nullable)


def _scalar(s: ShardShapes) -> tuple:
    return ()


def _ids(table: str) -> list[Column]:
    """The id and label columns every row carries (representation ``ids``)."""
    def col(name, dtype="str", h5=False, h5_dtype=None):
        return Column(table, name, dtype, _scalar, "ids", h5=h5, h5_dtype=h5_dtype, nullable=False)

    return [col("corpus"), col("sample_id", h5=True), col("video_id"), col("uri"), col("split", h5=True),
            col("label", "int16", h5=True, h5_dtype="int64"), col("label_name")]


def _face(s: ShardShapes) -> tuple:
    return (s.frames_per_clip, s.face_size, s.face_size, 3)


#: Every stored output, per table in Parquet column order (HDF5-only datasets interleaved):
#: :func:`video_schema`, :func:`clip_schema` and :data:`H5_LAYOUT` are derived from it, and
#: :data:`pipelines.representations.REPRESENTATIONS` says which module fills each one.
COLUMNS: tuple[Column, ...] = tuple(_ids("videos") + [
    Column("videos", "start_s", "float32", _scalar, "window", h5=False),
    Column("videos", "end_s", "float32", _scalar, "window", h5=False),
    Column("videos", "fps", "float32", _scalar, "window", h5=False),
    Column("videos", "num_frames", "int32", _scalar, "window"),
    Column("videos", "frame_indices", "int32", lambda s: (s.frames,), "window", h5=False),
    Column("videos", "timestamps_s", "float32", lambda s: (s.frames,), "window"),
    Column("videos", "keypoints", "float32", lambda s: (s.frames, s.joints, 3), "keypoints"),
    Column("videos", "persons", "int16", lambda s: (s.frames,), "keypoints", h5=False),
    Column("videos", "timeline", "float32", lambda s: (s.timeline_channels, s.timeline_size, s.timeline_length),
           "timeline"),
    Column("videos", "frame_shape", "int32", lambda s: (2,), "window"),
    Column("videos", "tracks", "float32", lambda s: (s.persons, s.frames, 17, 3), "persons"),
    Column("videos", "pose_features", "float32", lambda s: (s.feature_frames, s.feature_dim), "pose_features"),
    Column("videos", "shots", "int32", lambda s: (s.frames,), "persons"),
    Column("videos", "person_ids", "int32", lambda s: (s.persons,), "persons"),
    Column("videos", "main_present", "bool", lambda s: (s.frames,), "persons", parquet=_bool_list(lambda s: s.frames)),
    Column("videos", "targets", "float32", lambda s: (s.classes,), "annotations",
           parquet=lambda s: pa.list_(pa.float32()), h5_source="targets_vector"),
    Column("videos", "valence", "float32", _scalar, "annotations", h5=False),
    Column("videos", "arousal", "float32", _scalar, "annotations", h5=False),
    Column("videos", "fold", "int16", _scalar, "annotations", h5_source="fold_index"),
    Column("videos", "face_pool", "uint8", lambda s: (s.pool_frames, s.face_size, s.face_size, 3), "face_pool",
           parquet=None),
    Column("videos", "face_pool_found", "bool", lambda s: (s.pool_frames,), "face_pool", parquet=None),
    Column("videos", "joints3d", "float32", lambda s: (s.persons, s.gait_frames, s.world_joints, 8), "joints3d",
           parquet=None),
    Column("videos", "gait", "float32", lambda s: (s.gait_frames, 16, 3), "joints3d", parquet=None),
    Column("videos", "gait_embedding", "float32", lambda s: (s.gait_embedding_size, s.gait_embedding_size, 3),
           "joints3d", parquet=None),
] + _ids("clips") + [
    Column("clips", "clip_index", "int16", _scalar, "window", h5_dtype="int64", nullable=False),
    Column("clips", "fold", "int16", _scalar, "annotations", parquet=None, h5_source="fold_index"),
    Column("clips", "frame_indices", "int32", lambda s: (s.frames_per_clip,), "window", h5=False),
    Column("clips", "timestamps_s", "float32", lambda s: (s.frames_per_clip,), "window", h5=False),
    Column("clips", "face_boxes", "float32", lambda s: (s.frames_per_clip, 4), "faces"),
    Column("clips", "face_scores", "float32", lambda s: (s.frames_per_clip,), "faces", h5=False),
    Column("clips", "face_found", "bool", lambda s: (s.frames_per_clip,), "faces",
           parquet=_bool_list(lambda s: s.frames_per_clip)),
    Column("clips", "keypoints", "float32", lambda s: (s.frames_per_clip, s.joints, 3), "keypoints", h5=False),
    Column("clips", "superimage_png", "bytes", _scalar, "faces", h5=False),
    Column("clips", "superimage_layout", "str", _scalar, "faces", h5=False),
    Column("clips", "body_boxes", "float32", lambda s: (s.frames_per_clip, 4), "body"),
    Column("clips", "fullbody_png", "bytes", _scalar, "body", h5=False),
    Column("clips", "face_person", "int32", lambda s: (s.frames_per_clip,), "faces"),
    Column("clips", "shots", "int32", lambda s: (s.frames_per_clip,), "persons"),
    Column("clips", "faces", "uint8", _face, "faces", parquet=None),
    Column("clips", "fullbody", "uint8", _face, "body", parquet=None),
    Column("clips", "body", "uint8", _face, "body", parquet=None),
    Column("clips", "faces_masked", "uint8", lambda s: (s.masked_frames, s.face_size, s.face_size, 3),
           "faces_masked", parquet=None),
])


def columns_of(table: str | None = None, representation: str | None = None) -> list[Column]:
    """The :data:`COLUMNS` of one table and / or one representation, in table order."""
    return [c for c in COLUMNS if table in (None, c.table) and representation in (None, c.representation)]


def _schema(table: str, s: ShardShapes) -> pa.Schema:
    fields = [c.arrow_field(s) for c in columns_of(table) if c.parquet is not None]
    return pa.schema(fields, metadata={b"affectzoo_schema_version": str(SCHEMA_VERSION).encode(),
                                       b"table": table.encode()})


def clip_schema(s: ShardShapes) -> pa.Schema:
    """Arrow schema of ``clips-*.parquet`` (one row per clip), derived from :data:`COLUMNS`.

    Columns beyond the ids: ``clip_index`` (int16), ``frame_indices`` int32 [K] (0-based frame
    numbers of the source video), ``timestamps_s`` float32 [K] (seconds, ``index / avg_fps``),
    ``face_boxes`` float32 [K, 4] (x1, y1, x2, y2 source pixels, NaN when no face),
    ``face_scores`` float32 [K], ``face_found`` bool list [K], ``keypoints`` float32 [K, V, 3]
    (main person, OpenPose-18, x, y, score in pixels, NaN absent), ``superimage_png`` (PNG bytes
    of the tiled K face crops, RGB), ``superimage_layout`` (JSON: k, rows, cols, tile_h,
    tile_w, order), ``body_boxes`` float32 [K, 4] (the square full-body crop boxes, source
    pixels, NaN without a frame or where the main person is not seen), ``fullbody_png`` (the K
    full-body crops tiled the same way: the TSN ``fullbody`` input), ``face_person`` int32 [K]
    (the person id whose face each crop is: the main person's id, 0 for an annotated box, -1 =
    no face; a crop is never another person's) and ``shots`` int32 [K] (shot of each frame). The HDF5 shard also holds ``clips/body``: the same crops with the
    face box (+10 %) blacked out, the TSN ``body`` input.
    """
    return _schema("clips", s)


def video_schema(s: ShardShapes) -> pa.Schema:
    """Arrow schema of ``videos-*.parquet`` (one row per sample), derived from :data:`COLUMNS`.

    Columns beyond the ids: ``start_s`` / ``end_s`` (float32 window bounds, seconds),
    ``fps`` (float32, decoder average), ``num_frames`` (int32, frames actually decoded, <= T),
    ``frame_indices`` int32 [T] (-1 = padding), ``timestamps_s`` float32 [T],
    ``keypoints`` float32 [T, V, 3] (main person track), ``persons`` int16 [T] (poses found per
    frame), ``timeline`` float32 [2V, size, length], ``frame_shape`` int32 [2] (H, W of the
    source frames in pixels; 0 for skeleton corpora), ``tracks`` float32 [P, T, 17, 3] (the P
    most prominent COCO-17 person tracks, x, y, score in source pixels, NaN absent; PoseNet
    order, most prominent first) and ``pose_features`` float32 [64, P*17*7] (the CAER input,
    seed_specs 5.1-5.2, all zero when no track passes its quality gates), ``shots`` int32 [T]
    (0-based shot index of each sampled frame, -1 = padding), ``person_ids`` int32 [P] (the
    window's person id of each ``tracks`` row, -1 = empty; ``tracks`` rows are persons, the
    most screen time first, row 0 = the main person) and ``main_present`` bool [T] (the main
    person has a pose in that frame). Annotation columns (added in place in
    version 1; null / empty where a corpus has none; not in the HDF5 layout): ``targets``
    float32 list (one value per class: multi-hot or soft labels, empty for one hard label),
    ``valence`` / ``arousal`` (float32, the corpus's scale) and ``fold`` (int16, 1-based).
    Skeleton corpora store their own joints (V from the card) with (x, y, z) in ``keypoints``.
    """
    return _schema("videos", s)


#: HDF5 layout: dataset path -> (dtype, per-row shape as a function of ShardShapes), derived
#: from :data:`COLUMNS`. Every dataset is chunked one row at a time and LZF-compressed; string
#: ids are UTF-8.
H5_LAYOUT = {f"{c.table}/{c.name}": (c.h5_dtype or c.dtype, c.shape) for c in COLUMNS if c.h5}

#: The row key each HDF5 dataset is filled from (:attr:`Column.h5_source`, else its name).
H5_SOURCE = {f"{c.table}/{c.name}": c.h5_source or c.name for c in COLUMNS if c.h5}


class ShardSchemaError(ValueError):
    """A shard on disk does not match the layout this version of affectzoo reads."""


def check_schema_version(found, where) -> None:
    """Refuse shards of another schema version (the one place this is compared).

    Args:
        found: the stored version (manifest ``schema_version``, Parquet metadata bytes or str,
            HDF5 attribute); None when the file records none.
        where: the file, for the message.

    Raises:
        ShardSchemaError: one line naming ``where``, the version it has, the one this affectzoo
            reads, and that the extraction must be re-run.
    """
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    try:
        same = found is not None and int(found) == SCHEMA_VERSION
    except (TypeError, ValueError):
        same = False
    if not same:
        has = "no schema version" if found is None else f"schema version {found}"
        raise ShardSchemaError(f"{where}: {has}, this affectzoo reads {SCHEMA_VERSION}; re-run the "
                               "extraction (python -m pipelines.extract) with this version")


def check_h5(h5file, path: str) -> None:
    """Validate an open HDF5 shard against :data:`H5_LAYOUT` and :data:`SCHEMA_VERSION`.

    The shard's ``shapes`` attribute (JSON of :class:`ShardShapes`) gives the expected per-row
    shape of every dataset.

    Raises:
        ShardSchemaError: naming ``path``, the field and what was expected (wrong version,
            missing dataset, wrong per-row shape or dtype, row counts that disagree).
    """
    import json

    import numpy as np

    check_schema_version(h5file.attrs.get("affectzoo_schema_version"), path)
    shapes = ShardShapes(**json.loads(h5file.attrs["shapes"])) if "shapes" in h5file.attrs else None
    for group in ("videos", "clips"):
        names = [k.split("/", 1)[1] for k in H5_LAYOUT if k.startswith(group + "/")]
        missing = [n for n in names if f"{group}/{n}" not in h5file]
        if missing:
            raise ShardSchemaError(f"{path}: missing datasets {group}/{missing}")
        counts = {n: h5file[f"{group}/{n}"].shape[0] for n in names}
        if len(set(counts.values())) != 1:
            raise ShardSchemaError(f"{path}: row counts differ in {group}: {counts}")
        for n in names if shapes else ():
            dtype, shape_of = H5_LAYOUT[f"{group}/{n}"]
            ds = h5file[f"{group}/{n}"]
            if tuple(ds.shape[1:]) != shape_of(shapes):
                raise ShardSchemaError(f"{path}: {group}/{n} rows have shape {tuple(ds.shape[1:])}, "
                                       f"expected {shape_of(shapes)}")
            if dtype != "str" and ds.dtype != np.dtype(dtype):
                raise ShardSchemaError(f"{path}: {group}/{n} has dtype {ds.dtype}, expected {dtype}")
