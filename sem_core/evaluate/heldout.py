"""The held-out-block protocol for real pairs: every method scored aligned and raw on the test block.

The real Tin-balls store's split (``datasets.tin_balls.split_mode: contiguous``) holds acquisition-order
blocks, so the test block shares no neighbouring frame with training. Baselines fitted on the *training*
block only: Gaussian, median, and the tuned BM3D (coloured PSD from the training residuals, and the
generalised Anscombe transform with the training pairs' variance law). Each output is scored raw
(PSNR/SSIM against the stored clean image) and aligned (:func:`sem_core.metrics.aligned.score_aligned`:
whole-pixel phase-correlation shift, brightness offset removed, border cut).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from ..metrics.aligned import score_aligned
from ..metrics.full_reference import compute_psnr, compute_ssim

__all__ = ["METRIC_KEYS", "make_baseline_methods", "score_method", "score_methods", "check_overlap"]

METRIC_KEYS = ("psnr_aligned", "ssim_aligned", "psnr_raw", "ssim_raw")
ImageFn = Callable[[np.ndarray], np.ndarray]


def make_baseline_methods(train_noisy: Sequence[np.ndarray], train_clean: Sequence[np.ndarray], *,
                          bm3d: bool = True, border_px: int = 8, max_value: float = 255.0) -> dict[str, ImageFn]:
    """Noisy, Gaussian σ=1.5, median 5x5 and (``bm3d``) BM3D coloured and tuned BM3D (coloured + GAT).

    Parameters
    ----------
    train_noisy, train_clean : sequences of (H, W) arrays
        The training block's aligned pairs in grey levels; the BM3D noise ACF and variance law are fitted
        on them only.

    Returns
    -------
    dict of name -> fn((H, W) grey levels) -> (H, W) float32 grey levels.
    """
    methods: dict[str, ImageFn] = {
        "noisy": lambda im: np.asarray(im, np.float32),
        "gaussian_1.5": lambda im: ndimage.gaussian_filter(np.asarray(im, np.float32), 1.5),
        "median_5": lambda im: ndimage.median_filter(np.asarray(im, np.float32), size=5),
    }
    if bm3d:
        from ..denoise.base import denoise_image
        from ..denoise.bm3d_coloured import Bm3dDenoiser, estimate_pairs_noise_acf
        from ..synth.noise_stats import aggregate_noise_stats, measure_noise_stats

        acf = estimate_pairs_noise_acf(train_noisy, train_clean, border_px=border_px, max_value=max_value)
        law = aggregate_noise_stats([measure_noise_stats(n, c) for n, c in zip(train_noisy, train_clean)])
        plain = Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist())
        tuned = Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist(), vst_slope=law.slope / max_value,
                             vst_intercept=law.intercept / max_value**2)
        methods["bm3d_coloured"] = lambda im: denoise_image(np.asarray(im, np.float32) / max_value,
                                                            denoiser=plain) * max_value
        methods["bm3d_tuned"] = lambda im: denoise_image(np.asarray(im, np.float32) / max_value,
                                                         denoiser=tuned) * max_value
    return methods


def score_method(fn: ImageFn, noisy: Sequence[np.ndarray], clean: Sequence[np.ndarray], *,
                 border_px: int = 8, max_value: float = 255.0) -> dict[str, float]:
    """Mean and std over the images of :data:`METRIC_KEYS` (``<key>`` and ``<key>_std``), ``seconds_per_image``.

    The aligned shift is estimated once per pair on the *noisy* image, so every method of a pair is
    scored on the same alignment.
    """
    rows, t0 = [], time.perf_counter()
    for n, c in zip(noisy, clean, strict=True):
        ref = np.asarray(c, np.float32)
        out = np.asarray(fn(n), np.float32)
        shift = score_aligned(np.asarray(n, np.float32), ref, data_range=max_value, border_px=border_px)
        al = score_aligned(out, ref, data_range=max_value, border_px=border_px,
                           shift=(shift["shift_dy"], shift["shift_dx"]))
        rows.append({"psnr_aligned": al["psnr_aligned"], "ssim_aligned": al["ssim_aligned"],
                     "psnr_raw": compute_psnr(out, ref, data_range=max_value),
                     "ssim_raw": compute_ssim(out, ref, data_range=max_value)})
    secs = time.perf_counter() - t0
    out: dict[str, float] = {}
    for k in METRIC_KEYS:
        v = np.array([r[k] for r in rows], dtype=np.float64)
        out[k], out[f"{k}_std"] = float(v.mean()), float(v.std())
    out["seconds_per_image"] = secs / max(len(rows), 1)
    out["per_image_psnr_aligned"] = [float(r["psnr_aligned"]) for r in rows]
    return out


def score_methods(methods: Mapping[str, ImageFn], noisy: Sequence[np.ndarray], clean: Sequence[np.ndarray], *,
                  border_px: int = 8, report: Callable[[str, dict], None] | None = None) -> dict[str, dict]:
    """:func:`score_method` for each method (in order); ``report(name, row)`` after each."""
    results = {}
    for name, fn in methods.items():
        results[name] = score_method(fn, noisy, clean, border_px=border_px)
        if report is not None:
            report(name, results[name])
    return results


def check_overlap(card: Mapping, test_ids: Sequence[str], *, image_ids: Sequence[str]) -> list[str]:
    """Test-block image ids that a model card lists among its training or validation images.

    ``card["training_data"]`` holds ``train_indices``/``val_indices`` (store indices) and optionally
    ``train_ids``; indices are mapped to ids through the store's ``image_ids``.
    """
    td = dict(card.get("training_data") or {})
    seen = set(td.get("train_ids") or []) | set(td.get("val_ids") or [])
    for key in ("train_indices", "val_indices"):
        seen |= {str(image_ids[i]) for i in td.get(key) or [] if 0 <= int(i) < len(image_ids)}
    return [t for t in test_ids if str(t) in seen]
