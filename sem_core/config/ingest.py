"""Config section `ingest`: Real SEM ingest (issue 2, section 2)."""

from __future__ import annotations

from .base import Section

__all__ = ["IngestConfig"]


class IngestConfig(Section):
    """Real SEM ingest (issue 2, section 2)."""
