"""PNG tiles of an OME-Zarr level: a ``size``² window of level ``L`` with a contrast window, cached.

Tile ``(row, col)`` of level ``L`` covers pixels ``[row*size, (row+1)*size) x [col*size, (col+1)*size)`` of array
``L`` (clipped at the image edge, so edge tiles are smaller). Values map to 8-bit grey linearly from ``vmin`` to
``vmax`` (default: the dtype's full range for integers, [0, 1] for floats); a uint8 level with the default window is
returned unchanged, pixel for pixel.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image as PILImage

__all__ = ["render_png", "default_window", "TileCache", "tile_slices"]


def default_window(dtype: np.dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(max(info.min, 0)), float(info.max)
    return 0.0, 1.0


def tile_slices(shape: tuple[int, int], *, row: int, col: int, size: int) -> tuple[slice, slice] | None:
    """Row/column slices of a tile, or None when it lies outside the level."""
    r0, c0 = row * size, col * size
    if row < 0 or col < 0 or r0 >= shape[0] or c0 >= shape[1]:
        return None
    return slice(r0, min(r0 + size, shape[0])), slice(c0, min(c0 + size, shape[1]))


def to_uint8(block: np.ndarray, *, vmin: float | None, vmax: float | None) -> np.ndarray:
    """Map ``block`` to uint8 through the window ``[vmin, vmax]`` (defaults: :func:`default_window`)."""
    lo, hi = default_window(block.dtype)
    if block.dtype == np.uint8 and vmin is None and vmax is None:
        return block
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if not hi > lo:
        raise ValueError(f"contrast window needs vmax > vmin, got vmin={lo}, vmax={hi}")
    scaled = (block.astype(np.float64) - lo) * 255.0 / (hi - lo)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def render_png(block: np.ndarray, *, vmin: float | None = None, vmax: float | None = None) -> bytes:
    """A (h, w) array as an 8-bit greyscale PNG (fast zlib level 1)."""
    if block.ndim != 2:
        raise ValueError(f"tiles are 2-D, got shape {block.shape}")
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(to_uint8(block, vmin=vmin, vmax=vmax))).save(
        buf, format="PNG", compress_level=1)
    return buf.getvalue()


class TileCache:
    """LRU of rendered PNG tiles (runs are immutable once registered, so tiles never go stale)."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            png = self._data.get(key)
            if png is not None:
                self._data.move_to_end(key)
            return png

    def put(self, key: tuple, png: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = png
            while len(self._data) > self.size:
                self._data.popitem(last=False)
