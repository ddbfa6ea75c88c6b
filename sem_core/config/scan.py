"""Config section `scan`: Large synthetic wafer scans written chunk by chunk as OME-Zarr."""

from __future__ import annotations

from .base import Section

__all__ = ["ScanConfig"]


class ScanConfig(Section):
    """Large synthetic wafer scans written chunk by chunk as OME-Zarr."""
