"""Config section `ingest`: discovering, checking and registering the real (noisy, clean) SEM pairs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import Section

__all__ = ["IngestConfig"]


class IngestConfig(Section):
    """Real SEM ingest: where the pairs are, how they are matched, read and registered.

    Paths are relative to ``paths.tin_balls_source``. The defaults are the Tin-balls data set.
    """

    noisy_subdir: str = Field("time/low", min_length=1, description="Folder of noisy images (100 ns dwell).")
    clean_subdir: str = Field("time/high", min_length=1, description="Folder of clean images (30 µs dwell).")
    pair_pattern: str | None = Field(
        r"(\d+)",
        description="Regex over file stems; the first group of its LAST match is the pair key "
        "(100ns_001 -> '001'). None: the whole stem is the key.",
    )
    pair_mode: Literal["pattern", "sorted"] = Field(
        "pattern", description="'pattern': match by key; 'sorted': pair the i-th noisy with the i-th clean file."
    )
    channel: Literal["auto", "R", "G", "B", "mean"] = Field(
        "auto", description="RGB -> grey: 'auto' takes G (overlays are coloured, the signal is grey)."
    )
    crop_rows: int | None = Field(
        None, ge=0, le=4096,
        description="Data-bar rows cut off the bottom of files WITHOUT data-bar metadata; None: detect.",
    )
    align: bool = Field(
        False, description="Whether loaders move the clean image onto the noisy one by the stored shift."
    )
    align_order: Literal["integer", "linear"] = Field(
        "integer", description="'integer': rounded shift, dtype kept; 'linear': bilinear sub-pixel, float32."
    )
    border_px: int = Field(8, ge=0, le=256, description="Border cut before registration (drops the 1-px frame).")
    upsample: int = Field(20, ge=1, le=1000, description="Phase-correlation upsampling (precision 1/upsample px).")
    licence: str = Field("MIT", min_length=1, description="Licence of the source data.")
    licence_file: str = Field("LICENSE", min_length=1, description="Licence text, relative to the source folder.")
    citation: str = Field(
        "S. Shin, I.-H. Lee, B. C. Park, J.-H. Song, Meas. Sci. Technol. 36 (2024) 015406, "
        "doi:10.1088/1361-6501/ad7e41",
        min_length=1,
    )
    source_repository: str = Field("seoleuns/SEMdenoising", min_length=1, description="Where the data came from.")

    @field_validator("pair_pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pair_pattern {value!r} is not a valid regular expression: {exc}") from exc
        return value
