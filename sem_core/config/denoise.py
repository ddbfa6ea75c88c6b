"""Config section `denoise`: Classical and U-Net denoising over large scans (issue 4)."""

from __future__ import annotations

from .base import Section

__all__ = ["DenoiseConfig"]


class DenoiseConfig(Section):
    """Classical and U-Net denoising over large scans (issue 4)."""
