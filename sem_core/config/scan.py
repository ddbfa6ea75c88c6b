"""Config section `scan`: Large synthetic wafer scans written chunk by chunk as OME-Zarr."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section

__all__ = ["ScanConfig"]


class ScanConfig(Section):
    """Large synthetic wafer scans written chunk by chunk as OME-Zarr (``sem-denoise synth scan``)."""

    name: str = Field("wafer_scan", description="Scan name: written to <paths.scans_dir>/<name>.ome.zarr.")
    size: int = Field(4096, ge=64, description="Scan side N (N x N pixels).")
    chunk: int = Field(1024, ge=32, description="Chunk side of level 0 (and the synthesis window).")
    halo: int = Field(32, ge=0, description="Extra pixels rendered around each chunk (blur / filter support).")
    n_levels: int = Field(4, ge=1, description="Pyramid levels (level k is downsampled by 2**k).")
    pattern: Literal["lines", "contacts"] = Field("lines", description="Layout family of the scan.")
    pixel_size_nm: float = Field(4.0, gt=0, description="Pixel size of the scan (layout scale, blur, NGFF scale).")
    seed_offset: int = Field(0, ge=0, description="Added to the project seed for the scan's streams.")
    workers: int = Field(1, ge=1, description="Threads writing chunks (output does not depend on it).")

    @model_validator(mode="after")
    def _halo_fits(self) -> "ScanConfig":
        if self.halo >= self.chunk:
            raise ValueError(f"scan.halo ({self.halo}) must be smaller than scan.chunk ({self.chunk})")
        return self
