"""Dataset Zarr stores (``tin_balls.zarr``, ``wafers.zarr``): layout, atomic write, read, content hash.

Layout (Zarr v3, see docs/DESIGN.md)::

    <name>.zarr/
      noisy, clean (N, H, W) uint8|uint16; mask (N, H, W) uint8; pattern (N, H, W) uint8 (optional)
      attrs: dataset, split, image_ids, provenance, ..., complete: true (set last)
      defects.parquet (optional)

A store is built in the sibling folder ``<name>.zarr.partial`` and renamed into place by
:func:`commit_dataset`, so a crash never leaves a complete-looking dataset at ``path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec

__all__ = [
    "DatasetView",
    "DatasetError",
    "create_dataset",
    "write_item",
    "commit_dataset",
    "writing_dataset",
    "open_dataset",
    "write_defects",
    "read_defects",
    "hash_dataset",
    "partial_path",
    "DEFECTS_FILE",
]

DEFECTS_FILE = "defects.parquet"
_PARTIAL_SUFFIX = ".partial"
_ARRAYS = ("noisy", "clean", "mask", "pattern")


class DatasetError(RuntimeError):
    """A dataset store is missing, incomplete or malformed."""


def _compressor() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")


def partial_path(path: str | Path) -> Path:
    """The temporary sibling a store at ``path`` is built in (``<name>.partial``)."""
    path = Path(path)
    return path.with_name(path.name + _PARTIAL_SUFFIX)


def create_dataset(
    path: str | Path,
    *,
    n: int,
    shape: tuple[int, int],
    dtype: str | np.dtype = "uint8",
    chunks: tuple[int, int, int] | None = None,
    attrs: Mapping[str, Any] | None = None,
    with_pattern: bool = False,
) -> zarr.Group:
    """Create an empty dataset store in the temporary sibling of ``path``.

    Parameters
    ----------
    path : str or Path
        Final location (``.../<name>.zarr``); nothing is written there until :func:`commit_dataset`.
    n : int
        Number of images N.
    shape : (H, W)
        Image shape.
    dtype : str or dtype
        ``uint8`` or ``uint16`` for ``noisy``/``clean`` (``mask``/``pattern`` are always uint8).
    chunks : (cn, ch, cw), optional
        Chunk shape; default one image per chunk ``(1, H, W)``.
    attrs : mapping, optional
        JSON-serialisable group attributes (dataset, split, provenance, ...).
    with_pattern : bool
        Also create the ``pattern`` array (wafers).

    Returns
    -------
    zarr.Group
        The writable group at :func:`partial_path` ``(path)`` (any stale partial store is removed).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype("uint8"), np.dtype("uint16")):
        raise ValueError(f"dataset dtype must be uint8 or uint16, got {dtype}")
    if n < 1 or len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"invalid dataset size n={n}, shape={shape}")
    h, w = int(shape[0]), int(shape[1])
    chunks = tuple(int(c) for c in (chunks or (1, h, w)))
    if len(chunks) != 3:
        raise ValueError(f"chunks must have 3 entries (N, H, W), got {chunks}")
    tmp = partial_path(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(tmp, mode="w", zarr_format=3)
    names = ["noisy", "clean", "mask"] + (["pattern"] if with_pattern else [])
    for name in names:
        group.create_array(
            name,
            shape=(n, h, w),
            dtype=dtype if name in ("noisy", "clean") else np.uint8,
            chunks=chunks,
            compressors=_compressor(),
            fill_value=0,
            dimension_names=("n", "y", "x"),
        )
    group.attrs.update({**dict(attrs or {}), "complete": False})
    return group


def write_item(
    group: zarr.Group,
    i: int,
    *,
    noisy: np.ndarray,
    clean: np.ndarray,
    mask: np.ndarray,
    pattern: np.ndarray | None = None,
) -> None:
    """Write image ``i`` of every array.

    Parameters
    ----------
    group : zarr.Group
        From :func:`create_dataset`.
    i : int
        Index in ``0..N-1``.
    noisy, clean : (H, W) array of the store's dtype
    mask : (H, W) uint8
    pattern : (H, W) uint8, optional
        Required iff the store has a ``pattern`` array.
    """
    items = {"noisy": noisy, "clean": clean, "mask": mask}
    if "pattern" in group:
        if pattern is None:
            raise ValueError(f"store {group.store} has a pattern array: pattern is required for item {i}")
        items["pattern"] = pattern
    elif pattern is not None:
        raise ValueError(f"store {group.store} was created without with_pattern; cannot write pattern")
    for name, value in items.items():
        arr = group[name]
        value = np.asarray(value)
        if value.shape != arr.shape[1:]:
            raise ValueError(f"{name}[{i}]: shape {value.shape} != store image shape {arr.shape[1:]}")
        if value.dtype != arr.dtype:
            raise ValueError(f"{name}[{i}]: dtype {value.dtype} != store dtype {arr.dtype}")
        arr[i] = value


def commit_dataset(group: zarr.Group, *, path: str | Path) -> Path:
    """Mark the store complete and rename it from its partial sibling to ``path`` (replacing it)."""
    path = Path(path)
    tmp = partial_path(path)
    group.attrs["complete"] = True
    old = path.with_name(path.name + ".old")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)
    return path


@contextlib.contextmanager
def writing_dataset(path: str | Path, **create_kwargs: Any) -> Iterator[zarr.Group]:
    """Context manager: :func:`create_dataset`, yield the group, commit on success, remove on failure."""
    group = create_dataset(path, **create_kwargs)
    try:
        yield group
    except BaseException:
        shutil.rmtree(partial_path(path), ignore_errors=True)
        raise
    commit_dataset(group, path=path)


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


def _defects_schema():
    from sem_core.schemas.defects import DEFECTS_SCHEMA

    return DEFECTS_SCHEMA


def write_defects(path: str | Path, df: pd.DataFrame) -> Path:
    """Validate ``df`` with ``DEFECTS_SCHEMA`` and write it as ``defects.parquet`` in the store folder ``path``."""
    path = Path(path)
    validated = _defects_schema().validate(df.reset_index(drop=True))
    out = path / DEFECTS_FILE
    validated.to_parquet(out, index=False)
    return out


def read_defects(path: str | Path) -> pd.DataFrame:
    """Read and validate ``defects.parquet`` from the store folder ``path``."""
    file = Path(path) / DEFECTS_FILE
    try:
        df = pd.read_parquet(file)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read defect table {file}") from exc
    return _defects_schema().validate(df)


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
