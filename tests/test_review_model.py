"""Review client without Qt: the data logic, the offline source, the HTTP client against the contract."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

from sem_review_napari.client import ReviewClient, ServiceError
from sem_review_napari.local import LocalSource
from sem_review_napari.model import (
    compute_deltas,
    contrast_range,
    defect_boxes,
    filter_runs,
    image_rows,
    sort_rows,
)
from tests.review.outputs import LABELS, make_review_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("review_outputs")
    return root, make_review_outputs(root)


def _run(rid, rows):
    return {"id": rid, "summary": [{"dataset": d, "method": m, "metric": k, "mean": v} for d, m, k, v in rows]}


def test_deltas_are_b_minus_a_on_shared_keys_only():
    a = _run("a", [("w", "unet", "psnr", 30.0), ("w", "bm3d", "psnr", 28.0), ("w", "unet", "ssim", None)])
    b = _run("b", [("w", "unet", "psnr", 31.5), ("w", "gauss", "psnr", 25.0), ("w", "unet", "ssim", 0.9)])
    d = compute_deltas(a, b)
    assert [(x["method"], x["metric"]) for x in d] == [("unet", "psnr"), ("unet", "ssim")]
    assert d[0]["delta"] == pytest.approx(1.5) and d[0]["a"] == 30.0 and d[0]["b"] == 31.5
    assert d[1]["delta"] is None


def test_filter_runs_matches_every_word_and_kind():
    runs = [{"id": "r1", "kind": "pipeline", "datasets": ["wafers"], "methods": ["unet"]},
            {"id": "r2", "kind": "batch", "datasets": ["batch-01"], "methods": ["median"]}]
    assert [r["id"] for r in filter_runs(runs, "WAFERS unet")] == ["r1"]
    assert [r["id"] for r in filter_runs(runs, "", kind="batch")] == ["r2"]
    assert filter_runs(runs, "wafers median") == []


def test_image_rows_and_sort_put_missing_last():
    images = [{"dataset": "w", "name": n, "kind": "image", "methods": ["unet"], "metrics": {"unet": {"psnr": v}}}
              for n, v in (("a", 30.0), ("b", None), ("c", 25.0))]
    header, rows = image_rows(images, "psnr")
    assert header == ["dataset", "name", "kind", "unet"]
    assert sort_rows(rows, 3) == [2, 0, 1]  # worst first, missing last
    assert sort_rows(rows, 3, descending=True) == [0, 2, 1]


def test_contrast_range_is_shared_percentiles():
    a, b = np.zeros((100, 100)), np.full((50, 50), 10.0)
    lo, hi = contrast_range([a, b], percentiles=(0, 100))
    assert (lo, hi) == (0.0, 10.0)
    assert contrast_range([np.ones((4, 4))]) == (1.0, 2.0)  # flat image: a non-empty range


def test_defect_boxes_label_type_and_retention():
    defects = [{"image_id": "i1", "defect_id": 0, "type": "bridge", "bbox": [1, 2, 5, 9], "retention": {"unet": 0.8}},
               {"image_id": "i2", "defect_id": 0, "type": "particle", "bbox": [0, 0, 1, 1], "retention": {}}]
    boxes = defect_boxes(defects, "i1", "unet")
    assert len(boxes["data"]) == 1 and boxes["text"] == ["bridge 0.80"]
    np.testing.assert_array_equal(boxes["data"][0], [[1, 2], [1, 9], [5, 9], [5, 2]])
    assert math.isnan(defect_boxes(defects, "i1", None)["retention"][0])


def test_local_source_reads_the_pipeline_outputs(outputs):
    root, made = outputs
    src = LocalSource(root)
    runs = {r["id"]: r for r in src.runs()}
    assert set(runs) == {"local:reports/metrics", "local:reports/previous", "local:scans"}
    run = runs["local:reports/metrics"]
    assert sorted(run["methods"]) == sorted(LABELS[1:]) and run["datasets"] == ["wafers"] and run["code_version"] == "test"
    images = {im["id"]: im for im in src.images(run["id"])}
    assert list(images) == made["images"]
    table = made["table"]
    for r in table.itertuples():  # the table's numbers, per image and method label
        label = r.method if r.experiment == "classical" else f"{r.method}-{r.experiment}"
        assert images[f"wafers/{r.image_id}"]["metrics"][label]["psnr"] == pytest.approx(r.psnr)
    kept = images["wafers/w000"]
    assert src.levels(kept, "clean")[0].shape == (96, 96) and len(src.levels(kept, "unet-full")) == 1
    with pytest.raises(KeyError, match="no local pixels"):
        src.levels(images["wafers/w003"], "noisy")
    defects = [d for d in src.defects(run["id"]) if d["image_id"] == "wafers/w000"]
    assert [d["type"] for d in defects] == ["bridge", "particle"]
    assert defects[0]["bbox"] == [10, 20, 18, 30] and defects[1]["retention"]["unet-full"] == pytest.approx(0.85)
    scan = src.images("local:scans")[0]
    assert scan["kind"] == "scan" and scan["methods"] == ["gaussian"] and scan["levels"] == 3 and scan["has_clean"]
    assert [lv.shape for lv in src.levels(scan, "gaussian")] == [(512, 512), (256, 256), (128, 128)]
    assert len(src.defects("local:scans")) == 2
    deltas = src.compare("local:reports/previous", run["id"])
    psnr = [d["delta"] for d in deltas if d["metric"] == "psnr"]
    assert len(psnr) == 3 and psnr == pytest.approx([1.0] * 3)
    assert all(d["delta"] in (0.0, None) for d in deltas if d["metric"] == "ssim")


def test_local_source_single_scan_and_errors(outputs, tmp_path):
    root, made = outputs
    src = LocalSource(made["scan"])
    assert [im["name"] for im in src.images("local:scans")] == ["wafer_scan"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        LocalSource(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no metric tables"):
        LocalSource(tmp_path)


def _contract_app(seen):
    run = {"id": "r1", "kind": "pipeline", "created": "2026-12-01T00:00:00Z", "params_hash": "p", "code_version": "c",
           "datasets": ["wafers"], "methods": ["unet"], "summary": []}
    images = [{"id": f"i{k}", "run_id": "r1", "dataset": "wafers", "name": f"n{k}", "kind": "image", "height": 8,
               "width": 8, "levels": 1, "methods": ["unet"], "has_clean": True, "metrics": {}} for k in range(7)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer tok":
            return httpx.Response(401, json={"detail": "missing or bad token"})
        p, q = request.url.path, request.url.params
        if p == "/api/runs":
            return httpx.Response(200, json={"runs": [run]})
        if p == "/api/runs/r1/images":
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
            return httpx.Response(200, json={"images": images[off:off + lim]})
        if p == "/api/runs/compare":
            return httpx.Response(200, json={"a": q["a"], "b": q["b"], "deltas": []})
        return httpx.Response(404, json={"detail": "not found"})

    return handler


def test_client_sends_token_pages_images_and_names_failures():
    seen: list[httpx.Request] = []
    client = ReviewClient("http://svc.invalid/", "tok", transport=httpx.MockTransport(_contract_app(seen)))
    assert client.runs(kind="pipeline")[0]["id"] == "r1"
    assert seen[-1].url.params["kind"] == "pipeline" and "dataset" not in seen[-1].url.params
    images = client.images("r1")  # pages of 500: one short page ends it
    assert [im["id"] for im in images] == [f"i{k}" for k in range(7)]
    assert client.images("r1", limit=3, offset=5) == images[5:7]
    assert client.compare("r1", "r2")["b"] == "r2"
    with pytest.raises(ServiceError, match=r"http://svc.invalid/api/runs/nope/defects: HTTP 404"):
        client.defects("nope")
    bad = ReviewClient("http://svc.invalid", "wrong", transport=httpx.MockTransport(_contract_app(seen)))
    with pytest.raises(ServiceError, match="HTTP 401"):
        bad.runs()
