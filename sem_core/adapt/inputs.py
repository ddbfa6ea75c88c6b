"""The noisy images ``sem-denoise adapt`` learns from: a folder of SEM TIFF/PNG or a Zarr/OME-Zarr store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_adapt_images"]

_MAX_PIXELS = 1 << 28  # a 16k x 16k level 0 at most


def _read_zarr(path: Path) -> tuple[list[np.ndarray], list[str]]:
    import zarr

    from ..io.ome_zarr import open_multiscale

    group = zarr.open_group(str(path), mode="r")
    if "noisy" in group:  # a dataset store (tin_balls.zarr, wafers.zarr): its noisy stack
        arr = group["noisy"]
        return [np.asarray(arr[i]) for i in range(arr.shape[0])], [f"{path.name}[{i}]" for i in range(arr.shape[0])]
    if "ome" in dict(group.attrs) or "multiscales" in dict(group.attrs):
        level0 = open_multiscale(path, 0)
        if level0.shape[0] * level0.shape[1] > _MAX_PIXELS:
            raise ValueError(f"{path}: level 0 {level0.shape} is larger than {_MAX_PIXELS} pixels")
        return [np.asarray(level0[...])], [f"{path.name}/0"]
    raise ValueError(f"{path}: neither a dataset store (no 'noisy' array) nor an OME-Zarr multiscale image")


def read_adapt_images(path: str | Path, *, channel: str = "auto", crop_rows: int | None = None,
                      max_images: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Noisy grey images on the unit scale, and their names.

    Parameters
    ----------
    path : str or Path
        A folder of ``.tif``/``.tiff``/``.png`` (non-recursive; data bars removed as in ingest,
        :func:`sem_core.io.sem_tiff.read_sem_image`), one such file, or a ``.zarr`` store: a dataset
        store (its ``noisy`` (N, H, W) stack) or an OME-Zarr multiscale image (level 0).
    channel, crop_rows
        As in :func:`~sem_core.io.sem_tiff.read_sem_image`.
    max_images : int, optional
        Keep the first ``max_images`` (in file-name order).

    Returns
    -------
    images : list of (H, W) float32 in [0, 1] (integers divided by their dtype's maximum)
    names : list of str

    Raises
    ------
    ValueError
        Naming the path: nothing readable, an unreadable file (the cause chained), a foreign store.
    """
    from ..denoise.base import to_unit_float
    from ..denoise.files import list_image_files
    from ..io.sem_tiff import SemReadError, read_sem_image

    path = Path(path)
    if not path.exists():
        raise ValueError(f"adapt input {path} does not exist")
    if path.is_dir() and (path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists()):
        raw, names = _read_zarr(path)
    else:
        files = list_image_files(path)
        raw, names = [], []
        for f in files[:max_images]:
            try:
                raw.append(read_sem_image(f, crop_rows=crop_rows, channel=channel).data)
            except SemReadError as exc:
                raise ValueError(f"adapt input {f}: {exc.reason}") from exc
            names.append(f.name)
    raw, names = raw[:max_images], names[:max_images]
    if not raw:
        raise ValueError(f"adapt input {path} holds no TIFF/PNG image")
    return [to_unit_float(im) for im in raw], names
