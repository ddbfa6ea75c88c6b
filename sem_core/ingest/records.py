"""The ingest's records: the error that stops it, bad items, the pair listing and the ingest result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["IMAGE_SUFFIXES", "BadItem", "PairListing", "IngestResult", "IngestError"]


IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png"})


class IngestError(ValueError):
    """The ingest cannot start (missing or empty folder, bad option)."""


@dataclass(frozen=True)
class BadItem:
    """A file left out of the manifest, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class PairListing:
    """Output of :func:`find_pairs`: ``pairs`` as (pair_id, noisy, clean), sorted by key; files left out."""

    pairs: list[tuple[str, Path, Path]]
    bad: list[BadItem]


@dataclass
class IngestResult:
    """Manifest of good pairs (validated by ``MANIFEST_SCHEMA``), bad items, counts and dataset metadata."""

    manifest: pd.DataFrame
    bad: list[BadItem]
    n_noisy_files: int
    n_clean_files: int
    dataset: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
