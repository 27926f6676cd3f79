"""Runners: the local multi-process default, the portable path through a started Beam job
service (LOOPBACK workers), and the up-front checks of the distributed runners' options.

The pipeline runs on 2 one-second windows of the shipped hikers clip (5 frames each).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import small_card

from pipelines import extract


def tiny_card(repo: Path, tmp: Path) -> Path:
    """The small sample card with 1 s windows sampled at 5 frames/s (5 frames per sample)."""
    text = small_card(repo, tmp).read_text()
    text = re.sub(r"length_s = 2\.0", "length_s = 1.0", text)
    text = re.sub(r"sample_fps = 15\.0", "sample_fps = 5.0", text)
    path = tmp / "tiny.toml"
    path.write_text(text)
    return path


def run_extract(repo: Path, card: Path, out: Path, *extra: str, timeout: int = 300, env=None):
    cmd = [sys.executable, "-m", "pipelines.extract", "--dataset", str(card), "--out", str(out), "--no-progress",
           *extra]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=timeout, env=env)


def shard_rows(out: Path) -> dict[str, dict]:
    """Rows of every ``videos-*.parquet`` under ``out`` (retry folders included) by sample_id."""
    files = sorted(out.glob("videos-*.parquet")) + sorted(out.glob("retry-*/videos-*.parquet"))
    rows: dict[str, dict] = {}
    for f in files:
        for row in pq.read_table(f).to_pylist():
            assert row["sample_id"] not in rows, f"{row['sample_id']} written twice"
            rows[row["sample_id"]] = row
    return rows


def assert_same_rows(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for sid in a:
        for key, value in a[sid].items():
            x, y = value, b[sid][key]
            if isinstance(x, (list, np.ndarray)) or isinstance(x, float):
                # same models and frames; Beam may batch frames differently (oneDNN kernels of
                # another batch size differ in the last float bits): 1e-3 px
                np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                                           rtol=1e-5, atol=1e-3, err_msg=f"{sid} {key}")
            else:
                assert x == y, f"{sid} {key}: {x!r} != {y!r}"


def test_help_names_the_local_runner():
    help_text = subprocess.run([sys.executable, "-m", "pipelines.extract", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    assert "direct_running_mode=multi_processing" in help_text
    assert "default: multi_processing" in help_text and "DirectRunner" in help_text
    args = extract.parse_args([])
    assert (args.runner, args.direct_mode) == ("direct", "multi_processing")
    opts = extract.pipeline_options(args).get_all_options()
    assert opts["direct_running_mode"] == "multi_processing" and opts["direct_num_workers"] == args.workers


def test_cores_are_divided_among_local_workers():
    cores = os.cpu_count() or 1
    def threads(*argv):
        return extract.execution_defaults(extract.parse_args(list(argv)))[1]

    assert threads("--workers", "2") == max(1, cores // 2)
    assert threads("--direct-mode", "in_memory") == cores
    assert threads("--workers", "2", "--torch-threads", "3") == 3
    assert extract.parse_args([]).workers == cores  # one worker per core on CPU
    assert extract.execution_defaults(extract.parse_args(["--device", "cuda"]))[:1] == (1,)  # one model copy per GPU


@pytest.mark.parametrize("argv, expected", [
    (["--runner", "dataflow"], ["--project=", "--region=", "--temp_location=", "--sdk_container_image"]),
    (["--runner", "dataflow", "--device", "cuda", "--", "--project=p", "--region=us-central1",
      "--temp_location=gs://b/tmp", "--setup_file=./setup.py"], ["--sdk_container_image=IMAGE", "worker_accelerator"]),
    (["--runner", "dataflow", "--", "--project=p", "--region=r", "--temp_location=/tmp/x", "--setup_file=./s.py"],
     ["Dataflow needs a gs:// path"]),
    (["--runner", "flink"], ["--flink_master=HOST:PORT"]),
    (["--runner", "flink", "--", "--flink_master=[local]", "--flink_job_server_jar=/no/such.jar"],
     ["--flink_job_server_jar=/no/such.jar: no such file"]),
    (["--runner", "spark"], ["--spark_master_url="]),
    (["--runner", "portable"], ["--job_endpoint=HOST:PORT"]),
    (["--runner", "portable", "--out", "gs://bucket/shards", "--", "--job_endpoint=embed",
      "--environment_type=LOOPBAK"], ["gcsfuse", "--environment_type=LOOPBAK"]),
])
def test_runner_options_are_checked_up_front(argv, expected, capsys, tmp_path):
    status = extract.main(["--dataset", "sample", "--no-progress", *(["--out", str(tmp_path)]
                                                                      if "--out" not in argv else []), *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert "invalid runner options" in err
    for text in expected:
        assert text in err
    assert not list(tmp_path.iterdir())  # nothing ran


def test_valid_runner_options_pass():
    for argv in (["--runner", "flink", "--", "--flink_master=localhost:8081", "--environment_type=LOOPBACK"],
                 ["--runner", "spark", "--", "--spark_master_url=local[2]"],
                 ["--runner", "dataflow", "--device", "cuda", "--", "--project=p", "--region=r",
                  "--temp_location=gs://b/t", "--sdk_container_image=gcr.io/p/affectzoo:1",
                  "--dataflow_service_options=worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"]):
        args = extract.parse_args(argv)
        extract.validate_runner_options(args, extract.pipeline_options(args))


@pytest.fixture(scope="module")
def job_service(tmp_path_factory):
    """A Beam local job service in its own process (``local_job_service_main``); yields its endpoint."""
    tmp = tmp_path_factory.mktemp("jobservice")
    port_file = tmp / "port"
    proc = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                             "--port", "0", "--port_file", str(port_file), "--staging_dir", str(tmp / "staging")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert proc.poll() is None, "job service exited"
            assert time.monotonic() < deadline, "job service did not start in 60 s"
            time.sleep(0.2)
        yield f"localhost:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_portable_runner_matches_local_run(repo, tmp_path, job_service):
    card = tiny_card(repo, tmp_path)
    local = run_extract(repo, card, tmp_path / "local", "--limit", "2", "--torch-threads", "1")
    assert local.returncode == 0, local.stderr[-3000:]
    assert "direct_running_mode=multi_processing" in local.stdout
    portable = run_extract(repo, card, tmp_path / "portable", "--limit", "2", "--torch-threads", "1",
                           "--runner", "portable", "--",
                           f"--job_endpoint={job_service}", "--environment_type=LOOPBACK")
    assert portable.returncode == 0, portable.stderr[-3000:]
    assert "PortableRunner" in portable.stdout
    a, b = shard_rows(tmp_path / "local"), shard_rows(tmp_path / "portable")
    assert len(a) == 2
    assert_same_rows(a, b)
    manifest = json.loads((tmp_path / "portable" / "manifest.json").read_text())
    assert manifest["runner"] == "PortableRunner" and manifest["samples"]["written"] == 2


def test_dask_defaults_and_options():
    cores = os.cpu_count() or 1
    here = extract.parse_args(["--runner", "dask"])
    workers, threads, decoders, _ = extract.execution_defaults(here)
    assert (workers, threads, decoders) == (cores, max(1, cores // cores), 1)  # one single-threaded worker per core
    opts = extract.pipeline_options(here, scheduler="tcp://127.0.0.1:8786").get_all_options(retain_unknown_options=True)
    assert opts["runner"] == "apache_beam.runners.dask.dask_runner.DaskRunner"
    assert opts["dask_client_address"] == "tcp://127.0.0.1:8786" and str(opts["dask_partition_size"]) == "1"
    remote = extract.parse_args(["--runner", "dask", "--", "--dask_client_address=tcp://10.0.0.5:8786",
                                 "--dask_npartitions=8"])
    assert extract.execution_defaults(remote)[1] == 0  # torch threads as the remote workers' environment sets them
    opts = extract.pipeline_options(remote, scheduler="tcp://127.0.0.1:1").get_all_options(retain_unknown_options=True)
    assert opts["dask_client_address"] == "tcp://10.0.0.5:8786"  # the user's address wins
    assert str(opts["dask_npartitions"]) == "8" and opts.get("dask_partition_size") is None
    assert extract.runner_description(here) == "DaskRunner (dask.distributed)"


def test_the_graph_has_a_single_leaf():
    """Beam's Dask runner computes only the last-applied leaf: the graph must have exactly one,
    with no tagged outputs (the shard logs carry the dead letters)."""
    import apache_beam as beam
    from apache_beam.pipeline import PipelineVisitor

    from pipelines.cards import corpus_root, load_card
    from pipelines.config import config_from_card

    card = load_card("sample")
    p = beam.Pipeline()
    extract.build_pipeline(p, [(0, [])], config_from_card(card, corpus_root(card, None), "/tmp"), "hash", {})

    class Leaves(PipelineVisitor):
        def __init__(self):
            self.outputs, self.consumed = [], set()

        def visit_transform(self, node):
            self.outputs += [(node.full_label, o) for o in node.outputs.values()]
            self.consumed |= {id(i) for i in node.inputs}

    leaves = Leaves()
    p.visit(leaves)
    unconsumed = [label for label, out in leaves.outputs if id(out) not in leaves.consumed]
    assert len(unconsumed) == 1 and unconsumed[0].startswith("ExtractShard")
