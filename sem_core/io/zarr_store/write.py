"""Writing a store atomically: create it in its ``.partial`` sibling, write items, commit (rename) it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from .layout import partial_path

__all__ = ["create_dataset", "write_item", "commit_dataset", "writing_dataset"]


def _compressor() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")


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
