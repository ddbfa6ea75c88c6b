"""Dask-parallel, resumable, seam-free tiled denoising from Zarr to OME-Zarr.

:func:`denoise_zarr` reads a 2-D Zarr array (or level 0 of an OME-Zarr image) as a Dask array
in blocks of ``(chunk, chunk)``. One task per block reads the block and ``denoiser.halo`` pixels around it
straight from the store (:func:`~sem_core.denoise.tiled.read_with_halo`; at the image's own edges the method's
boundary, :func:`~sem_core.denoise.base.edge_mode`: mirror padding with the edge pixel repeated, or none for a
method that handles the image edges itself, as the whole-image call :func:`sem_core.denoise.base.denoise_image`
does), denoises it, crops the halo and writes the block into level 0 of a new OME-Zarr image. This is what Dask's
``map_overlap`` computes, without holding the eight neighbouring chunks of every block in memory. Tasks run in
waves of a few blocks per worker, so memory is bounded by the wave, not by the scan size. Each block is converted
to unit-scale float32 before denoising and back to the output dtype (rounded, clipped) after.

Resuming: after a block's data is written (atomically, by Zarr's local store), a one-byte marker
chunk ``_progress[i, j] = 1`` is written. A rerun with the same input, method and chunking
(the ``run_key`` stored in the attributes) skips marked blocks; a block cut off mid-write has no
marker and is recomputed. Since every block is a pure function of the input, the final output is
bit-identical to an uninterrupted run. When all blocks are done the pyramid is built, ``complete``
is set and ``_progress`` is removed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import zarr

from .denoise.base import Denoiser, describe_denoiser, edge_mode, from_unit_float
from .denoise.tiled import BlockDenoiser, local_scheduler, read_with_halo
from .io.ome_zarr import ATTRS_KEY, build_pyramid, create_multiscale, default_n_levels
from .provenance import hash_params, make_provenance

__all__ = ["DenoiseRun", "open_source_array", "hash_zarr_array", "is_cluster_address", "denoise_zarr"]

_PROGRESS = "_progress"


@dataclass(frozen=True)
class DenoiseRun:
    """What :func:`denoise_zarr` did: block counts and wall time."""

    blocks_total: int
    blocks_skipped: int
    blocks_computed: int
    seconds: float


def open_source_array(src: str | Path | zarr.Array) -> tuple[zarr.Array, dict[str, Any]]:
    """Open a 2-D Zarr array, or level 0 of an OME-Zarr multiscale image, read-only.

    Returns
    -------
    (zarr.Array, dict)
        The (H, W) array and ``{"store": str, "pixel_size_nm": float, "n_levels": int | None}``.
    """
    if isinstance(src, zarr.Array):
        return src, {"store": str(src.store), "pixel_size_nm": 1.0, "n_levels": None}
    path = Path(src)
    try:
        node = zarr.open(path, mode="r")
    except (FileNotFoundError, zarr.errors.NodeTypeValidationError, ValueError) as exc:
        raise FileNotFoundError(f"cannot open Zarr input {path}: {exc}") from exc
    meta: dict[str, Any] = {"store": path.as_posix(), "pixel_size_nm": 1.0, "n_levels": None}
    if isinstance(node, zarr.Group):
        ms = node.attrs.get("ome", {}).get("multiscales") or node.attrs.get("multiscales")
        if not ms:
            raise ValueError(f"{path} is a Zarr group without OME-Zarr multiscales metadata; pass an array")
        ds0 = ms[0]["datasets"][0]
        for t in ds0.get("coordinateTransformations", []):
            if t.get("type") == "scale":
                meta["pixel_size_nm"] = float(t["scale"][-1])
        meta["n_levels"] = len(ms[0]["datasets"])
        node = node[ds0["path"]]
    if node.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D (H, W) image, got shape {node.shape}")
    return node, meta


def hash_zarr_array(arr: zarr.Array) -> str:
    """SHA-256 of a Zarr array's dtype, shape, chunk shape and values, read one chunk at a time (row-major).

    Memory stays at one chunk whatever the array's size; the same values stored with another chunk
    shape hash differently.
    """
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|{arr.chunks}|".encode())
    ch, cw = arr.chunks
    for r in range(0, arr.shape[0], ch):
        for c in range(0, arr.shape[1], cw):
            h.update(np.ascontiguousarray(arr[r : r + ch, c : c + cw]).tobytes())
    return h.hexdigest()


def _denoise_block(src: zarr.Array, fn: BlockDenoiser, group_path: str, i: int, j: int,
                   rows: tuple[int, int], cols: tuple[int, int], halo: int, mode: str) -> int:
    """Read block (i, j) with its halo from ``src``, denoise, crop, write it and its progress marker."""
    region, (top, left) = read_with_halo(src, rows, cols, halo=halo, mode=mode)
    out = fn(region)[top : top + rows[1] - rows[0], left : left + cols[1] - cols[0]]
    del region
    group = zarr.open_group(group_path, mode="r+")
    level0 = group["0"]
    level0[rows[0] : rows[1], cols[0] : cols[1]] = from_unit_float(out, level0.dtype)
    group[_PROGRESS][i, j] = 1  # marker written only after the data
    del out
    _trim_heap()
    return 1


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None)
    except OSError:
        return None


def _trim_heap() -> None:
    """Hand the heap's free pages back to the OS after a block: without it a block's freed temporaries stay
    resident, scattered between live ones, and the peak creeps up with the number of blocks."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def is_cluster_address(scheduler: str | None) -> bool:
    """True for a ``dask.distributed`` scheduler address (``tcp://host:8786``), False for a local scheduler name."""
    return bool(scheduler) and "://" in str(scheduler)


