"""The synthetic ``wafers.zarr`` store: render wafer image ``i`` alone, and write all of them (any worker count).

Wafer image ``i`` depends only on ``(seed, i)`` and the parameters: its generator is
``derive_rng(seed, "wafers", i)`` (spawned into a specimen and an imaging stream).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sem_core.io.zarr_store import commit_dataset, create_dataset, partial_path, write_defects, write_item
from sem_core.provenance import hash_params, make_provenance
from sem_core.rng import derive_rng
from sem_core.splits import make_split

from .image_pair import ImagePair, make_image_pair
from .progress import _progress_iter

__all__ = ["WaferItem", "render_wafer_item", "synthesize_wafer_dataset"]


@dataclass(frozen=True)
class WaferItem:
    """One synthetic wafer pair: ``noisy``/``clean`` (H, W) uint8|uint16, ``mask``/``pattern`` (H, W) uint8,
    ``defects`` (DEFECTS_SCHEMA rows with ``image`` = index), ``specimen`` (the layout kwargs drawn)."""

    index: int
    noisy: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    pattern: np.ndarray
    defects: pd.DataFrame
    specimen: dict[str, Any]


def render_wafer_item(
    i: int,
    *,
    seed: int,
    shape: tuple[int, int],
    pattern: str = "mixed",
    image_pair: ImagePair,
    specimen_ranges: Mapping[str, Any] | None = None,
    layout_kwargs: Mapping[str, Any] | None = None,
) -> WaferItem:
    """Render wafer image ``i`` from ``derive_rng(seed, "wafers", i)`` alone.

    The layout's keyword arguments (pixel size, pitch, CD, LER, defect density, pattern) are drawn by
    ``sample_wafer_kwargs(rng, **specimen_ranges)``, then ``layout_kwargs`` (fixed across images: yield
    levels, hole roughness) are added; ``pattern`` ``"lines"``/``"contacts"`` overrides the drawn pattern
    (``"mixed"`` keeps it). The image is formed with the drawn pixel size.
    """
    from sem_core.synth.wafers import render_wafer, sample_wafer_kwargs

    rng_specimen, rng_imaging = derive_rng(seed, "wafers", i).spawn(2)
    kwargs = {**sample_wafer_kwargs(rng_specimen, **dict(specimen_ranges or {})), **dict(layout_kwargs or {})}
    if pattern != "mixed":
        kwargs["pattern"] = pattern
    spec = render_wafer(shape=tuple(shape), rng=rng_specimen, **kwargs)
    noisy, clean = image_pair(np.asarray(spec.yield_map, dtype=np.float32), rng=rng_imaging,
                              pixel_size_nm=float(kwargs["pixel_size_nm"]))
    defects = spec.defects.copy()
    defects["image"] = i
    return WaferItem(index=i, noisy=noisy, clean=clean, mask=np.asarray(spec.mask, np.uint8),
                     pattern=np.asarray(spec.pattern, np.uint8), defects=defects,
                     specimen={k: v for k, v in kwargs.items()})


def synthesize_wafer_dataset(
    path: str | Path,
    *,
    n_images: int,
    shape: tuple[int, int],
    seed: int,
    pattern: str = "mixed",
    noise_model: Any = None,
    imaging_params: Mapping[str, Any] | None = None,
    specimen_ranges: Mapping[str, Any] | None = None,
    layout_kwargs: Mapping[str, Any] | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    images_per_chunk: int = 1,
    workers: int = 1,
    params_for_provenance: Any = None,
    inputs_hash: str | None = None,
    image_pair: ImagePair | None = None,
    progress: bool = False,
) -> Path:
    """Synthesise ``n_images`` wafer pairs into the dataset store ``path`` (``wafers.zarr``).

    Parameters
    ----------
    path : str or Path
        Output store (written to ``<path>.partial``, renamed into place when complete).
    n_images : int
    shape : (H, W)
    seed : int
        Project seed; image i uses ``derive_rng(seed, "wafers", i)``, the split ``derive_rng(seed, "wafers", "split")``.
    pattern : {"mixed", "lines", "contacts"}
    noise_model, imaging_params : optional
        See :func:`make_image_pair`.
    specimen_ranges : mapping, optional
        Keyword arguments of ``sample_wafer_kwargs`` (``params.specimen.wafers.sampling_kwargs()``).
    layout_kwargs : mapping, optional
        Fixed ``make_wafer_layout`` arguments (``params.specimen.wafers.level_kwargs()``).
    split_fractions : 3 floats
    images_per_chunk : int
        Zarr chunk length along N.
    workers : int
        Worker processes; the output is identical for any value.
    params_for_provenance : optional
        Parameters hashed into the provenance (default: the simulator record).
    inputs_hash : str, optional
        Hash of the inputs (e.g. the noise model file); default: hash of the noise model.
    image_pair : callable, optional
        Replaces :func:`make_image_pair` (tests).
    progress : bool

    Returns
    -------
    Path
        The store; attrs ``pixel_sizes_nm`` and ``specimens`` list each image's drawn pixel size and
        layout kwargs, ``pixel_size_nm`` is their median.
    """
    path = Path(path)
    image_pair = image_pair or make_image_pair(noise_model=noise_model, imaging_params=imaging_params)
    nm_dict = noise_model.to_dict() if hasattr(noise_model, "to_dict") else noise_model
    simulator = {"seed": seed, "n_images": n_images, "shape": list(shape), "pattern": pattern,
                 "noise_model": nm_dict, "imaging": dict(imaging_params or {}),
                 "specimen_ranges": dict(specimen_ranges or {}), "layout_kwargs": dict(layout_kwargs or {})}
    attrs = {
        "dataset": "wafers",
        "source": "synthetic (sem_core.synth.wafers + sem_core.synth.imaging)",
        "dwell_s": (imaging_params or {}).get("dwell_s"),
        "bit_depth": int((nm_dict or {}).get("bit_depth", (imaging_params or {}).get("bit_depth", 8))),
        "split": make_split(n_images, rng=derive_rng(seed, "wafers", "split"), fractions=split_fractions),
        "image_ids": [f"wafer_{i:05d}" for i in range(n_images)],
        "simulator": simulator,
        "provenance": make_provenance(
            params=params_for_provenance if params_for_provenance is not None else simulator,
            inputs_hash=inputs_hash or hash_params({"noise_model": nm_dict}), extra={"stage": "synth_wafers"}),
    }
    job = partial(render_wafer_item, seed=seed, shape=tuple(shape), pattern=pattern, image_pair=image_pair,
                  specimen_ranges=specimen_ranges, layout_kwargs=layout_kwargs)
    group, tables, specimens = None, [], []
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        items = pool.map(job, range(n_images), chunksize=max(1, n_images // (4 * workers))) if pool else map(
            job, range(n_images))
        for item in _progress_iter(items, total=n_images, label="wafers", enabled=progress):
            if group is None:
                group = create_dataset(path, n=n_images, shape=item.noisy.shape, dtype=item.noisy.dtype,
                                       chunks=(images_per_chunk, *item.noisy.shape), attrs=attrs, with_pattern=True)
            write_item(group, item.index, noisy=item.noisy, clean=item.clean, mask=item.mask, pattern=item.pattern)
            tables.append(item.defects)
            specimens.append(item.specimen)
        pixel_sizes = [float(sp["pixel_size_nm"]) for sp in specimens]
        group.attrs.update({"pixel_size_nm": float(np.median(pixel_sizes)), "pixel_sizes_nm": pixel_sizes,
                            "specimens": specimens})
        write_defects(partial_path(path), pd.concat(tables, ignore_index=True))
    except BaseException:
        shutil.rmtree(partial_path(path), ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return commit_dataset(group, path=path)
