"""Task runners and retry settings shared by the flows.

Per-item work (one image, one scan, one batch file) runs through ``prefect_dask``'s
:class:`~prefect_dask.DaskTaskRunner`. Locally it uses a *threads-only* ``LocalCluster``
(``processes=False``): a process cluster in ephemeral mode makes every worker start its own
temporary Prefect server on the same SQLite file (see STACK.md). Set ``SEM_DASK_ADDRESS``
(or pass ``address``) to use an existing ``distributed`` scheduler instead.
"""

from __future__ import annotations

import os
from typing import Any

from prefect.tasks import exponential_backoff
from prefect_dask import DaskTaskRunner

from .settings import io_retry_backoff_s

__all__ = ["IO_RETRIES", "io_retry_options", "make_task_runner"]

IO_RETRIES = 3
"""Retries of I/O tasks (network/file-system hiccups)."""


def io_retry_options(*, retries: int = IO_RETRIES) -> dict[str, Any]:
    """``@task`` keyword arguments for I/O tasks: ``retries`` with exponential backoff.

    The base delay is ``$SEM_IO_RETRY_BACKOFF_S`` (default 2 s, so delays 2, 4, 8 s), read when
    the task is defined (tests set it to ~0 before importing the tasks).
    """
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=io_retry_backoff_s()),
        "retry_jitter_factor": None,
    }


def make_task_runner(*, address: str | None = None, n_workers: int = 1, threads_per_worker: int = 2) -> DaskTaskRunner:
    """A :class:`DaskTaskRunner`: an existing cluster at ``address``/``$SEM_DASK_ADDRESS``, else local threads.

    Parameters
    ----------
    address : str, optional
        Scheduler address such as ``tcp://10.0.0.5:8786``; default ``$SEM_DASK_ADDRESS``.
    n_workers, threads_per_worker : int
        Size of the local threads-only cluster (ignored with an address).
    """
    address = address or os.environ.get("SEM_DASK_ADDRESS") or None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "processes": False,
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker,
            "dashboard_address": None,
        }
    )
