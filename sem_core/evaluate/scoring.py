"""Score one output: every metric of ``METRIC_COLUMNS`` against the clean reference; apply a denoiser.

A denoiser is any callable mapping an (H, W) float32 unit-scale image to an (H, W) image; registered
``sem_core.denoise`` methods are applied with mirror padding by their ``halo`` (``denoise_image``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..denoise.base import denoise_image
from ..metrics import (
    compute_cnr,
    compute_edge_preservation,
    compute_fsim,
    compute_ms_ssim,
    compute_psnr,
    compute_residual_structure,
    compute_ssim,
    compute_uiqi,
    derive_cnr_masks,
    measure_defects,
    score_aligned,
    summarize_defects,
)
from ..schemas.metrics import METRIC_COLUMNS

__all__ = ["DenoiseFn", "identity_denoiser", "score_image"]


DenoiseFn = Callable[[np.ndarray], np.ndarray]


def identity_denoiser(image: np.ndarray) -> np.ndarray:
    """The 'noisy' baseline: returns its input (what doing nothing scores)."""
    return np.asarray(image, dtype=np.float32)


def _apply(denoiser: Any, image: np.ndarray) -> np.ndarray:
    if hasattr(denoiser, "halo") and hasattr(denoiser, "name"):
        return denoise_image(image, denoiser=denoiser)
    return np.asarray(denoiser(image), dtype=np.float32)


def score_image(
    output: np.ndarray,
    clean: np.ndarray,
    *,
    data_range: float,
    noisy: np.ndarray | None = None,
    align: bool = False,
    border_px: int = 8,
    mask: np.ndarray | None = None,
    boxes: pd.DataFrame | Sequence[Sequence[int]] | None = None,
    defect_margin_px: int = 4,
    cnr_erode_px: int = 3,
    uiqi_window: int = 8,
    return_defects: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """Every metric of one output against its clean reference.

    Parameters
    ----------
    output, clean : (H, W) float arrays
    data_range : float
    noisy : (H, W) array, optional
        The input; needed for ``residual_structure`` (NaN without it).
    align : bool
        Also score after alignment (:func:`sem_core.metrics.score_aligned`); else the aligned
        columns are NaN.
    boxes, mask
        Defect boxes (and label image) for the defect columns; none gives ``n_defects = 0``.

    Returns
    -------
    dict with every key of ``METRIC_COLUMNS``; with ``return_defects`` also the per-defect
    DataFrame of :func:`sem_core.metrics.measure_defects`.
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(clean, dtype=np.float64)
    nan = float("nan")
    fg, bg = derive_cnr_masks(ref, erode_px=cnr_erode_px)
    row: dict[str, float] = {
        "psnr": compute_psnr(out, ref, data_range=data_range),
        "ssim": compute_ssim(out, ref, data_range=data_range),
        "ms_ssim": compute_ms_ssim(out, ref, data_range=data_range) if min(out.shape) >= 11 else nan,
        "fsim": compute_fsim(out, ref, data_range=data_range),
        "uiqi": compute_uiqi(out, ref, window=uiqi_window),
        "epi": compute_edge_preservation(out, ref),
        "cnr": compute_cnr(out, foreground=fg, background=bg),
        "residual_structure": compute_residual_structure(noisy, out, ref) if noisy is not None else nan,
        "psnr_aligned": nan, "ssim_aligned": nan, "shift_dy": nan, "shift_dx": nan,
    }
    if align:
        aligned = score_aligned(out, ref, data_range=data_range, border_px=border_px)
        row.update({k: aligned[k] for k in ("psnr_aligned", "ssim_aligned", "shift_dy", "shift_dx")})
    has_boxes = boxes is not None and len(boxes) > 0
    defects = (
        measure_defects(out, ref, boxes=boxes, data_range=data_range, mask=mask, margin_px=defect_margin_px)
        if has_boxes else pd.DataFrame(columns=["contrast_retention", "psnr", "ssim"])
    )
    row.update(summarize_defects(defects))
    values = {k: row[k] for k in METRIC_COLUMNS}
    return (values, defects) if return_defects else values
