"""The routes of the review service (contract: docs/SERVICE_API.md; full reference: the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
import math
import tempfile
import uuid
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import registry
from .auth import lookup_role, role_allows
from .db import DatabaseUnavailable, check_database
from .models import Defect, Image, Job, Run, SummaryMetric, utcnow
from .schemas import (
    NAME, RUN_ID, BeginIn, BeginOut, Compare, Delta, DefectList, DefectOut, Health, ImageList, ImageOut, JobCreated,
    JobOut, JobUpdate, Manifest, RunDetail, RunList, RunOut, SummaryRow,
)
from .storage import KeyError_, StorageUnavailable, validate_key
from .tiles import render_png, tile_slices

router = APIRouter(prefix="/api")
_bearer = HTTPBearer(auto_error=False, description="A token from `sem-denoise service token --role ...`")

class TileSize(IntEnum):
    small = 256
    large = 512


RunId = Annotated[str, Path(pattern=RUN_ID, description="Run id, e.g. pipeline-3f2a...")]
ImageId = Annotated[str, Path(pattern=r"^img-[0-9a-f]{20}$")]
_UNAUTHORIZED = {401: {"description": "missing or invalid token"}, 403: {"description": "role too low"},
                 503: {"description": "database or object store unavailable"}}


def get_session(request: Request) -> Iterator[Session]:
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def _lookup_role(request: Request, token: str) -> str | None:
    session = request.app.state.sessions()
    try:
        return lookup_role(session, token)
    finally:
        session.close()


def require(need: str):
    """Dependency: the caller's role, at least ``need`` (401 without a valid token, 403 when too low). Async, so a
    token seen in the last seconds costs no thread hop and no database query."""
    async def dependency(request: Request,
                         creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        cache = request.app.state.tokens
        role = cache.get(creds.credentials)
        if role is None:
            role = await run_in_threadpool(_lookup_role, request, creds.credentials)
            if role is None:
                raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
            cache.put(creds.credentials, role)
        if not role_allows(role, need):
            raise HTTPException(403, f"this needs the {need} role; the token has {role}")
        return role
    return Depends(dependency)


Read, Write, Admin = require("read"), require("write"), require("admin")
SessionDep = Annotated[Session, Depends(get_session)]


# ---- health ---------------------------------------------------------------------------------------------------

@router.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["health"])
def health(request: Request) -> JSONResponse:
    """Database and object store status (no token needed). 503 names the failing part."""
    out = {"status": "ok", "database": "ok", "object_store": "ok"}
    try:
        check_database(request.app.state.engine)
    except DatabaseUnavailable as exc:
        out["database"], out["status"] = str(exc), "unavailable"
    try:
        request.app.state.store.check()
    except (StorageUnavailable, FileNotFoundError) as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ else type(exc).__name__
        out["object_store"], out["status"] = f"object store unavailable ({cause})", "unavailable"
    return JSONResponse(out, status_code=200 if out["status"] == "ok" else 503)


# ---- runs -----------------------------------------------------------------------------------------------------

def _summaries(session: Session, run_ids: list[str]) -> dict[str, list[SummaryRow]]:
    out: dict[str, list[SummaryRow]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    rows = session.execute(select(SummaryMetric).where(SummaryMetric.run_id.in_(run_ids))
                           .order_by(SummaryMetric.dataset, SummaryMetric.method, SummaryMetric.metric)).scalars()
    for r in rows:
        out[r.run_id].append(SummaryRow(dataset=r.dataset, method=r.method, metric=r.metric, mean=r.mean,
                                        ci_low=r.ci_low, ci_high=r.ci_high, n=r.n))
    return out


def _run_out(run: Run, summary: list[SummaryRow]) -> RunOut:
    return RunOut(id=run.id, kind=run.kind, created=run.created, params_hash=run.params_hash,
                  code_version=run.code_version, datasets=run.datasets, methods=run.methods, summary=summary)


def _get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id}")
    return run


@router.get("/runs", response_model=RunList, responses=_UNAUTHORIZED, tags=["runs"])
def list_runs(
    session: SessionDep, _: str = Read,
    kind: Literal["pipeline", "batch"] | None = None,
    dataset: Annotated[str | None, Query(pattern=NAME)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RunList:
    """Registered runs, newest first, with their summary metrics; filters by kind, dataset and creation time."""
    q = select(Run)
    if kind:
        q = q.where(Run.kind == kind)
    if since:
        q = q.where(Run.created >= since)
    if until:
        q = q.where(Run.created <= until)
    if dataset:
        q = q.where(Run.id.in_(select(Image.run_id).where(Image.dataset == dataset))
                    | Run.id.in_(select(SummaryMetric.run_id).where(SummaryMetric.dataset == dataset)))
    runs = session.execute(q.order_by(Run.created.desc(), Run.id).limit(limit)).scalars().all()
    summaries = _summaries(session, [r.id for r in runs])
    return RunList(runs=[_run_out(r, summaries[r.id]) for r in runs])


@router.get("/runs/compare", response_model=Compare, responses=_UNAUTHORIZED, tags=["runs"])
def compare_runs(session: SessionDep, a: Annotated[str, Query(pattern=RUN_ID)],
                 b: Annotated[str, Query(pattern=RUN_ID)], _: str = Read) -> Compare:
    """Metric deltas ``b - a`` per (dataset, method, metric) present in either run."""
    _get_run(session, a), _get_run(session, b)
    s = _summaries(session, [a, b])
    va = {(r.dataset, r.method, r.metric): r.mean for r in s[a]}
    vb = {(r.dataset, r.method, r.metric): r.mean for r in s[b]}
    deltas = []
    for key in sorted(set(va) | set(vb)):
        x, y = va.get(key), vb.get(key)
        d = y - x if x is not None and y is not None and math.isfinite(y - x) else None
        deltas.append(Delta(dataset=key[0], method=key[1], metric=key[2], a=x, b=y, delta=d))
    return Compare(a=a, b=b, deltas=deltas)


@router.get("/runs/{run_id}", response_model=RunDetail, responses={404: {}, **_UNAUTHORIZED}, tags=["runs"])
def get_run(run_id: RunId, session: SessionDep, _: str = Read) -> RunDetail:
    """One run with its provenance and input hashes."""
    run = _get_run(session, run_id)
    base = _run_out(run, _summaries(session, [run_id])[run_id])
    return RunDetail(**base.model_dump(), provenance=run.provenance, input_hashes=run.input_hashes,
                     tables=sorted(run.tables))


def _image_out(img: Image) -> ImageOut:
    methods = [k for k in img.layers if k not in ("noisy", "clean")]
    return ImageOut(id=img.id, run_id=img.run_id, dataset=img.dataset, name=img.name, kind=img.kind,
                    height=img.height, width=img.width, levels=img.levels, methods=methods,
                    has_clean="clean" in img.layers, metrics=img.metrics)


@router.get("/runs/{run_id}/images", response_model=ImageList, responses={404: {}, **_UNAUTHORIZED}, tags=["images"])
def list_images(run_id: RunId, session: SessionDep, _: str = Read,
                dataset: Annotated[str | None, Query(pattern=NAME)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> ImageList:
    """The run's images with per-method metrics; ``methods`` lists the layers with tiles besides noisy/clean."""
    _get_run(session, run_id)
    q = select(Image).where(Image.run_id == run_id)
    if dataset:
        q = q.where(Image.dataset == dataset)
    rows = session.execute(q.order_by(Image.position).limit(limit).offset(offset)).scalars().all()
    return ImageList(images=[_image_out(i) for i in rows])


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, responses={404: {}, **_UNAUTHORIZED},
            tags=["runs"])
