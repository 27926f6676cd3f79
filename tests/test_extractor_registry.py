"""The extractor registry (extractors/registry.py): names, aliases, weights, layouts, the
infer/load/warmup calls on real frames of the shipped clips, and the Beam handlers built on it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from extractors import registry as R
from extractors import weights as W
from schemas.keypoints import COCO17, LAYOUTS, OPENPOSE18

NAMES = ("posenet-mobilenet-v1-075", "openpose-body", "blazepose-ghum", "blazeface-front",
         "blazeface-back", "dbface-small", "dbface-large")


def _frame(repo, clip="group_event_smiling", index=0):
    cap = cv2.VideoCapture(str(repo / "samples" / "videos" / f"{clip}.mp4"))
    for _ in range(index + 1):
        ok, bgr = cap.read()
        assert ok, clip
    cap.release()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_names_roles_and_aliases():
    assert R.names() == NAMES
    assert R.names("pose") == NAMES[:3] and R.names("face") == NAMES[3:]
    for alias, name in (("posenet", "posenet-mobilenet-v1-075"), ("openpose", "openpose-body"),
                        ("blazeface", "blazeface-front"), ("dbface", "dbface-small"),
                        ("PoseNet", "posenet-mobilenet-v1-075"), (" blazeface-back ", "blazeface-back")):
        assert R.resolve(alias).name == name
    for name in NAMES:
        entry = R.resolve(name, role=R.EXTRACTORS[name].role)
        assert entry is R.EXTRACTORS[name] and entry.role in R.ROLES
    with pytest.raises(ValueError, match="role"):
        R.names("hand")


def test_unknown_names_suggest_close_matches():
    with pytest.raises(R.UnknownExtractorError, match=r"did you mean 'blazeface'") as err:
        R.resolve("blazefce")
    assert isinstance(err.value, ValueError)
    with pytest.raises(R.UnknownExtractorError, match=r"did you mean 'openpose'"):
        R.resolve("openpos", role="pose")
    with pytest.raises(R.UnknownExtractorError, match="is a face extractor, not a pose extractor"):
        R.resolve("dbface", role="pose")
    with pytest.raises(R.UnknownExtractorError, match="known: posenet-mobilenet-v1-075, openpose-body"):
        R.resolve("mediapipe-holistic", role="pose")


def test_weight_files_and_layouts_are_registered():
    for entry in R.entries():
        assert entry.name in entry.weight_files
        assert set(entry.weight_files) <= set(W.REGISTRY), entry.name
        if entry.role == "pose":
            assert entry.keypoint_layout in LAYOUTS and entry.landmarks == 0
        else:
            assert entry.keypoint_layout is None and entry.landmarks in (5, 6)
        assert entry.preferred_dtype in (torch.float32, torch.float16, torch.bfloat16)
        assert entry.dtype_for("cpu") == torch.float32  # CPU always float32
    assert R.EXTRACTORS["blazeface-front"].weight_files == ("blazeface-front", "blazeface-anchors")
    assert R.EXTRACTORS["posenet-mobilenet-v1-075"].keypoint_layout == "coco17"
    assert R.EXTRACTORS["openpose-body"].keypoint_layout == "openpose18"


def _model(entry, shared_root, monkeypatch):
    """The entry's model: registered weights where they are at hand (DBFace-Small-H from the
    test-only shared folder), else the real network with random weights (OpenPose, DBFace
    large: no licence to ship them); returns (model, real_weights)."""
    if entry.name == "dbface-small":
        folder = shared_root / "data" / "weights"
        if not (folder / "dbfaceSmallH.pth").is_file():
            pytest.skip("dbfaceSmallH.pth is absent")
        monkeypatch.setenv(W.ENV_DIR, str(folder))
        return entry.load("cpu"), True
    try:
        return entry.load("cpu"), True
    except W.WeightsNotFoundError:
        from extractors import dbface, openpose

        torch.manual_seed(0)
        model = openpose.BodyPoseModel() if entry.name == "openpose-body" else dbface.DBFace("large")
        for p in model.parameters():
            p.data.mul_(0.05)
        return model.eval(), False


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_returns_its_layout_on_a_real_frame(name, repo, monkeypatch, request):
    entry = R.EXTRACTORS[name]
    shared_root = request.getfixturevalue("shared") if name == "dbface-small" else None
    model, real = _model(entry, shared_root, monkeypatch)
    frame = _frame(repo, "group_event_smiling" if entry.role == "face" else "hikers_walking")
    if not real:  # random weights find "peaks" everywhere: keep their decoding small
        frame = np.ascontiguousarray(frame[::4, ::4])
    options = {"scale_search": (0.25,)} if name == "openpose-body" else {}
    chunk = np.stack([frame, frame[:, ::-1]])
    results = entry.infer(model, chunk, device="cpu", **options)
    assert len(results) == 2
    for res in results:
        if entry.role == "pose":
            scores, kps = res
            joints = LAYOUTS[entry.keypoint_layout].num_joints
            assert scores.dtype == np.float32 and kps.dtype == np.float32
            channels = 8 if entry.keypoint_layout == "blazepose33" else 3  # + presence, z, world xyz
            assert scores.shape == (len(kps),) and kps.shape[1:] == (joints, channels)
            assert R.to_coco17(kps, entry.keypoint_layout).shape == (len(kps), 17, 3)
            if real:
                assert len(kps) >= 1
                seen = kps[..., :2][np.isfinite(kps[..., 0])]
                assert (seen[:, 0] <= frame.shape[1] + 16).all() and (seen[:, 1] <= frame.shape[0] + 16).all()
        else:
            assert res.dtype == np.float32 and res.ndim == 2 and res.shape[1] == 5 + 2 * entry.landmarks
            if real and name != "blazeface-front":  # the front model is for close-ups
                assert len(res) >= 1
    assert [len(r[0] if entry.role == "pose" else r) for r in results] == \
        [len(r[0] if entry.role == "pose" else r) for r in entry.infer(model, [frame, chunk[1]], **options)]
    entry.warmup(model, "cpu", size=(64, 96), batch=2, **options)


def test_to_coco17_picks_joints_by_name():
    op18 = np.arange(2 * 18 * 3, dtype=np.float32).reshape(2, 18, 3)
    coco = R.to_coco17(op18, "openpose18")
    assert coco.shape == (2, 17, 3)
    for j, n in enumerate(COCO17):
        assert np.array_equal(coco[:, j], op18[:, OPENPOSE18.index(n)])
    assert R.to_coco17(np.zeros((0, 18, 3)), "openpose18").shape == (0, 17, 3)
    with pytest.raises(ValueError, match="mpii16"):
        R.to_coco17(np.zeros((1, 16, 3)), "mpii16")
    with pytest.raises(ValueError, match=r"\[P, 17, C\]"):
        R.to_coco17(np.zeros((1, 18, 3)), "coco17")


def test_prepare_device_is_explicit():
    before = torch.get_num_threads()
    try:
        assert R.prepare_device("cpu", torch_threads=1) == torch.device("cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            R.prepare_device("cuda")


def test_handlers_run_the_registry_entries(repo):
    from extractors.handlers import BlazeFaceHandler, ExtractorHandler, PoseNetHandler

    frame = _frame(repo, "hikers_walking")
    handler = PoseNetHandler(scale_factor=0.5, max_batch_size=2, torch_threads=0)
    assert handler.entry is R.EXTRACTORS["posenet-mobilenet-v1-075"]
    model = handler.load_model()
    (res,) = handler.run_inference([frame], model)
    want = R.EXTRACTORS["posenet-mobilenet-v1-075"].infer(model, [frame], scale_factor=0.5)[0]
    assert res.model_id == "posenet-mobilenet-v1-075"
    assert np.array_equal(res.inference[1], want[1]) and len(want[0]) >= 1
    face = ExtractorHandler("blazeface", role="face")
    assert face.extractor_name == "blazeface-front" and face.get_metrics_namespace() == "affectzoo_blazeface-front"
    with pytest.raises(R.UnknownExtractorError, match="did you mean"):
        ExtractorHandler("blazefase")
    with pytest.raises(ValueError, match="variant"):
        BlazeFaceHandler(variant="side")
    with pytest.raises(ValueError, match="max_batch_size"):
        PoseNetHandler(max_batch_size=0)


@pytest.mark.parametrize("name,tol_px", [("blazeface-back", 0.1), ("dbface-small", 0.2)])
def test_preferred_half_precision_keeps_parity(name, tol_px, repo, monkeypatch, request):
    """The stated tolerance of a float16 ``preferred_dtype``, checked with CPU autocast (the
    CUDA autocast is the same float16 arithmetic): same detections, boxes within tol_px."""
    from extractors import _device as D

    entry = R.EXTRACTORS[name]
    assert entry.preferred_dtype == torch.float16
    shared_root = request.getfixturevalue("shared") if name == "dbface-small" else None
    model, real = _model(entry, shared_root, monkeypatch)
    assert real
    frames = np.stack([_frame(repo, "group_event_smiling", i) for i in (0, 30)])
    want = entry.infer(model, frames)
    monkeypatch.setattr(D, "autocast", lambda device, dtype: torch.autocast("cpu", dtype=torch.float16))
    got = entry.infer(model, frames)
    assert sum(len(w) for w in want) >= 2
    for w, g in zip(want, got):
        assert w.shape == g.shape
        if len(w):
            assert np.abs(w[:, :4] - g[:, :4]).max() <= tol_px


def test_gpu_bench_needs_neither_beam_nor_pyav(repo):
    """The GPU machine lacks apache-beam and PyAV: the benchmark and every extractor module
    import and read frames without them."""
    import subprocess
    import sys

    code = ("import sys\n"
            "for m in ('apache_beam', 'av', 'decord'): sys.modules[m] = None\n"
            "from bench import gpu_extractors as g\n"
            "from extractors import registry, posenet, blazeface, dbface, openpose\n"
            "f = g._frames('hikers_walking', 3)\n"
            "assert f.shape == (3, 480, 640, 3) and f.dtype.name == 'uint8', f.shape\n"
            "e = registry.resolve('blazeface-back')\n"
            "r = e.infer(e.load('cpu'), f[:1])\n"
            "assert r[0].shape[1] == 17\n"
            "print('ok')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.parametrize("returned", [1, 3])
def test_an_extractor_returning_another_count_than_frames_is_refused(returned):
    """The length guard of Entry.infer: one result per input frame, else an error naming the
    extractor and both counts (a short result would shift poses onto the wrong samples)."""
    import dataclasses

    real = R.EXTRACTORS["posenet-mobilenet-v1-075"]
    seen = []

    def infer(model, frames, device, dtype, **options):
        seen.append((len(frames), options))
        return [(np.zeros(0, np.float32), np.zeros((0, 17, 3), np.float32))] * returned

    entry = dataclasses.replace(real, _infer=infer)
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(R.ExtractorOutputError,
                       match=rf"extractor posenet-mobilenet-v1-075 returned {returned} results for 2 input frames"):
        entry.infer(None, frames)
    assert seen == [(2, real.default_options)]
    assert len(dataclasses.replace(real, _infer=lambda m, f, *a, **k: [None] * len(f)).infer(None, list(frames))) == 2


def test_capabilities_are_entry_fields():
    """What the callers used to read off names: config options, display names, face hints."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(pose_scale_factor=0.5)
    assert R.resolve("posenet").options_from(cfg) == {"scale_factor": 0.5}
    assert R.resolve("openpose").options_from(cfg) == {}
    assert R.resolve("posenet").display_name == "PoseNet" and R.resolve("openpose").display_name == "OpenPose"
    for entry in R.entries("face"):
        assert entry.counterpart is None or R.resolve(entry.counterpart, role="face").name != entry.name
    assert R.resolve("blazeface-back").counterpart == "blazeface-front"
    assert not hasattr(R, "REGISTRY")  # one table per name: extractors.weights.REGISTRY is the weights files


