"""Monte-Carlo SURE for SEM noise: an estimate of a denoiser's MSE from the noisy image alone.

For ``y = x + n`` with ``n ~ N(0, Σ)``, ``E‖f(y) − x‖² = E‖f(y) − y‖² − tr Σ + 2 E tr(Σ ∂f/∂y)``
(Stein). ``tr(Σ J)`` is estimated with one probe ``b ~ N(0, Σ)``: ``bᵀ (f(y + ε b) − f(y)) / ε``.
Σ models SEM noise: signal-dependent variance ``slope·I + intercept`` (grey levels, ``I`` a smoothed
copy of the noisy image) times a correlation made by a FIR filter along x (the detector chain). The
same probe is used for every model compared on an image (common random numbers), so the *difference*
of two models' estimates is precise even where each estimate is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

__all__ = ["make_noise_probe", "estimate_sure_mse"]


def make_noise_probe(image: np.ndarray, *, rng: np.random.Generator, slope: float, intercept: float,
                     fir_taps: Sequence[float], max_value: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the modelled SEM noise for ``image`` (H, W) unit scale, and its variance map.

    Returns ``(probe, variance)``, both (H, W) float32 on the unit scale.

    ``slope`` (grey levels) and ``intercept`` (grey levels²) give the variance law; ``fir_taps`` the causal
    filter along x (normalised to unit power, so the variance law is kept).
    """
    taps = np.asarray(fir_taps, np.float64)
    taps = taps / np.sqrt(np.sum(taps**2))
    white = rng.standard_normal(image.shape)
    coloured = ndimage.convolve1d(white, taps, axis=1, mode="wrap", origin=-((len(taps) - 1) // 2))
    level = ndimage.gaussian_filter(np.asarray(image, np.float64) * max_value, 2.0)
    std = np.sqrt(np.maximum(slope * level + intercept, 1e-6)) / max_value
    return (coloured * std).astype(np.float32), (std**2).astype(np.float32)


@torch.no_grad()
def estimate_sure_mse(fn: Callable[[torch.Tensor], torch.Tensor], images: Sequence[np.ndarray],
                      probes: Sequence[tuple[np.ndarray, np.ndarray]], *, eps: float = 1e-2, border_px: int = 8) -> float:
    """SURE estimate of the per-pixel MSE (unit scale) of ``fn`` over ``images``.

    Parameters
    ----------
    fn : callable
        (1, 1, H, W) float32 -> (1, 1, H, W), deterministic (a model in eval mode).
    images : sequence of (H, W) float32 unit-scale noisy images
    probes : sequence of ((H, W), (H, W)) float32
        One noise draw and its variance map per image (:func:`make_noise_probe`).
    eps : float
        Finite-difference step, as a fraction of the probe.
    border_px : int
        Pixels left out on every side.

    Returns
    -------
    float
        The estimate of ``mean((f(y) − x)²)``; subtract two models' values to compare them.
    """
    total, count = 0.0, 0
    sl = (slice(border_px, -border_px or None),) * 2
    for y_np, (b_np, v_np) in zip(images, probes, strict=True):
        y = torch.from_numpy(np.ascontiguousarray(y_np, np.float32))[None, None]
        b = torch.from_numpy(np.ascontiguousarray(b_np, np.float32))[None, None]
        fy = fn(y).float()
        div = (b * (fn(y + eps * b).float() - fy) / eps)[0, 0][sl]
        resid = ((fy - y) ** 2)[0, 0][sl]
        var = torch.from_numpy(np.asarray(v_np, np.float32))[sl]
        total += float((resid - var + 2.0 * div).sum(dtype=torch.float64))
        count += resid.numel()
    return total / max(count, 1)
