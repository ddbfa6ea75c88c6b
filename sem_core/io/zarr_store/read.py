"""Reading a complete store: the read-only :class:`DatasetView`, and the content hash of its arrays."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from .defects import DEFECTS_FILE, read_defects
from .layout import _ARRAYS, DatasetError, partial_path

__all__ = ["DatasetView", "open_dataset", "hash_dataset"]


@dataclass(frozen=True)
class DatasetView:
    """Read-only view of a complete dataset store.

    Attributes
    ----------
    path : Path
    noisy, clean : zarr.Array (N, H, W) uint8|uint16
    mask : zarr.Array (N, H, W) uint8
    pattern : zarr.Array (N, H, W) uint8 or None
    attrs : dict
        All group attributes.
    """

    path: Path
    group: zarr.Group
    noisy: zarr.Array
    clean: zarr.Array
    mask: zarr.Array
    pattern: zarr.Array | None
    attrs: dict[str, Any]

    def __len__(self) -> int:
        return int(self.noisy.shape[0])

    @property
    def split(self) -> dict[str, list[int]]:
        """``{"train": [...], "val": [...], "test": [...]}`` (empty dict if the store has none)."""
        return {k: list(v) for k, v in self.attrs.get("split", {}).items()}

    @property
    def defects(self) -> pd.DataFrame | None:
        """The validated defect table, or None if the store has no ``defects.parquet``."""
        if not (self.path / DEFECTS_FILE).exists():
            return None
        return read_defects(self.path)


def open_dataset(path: str | Path) -> DatasetView:
    """Open a complete dataset store read-only.

    Raises
    ------
    DatasetError
        If ``path`` is missing, not a Zarr group, lacks an array, or was never committed.
    """
    path = Path(path)
    if not path.exists():
        hint = " (a partial store exists: the writer did not finish)" if partial_path(path).exists() else ""
        raise DatasetError(f"no dataset at {path}{hint}")
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, ValueError, zarr.errors.GroupNotFoundError) as exc:
        raise DatasetError(f"{path} is not a Zarr group") from exc
    attrs = dict(group.attrs)
    if not attrs.get("complete", False):
        raise DatasetError(f"dataset {path} is incomplete (attrs.complete is not true)")
    missing = [a for a in ("noisy", "clean", "mask") if a not in group]
    if missing:
        raise DatasetError(f"dataset {path} lacks arrays {missing}")
    return DatasetView(
        path=path,
        group=group,
        noisy=group["noisy"],
        clean=group["clean"],
        mask=group["mask"],
        pattern=group["pattern"] if "pattern" in group else None,
        attrs=attrs,
    )


def hash_dataset(path: str | Path) -> str:
    """SHA-256 over the array contents of a store (names, dtypes, shapes, values), image by image.

    Independent of chunking, compression and attributes (so provenance timestamps do not change it).
    """
    group = zarr.open_group(Path(path), mode="r")
    h = hashlib.sha256()
    for name in _ARRAYS:
        if name not in group:
            continue
        arr = group[name]
        h.update(f"{name}|{arr.dtype.str}|{tuple(arr.shape)}|".encode())
        step = max(1, int(arr.chunks[0]))
        for start in range(0, arr.shape[0], step):
            block = np.ascontiguousarray(arr[start : start + step])
            h.update(memoryview(block).cast("B"))
    return h.hexdigest()
