"""Routes: atomic, idempotent registration (begin, upload objects, commit) and garbage collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from . import registry
from .deps import UNAUTHORIZED, Admin, SessionDep, Write, spool_body
from .models import Job, utcnow
from .schemas import BeginIn, BeginOut, Manifest
from .storage import validate_key


router = APIRouter()


# ---- registration ---------------------------------------------------------------------------------------------

Attempt = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("/registrations", response_model=BeginOut, responses=UNAUTHORIZED, tags=["registration"])
def begin_registration(body: BeginIn, request: Request, session: SessionDep, _: str = Write) -> BeginOut:
    """Start registering ``run_id``: ``registered`` if it already is (idempotent), else a new attempt."""
    return BeginOut(**registry.begin(session, request.app.state.store, body.run_id))


@router.put("/registrations/{attempt}/objects/{key:path}", status_code=204, responses={
    404: {}, 409: {}, 413: {}, **UNAUTHORIZED}, tags=["registration"], openapi_extra={"requestBody": {
        "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_object(attempt: Attempt, key: str, request: Request, _: str = Write) -> Response:
    """Upload one object of the attempt (a file of an OME-Zarr layer, the report, a table)."""
    validate_key(key)
    limit = int(request.app.state.settings.max_object_mb * 1e6)
    spool = await spool_body(request, limit)
    try:
        data = spool.read()
    finally:
        spool.close()

    def store_it() -> None:
        session = request.app.state.sessions()
        try:
            reg = registry.open_attempt(session, attempt)
            request.app.state.store.put_bytes(f"{registry.attempt_prefix(reg.run_id, attempt)}/{key}", data)
        finally:
            session.close()

    await run_in_threadpool(store_it)
    return Response(status_code=204)


@router.post("/registrations/{attempt}/commit", responses={404: {}, 409: {}, 422: {}, **UNAUTHORIZED},
             tags=["registration"])
def commit_registration(attempt: Attempt, manifest: Manifest, request: Request, session: SessionDep,
                        _: str = Write) -> dict:
    """Make the run visible: checks the uploaded objects, then inserts every row in one transaction."""
    out = registry.commit(session, request.app.state.store, attempt, manifest)
    if manifest.kind == "batch":
        batch = manifest.datasets[0] if manifest.datasets else ""
        if batch.startswith("job-"):
            job = session.get(Job, batch.removeprefix("job-"))
            if job is not None:
                job.status, job.run_id, job.updated = "done", manifest.run_id, utcnow()
                session.commit()
    return out


@router.post("/admin/gc", responses=UNAUTHORIZED, tags=["admin"])
def collect_garbage(request: Request, session: SessionDep, _: str = Admin,
                    older_than_s: Annotated[float, Query(ge=0, le=1e7)] = 3600.0) -> dict:
    """Delete objects of registration attempts that never committed (and prefixes no attempt owns)."""
    return registry.collect_garbage(session, request.app.state.store, older_than_s=older_than_s)
