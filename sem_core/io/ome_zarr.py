"""OME-Zarr (NGFF 0.5 on Zarr v3) multiscale images written block by block.

A scan ``<name>.ome.zarr`` holds the noisy image at the root (levels ``0``, ``1``, ...; level k is
level 0 downsampled by 2**k), a sibling multiscale image in the sub-group ``clean`` and an NGFF label
image ``labels/defects``. Level 0 is written block by block (:func:`write_level0_block`), then
:func:`build_pyramid` derives each level from the one below with dask, chunk by chunk, so no
level is ever held in memory whole. The NGFF metadata is written with ome-zarr-py's writer helpers
and is read back by ``ome_zarr.reader`` (and napari's ome-zarr plugin). Our own attributes
(provenance, simulator parameters) sit under the key ``sem_denoise``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import dask.threaded
import numpy as np
import zarr
from zarr.codecs import BloscCodec

with warnings.catch_warnings():  # ome_zarr.writer's import-time default `Scaler()` warns; we do not use it
    warnings.simplefilter("ignore", DeprecationWarning)
    from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

__all__ = [
    "ATTRS_KEY",
    "create_multiscale",
    "create_label_image",
    "write_level0_block",
    "build_pyramid",
    "open_multiscale",
    "open_multiscale_group",
    "level_shapes",
    "default_n_levels",
    "write_image",
]

ATTRS_KEY = "sem_denoise"
_AXES = [{"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space", "unit": "nanometer"}]


def level_shapes(shape: Sequence[int], n_levels: int) -> list[tuple[int, int]]:
    """Shapes of levels ``0..n_levels-1``: level k is ``floor(shape / 2**k)`` (at least 1 px)."""
    return [(max(1, int(shape[0]) >> k), max(1, int(shape[1]) >> k)) for k in range(n_levels)]


def default_n_levels(shape: Sequence[int], *, coarsest_px: int = 256, max_levels: int = 8) -> int:
    """Pyramid levels of an image: halve until the short side would drop below ``coarsest_px`` (1..``max_levels``).

    The one rule for every OME-Zarr the project writes (a 4096² scan gets 5 levels, a 512² image 2).
    """
    short = max(1, min(int(n) for n in shape))
    return int(min(max_levels, max(1, 1 + math.floor(math.log2(max(1.0, short / coarsest_px))))))


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    pixel_size_nm: float = 1.0,
    name: str = "image",
    attrs: Mapping[str, Any] | None = None,
    component: str = "",
    chunks: tuple[int, int] = (1024, 1024),
    n_levels: int | None = None,
) -> zarr.Group:
    """Write a whole (H, W) image as a multiscale OME-Zarr image with its pyramid (mean downsampling).

    Parameters
    ----------
    path : str or Path
        The ``.ome.zarr`` folder (created if missing; other components are kept).
    image : np.ndarray
        (H, W) integer or float image, stored with its dtype.
    pixel_size_nm, name, attrs, component, chunks
        As :func:`create_multiscale`.
    n_levels : int, optional
        Pyramid levels (default :func:`default_n_levels`).

    Returns
    -------
    zarr.Group
        The written multiscale group.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"write_image expects a 2-D image, got shape {image.shape}")
    group = create_multiscale(path, shape=image.shape, dtype=image.dtype, chunks=chunks,
                              n_levels=n_levels or default_n_levels(image.shape), pixel_size_nm=pixel_size_nm,
                              name=name, attrs=attrs, component=component)
    write_level0_block(group, image, row=0, col=0)
    build_pyramid(group, method="mean")
    return group


def _open_component(path: Path, component: str, *, mode: str) -> zarr.Group:
    root = zarr.open_group(path, mode=mode, zarr_format=3 if mode == "a" else None)
    group = root
    for part in [p for p in component.split("/") if p]:
        group = group[part] if mode in ("r", "r+") else group.require_group(part)
    return group


