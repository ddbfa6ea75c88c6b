"""Config section `noise_fit`: Calibration of the imaging model against real pairs (sem-denoise noise fit)."""

from __future__ import annotations

from .base import Section

__all__ = ["NoiseFitConfig"]


class NoiseFitConfig(Section):
    """Calibration of the imaging model against real pairs (sem-denoise noise fit)."""
