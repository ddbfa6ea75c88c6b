"""Denoising SEM image files (TIFF/PNG) into TIFFs, keeping geometry and dtype; one bad file never stops a batch.

Each file is read with :func:`sem_core.io.sem_tiff.read_sem_image` (data bar removed as in
ingest), denoised block by block with Dask (:func:`~sem_core.denoise.tiled.denoise_tiled`, equal to
whole-image output) on the unit scale, and
written back in the input dtype (rounded, clipped). With ``keep_data_bar`` the removed bottom
rows are copied unchanged from the file, so the output has the input's height and width.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..io.sem_tiff import SemReadError, read_sem_image
from .base import Denoiser, from_unit_float, to_unit_float
from .tiled import denoise_tiled

__all__ = ["IMAGE_SUFFIXES", "list_image_files", "read_data_bar", "denoise_file", "denoise_files"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def list_image_files(path: str | Path) -> list[Path]:
    """The image files of a folder (sorted, non-recursive), or ``[path]`` for one file."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    return [path]


def read_data_bar(path: str | Path, *, rows: int, channel: str = "auto") -> np.ndarray:
    """The bottom ``rows`` rows of the file as grey (H, W) (G channel of RGB for ``"auto"``)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im)
    else:
        arr = tifffile.imread(path)
    if arr.ndim == 3:
        arr = arr[..., "RGB".index("G" if channel in ("auto", "mean") else channel)]
    return np.ascontiguousarray(arr[arr.shape[0] - rows :])


def denoise_file(
    path: str | Path,
    out_path: str | Path,
    *,
    denoiser: Denoiser,
    crop_rows: int | None = None,
    channel: str = "auto",
    keep_data_bar: bool = True,
    attrs: Mapping[str, Any] | None = None,
    chunk_px: int = 1024,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Denoise one SEM image file into a TIFF (tiles of ``chunk_px`` on ``num_workers`` threads).

    Returns
    -------
    dict
        ``{"input", "output", "shape", "dtype", "crop_rows"}``.

    Raises
    ------
    SemReadError
        The file cannot be read (the message names it).
    """
    img = read_sem_image(path, crop_rows=crop_rows, channel=channel)
    data = img.data
    den = denoise_tiled(to_unit_float(data), denoiser=denoiser, chunk_px=chunk_px, num_workers=num_workers)
    out = from_unit_float(den, data.dtype)
    if keep_data_bar and img.meta.crop_rows:
        bar = read_data_bar(path, rows=img.meta.crop_rows, channel=channel).astype(out.dtype)
        if bar.shape[1] != out.shape[1]:
            raise SemReadError(path, f"data bar width {bar.shape[1]} differs from the image's {out.shape[1]}")
        out = np.concatenate([out, bar], axis=0)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    description = json.dumps({"sem_denoise": {"source": str(path), "source_sha256": img.meta.sha256,
                                              **dict(attrs or {})}})
    tifffile.imwrite(out_path, out, description=description, metadata=None)
    return {"input": str(path), "output": str(out_path), "shape": list(out.shape), "dtype": str(out.dtype),
            "crop_rows": int(img.meta.crop_rows)}


def denoise_files(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    denoiser: Denoiser,
    crop_rows: int | None = None,
    channel: str = "auto",
    keep_data_bar: bool = True,
    attrs: Mapping[str, Any] | None = None,
    chunk_px: int = 1024,
    num_workers: int | None = None,
) -> list[dict[str, Any]]:
    """Denoise every file into ``out_dir/<stem>.tif``; a file that fails gets ``{"input", "error"}`` and the rest go on."""
    results = []
    for p in paths:
        p = Path(p)
        try:
            results.append(denoise_file(p, Path(out_dir) / f"{p.stem}.tif", denoiser=denoiser, crop_rows=crop_rows,
                                        channel=channel, keep_data_bar=keep_data_bar, attrs=attrs,
                                        chunk_px=chunk_px, num_workers=num_workers))
        except (SemReadError, OSError, ValueError) as exc:
            results.append({"input": str(p), "error": f"{type(exc).__name__}: {exc}"})
    return results
