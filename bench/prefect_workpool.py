"""Prefect on PostgreSQL with a process work pool: deploy from prefect.yaml, a worker runs a scheduled batch.

    python bench/prefect_workpool.py            # everything on 127.0.0.1, in a temporary folder, then stopped

What it does (each step printed with its wall time):

1. a throwaway PostgreSQL 15 cluster (:func:`sem_stack.start_postgres`) with a ``prefect`` database;
2. ``prefect server start`` backed by it (``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…``);
3. ``prefect work-pool create sem-denoise-local --type process`` (the pool named in ``prefect.yaml``);
4. ``prefect --no-prompt deploy --all`` from the repository root (``process-batches/inbox``, on a cron
   schedule, and ``pipeline/manual``);
5. a batch run of ``process-batches/inbox`` *scheduled* a few seconds ahead
   (``prefect deployment run --start-in``), with a small inbox of synthetic TIFFs and a classical method;
6. ``prefect worker start --pool sem-denoise-local`` picks it up, runs the flow in a subprocess in
   this checkout, and the script waits for the run to reach a final state, then prints the outputs;
7. worker, server and PostgreSQL are stopped (by PID), the folder removed.

Needs: PostgreSQL 15 server binaries (Debian ``postgresql-15``), ``asyncpg`` (a Prefect dependency).
Ports: ``--port-base`` (default 15250: PostgreSQL, +1 the Prefect API).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.dask_cluster import stop_process_groups  # noqa: E402

POOL = "sem-denoise-local"


def _step(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)


def _prefect(*args: str, env: dict, timeout: float = 300) -> str:
    exe = str(Path(sys.executable).with_name("prefect"))
    out = subprocess.run([exe, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"prefect {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n"
                           f"{out.stderr[-3000:]}")
    return out.stdout


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.5)
    raise RuntimeError(f"prefect server at {url} not healthy after {timeout} s")


def _make_inbox(inbox: Path, n: int = 2) -> None:
    import tifffile

    batch = inbox / "batch_demo"
    batch.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    for i in range(n):
        img = 80 + 90 * (((xx + 7 * i) // 16) % 2) + rng.normal(0, 20, xx.shape)
        tifffile.imwrite(batch / f"img_{i}.tif", np.clip(img, 0, 255).astype(np.uint8))


def run_demo(work: Path, *, port_base: int = 15250, timeout: float = 900) -> dict:
    """Run steps 1–7 under ``work``; return ``{"state", "outputs", "flow_run_id", ...}``."""
    from sem_stack import start_postgres

    t0 = time.perf_counter()
    pg = server = worker = None
    work.chmod(0o755)  # the postgres user must traverse it
    try:
        pg = start_postgres(work / "pg", port=port_base, databases=["prefect"])
        _step(f"PostgreSQL on 127.0.0.1:{pg.port} (database prefect)", t0)
        api = f"http://127.0.0.1:{port_base + 1}/api"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(work / "prefect_home"),
               "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/prefect",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_API_URL": api,
               "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_UI_ENABLED": "false",
               "SEM_PREFECT_RESULTS": str(work / "results")}
        exe = str(Path(sys.executable).with_name("prefect"))
        server = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port_base + 1)],
                                  cwd=work, env=env, stdout=open(work / "server.log", "w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        _wait_healthy(api, server, timeout=180)
        _step(f"prefect server (PostgreSQL backend) healthy at {api}", t0)
        _prefect("work-pool", "create", POOL, "--type", "process", "--overwrite", env=env)
        _step(f"work pool {POOL!r} (process) created", t0)
        deployed = _prefect("--no-prompt", "deploy", "--all", env=env)
        names = [ln.split("'")[1] for ln in deployed.splitlines() if "Deployment '" in ln]
        _step(f"prefect deploy --all: {sorted(set(names)) or deployed.strip()[-300:]}", t0)
        inbox, outputs = work / "inbox", work / "outputs"
        _make_inbox(inbox)
        run_out = _prefect("deployment", "run", "process-batches/inbox", "--start-in", "5 seconds",
                           "--param", f"inbox_dir={inbox}", "--param", f"outputs_dir={outputs}",
                           "--param", "use_unet=false", "--param", "classical=gaussian", env=env)
        run_id = next(ln.split()[-1] for ln in run_out.splitlines() if "UUID" in ln)
        _step(f"flow run {run_id} scheduled (state Scheduled, 5 s ahead)", t0)
        worker = subprocess.Popen([exe, "worker", "start", "--pool", POOL, "--limit", "1"], cwd=ROOT, env=env,
                                  stdout=open(work / "worker.log", "w"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        _step("prefect worker started on the pool", t0)
        state = _wait_for_run(run_id, env, deadline=time.monotonic() + timeout)
        _step(f"flow run {run_id}: {state}", t0)
        files = sorted(str(p.relative_to(outputs)) for p in outputs.rglob("*") if p.is_file())
        ledger = next((json.loads(p.read_text()) for p in outputs.rglob("*.json") if "ledger" in p.name), None)
        log_tail = (work / "worker.log").read_text()[-1500:]
        return {"state": state, "flow_run_id": run_id, "outputs": files, "ledger": ledger,
                "deployments": sorted(set(names)), "worker_log_tail": log_tail}
    finally:
        stop_process_groups([worker, server], timeout_s=30)
        if pg is not None:
            pg.stop()
        _step("worker, server and PostgreSQL stopped", t0)


def _wait_for_run(run_id: str, env: dict, *, deadline: float) -> str:
    state = "?"
    while time.monotonic() < deadline:
        out = _prefect("flow-run", "inspect", run_id, "--output", "json", env=env)
        state = json.loads(out)["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(3)
    return f"{state} (timed out)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-base", type=int, default=15250)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sem_prefect_") as tmp:
        res = run_demo(Path(tmp), port_base=args.port_base, timeout=args.timeout)
    print(json.dumps({k: v for k, v in res.items() if k != "worker_log_tail"}, indent=2))
    if res["state"] != "COMPLETED":
        print(res["worker_log_tail"], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
