"""Real (noisy, clean) pairs for calibration: discover them and align the clean image onto the noisy one.

Only the clean image is resampled (it is nearly noise-free); the noisy one is left untouched so its
noise correlations are not changed by interpolation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sem_core.io.sem_tiff import read_sem_image
from sem_core.registration import apply_shift, estimate_shift

__all__ = ["RealPair", "find_time_pairs", "load_aligned_pair", "load_aligned_pairs"]

_NUMBER = re.compile(r"_(\d+)$")


@dataclass(frozen=True)
class RealPair:
    """One aligned pair: ``noisy`` (H, W) as read, ``clean`` (H, W) float32 shifted onto it by ``shift``."""

    pair_id: str
    noisy: np.ndarray
    clean: np.ndarray
    shift: tuple[float, float]


def find_time_pairs(source_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(pair_id, noisy_path, clean_path)`` for ``<source>/time/low/*_NNN.tif`` matched by NNN with
    ``<source>/time/high/*_NNN.tif``, sorted by id. Unmatched files are left out."""
    src = Path(source_dir)
    low, high = src / "time" / "low", src / "time" / "high"
    if not low.is_dir() or not high.is_dir():
        raise FileNotFoundError(f"{src}: expected folders time/low and time/high")

    def by_number(folder: Path) -> dict[str, Path]:
        out = {}
        for p in folder.glob("*.tif"):
            m = _NUMBER.search(p.stem)
            if m:
                out[m.group(1)] = p
        return out

    noisy, clean = by_number(low), by_number(high)
    return [(k, noisy[k], clean[k]) for k in sorted(set(noisy) & set(clean))]


def load_aligned_pair(pair_id: str, noisy_path: str | Path, clean_path: str | Path, *,
                      shift: tuple[float, float] | None = None, border_px: int = 8, order: int = 3) -> RealPair:
    """Read a pair (data bar cut, G channel) and shift the clean image onto the noisy one.

    ``shift`` (dy, dx), e.g. from the ingest manifest, is estimated with
    :func:`sem_core.registration.estimate_shift` when not given.
    """
    noisy = read_sem_image(noisy_path).data
    clean = read_sem_image(clean_path).data
    if noisy.shape != clean.shape:
        raise ValueError(f"pair {pair_id}: {noisy_path} is {noisy.shape} but {clean_path} is {clean.shape}")
    if shift is None:
        shift = estimate_shift(noisy, clean, border_px=border_px)
    aligned = apply_shift(clean, shift, order=order)
    return RealPair(pair_id=pair_id, noisy=noisy, clean=aligned, shift=(float(shift[0]), float(shift[1])))


def load_aligned_pairs(items: Sequence[tuple[str, Path, Path, tuple[float, float] | None]], *,
                       border_px: int = 8) -> tuple[list[RealPair], list[dict[str, str]]]:
    """:func:`load_aligned_pair` over ``(pair_id, noisy_path, clean_path, shift_or_None)`` items.

    A pair that cannot be read or aligned is recorded in the second list
    (``{"pair_id", "error"}``) and the others carry on.
    """
    pairs: list[RealPair] = []
    errors: list[dict[str, str]] = []
    for pid, n, c, s in items:
        try:
            pairs.append(load_aligned_pair(pid, n, c, shift=s, border_px=border_px))
        except (OSError, ValueError) as exc:  # SemReadError is a ValueError
            errors.append({"pair_id": str(pid), "error": f"{type(exc).__name__}: {exc}"})
    return pairs, errors
