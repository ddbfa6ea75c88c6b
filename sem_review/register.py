"""Register a pipeline run or batch outputs from the typed config: what the CLI and the Prefect task call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .client import ServiceClient, ServiceError, register_bundle
from .collect import collect_batch, collect_pipeline

__all__ = ["resolve_service", "register_pipeline", "register_batches", "ServiceError"]


def resolve_service(params: Any, *, url: str | None = None, token: str | None = None) -> tuple[str, str] | None:
    """(url, token) from arguments, ``$SEM_REVIEW_URL``/``$SEM_REVIEW_TOKEN``, then ``params.service``;
    None when no URL is configured (registration off).

    Raises
    ------
    ServiceError
        A URL is configured but no token is found.
    """
    cfg = params.service
    url = url or os.environ.get("SEM_REVIEW_URL") or cfg.url
    if not url:
        return None
    token = token or os.environ.get("SEM_REVIEW_TOKEN")
    if not token and cfg.token_file:
        try:
            token = Path(cfg.token_file).read_text().strip()
        except OSError as exc:
            raise ServiceError(f"service.token_file {cfg.token_file}: {exc}") from exc
    if not token:
        raise ServiceError(f"review service {url} configured but no token: set SEM_REVIEW_TOKEN or service.token_file")
    return url, token


def register_pipeline(params: Any, *, url: str, token: str, metrics_dir: Path | None = None) -> dict:
    """Collect the evaluated pipeline outputs named by ``params.paths`` and register them."""
    p = params.paths
    bundle = collect_pipeline(
        metrics_dir=metrics_dir or Path(p.reports_dir) / "metrics", report=Path(p.reports_dir) / "index.html",
        datasets={"tin_balls": Path(p.tin_balls_zarr), "wafers": Path(p.wafers_zarr)},
        scans_dir=Path(p.scans_dir), processed_dir=Path(p.processed_dir),
        max_images_per_dataset=params.service.max_images_per_dataset,
    )
    try:
        with ServiceClient(url, token, timeout=params.service.timeout_s) as client:
            return register_bundle(client, bundle)
    finally:
        bundle.cleanup()


def register_batches(params: Any, outputs: list[Path], *, url: str, token: str,
                     inbox_dir: Path | None = None) -> list[dict]:
    """Register each published batch output folder (idempotent per batch)."""
    answers = []
    with ServiceClient(url, token, timeout=params.service.timeout_s) as client:
        for out in outputs:
            bundle = collect_batch(Path(out), inbox_dir=inbox_dir or Path(params.paths.inbox_dir))
            try:
                answers.append({"batch": Path(out).name, **register_bundle(client, bundle)})
            finally:
                bundle.cleanup()
    return answers