def test_network_input_and_untrained_networks_are_entry_fields(repo):
    """bench.gpu_extractors times the network alone through these, without reading names: the
    batch each detector feeds its network (PoseNet: 640x480 at scale 1 -> 481x641, output
    stride 16 + 1; BlazeFace: 128 / 256 px letterbox; DBFace: padded to multiples of 32), and
    an untrained network whose DBFace heatmap stays below the 0.3 threshold."""
    frames = np.stack([_frame(repo, "hikers_walking")] * 2)
    assert frames.shape == (2, 480, 640, 3)
    want = {"posenet-mobilenet-v1-075": (2, 3, 481, 641), "blazeface-front": (2, 3, 128, 128),
            "blazeface-back": (2, 3, 256, 256), "dbface-small": (2, 3, 480, 640),
            "dbface-large": (2, 3, 480, 640)}
    for name, shape in want.items():
        x = R.EXTRACTORS[name].network_input(frames, "cpu")
        assert x.dtype == torch.float32 and tuple(x.shape) == shape, name
    for name in ("openpose-body", "blazepose-ghum"):
        with pytest.raises(NotImplementedError, match=name):
            R.EXTRACTORS[name].network_input(frames, "cpu")
    with pytest.raises(NotImplementedError, match="posenet"):
        R.EXTRACTORS["posenet-mobilenet-v1-075"].untrained()
    assert R.EXTRACTORS["blazeface-front"].close_ups and not R.EXTRACTORS["blazeface-back"].close_ups
    assert [e.name for e in R.entries() if not e.device_preprocessing] == ["blazepose-ghum"]

    small = R.EXTRACTORS["dbface-small"]
    a, b = small.untrained(), small.untrained()
    assert not a.training and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with torch.no_grad():
        hm = a(small.network_input(frames[:1, ::4, ::4].copy(), "cpu"))[0]
    assert float(hm.max()) < 0.3
    assert small.infer(a, frames[:1, ::4, ::4].copy())[0].shape == (0, 15)
    assert type(R.EXTRACTORS["openpose-body"].untrained()).__name__ == "BodyPoseModel"


def test_gpu_bench_runs_on_cpu_as_typed(repo, tmp_path):
    """``python -m bench.gpu_extractors --device cpu``: every extractor is timed or compared;
    the device code paths run on the CPU give the host paths' results to the pixel."""
    import json
    import subprocess
    import sys

    out = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, "-m", "bench.gpu_extractors", "--device", "cpu", "--seconds", "0.05",
                          "--max-batch", "1", "--openpose-batch", "1", "--json", str(out)],
                         cwd=repo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "blazepose-ghum            : one path on every device" in run.stdout
    parity = json.loads(out.read_text())["parity"]
    assert set(parity) == set(NAMES) - {"blazepose-ghum"}
    for name in ("posenet-mobilenet-v1-075", "blazeface-back"):
        got = parity[name]["float32"]
        assert got["counts_cpu"] == got["counts_device"] and got["counts_cpu"][0] >= 1, name
        assert got["max_px"] < 1e-3, name


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a CUDA device; the check is for hosts without one")
def test_gpu_bench_on_a_host_without_cuda_says_so_in_one_line(repo):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "bench.gpu_extractors", "--device", "cuda"], cwd=repo,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "python -m bench.gpu_extractors: device cuda asked for, but torch sees no CUDA device"]
