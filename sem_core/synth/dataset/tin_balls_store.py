"""The real ``tin_balls.zarr`` store: materialise the ingest manifest's pairs with Otsu ball masks and a split."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sem_core.io.zarr_store import commit_dataset, create_dataset, partial_path, write_item
from sem_core.provenance import hash_bytes, make_provenance
from sem_core.rng import derive_rng
from sem_core.splits import make_split

from .progress import _progress_iter

__all__ = ["make_ball_mask", "chunk_tin_balls"]


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
    split_mode: str = "random",
    split_gap: int = 0,
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
    split_fractions, split_mode, split_gap, images_per_chunk, mask_min_area_px
        Split (:func:`sem_core.splits.make_split`; the manifest's row order is the acquisition order), chunk length along N, minimum ball area of the Otsu mask (:func:`make_ball_mask`).
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
            len(ids), rng=derive_rng(seed, "tin_balls", "split"), fractions=split_fractions, mode=split_mode,
            gap=split_gap)})
    except BaseException:
        shutil.rmtree(partial_path(path), ignore_errors=True)
        raise
    return commit_dataset(group, path=path)
