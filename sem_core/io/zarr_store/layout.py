"""Shared facts of the store layout: the array names, the ``.partial`` build sibling, the store error."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetError", "partial_path"]

_PARTIAL_SUFFIX = ".partial"
_ARRAYS = ("noisy", "clean", "mask", "pattern")


class DatasetError(RuntimeError):
    """A dataset store is missing, incomplete or malformed."""


def partial_path(path: str | Path) -> Path:
    """The temporary sibling a store at ``path`` is built in (``<name>.partial``)."""
    path = Path(path)
    return path.with_name(path.name + _PARTIAL_SUFFIX)
