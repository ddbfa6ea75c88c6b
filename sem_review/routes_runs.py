"""Routes: health, runs (list, detail, compare, images, report, defects)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import DatabaseUnavailable, check_database
from .deps import UNAUTHORIZED, Read, RunId, SessionDep
from .models import Defect, Image, Run, SummaryMetric
from .schemas import (
    NAME, RUN_ID, Compare, Delta, DefectList, DefectOut, Health, ImageList, ImageOut, RunDetail, RunList, RunOut,
    SummaryRow,
)
from .storage import StorageUnavailable


router = APIRouter()


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


@router.get("/runs", response_model=RunList, responses=UNAUTHORIZED, tags=["runs"])
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


@router.get("/runs/compare", response_model=Compare, responses=UNAUTHORIZED, tags=["runs"])
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


@router.get("/runs/{run_id}", response_model=RunDetail, responses={404: {}, **UNAUTHORIZED}, tags=["runs"])
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


@router.get("/runs/{run_id}/images", response_model=ImageList, responses={404: {}, **UNAUTHORIZED}, tags=["images"])
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


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, responses={404: {}, **UNAUTHORIZED},
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


@router.get("/runs/{run_id}/defects", response_model=DefectList, responses={404: {}, **UNAUTHORIZED},
            tags=["runs"])
def list_defects(run_id: RunId, session: SessionDep, _: str = Read) -> DefectList:
    """Per-defect retention (contrast of the output / contrast of the clean image) per method."""
    _get_run(session, run_id)
    rows = session.execute(select(Defect).where(Defect.run_id == run_id)
                           .order_by(Defect.image_id, Defect.defect_id)).scalars()
    return DefectList(defects=[DefectOut(image_id=d.image_id, defect_id=d.defect_id, type=d.type, bbox=d.bbox,
                                         retention=d.retention) for d in rows])