def get_report(run_id: RunId, request: Request, session: SessionDep, _: str = Read) -> HTMLResponse:
    """The run's self-contained HTML report (images embedded; scripts and remote loads blocked by CSP)."""
    run = _get_run(session, run_id)
    if not run.report_key:
        raise HTTPException(404, f"run {run_id} has no report")
    html = request.app.state.store.get_bytes(run.report_key)
    return HTMLResponse(html, headers={"Content-Security-Policy":
                                       "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
                                       "X-Content-Type-Options": "nosniff"})


@router.get("/runs/{run_id}/defects", response_model=DefectList, responses={404: {}, **_UNAUTHORIZED},
            tags=["runs"])
def list_defects(run_id: RunId, session: SessionDep, _: str = Read) -> DefectList:
    """Per-defect retention (contrast of the output / contrast of the clean image) per method."""
    _get_run(session, run_id)
    rows = session.execute(select(Defect).where(Defect.run_id == run_id)
                           .order_by(Defect.image_id, Defect.defect_id)).scalars()
    return DefectList(defects=[DefectOut(image_id=d.image_id, defect_id=d.defect_id, type=d.type, bbox=d.bbox,
                                         retention=d.retention) for d in rows])


# ---- images ---------------------------------------------------------------------------------------------------

def _layer(session: Session, image_id: str, method: str) -> tuple[Image, str]:
    img = session.get(Image, image_id)
    if img is None:
        raise HTTPException(404, f"no image {image_id}")
    prefix = img.layers.get(method)
    if prefix is None:
        raise HTTPException(404, f"image {image_id} has no layer {method!r}; it has {sorted(img.layers)}")
    return img, prefix


