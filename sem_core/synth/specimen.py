"""The clean specimen: a noise-free relative secondary-electron yield map and its ground truth.

Also holds the one helper both specimen generators use for the SE edge effect: the distance of every
pixel to the nearest outline between two materials, exact Euclidean (equal to scipy's distance
transform) but clipped at a reach, so that a window rendered with a halo of ``reach + 1`` pixels gets
exactly the distances of the whole image (this is what makes wafer tiles stitch bit-exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Specimen", "measure_outline_distance", "make_edge_lookup"]


@dataclass(frozen=True)
class Specimen:
    """A clean specimen.

    Attributes
    ----------
    yield_map : np.ndarray
        float32 (H, W), relative SE yield in [0, 1].
    mask : np.ndarray
        uint8 (H, W). Tin balls: 1 = ball. Wafers: defect type code (1 bridge, 2 break, 3 pinch,
        4 particle, 5 missing_contact, 6 merged_contact), 0 = no defect.
    pattern : np.ndarray
        uint8 (H, W): 1 = raised material (ball, line, area around holes, particle), 0 = substrate,
        trench or hole bottom.
    defects : pd.DataFrame
        Rows of ``sem_core.schemas.defects.DEFECTS_SCHEMA`` (empty for tin balls).
    """

    yield_map: np.ndarray
    mask: np.ndarray
    pattern: np.ndarray
    defects: pd.DataFrame

    def __post_init__(self) -> None:
        shapes = {self.yield_map.shape, self.mask.shape, self.pattern.shape}
        if len(shapes) != 1 or self.yield_map.ndim != 2:
            raise ValueError(f"specimen arrays must share one 2-D shape, got {sorted(shapes)}")
        if self.yield_map.dtype != np.float32 or self.mask.dtype != np.uint8 or self.pattern.dtype != np.uint8:
            raise ValueError(
                "specimen dtypes must be float32/uint8/uint8, got "
                f"{self.yield_map.dtype}/{self.mask.dtype}/{self.pattern.dtype}"
            )


def measure_outline_distance(labels: np.ndarray, *, reach: int) -> np.ndarray:
    """Squared distance (int64) from each pixel to the nearest outline pixel, clipped at ``reach**2``.

    An outline pixel is one whose label differs from one of its 4-neighbours inside the array, so
    both sides of a material boundary are at distance 0.

    Parameters
    ----------
    labels : np.ndarray
        Integer (H, W) material or object labels.
    reach : int
        Distances beyond ``reach`` pixels are reported as ``reach`` (squared: ``reach**2``).

    Returns
    -------
    np.ndarray
        int64 (H, W) squared Euclidean distances in pixels², in ``[0, reach**2]``.

    Notes
    -----
    For a window cut out of a larger label image with a halo of at least ``reach + 1`` pixels on
    every side, the result inside the window equals the whole image's result: outline pixels closer
    than ``reach`` lie inside the halo, and pixels on the array border can only miss being outline.
    """
    if not 1 <= reach <= 181:
        raise ValueError(f"reach must be 1..181 pixels, got {reach}")
    outline = np.zeros(labels.shape, dtype=bool)
    dv = labels[1:, :] != labels[:-1, :]
    dh = labels[:, 1:] != labels[:, :-1]
    outline[1:, :] |= dv
    outline[:-1, :] |= dv
    outline[:, 1:] |= dh
    outline[:, :-1] |= dh
    # exact and separable: a pixel within `reach` of an outline pixel has |dy|, |dx| <= reach, so
    # d² = min over |dy| <= reach of (dy² + g²(row + dy)), g² the clipped squared distance along the row
    r2 = reach * reach
    h, w = outline.shape
    far = np.int32(r2)
    g = np.where(outline, np.int32(0), far)
    for dx in range(1, min(reach, w - 1) + 1):
        step = np.int32(dx * dx)
        np.minimum(g[:, : w - dx], np.where(outline[:, dx:], step, far), out=g[:, : w - dx])
        np.minimum(g[:, dx:], np.where(outline[:, : w - dx], step, far), out=g[:, dx:])
    d2 = g.copy()
    for dy in range(1, min(reach, h - 1) + 1):
        step = np.int32(dy * dy)
        np.minimum(d2[: h - dy], g[dy:] + step, out=d2[: h - dy])
        np.minimum(d2[dy:], g[: h - dy] + step, out=d2[dy:])
    return np.minimum(d2, far).astype(np.int64)


def make_edge_lookup(*, decay_px: float, reach: int) -> np.ndarray:
    """Table ``exp(-sqrt(n) / decay_px)`` for squared distances ``n = 0 .. reach**2`` (float64).

    Indexing this table with :func:`measure_outline_distance` output gives the SE edge term
    ``exp(-d / decay)`` bit-identically wherever a pixel is rendered.
    """
    if decay_px <= 0:
        raise ValueError(f"edge decay must be > 0 pixels, got {decay_px}")
    n = np.arange(reach * reach + 1, dtype=np.float64)
    table = np.exp(-np.sqrt(n) / decay_px)
    table[-1] = 0.0  # beyond the reach the edge effect is cut off
    return table
