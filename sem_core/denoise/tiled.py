"""Tiled, Dask-parallel denoising of one in-memory image (TIFF/PNG inputs), equal to whole-image output.

The same block function and padding as :func:`sem_core.denoise_zarr.denoise_zarr` (``map_overlap``,
``depth = halo``, ``boundary`` the method's :func:`~sem_core.denoise.base.edge_mode`; the Zarr path reads the same
regions itself with :func:`read_with_halo`), on a NumPy image instead of a Zarr array: blocks start
on multiples of ``chunk_px`` (itself a multiple of the method's ``chunk_multiple``), and a last
block thinner than the halo is merged into its neighbour, so any image size works. Images that
fit in one block are denoised whole. By construction the result equals
:func:`sem_core.denoise.base.denoise_image` within float rounding (tested per method).
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from .base import Denoiser, denoise_image, edge_mode, to_unit_float

__all__ = ["BlockDenoiser", "choose_chunk", "fit_chunk", "local_scheduler", "plan_blocks", "read_with_halo",
           "denoise_tiled"]


class BlockDenoiser:
    """Picklable ``map_overlap`` block function: unit-scale float32 in, denoiser, float32 out.

    (A class, not a lambda: the process scheduler and dask.distributed pickle it.)
    """

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return np.asarray(self.denoiser(to_unit_float(block)), dtype=np.float32)


def read_with_halo(arr, rows: tuple[int, int], cols: tuple[int, int], *, halo: int,
                   mode: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Block ``arr[rows, cols]`` with ``halo`` pixels of context on each side, as ``map_overlap`` gives it.

    Parameters
    ----------
    arr : array-like
        (H, W) NumPy or Zarr array; only the block and its halo are read.
    rows, cols : (int, int)
        Half-open pixel ranges of the block.
    halo : int
        Context on each side; at most the image's size along each axis.
    mode : {"reflect", "none"}
        At the image's own edges: ``"reflect"`` mirrors with the edge pixel repeated (NumPy's ``symmetric``,
        Dask's ``reflect``); ``"none"`` adds nothing there.

    Returns
    -------
    (np.ndarray, (int, int))
        The region (the input's dtype) and the block's (row, column) offset in it.
    """
    shape = arr.shape
    lo = [max(0, a - halo) for a, _ in (rows, cols)]
    hi = [min(n, b + halo) for n, (_, b) in zip(shape, (rows, cols))]
    region = np.asarray(arr[lo[0] : hi[0], lo[1] : hi[1]])
    offset = [a - low for (a, _), low in zip((rows, cols), lo)]
    if mode == "reflect":
        pad = [(halo - off, halo - (high - b)) for off, high, (_, b) in zip(offset, hi, (rows, cols))]
        if any(p for pair in pad for p in pair):
            region = np.pad(region, pad, mode="symmetric")
        offset = [halo, halo]
    elif mode != "none":
        raise ValueError(f"boundary must be 'reflect' or 'none', got {mode!r}")
    return region, (offset[0], offset[1])


def local_scheduler(name: str | None):
    """The local scheduler's function (a name would make dask import ``distributed`` to look for a client:
    ~0.6 s on the first compute of a process)."""
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    table = {None: dask.threaded.get, "threads": dask.threaded.get, "sync": dask.local.get_sync,
             "synchronous": dask.local.get_sync, "processes": dask.multiprocessing.get}
    if name not in table:
        raise ValueError(f"unknown local scheduler {name!r}: threads, processes or sync")
    return table[name]


def fit_chunk(chunk_px: int, *, denoiser: Denoiser) -> int:
    """``chunk_px`` rounded down to the method's ``chunk_multiple``, at least one multiple (bm3d: one cell)."""
    multiple = int(getattr(denoiser, "chunk_multiple", 1))
    return max(multiple, int(chunk_px) - int(chunk_px) % multiple)


def choose_chunk(chunk_px: int | None, *, denoiser: Denoiser, default_px: int) -> int:
    """Block side for tiled denoising: ``chunk_px`` if given, else the method's own ``block_px`` (the U-Net: its
    context is paid once per block, so it wants large blocks), else ``default_px``; then :func:`fit_chunk`."""
    size = chunk_px or getattr(denoiser, "block_px", None) or default_px
    return fit_chunk(int(size), denoiser=denoiser)


def plan_blocks(n: int, *, chunk_px: int, halo: int) -> tuple[int, ...]:
    """Block sizes along one axis of length ``n``: ``chunk_px`` each, a too-thin last one merged.

    Parameters
    ----------
    n : int
        Axis length in pixels.
    chunk_px : int
        Nominal block side.
    halo : int
        The method's halo; every block must be at least this thick.

    Returns
    -------
    tuple of int
        Sizes summing to ``n``; every block but the last starts on a multiple of ``chunk_px``.
    """
    if chunk_px <= 0:
        raise ValueError(f"chunk_px must be positive, got {chunk_px}")
    sizes = [min(chunk_px, n - s) for s in range(0, n, chunk_px)]
    if len(sizes) > 1 and sizes[-1] < halo:
        thin = sizes.pop()
        sizes[-1] += thin
    return tuple(sizes)


def denoise_tiled(
    image: np.ndarray,
    *,
    denoiser: Denoiser,
    chunk_px: int = 1024,
    scheduler: str = "threads",
    num_workers: int | None = None,
) -> np.ndarray:
    """Denoise an (H, W) unit-scale image block by block with Dask, seam-free.

    Parameters
    ----------
    image : np.ndarray
        (H, W) float image on the unit scale.
    denoiser : Denoiser
        The method; its ``halo`` is the overlap depth.
    chunk_px : int
        Block side; rounded down to the method's ``chunk_multiple`` (at least one multiple).
    scheduler : str
        A local Dask scheduler: ``"threads"``, ``"processes"`` or ``"sync"``.
    num_workers : int, optional
        Worker count (Dask's default: one per core).

    Returns
    -------
    np.ndarray
        (H, W) float32, equal to ``denoise_image(image, denoiser=denoiser)`` within float rounding.
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"denoise_tiled expects a 2-D (H, W) image, got shape {x.shape}")
    chunk_px = fit_chunk(chunk_px, denoiser=denoiser)
    halo = int(denoiser.halo)
    chunks = tuple(plan_blocks(n, chunk_px=chunk_px, halo=halo) for n in x.shape)
    if len(chunks[0]) == 1 and len(chunks[1]) == 1:
        return denoise_image(x, denoiser=denoiser)
    if min(min(c) for c in chunks) < halo:  # an axis shorter than the halo: one block along it is all there is
        return denoise_image(x, denoiser=denoiser)
    arr = da.from_array(x, chunks=chunks)
    y = arr.map_overlap(BlockDenoiser(denoiser), depth=halo, boundary=edge_mode(denoiser),
                        dtype=np.float32, trim=True, meta=np.empty((0, 0), np.float32))
    kwargs = {"scheduler": local_scheduler(scheduler)}
    if num_workers:
        kwargs["num_workers"] = int(num_workers)
    return np.asarray(y.compute(**kwargs), dtype=np.float32)
