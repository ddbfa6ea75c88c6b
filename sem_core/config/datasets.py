"""Config section `datasets`: Zarr datasets: tin_balls.zarr, wafers.zarr, splits and chunking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section

__all__ = ["DatasetsConfig", "TinBallsDatasetConfig", "WafersDatasetConfig"]

SplitFractions = tuple[float, float, float]


def _check_fractions(value: SplitFractions) -> SplitFractions:
    if any(v < 0 for v in value) or abs(sum(value) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {list(value)}")
    return value


class TinBallsDatasetConfig(Section):
    """``tin_balls.zarr``: the real pairs of the manifest, materialised (``sem-denoise chunk``)."""

    split: SplitFractions = Field((0.8, 0.1, 0.1), description="train/val/test fractions of the pairs.")
    split_mode: Literal["random", "contiguous"] = Field(
        "contiguous", description="'contiguous': blocks in acquisition order (train, val, then the held-out test "
        "block), so no training frame neighbours a test frame; 'random': a seeded permutation.")
    split_gap: int = Field(0, ge=0, description="Contiguous mode: pairs left out between consecutive blocks.")
    align: bool = Field(True, description="Shift the clean image onto the noisy one (manifest shift).")
    images_per_chunk: int = Field(1, ge=1, description="Images per Zarr chunk along N.")
    mask_min_area_px: int = Field(4, ge=0, description="Otsu ball mask: drop components smaller than this.")

    _v = field_validator("split")(_check_fractions)


class WafersDatasetConfig(Section):
    """``wafers.zarr``: synthetic wafer pairs with defect masks (``sem-denoise synth wafers``)."""

    n_images: int = Field(48, ge=1, description="Number of synthetic pairs.")
    shape: tuple[int, int] = Field((256, 256), description="Image shape (H, W) in pixels.")
    pattern: Literal["mixed", "lines", "contacts"] = Field(
        "mixed", description="Layout family per image; 'mixed' alternates lines and contacts by index."
    )
    split: SplitFractions = Field((0.8, 0.1, 0.1), description="train/val/test fractions.")
    images_per_chunk: int = Field(1, ge=1, description="Images per Zarr chunk along N.")
    workers: int = Field(1, ge=1, description="Worker processes (output does not depend on it).")

    _v = field_validator("split")(_check_fractions)


class DatasetsConfig(Section):
    """Zarr datasets: tin_balls.zarr, wafers.zarr, splits and chunking."""

    tin_balls: TinBallsDatasetConfig = TinBallsDatasetConfig()
    wafers: WafersDatasetConfig = WafersDatasetConfig()
