"""Config section `imaging`: The SEM forward model: blur, distortion, shot/SE/detector noise, fast-axis filter, quantisation."""

from __future__ import annotations

from .base import Section

__all__ = ["ImagingConfig"]


class ImagingConfig(Section):
    """The SEM forward model: blur, distortion, shot/SE/detector noise, fast-axis filter, quantisation."""
