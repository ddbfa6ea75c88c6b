"""Ingest real (noisy, clean) SEM pairs: discover, read, check, register; manifest + bad-item report.

No pixels are copied: the manifest records where each pair is, its content hashes, metadata, the data-bar
crop and the registration (shift of the clean image onto the noisy one, mean brightness offset). Nothing is
dropped silently: every file that does not end up in a good pair is listed in ``IngestResult.bad`` with why.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sem_core.io.sem_tiff import SemImage, SemReadError, read_sem_image
from sem_core.registration import apply_shift, estimate_offset, estimate_shift
from sem_core.schemas.manifest import MANIFEST_COLUMNS, MANIFEST_SCHEMA

__all__ = [
    "IMAGE_SUFFIXES", "BadItem", "PairListing", "IngestResult", "IngestError", "find_pairs", "ingest_pairs",
    "load_pair", "describe_dataset", "summarise_result", "write_ingest_outputs", "read_manifest",
]

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png"})
_META_KEY = b"sem_denoise"


class IngestError(ValueError):
    """The ingest cannot start (missing or empty folder, bad option)."""


@dataclass(frozen=True)
class BadItem:
    """A file left out of the manifest, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class PairListing:
    """Output of :func:`find_pairs`: ``pairs`` as (pair_id, noisy, clean), sorted by key; files left out."""

    pairs: list[tuple[str, Path, Path]]
    bad: list[BadItem]