def create_multiscale(
    path: str | Path,
    *,
    shape: tuple[int, int],
    dtype: str | np.dtype,
    chunks: tuple[int, int] = (1024, 1024),
    n_levels: int = 4,
    pixel_size_nm: float = 1.0,
    name: str = "image",
    attrs: Mapping[str, Any] | None = None,
    component: str = "",
) -> zarr.Group:
    """Create an empty 2-D multiscale image (arrays ``0..n_levels-1``) with NGFF metadata.

    Parameters
    ----------
    path : str or Path
        The ``.ome.zarr`` folder (created if missing; other components are kept).
    shape : (H, W)
        Level-0 shape.
    dtype : str or dtype
        Pixel type of every level.
    chunks : (ch, cw)
        Chunk shape of every level (clipped to the level's shape).
    n_levels : int
        Number of pyramid levels (>= 1).
    pixel_size_nm : float
        Level-0 pixel size; level k has scale ``pixel_size_nm * 2**k`` on both axes.
    name : str
        The multiscale's ``name`` in the NGFF metadata.
    attrs : mapping, optional
        JSON-serialisable attributes stored under ``sem_denoise`` (provenance, parameters).
    component : str
        Sub-group path inside ``path``: ``""`` (root), ``"clean"``, ``"labels/defects"``.

    Returns
    -------
    zarr.Group
        The multiscale group (existing level arrays are replaced).
    """
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    path = Path(path)
    group = _open_component(path, component, mode="a")
    datasets = []
    for k, lshape in enumerate(level_shapes(shape, n_levels)):
        group.create_array(
            str(k),
            shape=lshape,
            dtype=np.dtype(dtype),
            chunks=(min(chunks[0], lshape[0]), min(chunks[1], lshape[1])),
            compressors=BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
            fill_value=0,
            dimension_names=("y", "x"),
            overwrite=True,
        )
        scale = float(pixel_size_nm) * 2**k
        datasets.append({"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [scale, scale]}]})
    write_multiscales_metadata(group, datasets=datasets, axes=_AXES, name=name)
    if attrs is not None:
        group.attrs[ATTRS_KEY] = dict(attrs)
    return group


def create_label_image(
    path: str | Path,
    *,
    name: str,
    shape: tuple[int, int],
    chunks: tuple[int, int] = (1024, 1024),
    n_levels: int = 4,
    pixel_size_nm: float = 1.0,
    label_names: Mapping[int, str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> zarr.Group:
    """Create an empty uint8 NGFF label image ``labels/<name>`` beside the image at ``path``.

    ``label_names`` maps label values to names (``{1: "bridge", ...}``); they become the
    ``image-label`` ``properties``. Returns the label's multiscale group.
    """
    group = create_multiscale(
        path, shape=shape, dtype="uint8", chunks=chunks, n_levels=n_levels,
        pixel_size_nm=pixel_size_nm, name=name, attrs=attrs, component=f"labels/{name}",
    )
    labels = _open_component(Path(path), "labels", mode="a")
    if name in labels.attrs.get("ome", {}).get("labels", []):
        labels.attrs["ome"] = {**labels.attrs["ome"], "labels": [x for x in labels.attrs["ome"]["labels"] if x != name]}
    props = [{"label-value": int(v), "name": str(n)} for v, n in sorted((label_names or {}).items())]
    write_label_metadata(labels, name=name, properties=props or None, source={"image": "../../"})
    labels.attrs["ome"] = {"version": group.attrs["ome"]["version"], **labels.attrs["ome"]}
    return group


def write_level0_block(group: zarr.Group, block: np.ndarray, *, row: int, col: int) -> None:
    """Write ``block`` (h, w) into level 0 of ``group`` with its top-left pixel at ``(row, col)``.

    Blocks aligned to the chunk grid touch only their own chunks, so different blocks may be
    written concurrently. Integer blocks may be narrowed (e.g. int64 -> uint8, values must fit);
    a float block is refused for an integer level (round and clip it first).
    """
    arr = group["0"]
    block = np.asarray(block)
    if block.dtype != arr.dtype and not np.can_cast(block.dtype, arr.dtype, casting="same_kind"):
        raise TypeError(f"block dtype {block.dtype} cannot be written to level 0 of dtype {arr.dtype}: convert it first")
    h, w = block.shape
    if row < 0 or col < 0 or row + h > arr.shape[0] or col + w > arr.shape[1]:
        raise ValueError(f"block {block.shape} at ({row}, {col}) exceeds level 0 shape {arr.shape}")
    arr[row : row + h, col : col + w] = block.astype(arr.dtype, copy=False)


_PIECE = 1024  # output side of one downsampling task


def _downsample(x: da.Array, *, method: str, out_shape: tuple[int, int], dtype: np.dtype) -> da.Array:
    x = x[: out_shape[0] * 2, : out_shape[1] * 2]
    if method == "mean":
        y = da.coarsen(np.mean, x.astype(np.float32), {0: 2, 1: 2}, trim_excess=True)
        if np.issubdtype(dtype, np.integer):
            y = da.rint(y)
        return y.astype(dtype)
    if method == "max":
        return da.coarsen(np.max, x, {0: 2, 1: 2}, trim_excess=True).astype(dtype)
    if method == "nearest":
        return x[::2, ::2].astype(dtype)
    raise ValueError(f"unknown downsampling method {method!r}; use 'mean', 'max' or 'nearest'")


def build_pyramid(
    group: zarr.Group,
    *,
    method: Literal["mean", "max", "nearest"] = "mean",
    workers: int = 1,
) -> None:
    """Fill levels 1.. of a multiscale group from level 0, each from the level below (2×2 blocks).

    Parameters
    ----------
    group : zarr.Group
        From :func:`create_multiscale` with level 0 written.
    method : {"mean", "max", "nearest"}
        ``mean`` (rounded for integer types) for images; ``max`` for label images, so that a defect
        smaller than a pixel of the coarse level stays visible there.
    workers : int
        Threads of the dask scheduler. Memory stays bounded by a few chunks per thread.
    """
    paths = [d["path"] for d in group.attrs["ome"]["multiscales"][0]["datasets"]]
    for below, here in zip(paths[:-1], paths[1:]):
        src, dst = group[below], group[here]
        # source pieces of at most 2·_PIECE² px (float32 in the mean: 16 MiB), not 2× an output chunk (a 4096²
        # output chunk read as 8192² float32 is 256 MiB per thread); the rechunk below gathers the small uint8 results
        x = da.from_zarr(src, chunks=tuple(2 * min(c, _PIECE) for c in dst.chunks))
        y = _downsample(x, method=method, out_shape=dst.shape, dtype=dst.dtype)
        # the threaded scheduler's function, not its name: a name makes dask import `distributed` (~0.6 s)
        with dask.config.set(scheduler=dask.threaded.get, num_workers=max(1, workers)):
            da.store(y.rechunk(dst.chunks), dst, lock=False)


def open_multiscale_group(path: str | Path, *, component: str = "", mode: str = "r") -> zarr.Group:
    """Open a multiscale group (``component`` as in :func:`create_multiscale`), read-only by default.

    ``mode="r+"`` opens an existing group for writing blocks (e.g. from worker processes).
    """
    path = Path(path)
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
    try:
        return _open_component(path, component, mode=mode)
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
        raise FileNotFoundError(f"no multiscale image {component or '(root)'} in {path}") from exc


def open_multiscale(path: str | Path, level: int = 0, *, component: str = "") -> zarr.Array:
    """Level ``level`` of the multiscale image at ``path``/``component`` as a read-only zarr.Array (H, W)."""
    group = open_multiscale_group(path, component=component)
    paths = [d["path"] for d in group.attrs["ome"]["multiscales"][0]["datasets"]]
    if not 0 <= level < len(paths):
        raise ValueError(f"{path}/{component}: level {level} out of range 0..{len(paths) - 1}")
    return group[paths[level]]
