"""``--runner dask`` on a real dask.distributed cluster: a ``dask scheduler`` and two ``dask
worker`` processes on 127.0.0.1, started here and stopped after.

* the shipped sample lands 27/27 with the same content as the local runner's (bench.compare_shards);
* a sample that fails lands in ``errors.jsonl`` exactly as on the local runner;
* a worker killed (SIGKILL) in the middle of its shard: Dask reruns the task on the other
  worker and nothing is lost or written twice;
* a cluster started by the CLI itself, the up-front option checks, the one-GPU-per-worker
  cluster (environment only: no GPU here) and the SLURM recipe of docs/runners.md (its job
  script, nothing submitted).

Every run uses one torch thread, so the local and Dask runs compute bit-identical keypoints.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="--runner dask needs dask.distributed (requirements.lock)")

from bench.compare_shards import compare_runs  # noqa: E402
from pipelines.dask_cluster import stop_processes  # noqa: E402
from test_runners import run_extract, shard_rows, tiny_card  # noqa: E402

THREADS = ("--torch-threads", "1")
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _start(cmd: list[str], repo: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=repo, env=ENV, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))


def _start_worker(repo: Path, address: str, name: str, tmp: Path) -> subprocess.Popen:
    """One ``dask worker`` process (no nanny: its pid is the process that runs the tasks)."""
    return _start([sys.executable, "-m", "dask", "worker", address, "--name", name, "--nworkers", "1",
                   "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                   "--local-directory", str(tmp / name)], repo, tmp / f"{name}.log")


def _wait_for_workers(address: str, n: int, timeout: float = 120) -> None:
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(n, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(repo, tmp_path_factory):
    """``{"address", "workers": [Popen], "tmp"}``: a scheduler and two workers on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    procs = [_start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], repo, tmp / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not (sched_file.is_file() and sched_file.read_text().strip()):
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dask scheduler did not start in 60 s"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        workers = [_start_worker(repo, address, f"w{i}", tmp) for i in range(2)]
        procs += workers
        _wait_for_workers(address, 2)
        yield {"address": address, "workers": workers, "tmp": tmp, "procs": procs}
    finally:
        stop_processes(procs[::-1])  # the workers first, then the scheduler


def on_dask(cluster: dict) -> tuple[str, ...]:
    return ("--runner", "dask", "--", f"--dask_client_address={cluster['address']}")


