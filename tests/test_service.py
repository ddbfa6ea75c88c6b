"""The review service against a real PostgreSQL 15 and SeaweedFS (started and stopped by module fixtures).

Covers: Alembic up/down, token CLI and hashing, auth (401/403), registration of a real evaluate output and a batch
output (idempotent; atomic when the registering process is killed mid-way; the dead attempt's objects deleted),
tiles equal to the stored pixels, the read-only Zarr proxy, traversal, jobs with an upload limit, DB and S3 outages
(503, then recovery with nothing lost), and schemathesis over the OpenAPI schema with a fixed example budget.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import zarr
from PIL import Image as PILImage

from sem_stack import pick_free_ports, start_postgres, start_seaweedfs
from tests.service_data import make_batch_output, make_pipeline_outputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack():
    """PostgreSQL + SeaweedFS in a world-traversable temp folder (the postgres user must reach it as root)."""
    root = Path(tempfile.mkdtemp(prefix="sem-review-test-"))
    root.chmod(0o755)
    pg = start_postgres(root / "pg", databases=["review", "review_migrations"])
    try:
        s3 = start_seaweedfs(root / "s3", buckets=["sem-review"])
    except BaseException:
        pg.stop()
        raise
    yield {"root": root, "pg": pg, "s3": s3}
    s3.stop()
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def service(stack):
    """Migrated database, tokens of each role (made by the CLI), uvicorn serving the app in a thread."""
    import uvicorn
    from typer.testing import CliRunner

    from sem_cli.main import app as cli
    from sem_review import migrate
    from sem_review.app import create_app
    from sem_review.settings import ServiceSettings

    pg, s3 = stack["pg"], stack["s3"]
    db_url = pg.url("review")
    migrate.upgrade(db_url)
    settings = ServiceSettings(database_url=db_url, s3_endpoint=s3.endpoint, s3_bucket="sem-review",
                               s3_access_key=s3.access_key, s3_secret_key=s3.secret_key, max_upload_mb=1.0)
    tokens = {}
    for role in ("read", "write", "admin"):
        res = CliRunner().invoke(cli, ["service", "token", "--role", role, "--database-url", db_url])
        assert res.exit_code == 0, res.output
        tokens[role] = res.stdout.strip().splitlines()[-1]
    port = pick_free_ports(1)[0]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield {"url": url, "tokens": tokens, "app": app, "settings": settings, "db_url": db_url}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def data():
    root = Path(tempfile.mkdtemp(prefix="sem-review-data-"))
    params = make_pipeline_outputs(root)
    make_batch_output(root)
    yield {"root": root, "params": params}
    shutil.rmtree(root, ignore_errors=True)


def _client(service, role: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {service['tokens'][role]}"} if role else {}
    return httpx.Client(base_url=service["url"], headers=headers, timeout=30)


def _run_id(data) -> str:
    from sem_review.collect import run_id_for

    prov = json.loads((data["root"] / "reports" / "metrics" / "provenance.json").read_text())
    return run_id_for("pipeline", prov)


def test_migrations_up_and_down(stack):
    from sqlalchemy import create_engine, inspect

    from sem_review import migrate

    url = stack["pg"].url("review_migrations")
    tables = {"tokens", "runs", "summary_metrics", "images", "defects", "registrations", "jobs"}
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        assert migrate.current_revision(url) == migrate.head_revision()
        assert tables <= set(inspect(engine).get_table_names())
        migrate.downgrade(url, "base")
        assert migrate.current_revision(url) is None
        assert set(inspect(engine).get_table_names()) & tables == set()
        migrate.upgrade(url)
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_tokens_printed_once_stored_hashed_and_roles_enforced(service):
    from sqlalchemy import create_engine, text

    tokens = service["tokens"]
    assert all(re.fullmatch(r"semr_[A-Za-z0-9_-]{43}", t) for t in tokens.values())
    engine = create_engine(service["db_url"])
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT token_hash FROM tokens"))]
    engine.dispose()
    assert not set(tokens.values()) & set(stored) and len(stored) == 3
    with httpx.Client(base_url=service["url"], timeout=30) as anon:
        assert anon.get("/api/health").json() == {"status": "ok", "database": "ok", "object_store": "ok"}
        r = anon.get("/api/runs")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert anon.get("/api/runs", headers={"Authorization": "Bearer semr_" + "x" * 43}).status_code == 401
        assert anon.get("/api/runs", headers={"Authorization": "Basic abc"}).status_code == 401
        assert "access-control-allow-origin" not in anon.get("/api/health", headers={"Origin": "http://evil"}).headers
    with _client(service, "read") as read:
        assert read.get("/api/runs").status_code == 200
        r = read.post("/api/registrations", json={"run_id": "pipeline-0123456789abcdef"})
        assert r.status_code == 403 and "write" in r.json()["detail"]
        assert read.post("/api/jobs", params={"filename": "a.png"}, content=b"x").status_code == 403
    with _client(service, "write") as write:
        assert write.post("/api/admin/gc").status_code == 403


def test_kill_mid_registration_leaves_no_run_and_rerun_completes(service, stack, data):
    """SIGKILL the registering process while it uploads: no run is visible; rerunning registers it once and the
    dead attempt's objects are deleted."""
    from sem_review.storage import ObjectStore

    store = ObjectStore(service["settings"])
    run_id = _run_id(data)
    scratch = data["root"] / "killed-tmp"  # the killed process cannot remove its temp files: keep them here
    scratch.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), SEM_REVIEW_URL=service["url"],
               SEM_REVIEW_TOKEN=service["tokens"]["write"], TMPDIR=str(scratch))
    proc = subprocess.Popen([sys.executable, "-m", "sem_cli.main", "service", "register", "--params",
                             str(data["params"])], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_with = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            keys = store.list_prefix(f"runs/{run_id}")
            if len(keys) >= 10:
                proc.send_signal(signal.SIGKILL)
                killed_with = len(keys)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and not killed_with:
            proc.kill()
        out = proc.communicate()[0].decode()
    assert killed_with, f"registration ended before it could be killed: {out[-500:]}"
    with _client(service, "read") as read:
        assert read.get(f"/api/runs/{run_id}").status_code == 404
        assert run_id not in [r["id"] for r in read.get("/api/runs").json()["runs"]]
    # a PUT whose body was on the wire when the client was killed can still land on the server a moment later:
    # wait until the dead attempt's objects stop changing before the rerun is expected to clean them all up
    orphans, stable_since = store.list_prefix(f"runs/{run_id}"), time.monotonic()
    while time.monotonic() - stable_since < 1.0 and time.monotonic() < deadline + 10:
        time.sleep(0.1)
        now = store.list_prefix(f"runs/{run_id}")
        if now != orphans:
            orphans, stable_since = now, time.monotonic()
    assert len(orphans) >= killed_with
    dead_attempt = orphans[0].split("/")[2]

    from typer.testing import CliRunner

    from sem_cli.main import app as cli

    args = ["service", "register", "--params", str(data["params"]), "--url", service["url"],
            "--token", service["tokens"]["write"]]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert f"{run_id}: registered" in res.output
    assert store.list_prefix(f"runs/{run_id}/{dead_attempt}") == []  # orphans cleaned
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "already registered" in again.output
    batch = CliRunner().invoke(cli, [*args, "--all-batches"])
    assert batch.exit_code == 0 and "batch-" in batch.output, batch.output
    with _client(service, "read") as read:
        runs = read.get("/api/runs").json()["runs"]
        assert [r["kind"] for r in runs].count("pipeline") == 1 and [r["kind"] for r in runs].count("batch") == 1
        created = [r["created"] for r in runs]
        assert created == sorted(created, reverse=True)  # newest first
        assert [r["id"] for r in read.get("/api/runs", params={"kind": "batch"}).json()["runs"]][0].startswith("batch-")
        assert read.get("/api/runs", params={"dataset": "wafers"}).json()["runs"][0]["id"] == run_id
        assert read.get("/api/runs", params={"until": "2000-01-01T00:00:00Z"}).json()["runs"] == []


def test_run_contents_match_the_evaluate_tables(service, data):
    import pandas as pd

    run_id = _run_id(data)
    summary = pd.read_parquet(data["root"] / "reports" / "metrics" / "summary.parquet")
    per_image = pd.read_parquet(data["root"] / "reports" / "metrics" / "per_image.parquet")
    with _client(service, "read") as read:
        run = read.get(f"/api/runs/{run_id}").json()
        assert run["kind"] == "pipeline" and run["methods"] == ["gaussian", "noisy"]
        assert run["datasets"] == ["scans", "wafers"] and run["params_hash"] == run["provenance"]["params_hash"]
        assert len(run["summary"]) == len(summary)
        psnr = {(s["method"]): s["mean"] for s in run["summary"] if s["metric"] == "psnr"}
        want = summary[summary.metric == "psnr"].set_index("method")["mean"]
        assert psnr == pytest.approx(want.to_dict())
        images = read.get(f"/api/runs/{run_id}/images", params={"dataset": "wafers"}).json()["images"]
        assert [i["name"] for i in images] == ["w_b", "w_c"]  # the test split, image ids made safe
        got = images[0]["metrics"]["gaussian"]["psnr"]
        assert got == pytest.approx(per_image.query("method == 'gaussian' and image_index == 1")["psnr"].item())
        assert images[0]["methods"] == ["gaussian"] and images[0]["has_clean"]  # the report's panel output
        defects = read.get(f"/api/runs/{run_id}/defects").json()["defects"]
        assert len(defects) == 2 and defects[0]["bbox"] == [20, 18, 25, 23]
        assert set(defects[0]["retention"]) == {"noisy", "gaussian"}
        report = read.get(f"/api/runs/{run_id}/report")
        assert report.status_code == 200 and "method comparison" in report.text
        assert "default-src 'none'" in report.headers["content-security-policy"]
        cmp = read.get("/api/runs/compare", params={"a": run_id, "b": run_id}).json()
        assert cmp["deltas"] and all(d["delta"] in (0.0, None) for d in cmp["deltas"])
        # No credentials or filesystem paths in what reads return.
        everything = json.dumps([run, images, read.get("/api/runs").json(), read.get("/openapi.json").json()])
        for secret in (service["settings"].s3_secret_key, service["settings"].s3_access_key, str(data["root"]),
                       "/tmp/"):
            assert secret not in everything


def _png(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return np.asarray(PILImage.open(io.BytesIO(resp.content)))


def test_tiles_equal_the_stored_pixels(service, data):
    run_id = _run_id(data)
    scan_dir = data["root"] / "scans" / "wafer_scan.ome.zarr"
    with _client(service, "read") as read:
        images = read.get(f"/api/runs/{run_id}/images").json()["images"]
        scan = next(i for i in images if i["kind"] == "scan")
        assert (scan["height"], scan["width"], scan["levels"]) == (1024, 1024, 3) and scan["has_clean"]
        tile = lambda **q: read.get(f"/api/images/{scan['id']}/tile", params=q)  # noqa: E731
        level0 = zarr.open_array(scan_dir / "0", mode="r")[:]
        np.testing.assert_array_equal(_png(tile(method="noisy", level=0, row=1, col=2, size=256)),
                                      level0[256:512, 512:768])
        level1 = zarr.open_array(scan_dir / "1", mode="r")[:]
        np.testing.assert_array_equal(_png(tile(method="noisy", level=1, row=0, col=0, size=512)), level1)
        clean = zarr.open_array(scan_dir / "clean" / "2", mode="r")[:]
        np.testing.assert_array_equal(_png(tile(method="clean", level=2)), clean)
        out = zarr.open_array(data["root"] / "processed" / "wafer_scan.gaussian.ome.zarr" / "0", mode="r")[:]
        np.testing.assert_array_equal(_png(tile(method="gaussian", row=3, col=3)), out[768:, 768:])
        windowed = _png(tile(method="noisy", row=0, col=0, vmin=50, vmax=150)).astype(int)
        want = np.clip(np.rint((level0[:256, :256].astype(np.float64) - 50.0) * 255.0 / 100.0), 0, 255)
        np.testing.assert_array_equal(windowed, want)
        assert tile(method="noisy", row=4, col=0).status_code == 404  # outside the level
        assert tile(method="noisy", level=3).status_code == 404
        assert tile(method="unet", level=0).status_code == 404
        assert tile(method="noisy", size=300).status_code == 422
        assert tile(method="noisy", vmin=5, vmax=5).status_code == 422
        # A dataset image: its noisy layer is the store's image.
        wafer = next(i for i in images if i["name"] == "w_b")
        noisy = zarr.open_group(data["root"] / "wafers.zarr", mode="r")["noisy"][1]
        np.testing.assert_array_equal(_png(read.get(f"/api/images/{wafer['id']}/tile")), noisy)
        # The read-only Zarr proxy: a client opens the layer lazily over HTTP with its token.
        from zarr.storage import FsspecStore

        store = FsspecStore.from_url(f"{service['url']}/api/images/{scan['id']}/zarr/noisy", read_only=True,
                                     storage_options={"headers": {"Authorization": read.headers["Authorization"]}})
        arr = zarr.open_group(store, mode="r", zarr_format=3)["0"]
        np.testing.assert_array_equal(arr[100:300, 900:1000], level0[100:300, 900:1000])
        for bad in ("..%2F..%2Fzarr.json", ".zgroup", "0/%2E%2E/zarr.json", "0//c"):
            assert read.get(f"/api/images/{scan['id']}/zarr/noisy/{bad}").status_code == 404


def test_jobs_size_limit_and_status(service):
    with _client(service, "write") as write:
        r = write.post("/api/jobs", params={"filename": "scan01.tif"}, content=b"\x00" * 1000)
        assert r.status_code == 201
        job = write.get(f"/api/jobs/{r.json()['job_id']}").json()
        assert job["status"] == "queued" and job["size"] == 1000
        assert write.get(f"/api/jobs/{job['job_id']}/input").content == b"\x00" * 1000
        too_big = write.post("/api/jobs", params={"filename": "big.tif"}, content=b"\x00" * 1_000_001)
        assert too_big.status_code == 413
        assert write.post("/api/jobs", params={"filename": "../etc.tif"}, content=b"x").status_code == 422
        assert write.put("/api/registrations/" + "0" * 32 + "/objects/..%2Fx", content=b"x").status_code in (400, 404)


def test_outage_answers_503_and_recovers(service, stack, data):
    run_id = _run_id(data)
    pg, s3 = stack["pg"], stack["s3"]
    with _client(service, "read") as read:
        scan = next(i for i in read.get(f"/api/runs/{run_id}/images").json()["images"] if i["kind"] == "scan")
        before = read.get("/api/runs").json()
        pg.stop()
        try:
            health = read.get("/api/health")
            assert health.status_code == 503 and "database unavailable" in health.json()["database"]
            assert health.json()["object_store"] == "ok"
            down = read.get("/api/runs")
            assert down.status_code == 503 and "database unavailable" in down.json()["detail"]
        finally:
            pg.start()
        assert read.get("/api/health").status_code == 200
        assert read.get("/api/runs").json() == before  # nothing lost
        s3.stop()
        try:
            health = read.get("/api/health")
            assert health.status_code == 503 and "object store unavailable" in health.json()["object_store"]
            tile = read.get(f"/api/images/{scan['id']}/tile", params={"method": "clean", "level": 1, "row": 1})
            assert tile.status_code == 503 and "object store unavailable" in tile.json()["detail"]
            assert read.get(f"/api/runs/{run_id}/report").status_code == 503
            assert read.get("/api/runs").status_code == 200  # metadata still served
        finally:
            s3.start()
        assert read.get("/api/health").status_code == 200
        _png(read.get(f"/api/images/{scan['id']}/tile", params={"method": "clean", "level": 1, "row": 1}))


def test_schemathesis_finds_no_server_error(service):
    """Every operation of the OpenAPI schema, a fixed example budget each, as admin: no 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_url(f"{service['url']}/openapi.json")
    headers = {"Authorization": f"Bearer {service['tokens']['admin']}"}
    failures, calls = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def check(case):
            resp = case.call(base_url=service["url"], headers=headers, timeout=30)
            calls.append(resp.status_code)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}")

        check()
    print(f"schemathesis: {len(calls)} calls, statuses {sorted(set(calls))}")
    assert len(calls) >= 60 and not failures, failures[:5]
