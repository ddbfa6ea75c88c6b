"""Pydantic models of the API: responses (the contract in docs/SERVICE_API.md) and the registration manifest."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
RUN_ID = r"^[a-z]+-[0-9a-f]{8,48}$"
_NAME_RE = re.compile(NAME)


def finite_or_none(x: Any) -> float | None:
    """JSON has no NaN/inf: non-finite numbers become null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class SummaryRow(BaseModel):
    dataset: str
    method: str
    metric: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class RunOut(BaseModel):
    id: str
    kind: Literal["pipeline", "batch"]
    created: dt.datetime
    params_hash: str
    code_version: str
    datasets: list[str]
    methods: list[str]
    summary: list[SummaryRow]


class RunDetail(RunOut):
    provenance: dict[str, Any]
    input_hashes: dict[str, Any]
    tables: list[str] = Field(description="Names of the run's stored metric tables (Parquet).")


class RunList(BaseModel):
    runs: list[RunOut]


class Delta(BaseModel):
    dataset: str
    method: str
    metric: str
    a: float | None
    b: float | None
    delta: float | None


class Compare(BaseModel):
    a: str
    b: str
    deltas: list[Delta]


class ImageOut(BaseModel):
    id: str
    run_id: str
    dataset: str
    name: str
    kind: Literal["image", "scan"]
    height: int
    width: int
    levels: int
    methods: list[str]
    has_clean: bool
    metrics: dict[str, dict[str, float | None]]


class ImageList(BaseModel):
    images: list[ImageOut]


class DefectOut(BaseModel):
    image_id: str
    defect_id: int
    type: str
    bbox: list[int]
    retention: dict[str, float | None]


class DefectList(BaseModel):
    defects: list[DefectOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    object_store: str


class JobCreated(BaseModel):
    job_id: str


class JobOut(BaseModel):
    job_id: str
    status: Literal["queued", "fetched", "done", "failed"]
    created: dt.datetime
    updated: dt.datetime
    filename: str
    size: int
    run_id: str | None
    message: str


class JobUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["fetched", "done", "failed"]
    run_id: str | None = Field(None, pattern=RUN_ID)
    message: str = Field("", max_length=2000)


# ---- registration -------------------------------------------------------------------------------------------

class BeginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(pattern=RUN_ID)


class BeginOut(BaseModel):
    run_id: str
    status: Literal["open", "registered"]
    attempt: str | None = None


class ManifestImage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=NAME)
    name: str = Field(pattern=NAME)
    kind: Literal["image", "scan"]
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    levels: int = Field(ge=1, le=16)
    layers: dict[str, str] = Field(description="layer name -> object key (relative to the attempt) of its group")
    metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: dict[str, str]) -> dict[str, str]:
        if "noisy" not in v:
            raise ValueError("an image needs a 'noisy' layer")
        for name in v:
            if not _NAME_RE.match(name):
                raise ValueError(f"layer name {name!r} is not a plain name")
        return v

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return {m: {k: finite_or_none(x) for k, x in d.items()} for m, d in (v or {}).items()}


class ManifestDefect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    image: str = Field(description="name of the image (within its dataset) the defect belongs to")
    defect_id: int = Field(ge=0)
    type: str = Field(max_length=64)
    bbox: list[int] = Field(min_length=4, max_length=4)
    retention: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("retention", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return {k: finite_or_none(x) for k, x in (v or {}).items()}


class ManifestSummary(SummaryRow):
    model_config = ConfigDict(extra="forbid")

    @field_validator("mean", "ci_low", "ci_high", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return finite_or_none(v)


class Manifest(BaseModel):
    """Everything a run's database rows need; objects were uploaded to the attempt before."""

    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(pattern=RUN_ID)
    kind: Literal["pipeline", "batch"]
    created: dt.datetime
    params_hash: str = Field(max_length=64)
    code_version: str = Field(max_length=128)
    input_hashes: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    datasets: list[str]
    methods: list[str]
    summary: list[ManifestSummary] = Field(default_factory=list)
    images: list[ManifestImage] = Field(default_factory=list)
    defects: list[ManifestDefect] = Field(default_factory=list)
    report_key: str | None = None
    tables: dict[str, str] = Field(default_factory=dict, description="table name -> object key")
