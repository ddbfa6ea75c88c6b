"""Prefect settings for sem-denoise: ephemeral by default, analytics off, results persisted in the repo.

Prefect reads most settings when it is imported, so :func:`apply_env_defaults` must run
*before* ``import prefect`` (``tasks/__init__.py`` calls it). Values the user already set in
the environment always win: ``PREFECT_API_URL`` set => a real server is used, unset => an
ephemeral SQLite server starts inside the process.

Environment knobs of our own:

``SEM_PREFECT_RESULTS``
    Where task results (the cache records) are persisted; default ``<repo>/.prefect/results``.
    A local folder is exported as ``PREFECT_LOCAL_STORAGE_PATH``. An ``s3://bucket/prefix`` URL puts
    them in S3-compatible object storage (e.g. the DVC remote's SeaweedFS bucket), so that several
    machines share the stage cache: credentials and endpoint come from the environment only
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), never from a file.
``SEM_IO_RETRY_BACKOFF_S``
    Base delay of the exponential backoff of I/O task retries (default 2 s; tests use ~0).
``SEM_DASK_ADDRESS``
    Address of an existing Dask scheduler; default: a threads-only LocalCluster per flow run.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RESULTS_BLOCK", "REPO_ROOT", "apply_env_defaults", "io_retry_backoff_s", "results_dir", "results_storage",
           "results_url"]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_BLOCK = "sem-denoise-results"
"""Name under which the remote result-storage block is saved on the Prefect server (endpoint only)."""

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def results_url() -> str | None:
    """``$SEM_PREFECT_RESULTS`` when it is an object-store URL (``s3://bucket/prefix``), else None."""
    value = os.environ.get("SEM_PREFECT_RESULTS", "")
    return value.rstrip("/") if value.startswith("s3://") else None


def results_dir() -> Path:
    """Folder of persisted task results: ``$SEM_PREFECT_RESULTS`` or ``<repo>/.prefect/results``.

    With an ``s3://`` URL configured, the local default (the local fallback Prefect itself uses).
    """
    value = os.environ.get("SEM_PREFECT_RESULTS")
    if not value or results_url():
        return (REPO_ROOT / ".prefect" / "results").resolve()
    return Path(value).resolve()


def results_storage():
    """The Prefect file-system block for task results: ``RemoteFileSystem`` on ``s3://…``, else local.

    The remote block carries no credentials (s3fs reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``);
    the endpoint comes from ``AWS_ENDPOINT_URL`` when set (SeaweedFS, MinIO, Ceph).
    """
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    url = results_url()
    if url is None:  # Prefect's own local setting (exported from results_dir() by apply_env_defaults)
        return LocalFileSystem(basepath=str(PREFECT_LOCAL_STORAGE_PATH.value()))
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    settings = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return RemoteFileSystem(basepath=url, settings=settings)


def io_retry_backoff_s() -> float:
    """Base delay (seconds) of the exponential backoff on I/O tasks (``$SEM_IO_RETRY_BACKOFF_S``, default 2)."""
    raw = os.environ.get("SEM_IO_RETRY_BACKOFF_S", "2")
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"SEM_IO_RETRY_BACKOFF_S must be a number of seconds, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"SEM_IO_RETRY_BACKOFF_S must be >= 0, got {value}")
    return value


def apply_env_defaults() -> None:
    """Set our Prefect defaults in ``os.environ`` unless already set (call before importing prefect)."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(results_dir()))
