"""SQLAlchemy 2 tables of the review service (the schema itself is created by Alembic migrations).

A run's rows (run, summary metrics, images, defects) are inserted in one transaction at commit time, so a
registration that dies earlier leaves no visible run. Its objects live under ``runs/<run_id>/<attempt>/`` in S3;
``registrations`` records every attempt so orphaned prefixes can be found and deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    registered: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    params_hash: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(128))
    input_hashes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    datasets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    methods: Mapped[list[str]] = mapped_column(JSONType, default=list)
    prefix: Mapped[str] = mapped_column(String(256))
    report_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    tables: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)


class SummaryMetric(Base):
    __tablename__ = "summary_metrics"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    dataset: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(64))
    mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer)


class Image(Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    levels: Mapped[int] = mapped_column(Integer)
    layers: Mapped[dict[str, str]] = mapped_column(JSONType)
    """Layer name (noisy, clean, method label) -> object prefix of its OME-Zarr multiscale group (never served)."""
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Defect(Base):
    __tablename__ = "defects"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    defect_id: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    bbox: Mapped[list[int]] = mapped_column(JSONType)
    retention: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Registration(Base):
    __tablename__ = "registrations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    started: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    filename: Mapped[str] = mapped_column(String(256))
    size: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
