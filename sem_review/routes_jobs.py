"""Routes: job submission (size-limited upload) and status; the batch runner's side."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from .deps import UNAUTHORIZED, Read, SessionDep, Write, spool_body
from .models import Job, utcnow
from .schemas import NAME, JobCreated, JobOut, JobUpdate


router = APIRouter()


def _job_out(job: Job) -> JobOut:
    return JobOut(job_id=job.id, status=job.status, created=job.created, updated=job.updated, filename=job.filename,
                  size=job.size, run_id=job.run_id, message=job.message)


@router.post("/jobs", response_model=JobCreated, status_code=201, responses={413: {}, **UNAUTHORIZED},
             tags=["jobs"], openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def submit_job(request: Request, filename: Annotated[str, Query(pattern=NAME)], _: str = Write) -> JobCreated:
    """Submit one image file or a zip of a batch (raw request body, at most ``max_upload_mb``) for denoising.
    The batch flow picks queued jobs up (``sem-denoise service pull-jobs``); poll ``GET /api/jobs/{job_id}``."""
    settings = request.app.state.settings
    spool = await spool_body(request, int(settings.max_upload_mb * 1e6))
    job_id = uuid.uuid4().hex
    key = f"jobs/{job_id}/{filename}"
    try:
        size = await run_in_threadpool(request.app.state.store.put_stream, key, spool,
                                       limit=int(settings.max_upload_mb * 1e6))
    finally:
        spool.close()
    if size == 0:
        request.app.state.store.delete_prefix(key)
        raise HTTPException(422, "empty upload")
    session = request.app.state.sessions()
    try:
        session.add(Job(id=job_id, status="queued", filename=filename, size=size, object_key=key))
        session.commit()
    finally:
        session.close()
    return JobCreated(job_id=job_id)


@router.get("/jobs", response_model=list[JobOut], responses=UNAUTHORIZED, tags=["jobs"])
def list_jobs(session: SessionDep, _: str = Write,
              status: Literal["queued", "fetched", "done", "failed"] | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
    """Jobs (oldest first), for the batch runner."""
    q = select(Job)
    if status:
        q = q.where(Job.status == status)
    return [_job_out(j) for j in session.execute(q.order_by(Job.created).limit(limit)).scalars()]


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {}, **UNAUTHORIZED}, tags=["jobs"])
def get_job(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], session: SessionDep, _: str = Read) -> JobOut:
    """A job's status: queued -> fetched (in the batch inbox) -> done (with its run id) | failed."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return _job_out(job)


@router.get("/jobs/{job_id}/input", response_class=Response, responses={404: {}, **UNAUTHORIZED}, tags=["jobs"])
def get_job_input(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], request: Request, session: SessionDep,
                  _: str = Write) -> Response:
    """The uploaded file of a job (for the batch runner)."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return Response(request.app.state.store.get_bytes(job.object_key), media_type="application/octet-stream")


@router.patch("/jobs/{job_id}", response_model=JobOut, responses={404: {}, **UNAUTHORIZED}, tags=["jobs"])
def update_job(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], body: JobUpdate, session: SessionDep,
               _: str = Write) -> JobOut:
    """Set a job's status (the batch runner)."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    job.status, job.run_id, job.message, job.updated = body.status, body.run_id, body.message, utcnow()
    session.commit()
    return _job_out(job)
