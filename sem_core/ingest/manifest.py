"""Build the manifest: read, check and register every found pair; reload one manifest row's pair as at ingest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sem_core.io.sem_tiff import SemImage, SemReadError, read_sem_image
from sem_core.registration import apply_shift, estimate_offset, estimate_shift
from sem_core.schemas.manifest import MANIFEST_COLUMNS, MANIFEST_SCHEMA

from .discover import find_pairs
from .records import BadItem, IngestResult

__all__ = ["ingest_pairs", "load_pair"]


def _check_pair(noisy: SemImage, clean: SemImage) -> str | None:
    n, c = noisy.meta, clean.meta
    if noisy.data.shape != clean.data.shape:
        return f"shape {noisy.data.shape} of {n.source} differs from {clean.data.shape} of {c.source}"
    if noisy.data.dtype != clean.data.dtype:
        return f"dtype {noisy.data.dtype} of {n.source} differs from {clean.data.dtype} of {c.source}"
    if n.pixel_size_nm and c.pixel_size_nm and abs(n.pixel_size_nm / c.pixel_size_nm - 1) > 0.01:
        return f"pixel size {n.pixel_size_nm:.4g} nm of {n.source} differs from {c.pixel_size_nm:.4g} nm of {c.source}"
    return None


def ingest_pairs(
    noisy_dir: str | Path, clean_dir: str | Path, *, pattern: str | None = r"(\d+)", mode: str = "pattern",
    channel: str = "auto", crop_rows: int | None = None, border_px: int = 8, upsample: int = 20,
    dataset: Mapping[str, Any] | None = None,
) -> IngestResult:
    """Find, read, check and register every pair; bad files are listed, never dropped silently.

    Parameters
    ----------
    noisy_dir, clean_dir, pattern, mode
        As in :func:`find_pairs`.
    channel, crop_rows
        As in :func:`sem_core.io.sem_tiff.read_sem_image`.
    border_px, upsample
        As in :func:`sem_core.registration.estimate_shift` (noisy = reference, clean = moving).
    dataset : mapping, optional
        Dataset description copied into the result (e.g. from :func:`describe_dataset`).

    Returns
    -------
    IngestResult
        Its ``manifest`` has one row per good pair (possibly none) and passes ``MANIFEST_SCHEMA``.
    """
    listing = find_pairs(noisy_dir, clean_dir, pattern=pattern, mode=mode)
    bad, rows = list(listing.bad), []
    for pair_id, noisy_path, clean_path in listing.pairs:
        images: dict[str, SemImage] = {}
        for role, path in (("noisy", noisy_path), ("clean", clean_path)):
            try:
                images[role] = read_sem_image(path, crop_rows=crop_rows, channel=channel)
            except SemReadError as exc:
                bad.append(BadItem(str(path), exc.reason))
        if len(images) == 1:
            survivor = next(iter(images.values()))
            bad.append(BadItem(survivor.meta.source, f"its partner in pair {pair_id!r} is unreadable"))
        if len(images) < 2:
            continue
        noisy, clean = images["noisy"], images["clean"]
        problem = _check_pair(noisy, clean)
        if problem is None:
            try:
                shift = estimate_shift(noisy.data, clean.data, border_px=border_px, upsample=upsample)
                offset = estimate_offset(noisy.data, clean.data, border_px=border_px)
            except ValueError as exc:
                problem = f"registration failed: {exc}"
        if problem:
            bad += [BadItem(str(noisy_path), problem), BadItem(str(clean_path), problem)]
            continue
        n, c = noisy.meta, clean.meta
        rows.append({
            "pair_id": pair_id, "noisy_path": str(noisy_path), "clean_path": str(clean_path),
            "noisy_sha256": n.sha256, "clean_sha256": c.sha256, "height": n.height, "width": n.width,
            "dtype": str(noisy.data.dtype), "bit_depth": n.bit_depth, "channel": n.channel,
            "pixel_size_nm": n.pixel_size_nm or c.pixel_size_nm, "dwell_noisy_s": n.dwell_s,
            "dwell_clean_s": c.dwell_s, "beam_kv": n.beam_kv or c.beam_kv, "detector": n.detector or c.detector,
            "shift_dy": shift[0], "shift_dx": shift[1], "brightness_offset": offset, "crop_rows": n.crop_rows,
        })
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    for col in ("pixel_size_nm", "dwell_noisy_s", "dwell_clean_s", "beam_kv"):
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype("float64")
    manifest = MANIFEST_SCHEMA.validate(frame)
    settings = {"pattern": pattern, "mode": mode, "channel": channel, "crop_rows": crop_rows,
                "border_px": border_px, "upsample": upsample, "noisy_dir": str(noisy_dir), "clean_dir": str(clean_dir)}
    n_noisy = sum(1 for _ in Path(noisy_dir).iterdir() if _.is_file() and not _.name.startswith("."))
    n_clean = sum(1 for _ in Path(clean_dir).iterdir() if _.is_file() and not _.name.startswith("."))
    return IngestResult(manifest, bad, n_noisy, n_clean, dict(dataset or {}), settings)


def load_pair(row: Mapping[str, Any] | pd.Series, *, align: bool = False, order: int | str = "integer"
              ) -> tuple[np.ndarray, np.ndarray]:
    """Read one manifest row's (noisy, clean) images, cropped and grey, as at ingest.

    Parameters
    ----------
    row : mapping or pandas Series
        A manifest row.
    align : bool
        Move the clean image onto the noisy one by ``(shift_dy, shift_dx)``; the noisy image is never moved.
    order : "integer", "linear" or int
        ``"integer"``: rounded shift, clean keeps its dtype (edge rows/cols repeated); ``"linear"`` or an int
        spline order: sub-pixel shift, clean becomes float32. See :func:`sem_core.registration.apply_shift`.
        Score only ``sem_core.registration.valid_slices(shape, shift)`` of an aligned pair.

    Returns
    -------
    (noisy, clean) : tuple of np.ndarray
        Each (height, width).

    Raises
    ------
    SemReadError
        A file is unreadable or its content no longer matches the manifest's SHA-256.
    """
    out = []
    for role in ("noisy", "clean"):
        img = read_sem_image(row[f"{role}_path"], crop_rows=int(row["crop_rows"]), channel=str(row["channel"]))
        if img.meta.sha256 != row[f"{role}_sha256"]:
            raise SemReadError(row[f"{role}_path"], "content changed since ingest (SHA-256 differs from the manifest)")
        out.append(img.data)
    noisy, clean = out
    if align:
        clean = apply_shift(clean, (float(row["shift_dy"]), float(row["shift_dx"])), order=order)
    return noisy, clean
