"""The routes of the review service under ``/api`` (contract: docs/SERVICE_API.md; full reference: the OpenAPI
schema). One module per group: ``routes_runs``, ``routes_images``, ``routes_jobs``, ``routes_registration``."""

from __future__ import annotations

from fastapi import APIRouter

from . import routes_images, routes_jobs, routes_registration, routes_runs

router = APIRouter(prefix="/api")
for _module in (routes_runs, routes_images, routes_jobs, routes_registration):
    router.include_router(_module.router)