@pytest.fixture(scope="module")
def local_sample(repo, tmp_path_factory):
    """The shipped sample extracted once by the local runner (27 samples, 2 shards)."""
    out = tmp_path_factory.mktemp("local") / "sample"
    run = run_extract(repo, Path("sample"), out, *THREADS, timeout=900, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_the_sample_lands_on_dask_as_on_the_local_runner(repo, tmp_path, cluster, local_sample):
    out = tmp_path / "dask"
    run = run_extract(repo, Path("sample"), out, *THREADS, *on_dask(cluster), timeout=900, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"samples\s+27/27 written", run.stdout), run.stdout
    assert f"DaskRunner (dask.distributed), scheduler {cluster['address']} (an existing cluster), 2 worker" \
           in run.stdout
    manifest = _manifest(out)
    assert manifest["samples"] == {"planned": 27, "written": 27, "failed": 0, "lost": []}
    assert compare_runs(local_sample, out) == []
    # step times come from the shard logs: models loaded at most once per worker process
    stages = manifest["timings"]["stages"]
    assert {"decode_wait", "pose", "face", "write"} <= set(stages)
    assert 1 <= stages["load_models"]["elements"] <= 2
    assert stages["pose"]["elements"] == _manifest(local_sample)["timings"]["stages"]["pose"]["elements"]
    logs = sorted((out / ".shard-logs").glob("shard-*.json"))
    assert [json.loads(p.read_text())["shard"] for p in logs] == [0, 1]


def _failing_corpus(repo: Path, tmp: Path) -> Path:
    """A 1 s-window card of one good clip and three broken files (truncated, not a video, empty)."""
    root = tmp / "media"
    root.mkdir()
    clips = repo / "samples" / "videos"
    shutil.copyfile(clips / "hikers_walking.mp4", root / "hikers_walking.mp4")
    data = (clips / "group_event_smiling.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "not_a_video.mp4").write_text("sample_id,label\n" * 100)
    (root / "empty.mp4").write_bytes(b"")
    text = tiny_card(repo, tmp).read_text()
    head = text[: text.index("[[segments]]")]
    segments = "".join(f'[[segments]]\nvideo = "{name}"\nlabel = "walking_outdoors"\nstart_s = 0.0\nend_s = 1.0\n'
                       f'stride_s = 1.0\n\n' for name in ("hikers_walking.mp4", "truncated.mp4", "not_a_video.mp4",
                                                           "empty.mp4"))
    tail = text[text.index("[representations]"):]
    head = re.sub(r'root = "[^"]*"', f'root = "{root}"', head)
    card = tmp / "failing.toml"
    card.write_text(head + segments + tail)
    return card


def test_a_failing_sample_lands_in_errors_jsonl_as_on_the_local_runner(repo, tmp_path, cluster):
    card = _failing_corpus(repo, tmp_path)
    local = run_extract(repo, card, tmp_path / "local", *THREADS, env=ENV)
    dask = run_extract(repo, card, tmp_path / "dask", *THREADS, *on_dask(cluster), env=ENV)
    for run in (local, dask):
        assert run.returncode == 0, run.stderr[-3000:]
    local_errors = (tmp_path / "local" / "errors.jsonl").read_text().splitlines()
    dask_errors = (tmp_path / "dask" / "errors.jsonl").read_text().splitlines()
    assert len(local_errors) == 3 and dask_errors == local_errors
    assert {json.loads(e)["uri"].rsplit("/", 1)[1] for e in dask_errors} == \
           {"truncated.mp4", "not_a_video.mp4", "empty.mp4"}
    assert _manifest(tmp_path / "dask")["samples"] == {"planned": 4, "written": 1, "failed": 3, "lost": []}
    assert compare_runs(tmp_path / "local", tmp_path / "dask") == []


def _progress_pid(progress: Path) -> int | None:
    """The pid of the first worker that finished a sample (``.progress/<host>-<pid>``)."""
    for f in progress.glob("*") if progress.is_dir() else ():
        if f.stat().st_size > 0:
            return int(f.name.rsplit("-", 1)[1])
    return None


def test_a_worker_killed_mid_shard_is_rescheduled_and_nothing_is_lost_or_doubled(repo, tmp_path, cluster):
    card = tiny_card(repo, tmp_path)
    args = ("--limit", "4", "--num-shards", "1", *THREADS)  # one shard of 4 samples: killed after the first
    ref = run_extract(repo, card, tmp_path / "ref", *args, "--direct-mode", "in_memory", env=ENV)
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "dask"
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(out), "--no-progress",
           *args, *on_dask(cluster)]
    proc = subprocess.Popen(cmd, cwd=repo, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, pid = time.monotonic() + 300, None
    while pid is None and proc.poll() is None and time.monotonic() < deadline:
        pid = _progress_pid(out / ".progress")
        time.sleep(0.02)
    workers = {w.pid: w for w in cluster["workers"] if w.poll() is None}
    assert pid in workers, f"no worker of the cluster reported progress ({pid}, {list(workers)})"
    os.kill(pid, signal.SIGKILL)
    workers[pid].wait(timeout=30)
    stdout, stderr = proc.communicate(timeout=600)
    replacement = _start_worker(repo, cluster["address"], "w2", cluster["tmp"])  # for later tests
    cluster["workers"].append(replacement)
    cluster["procs"].append(replacement)
    assert proc.returncode == 0, stderr[-3000:]
    manifest = _manifest(out)
    assert manifest["samples"] == {"planned": 4, "written": 4, "failed": 0, "lost": []}
    log = json.loads((out / ".shard-logs" / "shard-00000.json").read_text())
    assert not log["worker"].endswith(f":{pid}")  # written by the other worker: Dask reran the task
    assert len(shard_rows(out)) == 4  # no sample twice
    assert compare_runs(tmp_path / "ref", out) == []  # done marker sha256 and content
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # the killed writer's files are gone


def test_the_cli_starts_and_closes_its_own_local_cluster(repo, tmp_path):
    card = tiny_card(repo, tmp_path)
    run = run_extract(repo, card, tmp_path / "out", "--limit", "2", "--workers", "2", *THREADS, "--runner", "dask",
                      env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    line = re.search(r"DaskRunner \(dask.distributed\), scheduler tcp://127\.0\.0\.1:(\d+) \(LocalCluster started "
                     r"for this run\), 2 worker processes", run.stdout)
    assert line, run.stdout
    assert "INFO" not in run.stderr, run.stderr[-2000:]  # scheduler and worker chatter stays hidden
    with socket.socket() as s:  # the scheduler is closed with the run
        assert s.connect_ex(("127.0.0.1", int(line.group(1)))) != 0
    assert _manifest(tmp_path / "out")["samples"]["written"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("beam_args, expected", [
    (["--dask_client_address=localhost"], "expected HOST:PORT"),
    (["--dask_scheduler_file=/no/such/scheduler.json"], "no such file"),
    (["--dask_partition_size=1", "--dask_npartitions=4"], "exclude each other"),
])
def test_dask_options_are_checked_up_front(tmp_path, capsys, beam_args, expected):
    from pipelines import extract

    status = extract.main(["--dataset", "sample", "--out", str(tmp_path), "--no-progress", "--runner", "dask",
                           "--", *beam_args])
    assert status == 2
    err = capsys.readouterr().err
    assert "invalid runner options" in err and expected in err
    assert not list(tmp_path.iterdir())


def test_an_unreachable_scheduler_is_one_error_line(repo, tmp_path):
    card = tiny_card(repo, tmp_path)
    address = f"127.0.0.1:{_free_port()}"
    run = run_extract(repo, card, tmp_path / "out", "--limit", "1", "--runner", "dask", "--",
                      f"--dask_client_address={address}", "--dask_connection_timeout=3", timeout=120)
    assert run.returncode == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in run.stderr
    assert "Traceback" not in run.stderr


def test_one_worker_per_gpu_sees_only_its_gpu():
    """The cluster ``--device cuda`` starts: one single-threaded worker process per GPU, each with
    only its GPU visible (checked through the environment: no GPU here)."""
    from distributed import Client

    from pipelines.dask_cluster import start_local

    cluster = start_local("cuda", 0, gpus=[0, 1])
    try:
        with Client(cluster.address) as client:
            seen = client.run(lambda: (os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()))
            info = client.scheduler_info()["workers"]
    finally:
        cluster.close()
    assert cluster.workers == 2 and cluster.started == "LocalCluster"
    assert sorted(v[0] for v in seen.values()) == ["0", "1"]
    assert len({v[1] for v in seen.values()}) == 2  # two processes
    assert all(w["nthreads"] == 1 for w in info.values())
    for pid in {v[1] for v in seen.values()}:  # stopped with the cluster
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_slurm_recipe_builds_a_one_gpu_job_script(repo, monkeypatch, capsys):
    """Runs the SLURM recipe of docs/runners.md without submitting (``scale`` is recorded)."""
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    text = (repo / "docs" / "runners.md").read_text()
    section = text[text.index("## Dask on a SLURM cluster"):]
    recipe = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scaled = []
    monkeypatch.setattr(dask_jobqueue.SLURMCluster, "scale", lambda self, n=None, jobs=0, **kw: scaled.append(jobs))
    namespace: dict = {}
    exec(compile(recipe.replace("port\": 8786", "port\": 0"), "runners.md", "exec"), namespace)
    try:
        script = namespace["cluster"].job_script()
        address = namespace["cluster"].scheduler_address
    finally:
        namespace["cluster"].close()
    assert scaled[0] == 8  # (close() scales to 0)
    for line in ("#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=8", "#SBATCH -t 04:00:00"):
        assert line in script, script
    worker = [line for line in script.splitlines() if "dask_worker" in line][0]
    assert f"dask_worker {address} " in worker and "--nthreads 1" in worker and "--nanny" in worker
    assert worker.startswith("/path/to/affectzoo/.venv/bin/python ")
    # the documented extraction command takes that address
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    command = block[block.index("python -m pipelines.extract"):]
    assert "--runner dask" in command and "--device cuda" in command
    assert "--dask_client_address=" in command
