"""Scoring of misregistered real pairs: align the reference to the output, then score.

Real noisy/clean pairs (Tin balls: a fast and a slow scan of the same field) are
shifted by a few pixels and differ in mean brightness; scoring them raw punishes
every method for the microscope's drift. :func:`score_aligned` removes both
before computing PSNR and SSIM, and callers report raw and aligned values.
"""

from __future__ import annotations

import numpy as np

from ..registration import apply_shift, estimate_shift, valid_slices
from .full_reference import compute_psnr, compute_ssim

__all__ = ["score_aligned", "align_reference"]


def align_reference(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    border_px: int = 8,
    shift: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Move ``reference`` onto ``output`` by whole pixels, match its mean, crop the border.

    1. ``shift`` (dy, dx) by which the reference must move to align with the
       output: estimated by phase correlation with a Hann window on the central
       region (``sem_core.registration.estimate_shift(output, reference,
       border_px=border_px)``) unless given.
    2. The reference is moved by the shift rounded to whole pixels (no
       interpolation, which would smooth the reference and flatter blurry outputs).
    3. Both are cropped to the pixels valid after the move, minus ``border_px``
       on every side.
    4. The mean brightness offset ``mean(output) - mean(reference)`` over the
       cropped region is added to the reference.

    Returns
    -------
    output_crop, reference_crop : (h, w) float64 arrays
    info : dict
        ``shift_dy``, ``shift_dx`` (the estimate, px), ``offset`` (grey levels added to the reference).
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if out.shape != ref.shape or out.ndim != 2:
        raise ValueError(f"expected two (H, W) arrays of one shape, got {out.shape} and {ref.shape}")
    if shift is None:
        shift = estimate_shift(out, ref, border_px=border_px)
    whole = (float(round(shift[0])), float(round(shift[1])))
    moved = apply_shift(ref, whole, order="integer")
    rows, cols = valid_slices(ref.shape, whole)
    h, w = ref.shape
    r0, r1 = max(rows.start, border_px), min(rows.stop, h - border_px)
    c0, c1 = max(cols.start, border_px), min(cols.stop, w - border_px)
    if r1 - r0 < 8 or c1 - c0 < 8:
        raise ValueError(f"shift {shift} with border_px={border_px} leaves no region to score in {ref.shape}")
    out_c, ref_c = out[r0:r1, c0:c1], moved[r0:r1, c0:c1]
    offset = float(out_c.mean() - ref_c.mean())
    return out_c, ref_c + offset, {"shift_dy": float(shift[0]), "shift_dx": float(shift[1]), "offset": offset}


def score_aligned(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float,
    border_px: int = 8,
    shift: tuple[float, float] | None = None,
) -> dict[str, float]:
    """PSNR and SSIM after :func:`align_reference`.

    Parameters
    ----------
    output, reference : (H, W) arrays
        The denoised image and its (possibly shifted, brighter/darker) reference.
    data_range : float
        Span of the grey levels.
    border_px : int
        Pixels excluded on every side (the SEM's frame, shifted-in edges).
    shift : (dy, dx), optional
        A precomputed shift (e.g. estimated once per pair on the noisy image), so every
        method of a pair is scored on the same alignment.

    Returns
    -------
    dict
        ``psnr_aligned``, ``ssim_aligned``, ``shift_dy``, ``shift_dx``, ``offset``.
    """
    out_c, ref_c, info = align_reference(output, reference, border_px=border_px, shift=shift)
    return {
        "psnr_aligned": compute_psnr(out_c, ref_c, data_range=data_range),
        "ssim_aligned": compute_ssim(out_c, ref_c, data_range=data_range),
        **info,
    }
