"""Artifacts the UI shows: the metrics table, the benchmark markdown, the report link, provenance."""

from __future__ import annotations

import pandas as pd
from prefect import flow
from prefect.artifacts import Artifact

from tasks.artifacts import publish_images, publish_link, publish_markdown, publish_provenance, publish_table


def test_published_artifacts_can_be_read_back(tmp_path):
    report = tmp_path / "index.html"
    report.write_text("<html></html>")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64  # content is stored verbatim, not decoded

    @flow
    def publish() -> None:
        publish_table(pd.DataFrame({"method": ["nlm"], "psnr": [28.5]}), key="test-metrics")
        publish_markdown("| method | psnr |\n|---|---|\n| nlm | 28.5 |\n", key="test-benchmark")
        publish_link(report, key="test-report", text="report")
        publish_provenance({"params_hash": "abc", "code_version": "v1"}, key="test-provenance")
        publish_images({"tin balls 001": png}, key="test-key-images", out_dir=tmp_path / "key")

    publish()
    assert "28.5" in Artifact.get("test-metrics").data
    assert "| nlm | 28.5 |" in Artifact.get("test-benchmark").data
    assert report.resolve().as_uri() in Artifact.get("test-report").data
    assert "abc" in Artifact.get("test-provenance").data
    images = Artifact.get("test-key-images").data
    assert "data:image/png;base64," in images and "tin balls 001" in images
    assert (tmp_path / "key" / "tin-balls-001.png").read_bytes() == png
