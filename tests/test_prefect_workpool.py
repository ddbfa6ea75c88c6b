"""Prefect server on PostgreSQL + process work pool + `prefect deploy` + a worker running a scheduled batch."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_worker_on_the_process_pool_runs_a_scheduled_batch_from_prefect_yaml():
    pytest.importorskip("asyncpg")
    from sem_stack.postgres import find_pg_bin

    find_pg_bin()  # fails loudly when PostgreSQL's server binaries are missing (the Makefile installs them)
    spec = importlib.util.spec_from_file_location("prefect_workpool", ROOT / "bench" / "prefect_workpool.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    work = Path(tempfile.mkdtemp(prefix="sem_prefect_test_"))  # pytest's tmp_path is not traversable by postgres
    try:
        res = demo.run_demo(work, port_base=15260, timeout=900)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert res["state"] == "COMPLETED", res["worker_log_tail"]
    assert res["deployments"] == ["pipeline/manual", "process-batches/inbox"]
    assert sum(f.endswith(".ome.zarr/zarr.json") for f in res["outputs"]) == 2  # both inbox images denoised
    assert res["ledger"]["batches"]["batch_demo"]["status"] == "done"
