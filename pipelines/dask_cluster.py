"""The Dask cluster of ``--runner dask``: one started for the run, or an existing one by address.

Beam's ``DaskRunner`` (``apache_beam.runners.dask.dask_runner``) runs the pipeline on a
``dask.distributed`` scheduler. :func:`dask_cluster` gives it one:

* without an address, a cluster on this machine, closed when the run ends: the scheduler of a
  ``distributed.LocalCluster`` in this process and one single-threaded ``dask worker
  --no-nanny`` process per CPU core (``--workers``), or with ``--device cuda`` one per GPU,
  each seeing only its own GPU (``CUDA_VISIBLE_DEVICES`` per process; dask-cuda's
  ``LocalCUDACluster`` where installed), so every GPU holds one copy of each model and every
  worker has its own decoder children;
* with ``-- --dask_client_address=HOST:PORT`` (or ``--dask_scheduler_file``), the existing
  scheduler (``dask scheduler`` + ``dask worker``, dask-jobqueue on SLURM/PBS, Kubernetes...).

Dask's memory manager is switched off in a started cluster (``memory_limit=0``): the
extraction's memory is torch's and the decoders', not Dask data that spilling could move, and a
nanny that kills a worker at 95 % of an even share of the RAM would only make Dask retry the
shard. Workers log errors only (``--verbose``: warnings too).
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterator

#: Beam's Dask runner; Beam only finds it by its full name.
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
#: Seconds to wait for an existing scheduler to answer.
CONNECT_TIMEOUT_S = 20


class DaskClusterError(RuntimeError):
    """The scheduler cannot be started or reached; the message is one line."""


@dataclass
class DaskCluster:
    """A scheduler the run submits to.

    Attributes:
        address: the scheduler's address (``tcp://HOST:PORT``), passed to Beam as
            ``--dask_client_address``.
        workers: worker processes connected when the run started.
        started: what was started for this run (e.g. ``LocalCluster``), or None for an existing one.
    """

    address: str
    workers: int
    started: str | None = None
    _closers: list = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """The runner line of the summary and the manifest."""
        where = f"{self.started} started for this run" if self.started else "an existing cluster"
        return (f"DaskRunner (dask.distributed), scheduler {self.address} ({where}), "
                f"{self.workers} worker process{'es' * (self.workers != 1)}")

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()


def quiet_logs(verbose: bool = False) -> int:
    """Set the ``distributed`` loggers of this process (scheduler, nanny, client) to ERROR
    (``verbose``: WARNING); returns that level. Importing ``distributed`` sets them to INFO."""
    import distributed  # noqa: F401 - its import configures the loggers set here

    level = logging.WARNING if verbose else logging.ERROR
    for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "dask")]:
        logging.getLogger(name).setLevel(level)
    logging.getLogger("distributed").setLevel(level)
    return level


def gpu_ids() -> list[int]:
    """Indices of the CUDA devices torch sees on this machine (empty without one)."""
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def worker_processes(address: str, envs: list[dict[str, str]], log_level: int) -> list[subprocess.Popen]:
    """One ``dask worker --no-nanny`` process per entry of ``envs`` (extra environment variables),
    single-threaded, connected to ``address``.

    No nanny: in a nanny-managed worker process torch ran PoseNet at half the speed of a plain
    process (bench/RESULTS.md, 2026-12-06), and a run's own cluster needs no restarts.
    """
    cmd = [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
           "--memory-limit", "0", "--death-timeout", "60"]
    base = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                DASK_LOGGING__DISTRIBUTED=logging.getLevelName(log_level).lower())
    return [subprocess.Popen([*cmd, "--name", f"worker-{n}"], env={**base, **env}, stdin=subprocess.DEVNULL)
            for n, env in enumerate(envs)]


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """Terminate ``procs`` (SIGTERM to all first), wait up to 30 s each, then kill what is left."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_local(device: str, workers: int, verbose: bool = False, gpus: list[int] | None = None) -> DaskCluster:
    """Start the run's own cluster on this machine (see the module docstring).

    Args:
        device: ``cpu``; ``cuda`` (one worker per GPU); ``cuda:N`` (``workers`` workers, on GPU N).
        workers: worker processes on CPU (and with ``cuda:N``).
        gpus: with ``cuda``, the GPUs to use (default: all that torch sees).
    Raises:
        DaskClusterError: the cluster did not start.
    """
    from distributed import Client, LocalCluster

    level = quiet_logs(verbose)
    gpus = (gpu_ids() if gpus is None else gpus) if device == "cuda" else []
    try:
        if gpus and _local_cuda_cluster() is not None:
            cluster, kind, procs = _local_cuda_cluster()(
                CUDA_VISIBLE_DEVICES=",".join(map(str, gpus)), threads_per_worker=1, memory_limit=0,
                host="127.0.0.1", dashboard_address=None, silence_logs=level), "LocalCUDACluster", []
        else:
            cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, silence_logs=level)
            envs = [{"CUDA_VISIBLE_DEVICES": str(g)} for g in gpus] or [{} for _ in range(workers)]
            procs, kind = worker_processes(cluster.scheduler_address, envs, level), "LocalCluster"
        client = Client(cluster)
        client.wait_for_workers(max(1, len(procs)), timeout=CONNECT_TIMEOUT_S * 6)
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise DaskClusterError(f"could not start a local Dask cluster: {exc}") from exc
    count = len(client.scheduler_info(n_workers=-1)["workers"])
    return DaskCluster(cluster.scheduler_address, count, kind, [cluster.close, lambda: stop_processes(procs), client.close])


def _local_cuda_cluster():
    """dask-cuda's ``LocalCUDACluster`` where installed, else None."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        return None
    return LocalCUDACluster


def connect(address: str | None, scheduler_file: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S,
            verbose: bool = False) -> DaskCluster:
    """Connect to a running scheduler by ``address`` (``HOST:PORT`` or ``tcp://HOST:PORT``) or
    ``scheduler_file``.

    Raises:
        DaskClusterError: no scheduler answered within ``timeout_s``, or it has no worker.
    """
    from distributed import Client

    quiet_logs(verbose)
    where = address or f"the scheduler file {scheduler_file}"
    try:
        client = Client(address=address, scheduler_file=scheduler_file, timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise DaskClusterError(f"cannot reach the Dask scheduler at {where}: {exc}") from exc
    count = len(client.scheduler_info(n_workers=-1)["workers"])
    if count == 0:
        with contextlib.suppress(Exception):
            client.wait_for_workers(1, timeout=timeout_s)
        count = len(client.scheduler_info(n_workers=-1)["workers"])
    if count == 0:
        client.close()
        raise DaskClusterError(f"the Dask scheduler at {where} has no worker (start one: dask worker {where})")
    return DaskCluster(client.scheduler.address, count, None, [client.close])


@contextlib.contextmanager
def dask_cluster(address: str | None, scheduler_file: str | None, device: str, workers: int,
                 verbose: bool = False, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[DaskCluster]:
    """The run's cluster (:func:`connect` when an address or scheduler file is given, else
    :func:`start_local`), closed when the block ends, also on errors and Ctrl-C."""
    cluster = connect(address, scheduler_file, timeout_s, verbose) if address or scheduler_file else \
        start_local(device, workers, verbose)
    try:
        yield cluster
    finally:
        cluster.close()
