"""Build the dataset Zarr stores: synthetic ``wafers.zarr`` and real ``tin_balls.zarr``.

Wafer image ``i`` depends only on ``(seed, i)`` and the parameters: its generator is
``derive_rng(seed, "wafers", i)`` (spawned into a specimen and an imaging stream), so any image can be
regenerated alone with :func:`render_wafer_item`, and the store does not depend on the worker count.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sem_core.io.zarr_store import commit_dataset, create_dataset, partial_path, write_defects, write_item
from sem_core.provenance import hash_bytes, hash_params, make_provenance
from sem_core.rng import derive_rng
from sem_core.splits import make_split

__all__ = [
    "WaferItem",
    "make_image_pair",
    "imaging_kwargs",
    "render_wafer_item",
    "synthesize_wafer_dataset",
    "make_ball_mask",
    "chunk_tin_balls",
]

ImagePair = Callable[..., tuple[np.ndarray, np.ndarray]]


def imaging_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``values`` (e.g. ``params.imaging.model_dump()``) are keywords of :func:`simulate_pair`.

    Raises
    ------
    ValueError
        Naming the keys that :func:`simulate_pair` does not take.
    """
    from sem_core.synth.imaging import simulate_pair

    accepted = set(inspect.signature(simulate_pair).parameters) - {"yield_map", "rng"}
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise ValueError(f"imaging parameters {unknown} are not keywords of simulate_pair")
    return dict(values)


def _pair_from_model(yield_map: np.ndarray, *, rng: np.random.Generator, params: dict[str, Any],
                     noise_model: Any, **overrides: Any) -> tuple[np.ndarray, np.ndarray]:
    from sem_core.synth.imaging import apply_noise_to_clean, simulate_pair

    rng_clean, rng_noise = rng.spawn(2)
    _, clean = simulate_pair(yield_map, rng=rng_clean, **{**params, **overrides})
    return apply_noise_to_clean(clean, rng=rng_noise, noise_model=noise_model), clean


def make_image_pair(*, noise_model: Any = None, imaging_params: Mapping[str, Any] | None = None) -> ImagePair:
    """The imaging function ``f(yield_map, *, rng, pixel_size_nm) -> (noisy, clean)`` for wafers and scans.

    Parameters
    ----------
    noise_model : NoiseModel or dict, optional
        Calibrated noise (``paths.noise_model``): the clean image comes from the forward model with
        ``imaging_params``, the noise from the fitted model (:func:`apply_noise_to_clean`).
    imaging_params : mapping, optional
        Keyword arguments of :func:`simulate_pair`; without a noise model its own noise is used.

    Returns
    -------
    callable
        Picklable (a ``functools.partial``), so it can be sent to worker processes.
    """
    params = dict(imaging_params or {})
    if noise_model is None:
        from sem_core.synth.imaging import simulate_pair

        return partial(simulate_pair, **params)
    if hasattr(noise_model, "to_dict"):
        noise_model = noise_model.to_dict()
    return partial(_pair_from_model, params=params, noise_model=dict(noise_model))


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


def _progress_iter(items, *, total: int, label: str, enabled: bool):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=label, transient=True)


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


def make_ball_mask(clean: np.ndarray, *, min_area_px: int = 4) -> np.ndarray:
    """Tin-ball mask of a clean image: Otsu threshold, components under ``min_area_px`` removed.

    Returns (H, W) uint8, 1 = ball, 0 = background.
    """
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects

    img = np.asarray(clean, dtype=np.float32)
    if img.max() == img.min():
        return np.zeros(img.shape, np.uint8)
    fg = img > threshold_otsu(img)
    if min_area_px > 1:
        fg = remove_small_objects(fg, max_size=min_area_px - 1)
    return fg.astype(np.uint8)


