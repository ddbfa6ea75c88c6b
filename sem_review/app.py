"""The FastAPI application: ``create_app(settings)``; ``python -m sem_review.app`` is not used, run uvicorn with
``sem_review.app:app_from_env --factory`` (what ``sem-denoise service serve`` does)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .auth import TokenCache
from .db import DatabaseUnavailable, make_engine, make_sessionmaker
from .registry import RegistrationError
from .settings import ServiceSettings, load_settings
from .storage import KeyError_, ObjectStore, StorageUnavailable
from .tiles import TileCache

__all__ = ["create_app", "app_from_env"]

log = logging.getLogger("sem_review")

DESCRIPTION = """Review service of sem-denoise: runs (pipeline evaluations and batch runs) with their metrics,
images (PNG tiles and read-only OME-Zarr over HTTP), defects, HTML reports, and job submission.
Every path but `/api/health` needs `Authorization: Bearer <token>` (roles read < write < admin).
A database or object-store outage answers 503 with the failing part named. See docs/SERVICE_API.md."""


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the app; connections are made lazily, so it starts even while PostgreSQL or S3 are down."""
    from .api import router

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from fastapi.concurrency import run_in_threadpool

        await run_in_threadpool(_warm_up, app)  # S3 client + a DB connection ready before the first request
        yield
        app.state.engine.dispose()

    app = FastAPI(title="sem-denoise review service", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessions = make_sessionmaker(app.state.engine)
    app.state.store = ObjectStore(settings, chunk_cache_mb=settings.chunk_cache_mb)
    app.state.tiles = TileCache(settings.tile_cache_size)
    app.state.tokens = TokenCache()
    if settings.cors_origins:  # closed by default: no CORS headers at all
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"],
                           allow_headers=["Authorization"])

    @app.exception_handler(DatabaseUnavailable)
    async def _db_down(request: Request, exc: DatabaseUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        log.warning("database error on %s: %s", request.url.path, exc)
        if getattr(exc, "connection_invalidated", False) or isinstance(exc, (OperationalError, InterfaceError)):
            return JSONResponse({"detail": f"database unavailable ({type(exc.orig).__name__})"}, status_code=503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"detail": "database error"}, status_code=500)

    @app.exception_handler(StorageUnavailable)
    async def _s3_down(request: Request, exc: StorageUnavailable):
        log.warning("object store error on %s: %s", request.url.path, exc)
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "error"
        return JSONResponse({"detail": f"object store unavailable ({cause})"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(KeyError_)
    async def _bad_key(request: Request, exc: KeyError_):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RegistrationError)
    async def _registration(request: Request, exc: RegistrationError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    app.include_router(router)
    return app


def _warm_up(app: FastAPI) -> None:
    """Create the S3 client and open a pooled DB connection (both are slow the first time); outages are fine."""
    from .db import check_database

    for check in (lambda: app.state.store.check(), lambda: check_database(app.state.engine)):
        try:
            check()
        except Exception as exc:  # noqa: BLE001  (down at start: /api/health reports it)
            log.warning("warm-up: %s", exc)


def app_from_env() -> FastAPI:
    """App factory for uvicorn (``--factory``): settings from ``SEM_REVIEW_*`` variables."""
    return create_app(load_settings())
