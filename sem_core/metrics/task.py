"""Task metrics: contrast-to-noise ratio, residual structure and defect preservation.

These answer the inspection engineer's questions rather than generic fidelity:
is the material contrast visible above the noise (CNR), did the denoiser remove
real structure along with the noise (residual structure), and are the defects
still there with their contrast (defect preservation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.filters import threshold_otsu

from .full_reference import compute_psnr, compute_ssim_map

__all__ = [
    "derive_cnr_masks",
    "compute_cnr",
    "compute_residual_structure",
    "measure_defects",
    "summarize_defects",
    "DEFECT_COLUMNS",
]

DEFECT_COLUMNS = ["defect_id", "contrast_clean", "contrast_output", "contrast_retention", "psnr", "ssim"]


def derive_cnr_masks(clean: np.ndarray, *, erode_px: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Foreground / background masks of the clean image for CNR.

    Foreground is ``clean > otsu(clean)``, background the rest; each is eroded by
    ``erode_px`` pixels (3x3 cross, iterated) so that pixels on or near edges,
    where blur mixes the two, count in neither.

    Returns
    -------
    foreground, background : (H, W) bool arrays (possibly empty, e.g. for a flat image).
    """
    img = np.asarray(clean, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected an (H, W) image, got shape {img.shape}")
    if float(np.ptp(img)) == 0.0:
        empty = np.zeros(img.shape, dtype=bool)
        return empty, empty.copy()
    fg = img > threshold_otsu(img)
    bg = ~fg
    if erode_px > 0:
        fg = ndimage.binary_erosion(fg, iterations=erode_px, border_value=1)
        bg = ndimage.binary_erosion(bg, iterations=erode_px, border_value=1)
    return fg, bg


def compute_cnr(image: np.ndarray, *, foreground: np.ndarray, background: np.ndarray) -> float:
    """Contrast-to-noise ratio ``|mean_f - mean_b| / sqrt(var_f + var_b)``.

    Means and population variances of ``image`` over the two boolean masks
    (from :func:`derive_cnr_masks` on the clean image, so every method is
    measured on the same regions).

    Returns
    -------
    float
        ``inf`` when both regions are noise-free and differ; NaN when a mask is
        empty or both regions are constant and equal.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.shape != foreground.shape or img.shape != background.shape:
        raise ValueError(f"image {img.shape} and masks {foreground.shape}/{background.shape} differ in shape")
    if not foreground.any() or not background.any():
        return float("nan")
    f, b = img[foreground], img[background]
    contrast = abs(float(f.mean()) - float(b.mean()))
    noise = float(np.sqrt(f.var() + b.var()))
    if noise == 0.0:
        return float("inf") if contrast > 0 else float("nan")
    return contrast / noise


def _gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ndimage.sobel(img, axis=0, mode="nearest"), ndimage.sobel(img, axis=1, mode="nearest")


def compute_residual_structure(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray) -> float:
    """Fraction of the clean image's gradient energy that the denoiser removed.

    With the method noise r = noisy - denoised and Sobel gradients,
    ``RS = sum(grad r . grad clean) / sum(|grad clean|^2)``: the projection of
    the residual's gradient field on the clean one. Noise is uncorrelated with
    the clean structure and contributes ~0 in expectation; structure the
    method removed along with it correlates and counts. So RS = 0 for the
    identity (nothing removed) and for a perfect denoiser (only noise removed),
    RS = a when ``denoised = noisy - a * clean`` (up to a constant), RS ~ 1 when
    the output is flat. Lower is better.

    Returns
    -------
    float
        NaN if the clean image has no gradients.
    """
    n, d, c = (np.asarray(a, dtype=np.float64) for a in (noisy, denoised, clean))
    if not (n.shape == d.shape == c.shape) or n.ndim != 2:
        raise ValueError(f"expected three (H, W) arrays of one shape, got {n.shape}, {d.shape}, {c.shape}")
    ry, rx = _gradients(n - d)
    cy, cx = _gradients(c)
    energy = float(np.sum(cy * cy + cx * cx))
    if energy == 0.0:
        return float("nan")
    return float(np.sum(ry * cy + rx * cx) / energy)


def _as_boxes(boxes: Iterable[Sequence[int]] | pd.DataFrame) -> list[tuple[int, int, int, int]]:
    if isinstance(boxes, pd.DataFrame):
        cols = ["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]
        return [tuple(int(v) for v in row) for row in boxes[cols].to_numpy()]
    return [tuple(int(v) for v in box) for box in boxes]


def measure_defects(
    output: np.ndarray,
    clean: np.ndarray,
    *,
    boxes: Iterable[Sequence[int]] | pd.DataFrame,
    data_range: float,
    mask: np.ndarray | None = None,
    margin_px: int = 4,
    min_contrast: float = 0.02,
    defect_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Per-defect preservation metrics.

    Parameters
    ----------
    output, clean : (H, W) arrays
        The denoised image and its clean reference.
    boxes : iterable of (r0, c0, r1, c1) or DataFrame with ``bbox_r0..bbox_c1``
        Half-open defect bounding boxes.
    mask : (H, W) array, optional
        Defect label image (non-zero = defect). Inside a box the defect pixels D
        are ``mask != 0``; without a mask (or if none are set) D is the whole box.
    margin_px : int
        The box is dilated by this margin (clipped to the image) to give the
        region R; the ring R minus D is the defect's surrounding pattern.
    min_contrast : float
        Retention is NaN where the clean contrast is below ``min_contrast * data_range``
        (a ratio of near-zero contrasts is noise, not preservation).

    Returns
    -------
    DataFrame
        One row per defect, columns ``DEFECT_COLUMNS``: contrast = mean over D
        minus mean over the ring, for the clean and the output image;
        ``contrast_retention`` = output / clean contrast (1 kept, 0 erased,
        NaN below ``min_contrast``); ``psnr`` over R;
        ``ssim`` = mean of the full-image SSIM map over R.
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(clean, dtype=np.float64)
    if out.shape != ref.shape or out.ndim != 2:
        raise ValueError(f"expected two (H, W) arrays of one shape, got {out.shape} and {ref.shape}")
    box_list = _as_boxes(boxes)
    ids = list(defect_ids) if defect_ids is not None else list(range(len(box_list)))
    smap = compute_ssim_map(out, ref, data_range=data_range) if box_list else None
    rows = []
    h, w = ref.shape
    for defect_id, (r0, c0, r1, c1) in zip(ids, box_list, strict=True):
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
        if r1 <= r0 or c1 <= c0:
            raise ValueError(f"defect {defect_id}: empty or out-of-image box {(r0, c0, r1, c1)} for {ref.shape}")
        region = np.zeros(ref.shape, dtype=bool)
        region[max(r0 - margin_px, 0):r1 + margin_px, max(c0 - margin_px, 0):c1 + margin_px] = True
        inside = np.zeros(ref.shape, dtype=bool)
        inside[r0:r1, c0:c1] = True
        if mask is not None and np.any(mask[r0:r1, c0:c1] != 0):
            inside &= np.asarray(mask) != 0
        ring = region & ~inside
        if ring.any():
            c_clean = float(ref[inside].mean() - ref[ring].mean())
            c_out = float(out[inside].mean() - out[ring].mean())
        else:
            c_clean = c_out = float("nan")
        keep = np.isfinite(c_clean) and abs(c_clean) >= min_contrast * data_range
        rows.append({
            "defect_id": int(defect_id),
            "contrast_clean": c_clean,
            "contrast_output": c_out,
            "contrast_retention": c_out / c_clean if keep else float("nan"),
            "psnr": compute_psnr(out[region].reshape(1, -1), ref[region].reshape(1, -1), data_range=data_range),
            "ssim": float(smap[region].mean()),
        })
    return pd.DataFrame(rows, columns=DEFECT_COLUMNS)


def summarize_defects(defects: pd.DataFrame) -> dict[str, float]:
    """Per-image aggregate of :func:`measure_defects`: means (NaN-skipping) and the worst retention.

    Returns keys ``n_defects``, ``defect_retention``, ``defect_retention_min``,
    ``defect_psnr``, ``defect_ssim`` (NaN when there are no defects). PSNR is
    averaged after capping infinite values at 100 dB.
    """
    if defects.empty:
        nan = float("nan")
        return {"n_defects": 0, "defect_retention": nan, "defect_retention_min": nan,
                "defect_psnr": nan, "defect_ssim": nan}
    ret = defects["contrast_retention"].astype(float)
    return {
        "n_defects": int(len(defects)),
        "defect_retention": float(ret.mean()) if ret.notna().any() else float("nan"),
        "defect_retention_min": float(ret.min()) if ret.notna().any() else float("nan"),
        "defect_psnr": float(defects["psnr"].clip(upper=100.0).mean()),
        "defect_ssim": float(defects["ssim"].mean()),
    }