def _get_client(scheduler: str):
    from dask.distributed import Client  # only needed for a cluster address

    return Client(scheduler)


def denoise_zarr(
    src: str | Path | zarr.Array,
    dst: str | Path,
    *,
    denoiser: Denoiser,
    chunks: int = 1024,
    scheduler: str | None = None,
    num_workers: int | None = None,
    resume: bool = True,
    progress: bool = True,
    out_dtype: str | np.dtype | None = None,
    n_levels: int | None = None,
    provenance_extra: Mapping[str, Any] | None = None,
) -> DenoiseRun:
    """Denoise a large 2-D image from Zarr into an OME-Zarr image, block by block.

    Parameters
    ----------
    src : path or zarr.Array
        (H, W) Zarr array, or an OME-Zarr image (its level 0 is read).
    dst : path
        Output ``.ome.zarr`` folder: multiscale image, NGFF metadata, provenance under ``sem_denoise``.
    denoiser : Denoiser
        The method (unit-scale float32 tiles); its ``halo`` is the overlap depth.
    chunks : int
        Block side in pixels (also the output chunk side). Every block must be at least ``halo``.
    scheduler : str, optional
        ``None``/``"threads"``, ``"processes"``, ``"sync"``, or a ``dask.distributed`` scheduler
        address (``"tcp://host:8786"``) to run on an existing cluster.
    num_workers : int, optional
        Workers of the local threads/processes scheduler (default: the CPU count).
    resume : bool
        Skip blocks already done by an earlier run with the same ``run_key``; False restarts.
    progress : bool
        Print the count of finished blocks (stderr) after each wave of blocks.
    out_dtype : dtype, optional
        Output pixel type; default the input's (integers are rounded and clipped).
    n_levels : int, optional
        Pyramid levels; default the input's (OME-Zarr) or down to about 256 px.
    provenance_extra : mapping, optional
        More provenance fields (e.g. ``{"checkpoint_hash": ...}``).

    Returns
    -------
    DenoiseRun
    """
    t0 = time.perf_counter()
    arr, meta = open_source_array(src)
    shape = tuple(int(s) for s in arr.shape)
    halo = int(denoiser.halo)
    out_dtype = np.dtype(out_dtype or arr.dtype)
    grid = [list(range(0, n, chunks)) for n in shape]
    sizes = [[min(chunks, n - s) for s in starts] for starts, n in zip(grid, shape)]
    multiple = int(getattr(denoiser, "chunk_multiple", 1))
    if chunks % multiple:
        raise ValueError(f"chunk {chunks} must be a multiple of {multiple} for method {denoiser.name!r}")
    smallest = min(min(s) for s in sizes)
    if halo > smallest:
        raise ValueError(
            f"{meta['store']}: chunk {chunks} on shape {shape} leaves a block of {smallest} px, smaller than "
            f"the halo {halo} of {denoiser.name!r}; choose another chunk size"
        )
    desc = describe_denoiser(denoiser)
    input_hash = hash_zarr_array(arr)
    run_key = hash_params({"input": input_hash, "denoiser": desc, "chunks": chunks, "dtype": out_dtype.str})
    dst = Path(dst)
    group = _open_or_create(dst, run_key=run_key, resume=resume, shape=shape, dtype=out_dtype, chunks=chunks,
                            n_levels=n_levels or meta["n_levels"] or default_n_levels(shape),
                            pixel_size_nm=meta["pixel_size_nm"], name=f"denoised_{denoiser.name}",
                            grid_shape=(len(grid[0]), len(grid[1])))
    attrs = dict(group.attrs[ATTRS_KEY])
    n_total = len(grid[0]) * len(grid[1])
    if attrs.get("complete"):
        return DenoiseRun(n_total, n_total, 0, time.perf_counter() - t0)
    done = group[_PROGRESS][...].astype(bool)

    fn, mode = BlockDenoiser(denoiser), edge_mode(denoiser)
    if is_cluster_address(scheduler):  # one copy of the source handle and the method in the graph, not one per task
        arr, fn = dask.delayed(arr, pure=True), dask.delayed(fn, pure=True)
    run_block = dask.delayed(_denoise_block, pure=False)
    tasks = [
        run_block(arr, fn, str(dst), i, j, (r0, r0 + sizes[0][i]), (c0, c0 + sizes[1][j]), halo, mode)
        for i, r0 in enumerate(grid[0])
        for j, c0 in enumerate(grid[1])
        if not done[i, j]
    ]
    limit = getattr(denoiser, "max_parallel_blocks", None)
    if limit and (scheduler is None or scheduler == "threads"):  # e.g. the U-Net on CPU: one pass at a time
        num_workers = min(num_workers or os.cpu_count() or 1, int(limit))
    _compute(tasks, scheduler=scheduler, num_workers=num_workers, progress=progress)

    build_pyramid(group, method="mean", workers=num_workers or 1)
    attrs.update(complete=True)
    attrs["provenance"] = make_provenance(
        params=desc, inputs_hash=input_hash,
        extra={"stage": "denoise", **desc, "input_store": meta["store"], "input_hash": input_hash,
               "chunks": chunks, **dict(provenance_extra or {})},
    )
    group.attrs[ATTRS_KEY] = attrs
    del group[_PROGRESS]
    return DenoiseRun(n_total, int(done.sum()), len(tasks), time.perf_counter() - t0)