def chunk_tin_balls(
    manifest: pd.DataFrame,
    *,
    path: str | Path,
    seed: int,
    align: bool = True,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    images_per_chunk: int = 1,
    mask_min_area_px: int = 4,
    dataset_info: Mapping[str, Any] | None = None,
    params_for_provenance: Any = None,
    load_pair: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
    progress: bool = False,
) -> Path:
    """Materialise the manifest's real pairs into the dataset store ``path`` (``tin_balls.zarr``).

    Parameters
    ----------
    manifest : DataFrame
        Validated ingest manifest (``MANIFEST_SCHEMA``), one row per pair; all pairs must share
        ``height``/``width``/``dtype`` (uint8 or uint16).
    path : str or Path
        Output store (atomic: built in ``<path>.partial``).
    seed : int
        The split uses ``derive_rng(seed, "tin_balls", "split")``.
    align : bool
        Move each clean image onto its noisy one by the manifest's integer-rounded shift.
    split_fractions, images_per_chunk, mask_min_area_px
        Split, chunk length along N, minimum ball area of the Otsu mask (:func:`make_ball_mask`).
    dataset_info : mapping, optional
        ``source``, ``repository``, ``licence``, ``licence_text``, ``citation`` (see
        ``sem_core.ingest.describe_dataset``), copied into the attrs.
    params_for_provenance : optional
        Parameters hashed into the provenance.
    load_pair : callable, optional
        ``load_pair(row, align=...) -> (noisy, clean)``; default ``sem_core.ingest.load_pair``.

    Returns
    -------
    Path
        A pair that fails to load is skipped and recorded in ``attrs["skipped"]`` (the store shrinks).
    """
    if load_pair is None:
        from sem_core.ingest import load_pair
    path = Path(path)
    if len(manifest) == 0:
        raise ValueError(f"manifest is empty: nothing to write to {path}")
    shapes = {(int(h), int(w)) for h, w in zip(manifest["height"], manifest["width"])}
    dtypes = set(manifest["dtype"])
    if len(shapes) != 1 or len(dtypes) != 1 or not dtypes <= {"uint8", "uint16"}:
        raise ValueError(f"tin_balls pairs must share one shape and an integer dtype; got {shapes}, {dtypes}")
    shape, dtype = shapes.pop(), dtypes.pop()

    def first(col: str) -> Any:
        """First non-null value of a manifest column as a plain Python value (None if none)."""
        vals = manifest[col].dropna() if col in manifest else pd.Series([], dtype=object)
        if len(vals) == 0:
            return None
        value = vals.iloc[0]
        return value.item() if hasattr(value, "item") else value

    attrs = {
        "dataset": "tin_balls", **dict(dataset_info or {}),
        "pixel_size_nm": first("pixel_size_nm"), "dwell_s": first("dwell_noisy_s"),
        "dwell_clean_s": first("dwell_clean_s"), "beam_kv": first("beam_kv"), "bit_depth": first("bit_depth"),
        "aligned": bool(align),
        "provenance": make_provenance(
            params=params_for_provenance if params_for_provenance is not None else {"align": align, "seed": seed},
            inputs_hash=hash_bytes("".join(manifest["noisy_sha256"].astype(str) + manifest["clean_sha256"].astype(str)).encode()),
            extra={"stage": "chunk"}),
    }
    group = create_dataset(path, n=len(manifest), shape=shape, dtype=dtype,
                           chunks=(images_per_chunk, *shape), attrs=attrs)
    ids, skipped = [], []
    try:
        rows = (row for _, row in manifest.iterrows())
        for row in _progress_iter(rows, total=len(manifest), label="tin balls", enabled=progress):
            try:
                noisy, clean = load_pair(row, align=align)
            except (OSError, ValueError) as exc:
                skipped.append({"pair_id": str(row["pair_id"]), "error": f"{type(exc).__name__}: {exc}"})
                continue
            write_item(group, len(ids), noisy=noisy.astype(dtype, copy=False), clean=clean.astype(dtype, copy=False),
                       mask=make_ball_mask(clean, min_area_px=mask_min_area_px))
            ids.append(str(row["pair_id"]))
        if not ids:
            raise ValueError(f"no pair of the manifest could be loaded: {skipped}")
        if len(ids) < len(manifest):
            for name in ("noisy", "clean", "mask"):
                group[name].resize((len(ids), *shape))
        group.attrs.update({"image_ids": ids, "skipped": skipped, "split": make_split(
            len(ids), rng=derive_rng(seed, "tin_balls", "split"), fractions=split_fractions)})
    except BaseException:
        shutil.rmtree(partial_path(path), ignore_errors=True)
        raise
    return commit_dataset(group, path=path)
