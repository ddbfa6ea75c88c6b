"""Registration on the server: idempotent (one run per run id) and atomic (rows appear in one transaction).

Protocol (see docs/SERVICE_API.md): ``begin(run_id)`` returns ``registered`` when the run exists, else opens an
*attempt* and deletes the objects of earlier attempts of that run that never committed (a registrant killed
mid-way); objects are uploaded under ``runs/<run_id>/<attempt>/``; ``commit(manifest)`` checks that every layer
and the report exist, then inserts the run, its summary, images and defects in one transaction. Until then the run
is invisible. ``collect_garbage`` deletes prefixes of stale open attempts and prefixes no attempt knows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Defect, Image, Registration, Run, SummaryMetric, utcnow
from .schemas import Manifest
from .storage import ObjectStore, validate_key

__all__ = ["begin", "commit", "attempt_prefix", "collect_garbage", "image_id", "sanitize_json", "RegistrationError"]

RUNS = "runs"


class RegistrationError(ValueError):
    """The manifest does not match what was uploaded (HTTP 422) or the attempt is unknown/closed (409)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def sanitize_json(obj: Any) -> Any:
    """Replace non-finite floats by None (PostgreSQL JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): sanitize_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize_json(v) for v in obj]
    return obj


def attempt_prefix(run_id: str, attempt: str) -> str:
    return validate_key(f"{RUNS}/{run_id}/{attempt}")


def image_id(run_id: str, dataset: str, name: str) -> str:
    return "img-" + hashlib.sha256(f"{run_id}\0{dataset}\0{name}".encode()).hexdigest()[:20]


def begin(session: Session, store: ObjectStore, run_id: str) -> dict[str, Any]:
    """Open an attempt for ``run_id`` unless it is registered; clean up earlier uncommitted attempts."""
    if session.get(Run, run_id) is not None:
        return {"run_id": run_id, "status": "registered", "attempt": None}
    stale = session.execute(select(Registration).where(Registration.run_id == run_id,
                                                       Registration.state == "open")).scalars().all()
    for reg in stale:
        store.delete_prefix(attempt_prefix(run_id, reg.id))
        reg.state, reg.finished = "aborted", utcnow()
    attempt = uuid.uuid4().hex
    session.add(Registration(id=attempt, run_id=run_id, state="open"))
    session.commit()
    return {"run_id": run_id, "status": "open", "attempt": attempt}


def open_attempt(session: Session, attempt: str) -> Registration:
    reg = session.get(Registration, attempt)
    if reg is None:
        raise RegistrationError(f"unknown registration attempt {attempt[:40]!r}", status=404)
    if reg.state != "open":
        raise RegistrationError(f"registration attempt {attempt} is {reg.state}", status=409)
    return reg


def commit(session: Session, store: ObjectStore, attempt: str, manifest: Manifest) -> dict[str, Any]:
    """Insert the run described by ``manifest`` (objects under the attempt's prefix) in one transaction."""
    reg = session.execute(select(Registration).where(Registration.id == attempt).with_for_update()).scalar_one_or_none()
    if reg is None:
        raise RegistrationError(f"unknown registration attempt {attempt[:40]!r}", status=404)
    if reg.run_id != manifest.run_id:
        raise RegistrationError(f"attempt {attempt} belongs to run {reg.run_id}, not {manifest.run_id}", status=409)
    prefix = attempt_prefix(reg.run_id, attempt)
    if session.get(Run, manifest.run_id) is not None:  # registered meanwhile by another attempt
        reg.state, reg.finished = "aborted", utcnow()
        session.commit()
        store.delete_prefix(prefix)
        return {"run_id": manifest.run_id, "status": "registered"}
    if reg.state != "open":
        raise RegistrationError(f"registration attempt {attempt} is {reg.state}", status=409)
    _check_objects(store, prefix, manifest)
    m = manifest
    run = Run(id=m.run_id, kind=m.kind, created=m.created, params_hash=m.params_hash, code_version=m.code_version,
              input_hashes=sanitize_json(m.input_hashes), provenance=sanitize_json(m.provenance),
              datasets=list(m.datasets), methods=list(m.methods), prefix=prefix,
              report_key=f"{prefix}/{m.report_key}" if m.report_key else None,
              tables={k: f"{prefix}/{v}" for k, v in m.tables.items()})
    session.add(run)
    session.flush()
    session.add_all(SummaryMetric(run_id=m.run_id, **row.model_dump()) for row in m.summary)
    ids: dict[tuple[str, str], str] = {}
    for pos, img in enumerate(m.images):
        iid = image_id(m.run_id, img.dataset, img.name)
        if (img.dataset, img.name) in ids:
            raise RegistrationError(f"image {img.dataset}/{img.name} listed twice")
        ids[(img.dataset, img.name)] = iid
        session.add(Image(id=iid, run_id=m.run_id, position=pos, dataset=img.dataset, name=img.name, kind=img.kind,
                          height=img.height, width=img.width, levels=img.levels,
                          layers={k: f"{prefix}/{v}" for k, v in img.layers.items()}, metrics=img.metrics))
    session.flush()
    for d in m.defects:
        iid = ids.get((d.dataset, d.image))
        if iid is None:
            raise RegistrationError(f"defect {d.defect_id} refers to unknown image {d.dataset}/{d.image}")
        session.add(Defect(run_id=m.run_id, image_id=iid, defect_id=d.defect_id, type=d.type, bbox=d.bbox,
                           retention=d.retention))
    reg.state, reg.finished = "committed", utcnow()
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.get(Run, manifest.run_id) is not None:
            return {"run_id": manifest.run_id, "status": "registered"}
        raise
    return {"run_id": m.run_id, "status": "registered", "images": len(m.images)}


def _check_objects(store: ObjectStore, prefix: str, m: Manifest) -> None:
    """Every image layer's ``zarr.json`` (and level 0) and the report must have been uploaded."""
    present = set(store.list_prefix(prefix))
    missing = []
    for img in m.images:
        for layer, key in img.layers.items():
            validate_key(key)
            for needed in (f"{prefix}/{key}/zarr.json", f"{prefix}/{key}/0/zarr.json"):
                if needed not in present:
                    missing.append(f"{img.dataset}/{img.name}:{layer} ({needed.removeprefix(prefix + '/')})")
    for key in [m.report_key, *m.tables.values()]:
        if key and f"{prefix}/{validate_key(key)}" not in present:
            missing.append(key)
    if missing:
        raise RegistrationError(f"{len(missing)} object(s) not uploaded, e.g. {missing[:3]}")


def collect_garbage(session: Session, store: ObjectStore, *, older_than_s: float = 3600.0) -> dict[str, int]:
    """Delete objects of attempts that never committed (open longer than ``older_than_s``, or aborted) and of
    prefixes under ``runs/`` that no committed run owns. Returns counts."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
    stale = session.execute(select(Registration).where(
        Registration.state == "open", Registration.started < cutoff)).scalars().all()
    for reg in stale:
        reg.state, reg.finished = "aborted", utcnow()
    session.commit()
    live = {(r.run_id, r.id) for r in session.execute(select(Registration).where(
        Registration.state.in_(("open", "committed")))).scalars()}
    deleted_objects = deleted_prefixes = 0
    for run_id in store.list_children(RUNS):
        for attempt in store.list_children(f"{RUNS}/{run_id}"):
            if (run_id, attempt) not in live:
                n = store.delete_prefix(f"{RUNS}/{run_id}/{attempt}")
                deleted_objects += n
                deleted_prefixes += bool(n)  # an emptied folder may linger as a listing entry (SeaweedFS)
    session.execute(delete(Registration).where(Registration.state == "aborted",
                                               Registration.finished < cutoff))
    session.commit()
    return {"stale_attempts": len(stale), "deleted_prefixes": deleted_prefixes, "deleted_objects": deleted_objects}

