"""Dataset Zarr stores (``tin_balls.zarr``, ``wafers.zarr``): layout, atomic write, read, content hash.

Layout (Zarr v3, see docs/DESIGN.md)::

    <name>.zarr/
      noisy, clean (N, H, W) uint8|uint16; mask (N, H, W) uint8; pattern (N, H, W) uint8 (optional)
      attrs: dataset, split, image_ids, provenance, ..., complete: true (set last)
      defects.parquet (optional)

A store is built in the sibling folder ``<name>.zarr.partial`` and renamed into place by
:func:`commit_dataset`, so a crash never leaves a complete-looking dataset at ``path``.

Modules: :mod:`.layout` (array names, partial sibling, error), :mod:`.write` (create, write, commit),
:mod:`.read` (:func:`open_dataset`, :func:`hash_dataset`), :mod:`.defects` (``defects.parquet``).
"""

from __future__ import annotations

from .defects import DEFECTS_FILE, read_defects, write_defects
from .layout import DatasetError, partial_path
from .read import DatasetView, hash_dataset, open_dataset
from .write import commit_dataset, create_dataset, write_item, writing_dataset

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
