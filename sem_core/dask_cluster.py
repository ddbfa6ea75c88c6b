"""A real ``dask scheduler`` + ``dask worker`` process cluster on loopback, started and stopped by its caller.

For tests and benchmarks of ``sem-denoise denoise --scheduler tcp://…`` (and users trying a cluster on
one machine): the same command-line programs a multi-machine cluster runs, not an in-process
``LocalCluster``. Workers run ``--nthreads`` threads each; the nanny sets ``OMP_NUM_THREADS`` and
friends to 1 in every worker process (Dask's default), so torch in a worker uses one core.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "local_dask_cluster", "stop_process_groups"]


def free_port(low: int, high: int) -> int:
    """The first port in ``[low, high)`` that 127.0.0.1 can bind now."""
    for port in range(low, high):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in [{low}, {high})")


def _dask_exe() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe)] if exe.is_file() else [shutil.which("dask") or "dask"]


@contextlib.contextmanager
def local_dask_cluster(n_workers: int, *, threads: int = 1, port: int | None = None, ports: tuple[int, int] =
                       (15200, 15300), timeout_s: float = 120.0, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a scheduler and ``n_workers`` worker processes on 127.0.0.1; yield the ``tcp://`` address.

    Parameters
    ----------
    n_workers : int
        Worker processes (``dask worker --nworkers``).
    threads : int
        Threads per worker process.
    port : int, optional
        Scheduler port; default the first free one in ``ports``.
    timeout_s : float
        How long to wait for all workers to register.
    env : dict, optional
        Extra environment of the processes (e.g. ``PYTHONPATH``).

    Both processes are stopped (SIGTERM, then SIGKILL) on exit, also when the body raises.
    """
    from dask.distributed import Client

    port = port or free_port(*ports)
    addr = f"tcp://127.0.0.1:{port}"
    penv = {**os.environ, **(env or {}), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    log_dir = Path(tempfile.mkdtemp(prefix="sem_dask_"))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [*_dask_exe(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=open(log_dir / "scheduler.log", "w"), env=penv,
            start_new_session=True))
        procs.append(subprocess.Popen(
            [*_dask_exe(), "worker", addr, "--nworkers", str(n_workers), "--nthreads", str(threads),
             "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(log_dir)],
            stdout=subprocess.DEVNULL, stderr=open(log_dir / "worker.log", "w"), env=penv,
            start_new_session=True))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with Client(addr, timeout=5) as client:
                    client.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError) as exc:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    logs = "".join(f.read_text()[-1500:] for f in sorted(log_dir.glob("*.log")))
                    raise RuntimeError(f"dask cluster at {addr} did not start: {exc}\n{logs}") from exc
                time.sleep(0.5)
        yield addr
    finally:
        stop_process_groups(list(reversed(procs)), timeout_s=20)
        shutil.rmtree(log_dir, ignore_errors=True)


def stop_process_groups(procs: list[subprocess.Popen | None], *, timeout_s: float) -> None:
    """SIGTERM each still-running process's group (started with ``start_new_session=True``: its children too),
    then wait for each, SIGKILLing a group that outlives ``timeout_s``. ``None`` entries are skipped."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in live:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
