"""Flow tests: one Prefect test server for the whole session, quiet logs, tiny retry delays.

The environment is set here, before any test module imports prefect or ``tasks``.
"""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ["SEM_IO_RETRY_BACKOFF_S"] = "0.01"

import pytest  # noqa: E402

pytest.importorskip("prefect")
pytest.importorskip("prefect_dask")

from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """A temporary Prefect server + SQLite database shared by every flow test (~15 s once)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def results_dir(tmp_path):
    """Persist task results (the cache) under a fresh folder for this test only."""
    path = tmp_path / "prefect-results"
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: path}):
        yield path