def _open_or_create(dst: Path, *, run_key: str, resume: bool, shape, dtype, chunks, n_levels, pixel_size_nm,
                    name, grid_shape) -> zarr.Group:
    if resume and dst.exists():
        try:
            group = zarr.open_group(dst, mode="r+")
            old = dict(group.attrs.get(ATTRS_KEY, {}))
        except (FileNotFoundError, ValueError, zarr.errors.GroupNotFoundError):
            old = {}
        if old.get("run_key") == run_key and (old.get("complete") or _PROGRESS in group):
            return group
    group = create_multiscale(dst, shape=shape, dtype=dtype, chunks=(chunks, chunks), n_levels=n_levels,
                              pixel_size_nm=pixel_size_nm, name=name,
                              attrs={"run_key": run_key, "complete": False})
    group.create_array(_PROGRESS, shape=grid_shape, dtype="uint8", chunks=(1, 1), fill_value=0,
                       compressors=None, overwrite=True)
    return group


def _compute(tasks: list, *, scheduler: str | None, num_workers: int | None, progress: bool) -> None:
    """Run the write tasks in waves of a few blocks per worker, so memory does not grow with the scan."""
    if not tasks:
        return
    client = None
    if is_cluster_address(scheduler):
        client = _get_client(scheduler)
        kwargs: dict[str, Any] = {"scheduler": client}
        workers = max(1, len(client.scheduler_info().get("workers", {})) * 2)
    else:
        kwargs = {"scheduler": local_scheduler(scheduler)}
        if num_workers:
            kwargs["num_workers"] = num_workers
        workers = num_workers or os.cpu_count() or 1
    wave = 4 * workers if workers > 1 else 2
    try:
        for start in range(0, len(tasks), wave):
            dask.compute(*tasks[start : start + wave], **kwargs)
            if progress:
                done = min(len(tasks), start + wave)
                print(f"\rdenoised {done}/{len(tasks)} blocks", end="\n" if done == len(tasks) else "",
                      file=sys.stderr, flush=True)
    finally:
        if client is not None:
            client.close()
