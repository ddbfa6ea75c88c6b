"""Sim-to-real training pairs: calibrated simulated noise on the real Tin-balls clean images.

The ``sim2real`` experiment trains on these pairs and validates on the real noisy images. Only the
real ``train`` and ``val`` images are used as sources: the real ``test`` images (not even their clean
images) never enter the simulated store. Layout: the dataset Zarr of :mod:`sem_core.io.zarr_store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sem_core.io.zarr_store import hash_dataset, open_dataset, write_item, writing_dataset
from sem_core.provenance import hash_bytes, make_provenance
from sem_core.rng import derive_rng

from .imaging import NoiseModel, apply_noise_to_clean

__all__ = ["synthesize_sim_pairs", "plan_sim_items", "DATASET_NAME"]

DATASET_NAME = "tin_balls_sim"
_COPIED_ATTRS = ("repository", "licence", "licence_file", "licence_text", "citation", "pixel_size_nm",
                 "dwell_s", "dwell_clean_s", "beam_kv", "bit_depth")


def plan_sim_items(split: Mapping[str, list[int]], *, copies: int) -> list[tuple[str, int, int]]:
    """The simulated items, in store order: ``(part, source_index, copy)`` for train then val sources.

    Parameters
    ----------
    split : mapping
        The real store's split ``{"train": [...], "val": [...], "test": [...]}``; ``test`` is ignored.
    copies : int
        Noisy copies per source image (>= 1).
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    return [(part, int(i), c) for part in ("train", "val") for i in split.get(part, []) for c in range(copies)]


def synthesize_sim_pairs(
    real_path: str | Path,
    out_path: str | Path,
    *,
    noise_model: NoiseModel | Mapping[str, Any],
    seed: int,
    copies: int = 1,
    progress: bool = False,
    params_for_provenance: Any = None,
) -> Path:
    """Write a dataset store of simulated noisy images on the real clean images.

    Parameters
    ----------
    real_path : str or Path
        The real Tin-balls dataset store (``noisy``/``clean``/``mask`` (N, H, W) uint8, ``split`` attr).
    out_path : str or Path
        The store to write (atomically; replaced if it exists).
    noise_model : NoiseModel or its dict
        Its ``bit_depth`` must match the real store's dtype (8 for uint8).
    seed : int
        Item ``k`` from source ``i``, copy ``c`` uses ``derive_rng(seed, "tin_balls_sim", c, i)``.
    copies : int
        Noisy copies of each train/val source image, each with different noise.
    progress : bool
        Show a progress bar.
    params_for_provenance : optional
        The parameters recorded in the provenance (default: seed, copies and the noise model).

    Returns
    -------
    Path
        ``out_path``. The store has ``clean``/``mask`` = the real ones of each source, ``noisy`` =
        :func:`apply_noise_to_clean` (clean), ``split`` = ``{"train": ..., "val": ..., "test": []}``
        and attrs ``source_index``/``copy_index`` (per item), ``source``, ``source_hash``,
        ``noise_model``, ``seed``, ``copies``, ``pair_shifts`` (all zero) and ``provenance``.

    Raises
    ------
    ValueError
        If ``copies`` < 1, the real store has no train/val images, or the noise model's bit depth
        does not fit the real store's dtype.
    sem_core.io.zarr_store.DatasetError
        If the real store is missing or incomplete.
    """
    real = open_dataset(real_path)
    nm = noise_model if isinstance(noise_model, NoiseModel) else NoiseModel.from_dict(noise_model)
    items = plan_sim_items(real.split, copies=copies)
    if not any(p == "train" for p, _, _ in items) or not any(p == "val" for p, _, _ in items):
        raise ValueError(f"{real.path}: split needs non-empty 'train' and 'val' to simulate from, got {real.split}")
    dtype = np.dtype(real.clean.dtype)
    out_dtype = np.dtype(np.uint8 if nm.bit_depth <= 8 else np.uint16)
    if out_dtype != dtype:
        raise ValueError(f"noise model bit_depth {nm.bit_depth} gives {out_dtype} images, but {real.path} holds {dtype}")
    source_hash = hash_dataset(real.path)
    real_ids = list(real.attrs.get("image_ids", [])) or [str(i) for i in range(len(real))]
    split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k, (part, _, _) in enumerate(items):
        split[part].append(k)
    params = params_for_provenance if params_for_provenance is not None else {
        "seed": seed, "copies": copies, "noise_model": nm.to_dict()}
    attrs = {
        "dataset": DATASET_NAME,
        "source": str(real.path),
        "source_hash": source_hash,
        "source_dataset": real.attrs.get("dataset"),
        **{k: real.attrs[k] for k in _COPIED_ATTRS if k in real.attrs},
        "noise_model": nm.to_dict(),
        "seed": int(seed),
        "copies": int(copies),
        "split": split,
        "image_ids": [f"{real_ids[i]}_sim{c}" for _, i, c in items],
        "source_index": [i for _, i, _ in items],
        "copy_index": [c for _, _, c in items],
        "pair_shifts": [[0, 0] for _ in items],
        "aligned": True,
        "provenance": make_provenance(
            params=params, inputs_hash=hash_bytes(f"{source_hash}|{nm.to_json()}".encode()),
            extra={"stage": "synth_tin_balls_sim"}),
    }
    order = range(len(items))
    if progress:
        from rich.progress import track

        order = track(order, total=len(items), description="tin balls sim")
    shape = tuple(int(s) for s in real.clean.shape[1:])
    with writing_dataset(out_path, n=len(items), shape=shape, dtype=dtype, attrs=attrs) as group:
        for k in order:
            _, i, c = items[k]
            clean = np.asarray(real.clean[i])
            noisy = apply_noise_to_clean(clean, rng=derive_rng(seed, DATASET_NAME, c, i), noise_model=nm)
            write_item(group, k, noisy=noisy.astype(dtype, copy=False), clean=clean, mask=np.asarray(real.mask[i]))
    return Path(out_path)
