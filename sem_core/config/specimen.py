"""Config section `specimen`: Clean specimen generators: Tin-balls-like and wafer-like (issue 2, section 3)."""

from __future__ import annotations

from .base import Section

__all__ = ["SpecimenConfig"]


class SpecimenConfig(Section):
    """Clean specimen generators: Tin-balls-like and wafer-like (issue 2, section 3)."""
