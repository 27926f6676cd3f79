"""Tests of the weights registry (extractors/weights.py)."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from extractors import weights as W

REPO = Path(W.__file__).resolve().parents[1]
SHIPPED = ["blazeface-front", "blazeface-back", "blazeface-anchors", "posenet-mobilenet-v1-075",
           "mini-xception-fer2013", "proxemo-vsgcnn", "blazepose-detector", "blazepose-ghum"]


def test_registry_names_and_flags():
    user_supplied = {"dbface-small", "dbface-large", "openpose-body", "posenet3d-resnet50"}
    assert set(REG := W.REGISTRY) == set(SHIPPED) | user_supplied
    assert all(REG[n].may_ship for n in SHIPPED)
    assert not any(REG[n].may_ship for n in user_supplied)
    assert REG["dbface-large"].sha256 is None and REG["openpose-body"].sha256 is None
    assert REG["dbface-small"].sha256.startswith("b87fbc64072d6c75")
    assert "852bfd8" in REG["blazeface-front"].url and REG["blazeface-front"].url.endswith("blazeface.pth")
    assert all(e.name == k for k, e in W.REGISTRY.items())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_match_registry(name, repo):
    entry = W.REGISTRY[name]
    path = repo / "weights" / entry.filename
    data = path.read_bytes()
    assert len(data) == entry.size
    assert hashlib.sha256(data).hexdigest() == entry.sha256 == W.sha256_of(name)
    assert W.verify(name, path) == path


def test_shipped_folder_holds_only_shippable_files(repo):
    shippable = {e.filename for e in W.REGISTRY.values() if e.may_ship}
    assert {p.name for p in (repo / "weights").iterdir() if p.is_file()} <= shippable


def test_search_order_env_dir_first(isolated, monkeypatch, repo):
    env_dir = isolated / "env"
    env_dir.mkdir()
    shutil.copy(repo / "weights" / "blazeface.pth", env_dir / "blazeface.pth")
    monkeypatch.setattr(W, "SHIPPED_DIR", repo / "weights")
    assert W.weights_path("blazeface-front") == repo / "weights" / "blazeface.pth"
    monkeypatch.setenv(W.ENV_DIR, str(env_dir))
    assert W.weights_path("blazeface-front") == env_dir / "blazeface.pth"
    assert W.search_dirs()[0] == env_dir


@pytest.mark.parametrize("name", ["blazeface-front", "dbface-large", "openpose-body"])
def test_missing_file_error_names_file_url_and_command(isolated, name):
    entry = W.REGISTRY[name]
    with pytest.raises(W.WeightsNotFoundError) as err:
        W.weights_path(name)
    msg = str(err.value)
    assert entry.filename in msg and entry.url in msg
    assert f"python -m extractors.weights install {name} {entry.filename}" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_unknown_name_raises_keyerror():
    with pytest.raises(KeyError, match="no-such-model"):
        W.weights_path("no-such-model")


def test_corrupted_copy_raises_checksum_error(isolated, monkeypatch, repo):
    env_dir = isolated / "env"
    env_dir.mkdir()
    bad = env_dir / "blazeface.pth"
    data = bytearray((repo / "weights" / "blazeface.pth").read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(W.WeightsChecksumError) as err:
        W.verify("blazeface-front", bad)
    msg = str(err.value)
    assert str(bad) in msg and W.REGISTRY["blazeface-front"].sha256 in msg and actual in msg
    monkeypatch.setenv(W.ENV_DIR, str(env_dir))
    with pytest.raises(W.WeightsChecksumError):
        W.load_state_dict("blazeface-front")


def test_verify_is_cached_by_path_mtime_size(isolated, monkeypatch, repo):
    calls = []
    real = W.file_sha256
    monkeypatch.setattr(W, "file_sha256", lambda p: calls.append(p) or real(p))
    path = repo / "weights" / "blazeface.pth"
    for _ in range(3):
        W.verify("blazeface-front", path)
    assert len(calls) == 1


def test_unknown_checksum_only_warns(isolated, monkeypatch):
    env_dir = isolated / "env"
    env_dir.mkdir()
    (env_dir / "dbface.pth").write_bytes(b"anything")
    monkeypatch.setenv(W.ENV_DIR, str(env_dir))
    with pytest.warns(UserWarning, match="no sha256"):
        assert W.verify("dbface-large") == env_dir / "dbface.pth"


def test_load_state_dict_is_weights_only_and_checked(repo):
    sd = W.load_state_dict("blazeface-front")
    assert len(sd) == 74 and sd["backbone1.0.weight"].shape == (24, 3, 5, 5)
    assert sd["backbone1.0.weight"].dtype == torch.float32


def test_install_checks_and_copies_into_cache(isolated, repo):
    src = repo / "weights" / "blazefaceback.pth"
    dest = W.install("blazeface-back", src)
    assert dest == isolated / "home" / ".cache" / "affectzoo" / "blazefaceback.pth"
    assert dest.read_bytes() == src.read_bytes()
    assert W.weights_path("blazeface-back") == dest
    with pytest.raises(W.WeightsChecksumError):
        W.install("blazeface-front", src)
    assert not list(dest.parent.glob("*.part"))


def test_download_into_cache_with_checksum(isolated, monkeypatch, repo):
    monkeypatch.delenv(W.ENV_OFFLINE)
    payload = (repo / "weights" / "blazeface.pth").read_bytes()
    seen = []

    def fake_urlopen(url, timeout):
        seen.append((url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr(W.urllib.request, "urlopen", fake_urlopen)
    path = W.weights_path("blazeface-front")
    assert path == isolated / "home" / ".cache" / "affectzoo" / "blazeface.pth"
    assert path.read_bytes() == payload
    assert seen == [(W.REGISTRY["blazeface-front"].url, W.DOWNLOAD_TIMEOUT_S)]

    monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"junk"))
    with pytest.raises(W.WeightsNotFoundError, match="blazefaceback.pth.*expected sha256"):
        W.weights_path("blazeface-back")
    cache = isolated / "home" / ".cache" / "affectzoo"
    assert sorted(p.name for p in cache.iterdir()) == ["blazeface.pth"]  # no partial files


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), AFFECTZOO_OFFLINE="1")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "extractors.weights", *args], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=60)


def test_cli_list_verify_path_help(tmp_path):
    env = {"HOME": str(tmp_path)}
    out = _cli("list", env_extra=env)
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.splitlines()
    assert header.split() == ["name", "file", "licence", "copy", "found", "source"]
    assert len(lines) == len(W.REGISTRY)
    front = W.REGISTRY["blazeface-front"]
    assert any(l.startswith("blazeface-front") and "/blazeface.pth " in l and front.licence in l
               and l.endswith(front.url) for l in lines)
    assert any(l.startswith("dbface-large") and "missing" in l and "user-supplied" in l for l in lines)
    out = _cli("verify", env_extra=env)
    assert out.returncode == 0, out.stderr
    assert sum(l.startswith("OK") for l in out.stdout.splitlines()) >= len(SHIPPED)
    out = _cli("verify", "posenet-mobilenet-v1-075", env_extra=env)
    assert out.returncode == 0 and out.stdout.startswith("OK")
    out = _cli("path", "dbface-small", env_extra=env)
    assert out.returncode == 1 and "install dbface-small dbfaceSmallH.pth" in out.stderr
    out = _cli("--help")
    assert out.returncode == 0 and "install" in out.stdout


def test_cli_verify_reports_bad_file(tmp_path, repo):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "blazeface.pth").write_bytes(b"not the model")
    out = _cli("verify", "blazeface-front", env_extra={"HOME": str(tmp_path), W.ENV_DIR: str(env_dir)})
    assert out.returncode == 1 and "BAD" in out.stdout and "expected sha256" in out.stdout