@router.get("/images/{image_id}/tile", response_class=Response, responses={
    200: {"content": {"image/png": {}}, "description": "PNG tile"}, 404: {}, 422: {}, **_UNAUTHORIZED}, tags=["images"])
async def get_tile(
    image_id: ImageId, request: Request, _: str = Read,
    method: Annotated[str, Query(pattern=NAME, description="noisy, clean or a method label")] = "noisy",
    level: Annotated[int, Query(ge=0, le=15)] = 0,
    row: Annotated[int, Query(ge=0, le=100_000)] = 0,
    col: Annotated[int, Query(ge=0, le=100_000)] = 0,
    size: TileSize = TileSize.small,
    vmin: Annotated[float | None, Query(ge=-1e12, le=1e12)] = None,
    vmax: Annotated[float | None, Query(ge=-1e12, le=1e12)] = None,
) -> Response:
    """A PNG tile of ``method``'s layer at pyramid ``level`` (edge tiles are smaller); contrast window
    ``[vmin, vmax]`` in stored units (default: the dtype's range). Cached in memory and by the client."""
    size = int(size)
    if vmin is not None and vmax is not None and not vmax > vmin:
        raise HTTPException(422, "vmax must be greater than vmin")
    key = (image_id, method, level, row, col, size, vmin, vmax)
    png = request.app.state.tiles.get(key)
    if png is None:
        png = await run_in_threadpool(_render_tile, request, key)
        request.app.state.tiles.put(key, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400, immutable",
                                                          "X-Content-Type-Options": "nosniff"})


def _render_tile(request: Request, key: tuple) -> bytes:
    image_id, method, level, row, col, size, vmin, vmax = key
    session = request.app.state.sessions()
    try:
        img, prefix = _layer(session, image_id, method)
    finally:
        session.close()
    if level >= img.levels:
        raise HTTPException(404, f"image {image_id} has levels 0..{img.levels - 1}")
    store = request.app.state.store
    arr = store.open_array(f"{prefix}/{level}")
    sl = tile_slices(tuple(arr.shape[-2:]), row=row, col=col, size=size)
    if sl is None:
        raise HTTPException(404, f"tile ({row}, {col}) of size {size} is outside level {level} "
                                 f"of shape {tuple(arr.shape[-2:])}")
    return render_png(store.read_region(f"{prefix}/{level}", *sl), vmin=vmin, vmax=vmax)


@router.get("/images/{image_id}/zarr/{method}/{key:path}", response_class=Response, responses={
    200: {"content": {"application/json": {}, "application/octet-stream": {}}}, 404: {}, 400: {}, **_UNAUTHORIZED},
    tags=["images"])
def get_zarr_key(image_id: ImageId, method: Annotated[str, Path(pattern=NAME)],
                 key: Annotated[str, Path(description="a key of the OME-Zarr group, e.g. zarr.json or 0/c/0/0")],
                 request: Request, session: SessionDep, _: str = Read) -> Response:
    """Read-only OME-Zarr (v3) access to one layer, key by key, so clients open it lazily over HTTP.
    Keys that are not plain relative names (``..``, hidden, absolute) are answered 404 like missing ones."""
    try:
        validate_key(key)
    except KeyError_:
        raise HTTPException(404, "no such key") from None
    _, prefix = _layer(session, image_id, method)
    try:
        data = request.app.state.store.get_bytes(f"{prefix}/{key}")
    except FileNotFoundError:
        raise HTTPException(404, f"no key {key!r} in layer {method!r}") from None
    media = "application/json" if key.endswith("zarr.json") else "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400, immutable",
                                                     "X-Content-Type-Options": "nosniff"})


