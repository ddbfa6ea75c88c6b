"""The napari review client against the real review service (issue 14: PostgreSQL 15 + SeaweedFS + the FastAPI
app, started and stopped here), with a pipeline run registered through the service's own registration code.

Checks: the widget lists the service's runs; the image table shows the service's numbers (and those are the
evaluate tables'); a scan opens as multiscale layers read lazily over the service's Zarr proxy, pixel for pixel
the stored ones, in grid mode with one camera; the screenshot shows several panels; deltas agree with ours.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.review.gui import panel_count, require_napari

pytest.importorskip("sem_review", reason="the review service (issue 14: sem_review, sem_stack) is not on this branch")
require_napari()

from sem_review_napari.client import ReviewClient  # noqa: E402
from sem_review_napari.model import compute_deltas  # noqa: E402
from sem_review_napari.sources import ServiceSource  # noqa: E402


@pytest.fixture(scope="module")
def service():
    """PostgreSQL + SeaweedFS + uvicorn (thread) with a read token and one registered pipeline run."""
    import uvicorn

    from sem_review import migrate
    from sem_review.app import create_app
    from sem_review.auth import create_token
    from sem_review.client import ServiceClient, register_bundle
    from sem_review.collect import collect_pipeline
    from sem_review.db import make_engine, make_sessionmaker
    from sem_review.settings import ServiceSettings
    from sem_stack import pick_free_ports, start_postgres, start_seaweedfs
    from tests.service_data import make_pipeline_outputs

    root = Path(tempfile.mkdtemp(prefix="sem-review-client-"))
    root.chmod(0o755)  # the postgres user must reach the cluster when tests run as root
    pg = start_postgres(root / "pg", databases=["review"])
    s3 = server = thread = None
    try:
        s3 = start_seaweedfs(root / "s3", buckets=["sem-review"])
        db_url = pg.url("review")
        migrate.upgrade(db_url)
        engine = make_engine(db_url)
        with make_sessionmaker(engine)() as session:
            tokens = {role: create_token(session, role=role, name=f"client-{role}") for role in ("read", "write")}
        engine.dispose()
        settings = ServiceSettings(database_url=db_url, s3_endpoint=s3.endpoint, s3_bucket="sem-review",
                                   s3_access_key=s3.access_key, s3_secret_key=s3.secret_key)
        port = pick_free_ports(1)[0]
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error",
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(400):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        url = f"http://127.0.0.1:{port}"
        data = root / "data"
        make_pipeline_outputs(data, scan_size=512, scan_chunk=128)
        bundle = collect_pipeline(metrics_dir=data / "reports" / "metrics", report=data / "reports" / "index.html",
                                  datasets={"wafers": data / "wafers.zarr"}, scans_dir=data / "scans",
                                  processed_dir=data / "processed")
        try:
            with ServiceClient(url, tokens["write"]) as client:
                register_bundle(client, bundle)
        finally:
            bundle.cleanup()
        yield {"url": url, "token": tokens["read"], "data": data}
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)
        if s3 is not None:
            s3.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def viewer():
    import napari

    v = napari.Viewer(show=True, title="sem-denoise review service test")
    v.window._qt_window.resize(1400, 900)
    yield v
    v.close()


@pytest.fixture(scope="module")
def widget(service, viewer):
    from sem_review_napari.app import open_review

    source = ServiceSource(ReviewClient(service["url"], service["token"]))
    return open_review(viewer, source, run="latest", image="wafer_scan")


def test_widget_lists_the_service_runs(widget, service):
    with ReviewClient(service["url"], service["token"]) as client:
        runs = client.runs()
    assert len(runs) == 1 and runs[0]["kind"] == "pipeline"
    assert [widget.runs_table.item(i, 0).text() for i in range(widget.runs_table.rowCount())] == [runs[0]["id"]]
    assert widget.run["id"] == runs[0]["id"]
    with pytest.raises(Exception, match="HTTP 401"):
        ReviewClient(service["url"], "not-a-token").runs()


def test_metrics_table_matches_the_service_and_the_evaluate_tables(widget, service):
    import pandas as pd

    images = widget.source.images(widget.run["id"])
    wafers = [im for im in images if im["dataset"] == "wafers"]
    assert wafers, "the registered run has no dataset images"
    widget.metric_combo.setCurrentText("psnr")
    shown = widget.table_values("gaussian")
    for im in wafers:
        assert shown[im["id"]] == pytest.approx(im["metrics"]["gaussian"]["psnr"], rel=1e-9)
    table = pd.read_parquet(service["data"] / "reports" / "metrics" / "per_image.parquet")
    truth = table[table.method == "gaussian"].set_index("image_id")["psnr"]
    assert sorted(shown[im["id"]] for im in wafers) == pytest.approx(sorted(truth.to_numpy()), rel=1e-9)


def test_scan_opens_lazily_over_http_in_grid_mode(widget, viewer, service):
    import zarr

    p = widget.panels
    assert p is not None and not p.missing, p.missing if p else None
    assert p.intensity == ["noisy", "gaussian", "clean"] and p.differences == ["gaussian - clean"]
    noisy = viewer.layers["noisy"]
    assert noisy.multiscale and len(noisy.data) == 3
    stored = zarr.open_group(service["data"] / "scans" / "wafer_scan.ome.zarr", mode="r")
    np.testing.assert_array_equal(np.asarray(noisy.data[0][100:300, 50:400]), stored["0"][100:300, 50:400])
    assert "127.0.0.1" in str(noisy.data[0].store)  # read through the service, not from the file
    assert viewer.canvas.grid.enabled
    canvas = viewer.window._qt_viewer.canvas
    assert len(canvas.grid_cameras) >= 4 and all(c._camera is viewer.camera for c in canvas.grid_cameras)
    assert panel_count(viewer) >= 4  # noisy, gaussian, clean, difference


def test_dataset_image_and_deltas(widget):
    wafer_ids = [im["id"] for im in widget.images if im["dataset"] == "wafers"]
    widget.select_image(widget.image_order().index(wafer_ids[0]))
    p = widget.panels
    assert p.image_id == wafer_ids[0] and p.intensity[0] == "noisy" and "clean" in p.intensity and not p.missing
    run = widget.run
    deltas = widget.source.compare(run["id"], run["id"])
    expected = compute_deltas(run, run)
    assert sorted((d["dataset"], d["method"], d["metric"]) for d in deltas) == sorted(
        (d["dataset"], d["method"], d["metric"]) for d in expected)
    assert all(d["delta"] in (0.0, None) for d in deltas)
