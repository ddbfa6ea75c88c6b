"""Config section `service`: registering runs with the review service (sem_review). Off by default.

The token is a secret and never lives in params.yaml: it comes from ``$SEM_REVIEW_TOKEN`` or the file named by
``token_file``. ``$SEM_REVIEW_URL`` overrides ``url``. Nothing here enters a stage's cache key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from .base import Section

__all__ = ["ServiceConfig"]


class ServiceConfig(Section):
    """Where pipeline and batch runs register themselves (both flows' register task)."""

    url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/.*)?$",
                            description="Review service base URL, e.g. http://127.0.0.1:15480; null = off.")
    token_file: Path | None = Field(None, description="File holding a write token (else $SEM_REVIEW_TOKEN).")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="HTTP timeout per request.")
    max_images_per_dataset: int = Field(64, ge=1, le=10000, description="Evaluated test images registered per dataset.")
