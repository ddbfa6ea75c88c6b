"""Config section `evaluate`: Metrics, aggregation and the report (issue 5)."""

from __future__ import annotations

from .base import Section

__all__ = ["EvaluateConfig"]


class EvaluateConfig(Section):
    """Metrics, aggregation and the report (issue 5)."""
