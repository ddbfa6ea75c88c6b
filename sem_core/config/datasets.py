"""Config section `datasets`: Zarr datasets: tin_balls.zarr, wafers.zarr, splits and chunking."""

from __future__ import annotations

from .base import Section

__all__ = ["DatasetsConfig"]


class DatasetsConfig(Section):
    """Zarr datasets: tin_balls.zarr, wafers.zarr, splits and chunking."""
