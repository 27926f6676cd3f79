"""``python -m pipelines.preview``: the contact sheet shows the stored arrays, where documented.

Expected pixels are computed here from the Parquet files directly (PNG decode, untiling, the
body-box mapping), not through the module's own readers.
"""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines import preview as P
from pipelines.represent.embedding import gait_embedding
from pipelines.represent.superimage import untile_superimage
from schemas.shards import ShardSchemaError
from test_shard_readers import sample_run, step_run


@pytest.fixture(scope="module")
def sample_shards(repo, tmp_path_factory):
    return sample_run(repo, tmp_path_factory)


def _png(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _tables(folder):
    videos = pq.read_table(sorted(folder.glob("videos-*.parquet"))[0])
    clips = pq.read_table(sorted(folder.glob("clips-*.parquet"))[0])
    return videos, clips


def _clips_of(clips, sample_id):
    rows = [i for i, s in enumerate(clips.column("sample_id").to_pylist()) if s == sample_id]
    return sorted(rows, key=lambda i: clips.column("clip_index")[i].as_py())


def _read_sheet(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _geometry(widths, heights, rows):
    """The documented formulas (module docstring of pipelines.preview)."""
    panel_h = max(heights)
    row_h = P.HEADER_H + P.CAPTION_H + panel_h + P.GAP
    xs = [P.GAP + sum(w + P.GAP for w in widths[:i]) for i in range(len(widths))]
    return P.GAP + rows * row_h, P.GAP + sum(w + P.GAP for w in widths), row_h, xs


def test_sheet_grid_and_super_image_tiles_are_the_stored_pngs(sample_shards, tmp_path):
    out = tmp_path / "sheet.png"
    assert P.main([str(sample_shards), "--out", str(out), "--rows", "4"]) == 0
    sheet = _read_sheet(out)
    videos, clips = _tables(sample_shards)
    ids = videos.column("sample_id").to_pylist()[:4]
    num_clips = max(len(_clips_of(clips, s)) for s in ids)
    sh, sw = _png(clips.column("superimage_png")[0].as_py()).shape[:2]
    widths = [sw] * num_clips + [P.SKELETON_SIDE, P.TIMELINE_SIDE]
    height, width, row_h, xs = _geometry(widths, [sh, P.SKELETON_SIDE, P.TIMELINE_SIDE], len(ids))
    assert sheet.shape == (height, width, 3)
    for r, sid in enumerate(ids):
        y = P.GAP + r * row_h + P.HEADER_H + P.CAPTION_H
        for c, i in enumerate(_clips_of(clips, sid)):
            stored = _png(clips.column("superimage_png")[i].as_py())
            np.testing.assert_array_equal(sheet[y:y + sh, xs[c]:xs[c] + sw], stored, err_msg=f"{sid} clip {c}")
            assert tuple(sheet[y, xs[c] + sw]) == P.BACKGROUND  # the gap right of the tile
        assert (sheet[y - P.CAPTION_H - P.HEADER_H:y - P.CAPTION_H, : width // 2] != P.BACKGROUND).any()  # header text


def _isolated(points, valid, min_dist):
    idx = np.flatnonzero(valid)
    out = []
    for j in idx:
        d = np.hypot(*(points[idx] - points[j]).T)
        if np.sort(d)[1:2].min(initial=np.inf) > min_dist:
            out.append(j)
    return out


def _near_drawing(shape, points, valid, edges, radius, thickness):
    """bool [H, W]: pixels within reach of a drawn joint disc or bone line (+1 px of raster slack)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    near = np.zeros(shape, bool)
    pts = np.round(points)
    for j in np.flatnonzero(valid):
        near |= np.hypot(xx - pts[j, 0], yy - pts[j, 1]) <= radius + 1
    for a, b in edges:
        if valid[a] and valid[b]:
            p, q = pts[a], pts[b]
            d = q - p
            t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
            near |= np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1]) <= thickness / 2 + 1.5
    return near


def test_skeleton_tile_is_the_crop_with_joints_at_the_stored_keypoints(sample_shards, tmp_path):
    videos, clips = _tables(sample_shards)
    sid = videos.column("sample_id")[0].as_py()
    # expected: first clip frame with a finite body box, its crop and keypoints mapped through the box
    side = P.SKELETON_SIDE
    for i in _clips_of(clips, sid):
        boxes = clips.column("body_boxes").combine_chunks().to_numpy_ndarray()[i]
        ks = [k for k, b in enumerate(boxes) if np.isfinite(b).all()]
        if ks:
            k = ks[0]
            layout = json.loads(clips.column("superimage_layout")[i].as_py())
            crop = untile_superimage(_png(clips.column("fullbody_png")[i].as_py()), layout)[k]
            kp = clips.column("keypoints").combine_chunks().to_numpy_ndarray()[i][k].astype(np.float64)
            x1, y1, x2, y2 = boxes[k].astype(np.float64)
            break
    else:
        pytest.fail("no clip frame with a full-body crop in the sample shards")
    expected = np.stack([(kp[:, 0] - x1) * side / (x2 - x1), (kp[:, 1] - y1) * side / (y2 - y1)], axis=1)
    valid = np.isfinite(kp).all(axis=1) & (np.nan_to_num(kp[:, 2], nan=-1) >= 0.2)
    assert valid.sum() >= 5

    view = P.read_samples(P.resolve_shard(sample_shards)[0], rows=1)[0]
    tile = P.skeleton_tile(view)
    assert tile.layout.name == "openpose18"
    np.testing.assert_array_equal(tile.valid, valid)
    np.testing.assert_allclose(tile.points[valid], expected[valid], atol=1e-4)
    np.testing.assert_array_equal(tile.background, cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR))

    colours = P.joint_colours(len(kp))
    isolated = _isolated(expected, valid, 2 * P.JOINT_RADIUS + 2)
    assert len(isolated) >= 3
    for j in isolated:
        x, y = np.round(expected[j]).astype(int)
        assert tuple(tile.image[y, x]) == tuple(colours[j]), f"joint {j}"
    changed = (tile.image != tile.background).any(axis=-1)
    assert changed.any()
    near = _near_drawing(changed.shape, expected, valid, tile.layout.edges, P.JOINT_RADIUS, P.BONE_THICKNESS)
    assert not (changed & ~near).any(), "pixels changed away from the keypoints and bones"

    # the same tile sits in the sheet at the documented place (after the C super-images)
    out = tmp_path / "one.png"
    assert P.main([str(sorted(sample_shards.glob("clips-*.parquet"))[0]), "--out", str(out), "--rows", "1"]) == 0
    sheet = _read_sheet(out)
    sh, sw = _png(clips.column("superimage_png")[0].as_py()).shape[:2]
    num_clips = len(_clips_of(clips, sid))
    _, _, _, xs = _geometry([sw] * num_clips + [side, P.TIMELINE_SIDE], [sh, side], 1)
    y = P.GAP + P.HEADER_H + P.CAPTION_H
    np.testing.assert_array_equal(sheet[y:y + side, xs[num_clips]:xs[num_clips] + side], tile.image)


def test_timeline_image_colours_each_track_by_joint():
    tl = np.zeros((6, 4, 5), np.float32)  # V = 3 joints, 4 bins, 5 columns
    tl[0, 1, 0] = 1.0   # joint 0, x track, bin 1, column 0
    tl[4, 1, 0] = 3.0   # joint 2 in the same x bin: the higher joint wins
    tl[3, 3, 4] = 2.0   # joint 1, y track, bin 3, column 4
    img = P.timeline_image(tl)
    colours = P.joint_colours(3)
    assert img.shape == (9, 5, 3) and img.dtype == np.uint8
    assert tuple(img[1, 0]) == tuple(colours[2])
    assert tuple(img[4 + 1 + 3, 4]) == tuple(colours[1])
    assert (img[4] == P.SEPARATOR).all()
    drawn = (img != 0).any(axis=-1)
    drawn[4] = False
    assert drawn.sum() == 2
    with pytest.raises(P.PreviewError, match="2V, size, length"):
        P.timeline_image(np.zeros((3, 4, 5)))


def test_stored_timeline_pixels_follow_the_channels(sample_shards):
    videos, _ = _tables(sample_shards)
    tl = videos.column("timeline").combine_chunks().to_numpy_ndarray()[0]
    img = P.timeline_image(tl)
    size = tl.shape[1]
    np.testing.assert_array_equal((img[:size] != 0).any(-1), (tl[0::2] != 0).any(0))
    np.testing.assert_array_equal((img[size + 1:] != 0).any(-1), (tl[1::2] != 0).any(0))


def test_skeleton_corpus_sheet_shows_the_vsgcnn_embedding(repo, shared, tmp_path_factory, tmp_path):
    run = step_run(repo, shared, tmp_path_factory)
    out = tmp_path / "gait.png"
    assert P.main([str(run), "--out", str(out), "--rows", "2"]) == 0
    sheet = _read_sheet(out)
    videos, _ = _tables(run)
    emb_side = 244
    height, width, row_h, xs = _geometry([P.SKELETON_SIDE, P.TIMELINE_SIDE, emb_side],
                                         [P.SKELETON_SIDE, P.TIMELINE_SIDE, emb_side], 2)
    assert sheet.shape == (height, width, 3)
    kp = videos.column("keypoints").combine_chunks().to_numpy_ndarray()
    for r in range(2):
        n = videos.column("num_frames")[r].as_py()
        expected = np.clip(np.round(gait_embedding(kp[r, :n].astype(np.float64))), 0, 255).astype(np.uint8)
        y = P.GAP + r * row_h + P.HEADER_H + P.CAPTION_H
        np.testing.assert_array_equal(sheet[y:y + emb_side, xs[2]:xs[2] + emb_side], expected)
    view = P.read_samples(P.resolve_shard(run)[0], rows=1)[0]
    tile = P.skeleton_tile(view)
    assert view.is_skeleton and tile.layout.name == "proxemo16"
    frame = (view.num_frames - 1) // 2
    assert tile.valid.sum() == np.isfinite(kp[0, frame, :, :2]).all(axis=1).sum() > 0
    colours = P.joint_colours(16)
    drawn = {tuple(c) for c in tile.image.reshape(-1, 3)}
    assert {tuple(colours[j]) for j in np.flatnonzero(tile.valid)} & drawn
    inside = tile.points[tile.valid]
    assert (inside >= P.SKELETON_PAD - 1).all() and (inside <= P.SKELETON_SIDE - P.SKELETON_PAD + 1).all()


def test_cli_module_writes_the_first_shard_of_a_folder(repo, sample_shards, tmp_path):
    cmd = [sys.executable, "-m", "pipelines.preview", str(sample_shards), "--rows", "1"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    stem = sorted(sample_shards.glob("videos-*.parquet"))[0].name[len("videos-"):-len(".parquet")]
    assert run.stdout.strip() == f"preview-{stem}.png" and (tmp_path / f"preview-{stem}.png").is_file()
    help_run = subprocess.run([sys.executable, "-m", "pipelines.preview", "--help"], cwd=repo,
                              capture_output=True, text=True, timeout=300)
    assert "run folder (then its first shard" in " ".join(help_run.stdout.split())


def _copy_shard(src, dst, **tables):
    """Copy the first shard of ``src`` into ``dst``; ``tables[name]`` replaces that Parquet table."""
    dst.mkdir()
    for name in ("videos", "clips"):
        path = sorted(src.glob(f"{name}-*.parquet"))[0]
        table = tables.get(name, pq.read_table(path))
        pq.write_table(table, dst / path.name)
    return dst


def test_errors_name_the_file_and_the_reason(sample_shards, tmp_path, capsys):
    missing = tmp_path / "nope" / "videos-00000-of-00001.parquet"
    with pytest.raises(P.PreviewError, match=f"{missing}: no such file"):
        P.write_sheet(missing, tmp_path / "x.png")
    assert P.main([str(missing), "--out", str(tmp_path / "x.png")]) == 2
    assert f"error: {missing}: no such file" in capsys.readouterr().err

    other = tmp_path / "features.h5"
    other.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(P.PreviewError, match=f"{other}: not an affectzoo shard file"):
        P.write_sheet(other)

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "videos-00000-of-00001.parquet").write_text("not parquet")
    (fake / "clips-00000-of-00001.parquet").write_text("not parquet")
    (fake / "shard-00000-of-00001.h5").write_bytes(b"")
    with pytest.raises(P.PreviewError, match="videos-00000-of-00001.parquet: not a Parquet file"):
        P.write_sheet(fake / "shard-00000-of-00001.h5")

    videos, clips = _tables(sample_shards)
    plain = _copy_shard(sample_shards, tmp_path / "plain", videos=videos.replace_schema_metadata({}))
    with pytest.raises(P.PreviewError, match="not an affectzoo shard .*no affectzoo_schema_version"):
        P.write_sheet(plain)

    meta = dict(videos.schema.metadata)
    old = _copy_shard(sample_shards, tmp_path / "old",
                      videos=videos.replace_schema_metadata({**meta, b"affectzoo_schema_version": b"1"}))
    with pytest.raises(ShardSchemaError, match=r"videos-\d{5}-of-\d{5}\.parquet: schema version 1, this affectzoo reads"):
        P.write_sheet(old)
    assert P.main([str(old)]) == 2 and "schema version 1" in capsys.readouterr().err

    lacking = _copy_shard(sample_shards, tmp_path / "lacking", videos=videos.drop_columns(["timeline"]))
    with pytest.raises(P.PreviewError, match=r"lacks columns \['timeline'\]"):
        P.write_sheet(lacking)

    with pytest.raises(P.PreviewError, match="sample 'no/such#id' is in no shard"):
        P.write_sheet(sample_shards, sample_id="no/such#id")
    with pytest.raises(P.PreviewError, match="--rows must be >= 1"):
        P.write_sheet(sample_shards, rows=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(P.PreviewError, match="empty: no videos-NNNNN-of-MMMMM.parquet shard"):
        P.write_sheet(tmp_path / "empty")


def test_sample_id_picks_one_row(sample_shards, tmp_path):
    videos, clips = _tables(sample_shards)
    sid = videos.column("sample_id").to_pylist()[-1]
    sh = _png(clips.column("superimage_png")[0].as_py()).shape[0]
    out = P.write_sheet(sample_shards, tmp_path / "one.png", sample_id=sid)
    views = P.read_samples(P.resolve_shard(sample_shards)[0], sample_id=sid)
    assert [v.sample_id for v in views] == [sid]
    panel_h = max(sh, P.SKELETON_SIDE, P.TIMELINE_SIDE)
    assert _read_sheet(out).shape[0] == P.GAP + P.HEADER_H + P.CAPTION_H + panel_h + P.GAP


def test_without_a_crop_the_skeleton_is_drawn_on_a_canvas_of_the_frame_shape(sample_shards):
    view = P.read_samples(P.resolve_shard(sample_shards)[0], rows=1)[0]
    for clip in view.clips:
        clip.body_boxes = np.full_like(clip.body_boxes, np.nan)  # as when no clip frame was decoded
    tile = P.skeleton_tile(view)
    h, w = view.frame_shape
    s = P.SKELETON_SIDE / max(h, w)
    ox, oy = (P.SKELETON_SIDE - w * s) / 2, (P.SKELETON_SIDE - h * s) / 2
    kp = view.clips[0].keypoints[0].astype(np.float64)
    np.testing.assert_allclose(tile.points[tile.valid], (kp[:, :2] * s + [ox, oy])[tile.valid], atol=1e-4)
    top, left = int(round(oy)), int(round(ox))
    assert (tile.background[top:int(round(oy + h * s)), left:int(round(ox + w * s))] == 0).all()
    if top > 0:
        assert (tile.background[:top] == P.BACKGROUND).all()  # letterbox
    assert tile.caption.endswith("no crop") and (tile.image != tile.background).any()
