"""Every command in README.md is run, so the README cannot go stale.

:func:`readme_commands` collects what a user would type: each non-comment line of the fenced
shell blocks (``bash``, ``sh``, ``shell``, ``console``) and each inline backticked command of the
prose and tables that starts with ``python -m``, ``.venv/bin/python -m`` or ``make `` (trailing
``# comments`` stripped, white space collapsed). :data:`RUNS` maps each of them, by its exact
normalised text, to how it is run here; a README command missing from the table, and a table
entry the README no longer has, both fail (:func:`test_every_readme_command_has_a_run`,
:func:`test_every_run_is_a_readme_command`), so a new or edited README command must get a run.

Each run takes the README's own tokens (``shlex``, as the shell splits them) and runs them
through ``subprocess``: ``python`` and ``.venv/bin/python`` are this interpreter
(``sys.executable``), ``make`` is really ``make -C <repo>``. Placeholders become real data:
``my_video.mp4`` a shipped clip, ``my_faces/`` the shared face photos, ``/data/CAER`` a small
CAER tree of the shipped clips (:mod:`caer_fixtures`), ``~/Downloads/dbfaceSmallH.pth`` the
shared DBFace file, ``SHARDS``, ``OUT``, ``DIR``, ``runs/X`` temporary folders and the run trained
here. Nothing is written into the repository: Python commands run in a temporary "user" folder
(their relative outputs such as ``preds.jsonl``, ``runs/``, ``preview-*.png`` land there), make
targets get ``OUT=<tmp>``, and every command sees a temporary ``HOME`` (the weights cache).
:func:`test_the_repository_tree_is_untouched` checks it. Three make targets are not run for
real: ``make test`` (it is this suite; no recursion), ``make bench`` and ``make bench-scale`` (tens
of minutes, and they record into ``bench/*.md``); ``make -n`` prints their recipes, which must
call pytest / existing benchmark modules / ``bench.scale`` with flags it accepts. ``DEVICE=cuda``
on a host without a GPU must stop with the one-line ``no CUDA device`` error and exit 2.

The commands that extract or train carry ``slow`` in their test id (``-k "not slow"`` leaves
them out); all run in the normal ``pytest -q``. One sample extraction (``make extract``) and
one training run are shared by the commands that read them.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from caer_fixtures import build_caer_tree

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED_DATA = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared")) / "data"
#: ``my_video.mp4``: a shipped clip with faces in every frame (3 s, so cheap to run).
MY_VIDEO = REPO / "samples" / "videos" / "group_event_smiling.mp4"
#: ``my_faces/``: the shared photos with faces, as ``my_faces/<class>/<image>``.
MY_FACES = {"happy": "astronaut.png", "sad": "dbface_group.jpg"}
DBFACE_FILE = SHARED_DATA / "weights" / "dbfaceSmallH.pth"
SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
INLINE_PREFIXES = ("python -m ", ".venv/bin/python -m ", "make ")
TIMEOUT_S = 900


# ----------------------------------------------------------------------------- README parsing
def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` that starts a word outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _normalise(command: str) -> str:
    return " ".join(command.split())


def readme_commands(text: str) -> list[str]:
    """The commands of README ``text`` in order of first appearance, normalised, no duplicates."""
    found: list[str] = []
    prose: list[str] = []
    lang: Optional[str] = None  # inside a fence: its info string ("" for none)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip().lower() if lang is None else None
            prose.append("")
            continue
        if lang is None:
            prose.append(line)
        elif lang in SHELL_LANGS:
            command = _normalise(_strip_comment(stripped.removeprefix("$ ")))
            if command:
                found.append(command)
    # inline code spans may wrap across lines within a paragraph
    for span in re.findall(r"`([^`]+)`", "\n".join(prose)):
        command = _normalise(span)
        if command.startswith(INLINE_PREFIXES):
            found.append(_normalise(_strip_comment(command)))
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------ running them
@dataclass
class Ran:
    argv: list[str]
    cwd: Path
    proc: subprocess.CompletedProcess

    @property
    def rc(self) -> int:
        return self.proc.returncode

    @property
    def out(self) -> str:
        return self.proc.stdout

    @property
    def err(self) -> str:
        return self.proc.stderr

    def why(self) -> str:
        return (f"$ {shlex.join(self.argv)}  (in {self.cwd})\nexit {self.rc}\n--- stdout\n{self.out[-3000:]}"
                f"\n--- stderr\n{self.err[-3000:]}")


def _shell_env(**changes: str) -> dict[str, str]:
    """This environment as a user's shell has it: without what an outer ``make`` (``make test``)
    passes down to sub-makes (its flags and command-line variables, e.g. ``DEVICE=cuda``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(changes)
    return env


class User:
    """A user's shell: a working folder, a ``HOME`` and the environment every command sees."""

    def __init__(self, root: Path):
        self.cwd = root / "work"
        self.home = root / "home"
        self.cwd.mkdir(parents=True)
        self.home.mkdir(parents=True)
        self.env = _shell_env(HOME=str(self.home), AFFECTZOO_OFFLINE="1",
                              PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.env.pop("AFFECTZOO_WEIGHTS", None)  # weights come from the shipped folder and ~/.cache

    def argv(self, command: str, subs: Optional[dict[str, str]] = None,
             make_vars: Optional[dict[str, str]] = None) -> list[str]:
        """The README ``command`` as the shell would run it: split with ``shlex``, tokens replaced
        by ``subs`` (exact tokens), ``~/`` expanded to this ``HOME``, ``python`` /
        ``.venv/bin/python`` -> this interpreter, ``make`` -> ``make -C <repo>`` with the
        variables of ``make_vars`` replacing the command's own (or added)."""
        tokens = [(subs or {}).get(t, t) for t in shlex.split(command)]
        tokens = [str(self.home) + t[1:] if t.startswith("~/") else t for t in tokens]
        if tokens[0] in ("python", ".venv/bin/python"):
            return [sys.executable, *tokens[1:]]
        assert tokens[0] == "make", command
        make_vars = dict(make_vars or {})
        args = []
        for t in tokens[1:]:
            name = t.split("=", 1)[0]
            args.append(f"{name}={make_vars.pop(name)}" if "=" in t and name in make_vars else t)
        return ["make", "-C", str(REPO), *args, *(f"{k}={v}" for k, v in make_vars.items())]

    def run(self, command: str, subs: Optional[dict[str, str]] = None, make_vars: Optional[dict[str, str]] = None,
            cwd: Optional[Path] = None, argv: Optional[list[str]] = None) -> Ran:
        argv = argv or self.argv(command, subs, make_vars)
        cwd = cwd or (REPO if argv[0] == "make" else self.cwd)
        proc = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S)
        return Ran(argv, cwd, proc)


def _recipe(make_out: str) -> list[str]:
    """The recipe lines ``make -n`` printed (without its "Entering directory" lines)."""
    return [line for line in make_out.splitlines() if line.strip() and not line.startswith("make")]


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# ----------------------------------------------------------------------- the commands, by text
MAKE_EXTRACT = "make extract"
TRAIN = ".venv/bin/python -m zoo.train accm --shards shards/sample --epochs 2"
MAKE_TEST = "make test"
PREDICT_FACES = ".venv/bin/python -m zoo.predict mini-xception-fer2013 my_video.mp4 --out preds.jsonl --sheet sheet.png"
PREDICT_CHECKPOINT = ".venv/bin/python -m zoo.predict runs/accm/latest/checkpoint.pt my_video.mp4"
EVALUATE_IMAGES = ".venv/bin/python -m zoo.evaluate mini-xception-fer2013 --images my_faces/ [--detect-faces]"
CHECK_CAER = ".venv/bin/python -m pipelines.corpora check caer /data/CAER"
EXTRACT_CAER = "make extract DATASET=caer ROOT=/data/CAER"
WEIGHTS_LIST = ".venv/bin/python -m extractors.weights list"
WEIGHTS_INSTALL = ".venv/bin/python -m extractors.weights install dbface-small ~/Downloads/dbfaceSmallH.pth"
EXTRACT_CAER_DBFACE = 'make extract DATASET=caer ROOT=/data/CAER EXTRA="--face dbface"'
TRAIN_LIST = "python -m zoo.train --list"
PREDICT_BARE = "python -m zoo.predict"
PREDICT_PHOTOS = (".venv/bin/python -m zoo.predict mini-xception-fer2013 samples/images/astronaut.png my_photos/ "
                  "--overlay faces.png --sheet photos.png")
PREDICT_FRAMES = ".venv/bin/python -m zoo.predict mini-xception-fer2013 my_frames/ --frames-as-video --fps 25"
TRAIN_BARE = "python -m zoo.train"
EXTRACT_HELP = "python -m pipelines.extract --help"
EXTRACT_CUDA = "make extract DATASET=sample OUT=/tmp/shards DEVICE=cuda"
EXPORT = "python -m pipelines.export mmaction SHARDS --out OUT.pkl"
PREVIEW = "python -m pipelines.preview shards/sample"
EVALUATE_CHECKPOINT = "python -m zoo.evaluate runs/X/checkpoint.pt --shards DIR --split test"
WEIGHTS_LIST_SHORT = "python -m extractors.weights list"
MAKE_BENCH = "make bench"
MAKE_BENCH_SCALE = "make bench-scale"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def user(tmp_path_factory) -> User:
    return User(tmp_path_factory.mktemp("readme"))


@pytest.fixture(scope="module")
def make_ready():
    """``make`` targets depend on ``.venv/.installed``; when it is out of date make would first
    reinstall the pinned dependencies (network, minutes), which is not this test's business."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    q = subprocess.run(["make", "-q", "-C", str(REPO), ".venv/.installed"], capture_output=True, text=True,
                       env=_shell_env())
    if q.returncode != 0:
        pytest.skip("the .venv/.installed stamp is missing or older than requirements.lock / pyproject.toml: "
                    "`make venv` first (a make target would reinstall the dependencies)")


@pytest.fixture(scope="module")
def sample_shards(user, make_ready) -> Path:
    """``make extract`` into the user's ``shards/sample`` (README: ``-> shards/sample``)."""
    out = user.cwd / "shards" / "sample"
    ran = user.run(MAKE_EXTRACT, make_vars={"OUT": str(out)})
    assert ran.rc == 0, ran.why()
    # the summary README shows under "What you see"
    assert f"affectzoo extract: corpus sample -> {out}" in ran.out, ran.why()
    assert re.search(r"samples\s+27/27 written \(test 8, train 19\); rows: 27 videos, 81 clips", ran.out), ran.why()
    assert re.search(r"shards\s+2 done", ran.out) and re.search(r"errors\s+none", ran.out), ran.why()
    assert "models   face blazeface-front, pose posenet-mobilenet-v1-075 (device cpu)" in ran.out, ran.why()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["videos"] == 27 and manifest["rows"]["clips"] == 81, manifest["rows"]
    assert sorted(p.name for p in out.glob("shard-*.h5")) == ["shard-00000-of-00002.h5", "shard-00001-of-00002.h5"]
    return out


@pytest.fixture(scope="module")
def accm_run(user, sample_shards) -> Path:
    """The README's training command, run as written (``--epochs 2``) in the user's folder."""
    ran = user.run(TRAIN)
    assert ran.rc == 0, ran.why()
    latest = user.cwd / "runs" / "accm" / "latest"
    assert latest.is_symlink() and re.fullmatch(r"\d{8}-\d{6}", latest.resolve().name), list(latest.parent.iterdir())
    return latest


@pytest.fixture(scope="module")
def caer_root(tmp_path_factory) -> Path:
    """``/data/CAER``: one shipped clip per split folder (all named ``.avi``, as CAER's are) plus a
    truncated copy, the classic broken download."""
    root = tmp_path_factory.mktemp("data") / "CAER"
    sources = sorted((REPO / "samples" / "videos").glob("*.mp4"))
    good, bad = build_caer_tree(root, sources, len(sources), n_corrupt=1)
    assert len(good) == 3 and [p.name for p in bad] == ["0900.avi"]
    return root


@pytest.fixture(scope="module")
def dbface_installed(user) -> Path:
    """README: ``extractors.weights install dbface-small ~/Downloads/dbfaceSmallH.pth``, with the
    real file (tests only, never shipped) where the user downloaded it."""
    if not DBFACE_FILE.is_file():
        pytest.skip(f"the DBFace-small weights are not shipped (licence) and {DBFACE_FILE} is absent")
    downloads = user.home / "Downloads"
    downloads.mkdir(exist_ok=True)
    shutil.copyfile(DBFACE_FILE, downloads / "dbfaceSmallH.pth")
    ran = user.run(WEIGHTS_INSTALL)
    assert ran.rc == 0, ran.why()
    installed = user.home / ".cache" / "affectzoo" / "dbfaceSmallH.pth"
    assert ran.out.strip() == str(installed), ran.why()
    assert installed.read_bytes() == DBFACE_FILE.read_bytes()
    return installed


# -------------------------------------------------------------------------- how each one runs
def run_make_extract(request, command):
    request.getfixturevalue("sample_shards")  # the fixture runs it and checks the summary


def run_train(request, command):
    import torch

    latest = request.getfixturevalue("accm_run")
    names = {"checkpoint.pt", "last.pt", "metrics.json", "confusion_matrix.png", "curves.png", "history.csv"}
    assert names <= {p.name for p in latest.iterdir()}, sorted(p.name for p in latest.iterdir())
    assert len((latest / "history.csv").read_text().splitlines()) == 1 + 2  # header + --epochs 2
    metrics = json.loads((latest / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "per_class"} <= set(metrics), sorted(metrics)
    torch.load(latest / "checkpoint.pt", map_location="cpu", weights_only=True)  # README: weights only


def run_make_test(request, command):
    # `make test` runs this very suite: it is not run recursively. The proof that it is the
    # test suite: its recipe (make -n prints it without running anything) calls pytest.
    request.getfixturevalue("make_ready")
    user = request.getfixturevalue("user")
    argv = user.argv(command)
    ran = user.run(command, argv=[argv[0], "-n", *argv[1:]])
    assert ran.rc == 0, ran.why()
    assert _recipe(ran.out) == [".venv/bin/python -m pytest -q"], ran.why()


def run_predict_faces(request, command):
    import cv2

    user = request.getfixturevalue("user")
    ran = user.run(command, subs={"my_video.mp4": str(MY_VIDEO)})
    assert ran.rc == 0, ran.why()
    lines = [json.loads(line) for line in (user.cwd / "preds.jsonl").read_text().splitlines()]
    fer = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    emotions = [r for r in lines if r["type"] == "emotion"]
    summaries = [r for r in lines if r["type"] == "emotion_summary"]
    assert emotions and summaries, lines[:3]
    for r in emotions:  # the VTT-format line README documents
        assert {"class", "scores", "frame", "seconds", "coordinates", "id"} <= set(r), r
        assert r["class"] in fer and set(r["scores"]) == fer and len(r["coordinates"]) == 4
    assert {s["person"] for s in summaries} == {r["person"] for r in emotions}  # per person (issue 20)
    sheet = cv2.imread(str(user.cwd / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 100 and sheet.shape[1] > 100


def run_predict_photos(request, command):
    from PIL import Image

    user = request.getfixturevalue("user")
    photos = user.cwd / "my_photos"  # a phone JPEG stored sideways (EXIF orientation 6) and a grey PNG
    photos.mkdir()
    astronaut = Image.open(REPO / "samples" / "images" / "astronaut.png").convert("RGB").crop((64, 0, 448, 512))
    exif = Image.Exif()
    exif[0x0112] = 6
    astronaut.transpose(Image.Transpose.ROTATE_90).save(photos / "IMG_0001.jpg", quality=92, exif=exif.tobytes())
    astronaut.convert("L").save(photos / "scan.png")
    ran = user.run(command, subs={"samples/images/astronaut.png": str(REPO / "samples" / "images" / "astronaut.png")})
    assert ran.rc == 0, ran.why()
    lines = [json.loads(line) for line in ran.out.splitlines() if line.startswith("{")]
    heads = [r for r in lines if r["type"] == "image"]
    assert [Path(h["image"]).name for h in heads] == ["astronaut.png", "IMG_0001.jpg", "scan.png"], ran.why()
    assert [h["faces"] for h in heads] == [1, 1, 1] and (heads[1]["width"], heads[1]["height"]) == (384, 512)
    faces = [r for r in lines if r["type"] == "emotion"]
    assert [Path(r["image"]).name for r in faces] == ["astronaut.png", "IMG_0001.jpg", "scan.png"]
    for stem in ("astronaut", "IMG_0001", "scan"):
        assert Image.open(user.cwd / f"faces.{stem}.png").size in ((512, 512), (384, 512)), stem
    assert Image.open(user.cwd / "photos.png").size[0] >= 3 * 320


def run_predict_frames(request, command):
    from PIL import Image

    user = request.getfixturevalue("user")
    frames = user.cwd / "my_frames"
    frames.mkdir()
    face = Image.open(REPO / "samples" / "images" / "astronaut.png").convert("RGB").resize((160, 160))
    for i in range(1, 7):
        face.save(frames / f"{i:04d}.png")
    ran = user.run(command)
    assert ran.rc == 0, ran.why()
    lines = [json.loads(line) for line in ran.out.splitlines() if line.startswith("{")]
    assert (lines[0]["type"], lines[0]["num_frames"], lines[0]["fps"]) == ("video", 6, 25.0), ran.why()
    emotions = [r for r in lines if r["type"] == "emotion"]
    assert [(r["frame"], r["seconds"]) for r in emotions] == [(i, round(i / 25, 4)) for i in range(6)], ran.why()
    assert [r["type"] for r in lines].count("emotion_summary") == 1


def run_predict_checkpoint(request, command):
    user = request.getfixturevalue("user")
    request.getfixturevalue("accm_run")
    ran = user.run(command, subs={"my_video.mp4": str(MY_VIDEO)})
    assert ran.rc == 0, ran.why()
    lines = [json.loads(line) for line in ran.out.splitlines() if line.startswith("{")]
    assert lines and lines[0]["type"] == "video" and lines[0]["error"] is None, ran.why()
    video = [r for r in lines if r["type"] == "video_prediction"]
    windows = [r for r in lines if r["type"] == "window"]
    labels = ["walking_outdoors", "standing_group_indoors", "close_up_talking"]  # datasets/sample.toml
    assert len(video) == 1 and windows, ran.why()
    assert list(video[0]["scores"]) == labels and abs(sum(video[0]["scores"].values()) - 1) < 1e-5


def run_evaluate_images(request, command):
    user = request.getfixturevalue("user")
    if not all((SHARED_DATA / "images" / name).is_file() for name in MY_FACES.values()):
        pytest.skip(f"no face images ship in samples/; the shared photos {sorted(MY_FACES.values())} "
                    f"are absent from {SHARED_DATA / 'images'}")
    faces = user.cwd / "my_faces"
    for cls, name in MY_FACES.items():
        (faces / cls).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_DATA / "images" / name, faces / cls / name)
    out = user.cwd / "runs" / "evaluate-mini-xception-fer2013-my_faces"  # zoo.evaluate's default --out
    bracket = "[--detect-faces]"
    for form, mode in ((command.replace(f" {bracket}", ""), "crops"), (command.replace(bracket, bracket[1:-1]),
                                                                        "detect-faces")):
        ran = user.run(form)
        assert ran.rc == 0, ran.why()
        assert "2 of 2 images scored" in ran.out and "happy -> happy" in ran.out, ran.why()
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["num_samples"] == 2 and (metrics["mode"] == "detect-faces") == (mode == "detect-faces"), metrics
        assert len((out / "predictions.csv").read_text().splitlines()) == 1 + 2
        assert (out / "confusion_matrix.png").is_file()


def run_check_caer(request, command):
    user = request.getfixturevalue("user")
    root = request.getfixturevalue("caer_root")
    ran = user.run(command, subs={"/data/CAER": str(root)})
    # a partial copy with a broken file: both reported at once, exit 1 ("exit 1 if any")
    assert ran.rc == 1, ran.why()
    assert f"corpus caer at {root}: 3 samples read cleanly" in ran.out, ran.why()
    assert "truncated_media (1):" in ran.out and str(root / "train" / "Happy" / "0900.avi") in ran.out, ran.why()
    assert "count_mismatch (1):" in ran.out and "all/total: 3 found, 13201 published" in ran.out, ran.why()
    assert ran.out.rstrip().endswith("PROBLEMS FOUND"), ran.why()


def _extract_caer(request, command, face: str) -> None:
    user = request.getfixturevalue("user")
    request.getfixturevalue("make_ready")
    root = request.getfixturevalue("caer_root")
    out = user.cwd / "shards" / f"caer-{face}"
    ran = user.run(command, subs={"ROOT=/data/CAER": f"ROOT={root}"}, make_vars={"OUT": str(out)})
    assert ran.rc == 0, ran.why()  # the broken clip is reported, not fatal (no --fail-on-error)
    assert f"affectzoo extract: corpus caer -> {out}" in ran.out, ran.why()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["videos"] == 3, manifest["rows"]
    samples = manifest["samples"]
    assert (samples["planned"], samples["written"], samples["failed"]) == (4, 3, 1), samples
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [Path(e["uri"]).name for e in errors] == ["0900.avi"], errors
    assert re.search(rf"models\s+face {face}\b", ran.out), ran.why()
    assert face in json.dumps(manifest["extractors"]), manifest["extractors"]


def run_extract_caer(request, command):
    _extract_caer(request, command, "blazeface-front")


def run_extract_caer_dbface(request, command):
    request.getfixturevalue("dbface_installed")  # README's install line comes first
    _extract_caer(request, command, "dbface-small")


def run_weights_list(request, command):
    user = request.getfixturevalue("user")
    ran = user.run(command)
    assert ran.rc == 0, ran.why()
    rows = {line.split()[0]: line for line in ran.out.splitlines()[1:] if line.strip()}
    assert ran.out.split()[:6] == ["name", "file", "licence", "copy", "found", "source"], ran.why()
    assert "ships" in rows["blazeface-front"] and str(REPO / "weights" / "blazeface.pth") in rows["blazeface-front"]
    assert "user-supplied" in rows["dbface-small"] and "github.com/dlunion/DBFace" in rows["dbface-small"], ran.why()


def run_weights_install(request, command):
    request.getfixturevalue("dbface_installed")  # the fixture runs it and checks the copy


def run_train_list(request, command):
    user = request.getfixturevalue("user")
    ran = user.run(command)
    assert ran.rc == 0, ran.why()
    listed = {line.split()[0] for line in ran.out.splitlines() if line.strip()}
    # every model of README's model-zoo table, and the pretrained face model
    section = README.read_text().split("## Model zoo", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = {n for row in rows for n in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    assert len(names) >= 20 and names | {"mini-xception-fer2013"} <= listed, sorted(names - listed)


def run_predict_bare(request, command):
    user = request.getfixturevalue("user")
    ran = user.run(command)
    assert ran.rc == 2, ran.why()  # argparse: the model and the videos are required
    assert "usage: python -m zoo.predict" in ran.err and "required: model, INPUT" in ran.err, ran.why()


def run_train_bare(request, command):
    user = request.getfixturevalue("user")
    ran = user.run(command)
    assert ran.rc == 2, ran.why()  # one line pointing at --list, before torch is even imported
    assert _error_lines(ran.err) == ["error: name a model (python -m zoo.train --list shows them)"], ran.why()


def run_extract_help(request, command):
    user = request.getfixturevalue("user")
    ran = user.run(command)
    assert ran.rc == 0 and ran.out.startswith("usage: python -m pipelines.extract"), ran.why()
    text = README.read_text()
    options = text[text.index("Options (`python -m pipelines.extract --help`)"):text.index("The make variables")]
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", options)) | {"--face-pool", "--face-mask"}
    assert len(flags) > 20 and not {f for f in flags if f not in ran.out}, sorted(f for f in flags if f not in ran.out)


def run_extract_cuda(request, command):
    import torch

    user = request.getfixturevalue("user")
    request.getfixturevalue("make_ready")
    out = user.cwd / "shards" / "cuda"
    ran = user.run(command, make_vars={"OUT": str(out)})
    if torch.cuda.is_available():
        assert ran.rc == 0, ran.why()
        assert "(device cuda" in ran.out and json.loads((out / "manifest.json").read_text())["rows"]["videos"] == 27
        return
    # no GPU: pipelines.extract stops before any work with one line and exit 2 (make: "Error 2")
    assert ran.rc != 0 and re.search(r"make: \*\*\* \[.*extract\] Error 2", ran.err), ran.why()
    assert _error_lines(ran.err) == ["error: --device cuda: torch sees no CUDA device"], ran.why()
    assert "Traceback" not in ran.err and not (out / "manifest.json").exists(), ran.why()


def run_export(request, command):
    user = request.getfixturevalue("user")
    shards = request.getfixturevalue("sample_shards")
    out = user.cwd / "export" / "sample.pkl"
    out.parent.mkdir(exist_ok=True)
    ran = user.run(command, subs={"SHARDS": str(shards), "OUT.pkl": str(out)})
    assert ran.rc == 0, ran.why()
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert len(data["annotations"]) == 27 and sum(map(len, data["split"].values())) == 27
    a = data["annotations"][0]
    assert {"keypoint", "keypoint_score", "img_shape", "total_frames"} <= set(a), sorted(a)
    assert a["keypoint"].ndim == 4 and a["keypoint"].shape[-1] == 2 and a["keypoint"].shape[1] == a["total_frames"]


def run_preview(request, command):
    import cv2

    user = request.getfixturevalue("user")
    request.getfixturevalue("sample_shards")
    ran = user.run(command)
    assert ran.rc == 0, ran.why()
    png = user.cwd / ran.out.strip()
    assert re.fullmatch(r"preview-\d{5}-of-00002\.png", png.name), ran.why()
    sheet = cv2.imread(str(png))
    assert sheet is not None and sheet.shape[0] > 100, png


def run_evaluate_checkpoint(request, command):
    user = request.getfixturevalue("user")
    latest = request.getfixturevalue("accm_run")
    ran = user.run(command, subs={"runs/X/checkpoint.pt": "runs/accm/latest/checkpoint.pt", "DIR": "shards/sample"})
    assert ran.rc == 0, ran.why()
    assert re.search(r"zoo\.evaluate accm on shards/sample \(test, 8 rows\): accuracy \d\.\d{3}", ran.out), ran.why()
    metrics = json.loads((latest.resolve() / "evaluate-test" / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1


def _dry_run(request, command) -> list[str]:
    request.getfixturevalue("make_ready")
    user = request.getfixturevalue("user")
    argv = user.argv(command)
    ran = user.run(command, argv=[argv[0], "-n", *argv[1:]])
    assert ran.rc == 0, ran.why()
    return _recipe(ran.out)


def run_make_bench(request, command):
    # The benchmarks run for tens of minutes and record into bench/*.md (the repository):
    # make -n prints the recipe, and every benchmark module it names must exist.
    modules = [m for line in _dry_run(request, command) for m in re.findall(r"-m (bench\.\w+)", line)]
    assert len(modules) >= 7, modules
    missing = [m for m in modules if not (REPO / (m.replace(".", "/") + ".py")).is_file()]
    assert not missing, missing


def run_make_bench_scale(request, command):
    # As make bench: the recipe make would run, then bench.scale must accept what it passes.
    lines = [line for line in _dry_run(request, command) if "-m bench.scale" in line]
    assert len(lines) == 1, lines
    args = shlex.split(lines[0].split("-m bench.scale", 1)[1])
    sizes = args[args.index("--sizes") + 1].split(",") if "--sizes" in args else ["200", "2000"]
    # bench.scale measures the slope between two corpus sizes (README: "at two corpus sizes")
    assert len(sizes) == 2 and all(s.isdigit() for s in sizes), f"make bench-scale runs: {lines[0]}"
    user = request.getfixturevalue("user")
    ran = user.run("", argv=[sys.executable, "-m", "bench.scale", "--help"])
    assert ran.rc == 0, ran.why()
    assert not [a for a in args if a.startswith("--") and a not in ran.out], (args, ran.out)


@dataclass(frozen=True)
class How:
    run: Callable
    slow: bool = False


#: Every README command (exact normalised text) -> how it is run here.
RUNS: dict[str, How] = {
    MAKE_EXTRACT: How(run_make_extract, slow=True),
    TRAIN: How(run_train, slow=True),
    MAKE_TEST: How(run_make_test),
    PREDICT_FACES: How(run_predict_faces),
    PREDICT_CHECKPOINT: How(run_predict_checkpoint, slow=True),
    EVALUATE_IMAGES: How(run_evaluate_images),
    CHECK_CAER: How(run_check_caer),
    EXTRACT_CAER: How(run_extract_caer, slow=True),
    WEIGHTS_LIST: How(run_weights_list),
    WEIGHTS_INSTALL: How(run_weights_install),
    EXTRACT_CAER_DBFACE: How(run_extract_caer_dbface, slow=True),
    TRAIN_LIST: How(run_train_list),
    PREDICT_BARE: How(run_predict_bare),
    PREDICT_PHOTOS: How(run_predict_photos),
    PREDICT_FRAMES: How(run_predict_frames),
    EXTRACT_HELP: How(run_extract_help),
    EXTRACT_CUDA: How(run_extract_cuda),
    EXPORT: How(run_export, slow=True),
    PREVIEW: How(run_preview, slow=True),
    EVALUATE_CHECKPOINT: How(run_evaluate_checkpoint, slow=True),
    WEIGHTS_LIST_SHORT: How(run_weights_list),
    TRAIN_BARE: How(run_train_bare),
    MAKE_BENCH: How(run_make_bench),
    MAKE_BENCH_SCALE: How(run_make_bench_scale),
}


# ---------------------------------------------------------------------------------------- tests
#: Top-level names a README command writes relative to its folder (none may appear in the repository).
OUTPUT_NAMES = re.compile(r"preds\.jsonl|sheet\.png|preview-.*\.png|.*\.pkl|my_faces|runs|shards")


def _snapshot() -> dict[str, float]:
    """Where a command could write into the repository: ``shards/`` and ``runs/`` (every path and
    its mtime) and the top-level names of :data:`OUTPUT_NAMES`."""
    paths = [p for p in REPO.iterdir() if OUTPUT_NAMES.fullmatch(p.name)]
    for top in ("shards", "runs"):
        if (REPO / top).is_dir():
            paths += list((REPO / top).rglob("*"))
    return {str(p.relative_to(REPO)): p.lstat().st_mtime for p in paths}


@pytest.fixture(scope="module")
def repo_before():
    return _snapshot()


def test_readme_parser_reads_blocks_inline_spans_and_comments():
    text = ("Run `make extract DATASET=x` or `python -m a.b\n--c` and `zoo.train x`.\n"
            "```bash\nmake a   # a comment\n# only a comment\n\n.venv/bin/python -m p 'x # y'\n```\n"
            "```\nnot a command\n```\n")
    assert readme_commands(text) == ["make a", ".venv/bin/python -m p 'x # y'", "make extract DATASET=x",
                                     "python -m a.b --c"]


def test_every_readme_command_has_a_run():
    missing = [c for c in readme_commands(README.read_text()) if c not in RUNS]
    assert not missing, f"README commands with no run in RUNS (add one): {missing}"


def test_every_run_is_a_readme_command():
    commands = set(readme_commands(README.read_text()))
    stale = [c for c in RUNS if c not in commands]
    assert not stale, f"RUNS entries README no longer has (remove or update them): {stale}"


@pytest.mark.parametrize("command", [pytest.param(c, id=("slow: " if h.slow else "") + c) for c, h in RUNS.items()])
def test_readme_command(command, request, repo_before):
    RUNS[command].run(request, command)


def test_the_repository_tree_is_untouched(repo_before):
    after = _snapshot()
    written = sorted(p for p in after if after[p] != repo_before.get(p))
    assert not written, f"written into the repository: {written}"
