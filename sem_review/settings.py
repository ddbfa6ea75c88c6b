"""Service settings from the environment (``SEM_REVIEW_*``); nothing is read from params.yaml here."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServiceSettings", "load_settings"]

PREFIX = "SEM_REVIEW_"


class ServiceSettings(BaseModel):
    """Where the service keeps its metadata and objects, and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://user@127.0.0.1:5432/review")
    s3_endpoint: str = Field(description="S3 endpoint URL (SeaweedFS, MinIO or AWS)")
    s3_bucket: str = Field("sem-review", min_length=3)
    s3_access_key: str = Field(repr=False)
    s3_secret_key: str = Field(repr=False)
    s3_region: str = "us-east-1"
    max_upload_mb: float = Field(256.0, gt=0, description="Largest job upload (MB).")
    max_object_mb: float = Field(64.0, gt=0, description="Largest registration object (MB).")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; none by default.")
    tile_cache_size: int = Field(2048, ge=0, description="Rendered PNG tiles kept in memory.")
    chunk_cache_mb: float = Field(256.0, ge=0, description="Decoded Zarr chunks kept in memory (MB).")
    storage_timeout_s: float = Field(5.0, gt=0)


def load_settings(env: dict[str, str] | None = None) -> ServiceSettings:
    """Read ``SEM_REVIEW_DATABASE_URL``, ``SEM_REVIEW_S3_ENDPOINT``, ``..._S3_ACCESS_KEY``, ``..._S3_SECRET_KEY``
    (required) and the optional ``SEM_REVIEW_S3_BUCKET``, ``..._MAX_UPLOAD_MB``, ``..._CORS_ORIGINS`` (comma list).

    Raises
    ------
    ValueError
        Naming the missing or invalid variables.
    """
    env = dict(os.environ if env is None else env)
    values: dict = {}
    for name in ServiceSettings.model_fields:
        key = PREFIX + name.upper()
        if key in env and env[key] != "":
            values[name] = [v for v in env[key].split(",") if v] if name == "cors_origins" else env[key]
    missing = [PREFIX + n.upper() for n in ("database_url", "s3_endpoint", "s3_access_key", "s3_secret_key")
               if n not in values]
    if missing:
        raise ValueError(f"review service not configured: set {', '.join(missing)}")
    return ServiceSettings(**values)