# ---- jobs -----------------------------------------------------------------------------------------------------

async def _spool_body(request: Request, limit: int) -> tempfile.SpooledTemporaryFile:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            spool.close()
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        spool.write(chunk)
    spool.seek(0)
    return spool


def _job_out(job: Job) -> JobOut:
    return JobOut(job_id=job.id, status=job.status, created=job.created, updated=job.updated, filename=job.filename,
                  size=job.size, run_id=job.run_id, message=job.message)


@router.post("/jobs", response_model=JobCreated, status_code=201, responses={413: {}, **_UNAUTHORIZED},
             tags=["jobs"], openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def submit_job(request: Request, filename: Annotated[str, Query(pattern=NAME)], _: str = Write) -> JobCreated:
    """Submit one image file or a zip of a batch (raw request body, at most ``max_upload_mb``) for denoising.
    The batch flow picks queued jobs up (``sem-denoise service pull-jobs``); poll ``GET /api/jobs/{job_id}``."""
    settings = request.app.state.settings
    spool = await _spool_body(request, int(settings.max_upload_mb * 1e6))
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


@router.get("/jobs", response_model=list[JobOut], responses=_UNAUTHORIZED, tags=["jobs"])
def list_jobs(session: SessionDep, _: str = Write,
              status: Literal["queued", "fetched", "done", "failed"] | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
    """Jobs (oldest first), for the batch runner."""
    q = select(Job)
    if status:
        q = q.where(Job.status == status)
    return [_job_out(j) for j in session.execute(q.order_by(Job.created).limit(limit)).scalars()]


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {}, **_UNAUTHORIZED}, tags=["jobs"])
def get_job(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], session: SessionDep, _: str = Read) -> JobOut:
    """A job's status: queued -> fetched (in the batch inbox) -> done (with its run id) | failed."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return _job_out(job)


@router.get("/jobs/{job_id}/input", response_class=Response, responses={404: {}, **_UNAUTHORIZED}, tags=["jobs"])
def get_job_input(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], request: Request, session: SessionDep,
                  _: str = Write) -> Response:
    """The uploaded file of a job (for the batch runner)."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return Response(request.app.state.store.get_bytes(job.object_key), media_type="application/octet-stream")


@router.patch("/jobs/{job_id}", response_model=JobOut, responses={404: {}, **_UNAUTHORIZED}, tags=["jobs"])
def update_job(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], body: JobUpdate, session: SessionDep,
               _: str = Write) -> JobOut:
    """Set a job's status (the batch runner)."""
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    job.status, job.run_id, job.message, job.updated = body.status, body.run_id, body.message, utcnow()
    session.commit()
    return _job_out(job)


# ---- registration ---------------------------------------------------------------------------------------------

Attempt = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("/registrations", response_model=BeginOut, responses=_UNAUTHORIZED, tags=["registration"])
def begin_registration(body: BeginIn, request: Request, session: SessionDep, _: str = Write) -> BeginOut:
    """Start registering ``run_id``: ``registered`` if it already is (idempotent), else a new attempt."""
    return BeginOut(**registry.begin(session, request.app.state.store, body.run_id))


@router.put("/registrations/{attempt}/objects/{key:path}", status_code=204, responses={
    404: {}, 409: {}, 413: {}, **_UNAUTHORIZED}, tags=["registration"], openapi_extra={"requestBody": {
        "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_object(attempt: Attempt, key: str, request: Request, _: str = Write) -> Response:
    """Upload one object of the attempt (a file of an OME-Zarr layer, the report, a table)."""
    validate_key(key)
    limit = int(request.app.state.settings.max_object_mb * 1e6)
    spool = await _spool_body(request, limit)
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


@router.post("/registrations/{attempt}/commit", responses={404: {}, 409: {}, 422: {}, **_UNAUTHORIZED},
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


@router.post("/admin/gc", responses=_UNAUTHORIZED, tags=["admin"])
def collect_garbage(request: Request, session: SessionDep, _: str = Admin,
                    older_than_s: Annotated[float, Query(ge=0, le=1e7)] = 3600.0) -> dict:
    """Delete objects of registration attempts that never committed (and prefixes no attempt owns)."""
    return registry.collect_garbage(session, request.app.state.store, older_than_s=older_than_s)