@dataclass
class IngestResult:
    """Manifest of good pairs (validated by ``MANIFEST_SCHEMA``), bad items, counts and dataset metadata."""

    manifest: pd.DataFrame
    bad: list[BadItem]
    n_noisy_files: int
    n_clean_files: int
    dataset: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _natural_key(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def _list_images(folder: Path, bad: list[BadItem]) -> list[Path]:
    if not folder.is_dir():
        raise IngestError(f"image folder {folder} does not exist or is not a folder")
    files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: _natural_key(p.name))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    bad += [BadItem(str(p), f"unsupported file type {p.suffix!r} (expected {sorted(IMAGE_SUFFIXES)})")
            for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not images:
        raise IngestError(f"image folder {folder} is empty: no {sorted(IMAGE_SUFFIXES)} files "
                          f"({len(files)} other files)")
    return images


def _keyed(files: list[Path], regex: re.Pattern | None, bad: list[BadItem]) -> dict[str, Path]:
    by_key: dict[str, list[Path]] = {}
    for p in files:
        if regex is None:
            key = p.stem
        else:
            matches = list(regex.finditer(p.stem))
            if not matches:
                bad.append(BadItem(str(p), f"file stem does not match pair pattern {regex.pattern!r}"))
                continue
            last = matches[-1]
            key = last.group(1) if regex.groups else last.group(0)
        by_key.setdefault(key, []).append(p)
    out = {}
    for key, paths in by_key.items():
        if len(paths) > 1:
            bad += [BadItem(str(p), f"duplicate pair key {key!r} shared by {[q.name for q in paths]}") for p in paths]
        else:
            out[key] = paths[0]
    return out


def find_pairs(
    noisy_dir: str | Path, clean_dir: str | Path, *, pattern: str | None = r"(\d+)", mode: str = "pattern"
) -> PairListing:
    """Match noisy and clean image files.

    Parameters
    ----------
    noisy_dir, clean_dir : str or Path
        Folders of ``.tif``/``.tiff``/``.png`` files (hidden files are ignored, other files are bad items).
    pattern : str or None
        ``mode="pattern"``: a regex searched in each file stem; the key is group 1 (or the whole match) of its
        LAST match, so ``(\\d+)`` maps ``100ns_001`` and ``30us_001`` to ``"001"``. None: the stem is the key.
    mode : {"pattern", "sorted"}
        ``"sorted"``: pair files in natural-sorted order; the pair id is the noisy stem.

    Raises
    ------
    IngestError
        A folder is missing or has no image file, or ``mode``/``pattern`` is invalid.
    """
    bad: list[BadItem] = []
    noisy = _list_images(Path(noisy_dir), bad)
    clean = _list_images(Path(clean_dir), bad)
    if mode == "sorted":
        pairs = [(n.stem, n, c) for n, c in zip(noisy, clean)]
        bad += [BadItem(str(p), "no partner: the other folder has fewer files (sorted pairing)")
                for p in noisy[len(clean):] + clean[len(noisy):]]
        return PairListing(pairs, bad)
    if mode != "pattern":
        raise IngestError(f"pair mode must be 'pattern' or 'sorted', got {mode!r}")
    try:
        regex = None if pattern is None else re.compile(pattern)
    except re.error as exc:
        raise IngestError(f"pair pattern {pattern!r} is not a valid regex: {exc}") from exc
    by_noisy, by_clean = _keyed(noisy, regex, bad), _keyed(clean, regex, bad)
    keys = sorted(set(by_noisy) & set(by_clean), key=_natural_key)
    for mine, other, folder in ((by_noisy, by_clean, clean_dir), (by_clean, by_noisy, noisy_dir)):
        bad += [BadItem(str(p), f"no partner with key {k!r} in {folder}") for k, p in mine.items() if k not in other]
    return PairListing([(k, by_noisy[k], by_clean[k]) for k in keys], bad)


def _none_if_nan(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


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


def describe_dataset(source_dir: str | Path, *, licence: str, licence_file: str | None, citation: str,
                     repository: str) -> dict[str, Any]:
    """Dataset description for the report: licence (with its text when the file exists), citation, source."""
    source_dir = Path(source_dir)
    text = None
    if licence_file:
        path = source_dir / licence_file
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    return {"source": str(source_dir), "repository": repository, "licence": licence,
            "licence_file": licence_file, "licence_text": text, "citation": citation}


def summarise_result(result: IngestResult) -> dict[str, Any]:
    """Counts, mean/std shift and offset, and the distinct acquisition metadata of the good pairs."""
    m = result.manifest

    def distinct(col: str) -> list:
        return sorted({_none_if_nan(v) for v in m[col].tolist()} - {None}, key=str)

    stats = {}
    for col in ("shift_dy", "shift_dx", "brightness_offset"):
        stats[col] = {"mean": float(m[col].mean()), "std": float(m[col].std(ddof=0))} if len(m) else None
    return {
        "n_pairs": int(len(m)), "n_bad_items": len(result.bad),
        "n_noisy_files": result.n_noisy_files, "n_clean_files": result.n_clean_files, **stats,
        "pixel_size_nm": distinct("pixel_size_nm"), "beam_kv": distinct("beam_kv"), "detector": distinct("detector"),
        "dwell_noisy_s": distinct("dwell_noisy_s"), "dwell_clean_s": distinct("dwell_clean_s"),
        "dtype": distinct("dtype"), "bit_depth": distinct("bit_depth"), "shape": sorted(
            {(int(h), int(w)) for h, w in zip(m["height"], m["width"])}),
    }


def _atomic_write(path: Path, writer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_ingest_outputs(result: IngestResult, *, manifest_path: str | Path, report_path: str | Path,
                         provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Write the Parquet manifest (provenance in its key-value metadata) and the JSON report; return the report."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = MANIFEST_SCHEMA.validate(result.manifest)
    table = pa.Table.from_pandas(manifest, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps({"provenance": dict(provenance), "settings": result.settings}).encode()
    table = table.replace_schema_metadata(meta)
    _atomic_write(Path(manifest_path), lambda tmp: pq.write_table(table, tmp))
    report = {
        "summary": summarise_result(result),
        "bad_items": [asdict(b) for b in result.bad],
        "settings": result.settings,
        "dataset": result.dataset,
        "manifest": str(manifest_path),
        "provenance": dict(provenance),
    }
    text = json.dumps(report, indent=2, sort_keys=False, default=str)
    _atomic_write(Path(report_path), lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return report


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest; ``df.attrs`` gets ``provenance`` and ``settings`` from its metadata."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise IngestError(f"cannot read manifest {path}: {exc}") from exc
    frame = MANIFEST_SCHEMA.validate(table.to_pandas())
    raw = (table.schema.metadata or {}).get(_META_KEY)
    frame.attrs.update(json.loads(raw) if raw else {})
    return frame
