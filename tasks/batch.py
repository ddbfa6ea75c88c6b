"""Thin tasks of the batch-inbox flow: find new batches, denoise one item, write a batch's tables.

An *item* is one SEM image file (``.tif``/``.tiff``/``.png``) or one Zarr scan folder
(``.zarr``, ``.ome.zarr``) directly inside ``<inbox>/<batch>/``. Each item and method gives one
OME-Zarr image ``<stem>.<method>.ome.zarr`` (NGFF multiscale, provenance under ``sem_denoise``)
and one metrics row. Metrics are no-reference (there is no clean image in production):
the estimated noise σ before/after (``skimage.restoration.estimate_sigma`` on the unit scale,
a central crop of at most 1024² for scans) and the mean absolute change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from skimage.restoration import estimate_sigma

from sem_core.denoise.base import Denoiser, denoise_image, describe_denoiser, from_unit_float, to_unit_float
from sem_core.denoise.tiled import choose_chunk
from sem_core.io.ome_zarr import write_image
from sem_core.io.sem_tiff import read_sem_image
from sem_core.denoise_zarr import denoise_zarr, open_source_array
from sem_core.provenance import make_provenance

from .ledger import batch_content_hash, is_batch_done
from .runners import io_retry_options

__all__ = [
    "IMAGE_SUFFIXES", "BATCH_METRICS_SCHEMA", "list_items", "find_new_batches", "denoise_item", "validate_metrics",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
_CROP = 1024

BATCH_METRICS_SCHEMA = pa.DataFrameSchema(
    {
        "item": pa.Column(str),
        "method": pa.Column(str),
        "output": pa.Column(str),
        "height": pa.Column(int, pa.Check.gt(0)),
        "width": pa.Column(int, pa.Check.gt(0)),
        "sigma_in": pa.Column(float, pa.Check.ge(0)),
        "sigma_out": pa.Column(float, pa.Check.ge(0)),
        "mean_abs_change": pa.Column(float, pa.Check.ge(0)),
        "seconds": pa.Column(float, pa.Check.ge(0)),
    },
    strict=True,
    coerce=True,
)
"""One row per (item, method) of a batch: ``metrics.csv`` in the batch's output folder."""


def _is_item(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_dir():
        return path.name.endswith(".zarr")
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_items(batch_dir: Path) -> list[Path]:
    """Items of a batch folder, sorted by name (other files are ignored)."""
    return sorted(p for p in Path(batch_dir).iterdir() if _is_item(p))


def _item_stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".zarr", *IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@task(cache_policy=NO_CACHE, **io_retry_options())
def find_new_batches(inbox_dir: Path, outputs_dir: Path) -> list[dict[str, str]]:
    """Batches in ``inbox_dir`` without a finished output for their current content.

    Returns
    -------
    list of dict
        ``{"batch": name, "path": str, "content_hash": str}`` sorted by name. Empty and hidden
        folders are skipped (a batch still being copied should be uploaded under a hidden name
        and renamed when complete).
    """
    inbox_dir = Path(inbox_dir)
    if not inbox_dir.is_dir():
        return []
    found = []
    for folder in sorted(p for p in inbox_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not any(True for _ in folder.iterdir()):
            continue
        content_hash = batch_content_hash(folder)
        if not is_batch_done(outputs_dir, folder.name, content_hash):
            found.append({"batch": folder.name, "path": str(folder), "content_hash": content_hash})
    return found


def _noise_sigma(x: np.ndarray) -> float:
    return float(estimate_sigma(np.asarray(x, dtype=np.float64)))


def _central_crop(shape: tuple[int, int]) -> tuple[slice, slice]:
    return tuple(slice(max(0, (n - _CROP) // 2), max(0, (n - _CROP) // 2) + min(n, _CROP)) for n in shape)


def _denoise_image_file(src: Path, out: Path, denoiser: Denoiser) -> dict[str, Any]:
    image = read_sem_image(src)
    x = to_unit_float(image.data)
    y = denoise_image(x, denoiser=denoiser)
    result = from_unit_float(y, image.data.dtype)
    desc = describe_denoiser(denoiser)
    provenance = make_provenance(params=desc, inputs_hash=image.meta.sha256,
                                 extra={"stage": "batch_denoise", "source": str(src), **desc})
    shape = tuple(int(n) for n in result.shape)
    write_image(out, result, pixel_size_nm=image.meta.pixel_size_nm or 1.0, name=f"denoised_{denoiser.name}",
                attrs={"provenance": provenance})
    y_written = to_unit_float(result)
    return {"height": shape[0], "width": shape[1], "sigma_in": _noise_sigma(x), "sigma_out": _noise_sigma(y_written),
            "mean_abs_change": float(np.mean(np.abs(y_written - x)))}


def _denoise_scan(src: Path, out: Path, denoiser: Denoiser, *, chunks: int) -> dict[str, Any]:
    denoise_zarr(src, out, denoiser=denoiser, chunks=chunks, scheduler="threads", num_workers=1,
                 resume=False, progress=False, provenance_extra={"stage": "batch_denoise", "source": str(src)})
    arr_in, _ = open_source_array(src)
    arr_out, _ = open_source_array(out)
    crop = _central_crop(tuple(int(n) for n in arr_in.shape))
    x, y = to_unit_float(arr_in[crop]), to_unit_float(arr_out[crop])
    return {"height": int(arr_in.shape[0]), "width": int(arr_in.shape[1]), "sigma_in": _noise_sigma(x),
            "sigma_out": _noise_sigma(y), "mean_abs_change": float(np.mean(np.abs(y - x)))}


def _retry_transient(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry only transient I/O errors, not unreadable or invalid inputs (which would fail again)."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


@task(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=_retry_transient, **io_retry_options())
def denoise_item(src: Path, staging: Path, *, denoisers: Mapping[str, Denoiser], chunks: int | None = None,
                 default_chunk_px: int = 1024) -> list[dict]:
    """Denoise one batch item with every method into ``staging``; one metrics row per method.

    Parameters
    ----------
    src : Path
        An image file or a Zarr scan folder.
    staging : Path
        The batch's temporary output folder.
    denoisers : mapping of str to Denoiser
        Method name -> built denoiser.
    chunks : int, optional
        Block side for tiled denoising of scans; default each method's own
        (:func:`~sem_core.denoise.tiled.choose_chunk`: the U-Net's ``block_px``), else ``default_chunk_px``.
    default_chunk_px : int
        Block side of methods without a preference (``denoise.chunk_px``).

    Raises
    ------
    sem_core.io.sem_tiff.SemReadError
        The file is not a readable SEM image (not retried).
    """
    src, staging = Path(src), Path(staging)
    rows = []
    for method, denoiser in denoisers.items():
        out = staging / f"{_item_stem(src)}.{method}.ome.zarr"
        t0 = time.perf_counter()
        if src.is_dir():
            size = choose_chunk(chunks, denoiser=denoiser, default_px=default_chunk_px)
            row = _denoise_scan(src, out, denoiser, chunks=size)
        else:
            row = _denoise_image_file(src, out, denoiser)
        rows.append({"item": src.name, "method": method, "output": out.name, **row,
                     "seconds": time.perf_counter() - t0})
    return rows


def validate_metrics(rows: list[dict]) -> pd.DataFrame:
    """The batch metrics table, validated by :data:`BATCH_METRICS_SCHEMA` (columns in schema order)."""
    frame = pd.DataFrame(rows, columns=list(BATCH_METRICS_SCHEMA.columns))
    return BATCH_METRICS_SCHEMA.validate(frame)

