"""FSIM, the feature similarity index (Zhang, Zhang, Mou & Zhang, IEEE TIP 20(8), 2011).

Implemented from the paper's equations:

- Phase congruency (eq. 3-4, after Kovesi) from a bank of complex log-Gabor
  filters, ``n_scales`` = 4 scales (wavelengths 6, 12, 24, 48 px) x
  ``n_orient`` = 4 orientations, radial bandwidth sigma_f/f0 = 0.55, angular
  spread sigma_theta = pi / n_orient / 1.2. For orientation j the local energy is
  E_j = |sum_n (e_nj + i o_nj)| and ``PC = sum_j max(E_j - T_j, 0) / (eps +
  sum_j sum_n A_nj)``.
  The noise threshold T_j is derived here as follows: under white Gaussian noise
  of variance s^2 a filter response r = ifft2(fft2(n) G) is complex Gaussian with
  E|r|^2 = s^2 / N * sum|G|^2, so |r| is Rayleigh. s^2 is estimated from the
  median of the finest scale's |r|^2 (median = 2 tau^2 ln 2); the Rayleigh
  parameter tau of the summed response then gives T = tau sqrt(pi/2) +
  k tau sqrt(2 - pi/2) with k = 2 (mean + 2 standard deviations of the noise
  energy). Every filter is multiplied by a Butterworth low-pass (cut-off 0.45
  cycles/px, order 15) so no energy comes from the FFT's corners.
- Gradient magnitude with the Scharr operator (eq. 5), 'nearest' border.
- S_PC = (2 PC1 PC2 + T1) / (PC1^2 + PC2^2 + T1), S_G likewise with T2 (eq. 6-7),
  S_L = S_PC * S_G (alpha = beta = 1), FSIM = sum S_L PC_m / sum PC_m with
  PC_m = max(PC1, PC2) (eq. 8-9).
- T1 = 0.85, T2 = 160 hold for 8-bit grey levels: images are first rescaled by
  255 / data_range. As in the authors' evaluation, images whose smaller side
  is at least 384 px are averaged and decimated by F = round(min(H, W) / 256)
  (``downsample=None``); pass ``downsample=1`` to disable.

FSIM is symmetric, 1 for identical images and decreases with noise and blur.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft
from scipy import ndimage

__all__ = ["compute_phase_congruency", "compute_gradient_magnitude", "compute_fsim"]

_SCHARR = np.array([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]) / 16.0


@lru_cache(maxsize=8)
def _log_gabor_bank(
    shape: tuple[int, int], *, n_scales: int, n_orient: int, min_wavelength: float, mult: float,
    sigma_on_f: float, d_theta_on_sigma: float,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Radial (per scale) and angular (per orientation) filter components on the FFT grid (cached, read-only)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0  # avoid log(0); the DC value is zeroed below
    theta = np.arctan2(-fy, fx)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radial = []
    for s in range(n_scales):
        f0 = 1.0 / (min_wavelength * mult**s)
        g = np.exp(-(np.log(radius / f0) ** 2) / (2.0 * math.log(sigma_on_f) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    theta_sigma = math.pi / n_orient / d_theta_on_sigma
    angular = []
    for o in range(n_orient):
        angle = o * math.pi / n_orient
        ds = np.sin(theta) * math.cos(angle) - np.cos(theta) * math.sin(angle)
        dc = np.cos(theta) * math.cos(angle) + np.sin(theta) * math.sin(angle)
        dtheta = np.abs(np.arctan2(ds, dc))
        angular.append(np.exp(-(dtheta**2) / (2.0 * theta_sigma**2)))
    for arr in (*radial, *angular):
        arr.setflags(write=False)
    return tuple(radial), tuple(angular)


def compute_phase_congruency(
    image: np.ndarray,
    *,
    n_scales: int = 4,
    n_orient: int = 4,
    min_wavelength: float = 6.0,
    mult: float = 2.0,
    sigma_on_f: float = 0.55,
    d_theta_on_sigma: float = 1.2,
    k: float = 2.0,
    eps: float = 1e-4,
) -> np.ndarray:
    """2-D phase congruency map (see the module docstring).

    Parameters
    ----------
    image : (H, W) array
        Any real dtype; PC is invariant to brightness offset and gain (up to ``eps``).

    Returns
    -------
    (H, W) float64 array in [0, 1].
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected an (H, W) image, got shape {img.shape}")
    n_pix = img.size
    spectrum = scipy.fft.fft2(img).astype(np.complex64)  # single precision halves the FFT cost
    radial, angular = _log_gabor_bank(
        tuple(img.shape), n_scales=n_scales, n_orient=n_orient, min_wavelength=min_wavelength, mult=mult,
        sigma_on_f=sigma_on_f, d_theta_on_sigma=d_theta_on_sigma,
    )
    energy_all = np.zeros(img.shape)
    amplitude_all = np.zeros(img.shape)
    for spread in angular:
        summed = np.zeros(img.shape, dtype=np.complex128)
        filt_sum = np.zeros(img.shape)
        noise_var = 0.0
        for s, rad in enumerate(radial):
            filt = rad * spread
            response = scipy.fft.ifft2(spectrum * filt.astype(np.float32)).astype(np.complex128)
            amplitude_all += np.abs(response)
            summed += response
            filt_sum += filt
            if s == 0:
                finest = float(np.sum(filt**2))
                if finest > 0:
                    noise_var = float(np.median(np.abs(response) ** 2)) / math.log(2.0) * n_pix / finest
        tau = math.sqrt(noise_var / n_pix * float(np.sum(filt_sum**2)) / 2.0)
        threshold = tau * math.sqrt(math.pi / 2.0) + k * tau * math.sqrt(2.0 - math.pi / 2.0)
        energy_all += np.maximum(np.abs(summed) - threshold, 0.0)
    return energy_all / (eps + amplitude_all)


def compute_gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 Scharr gradient magnitude sqrt(Gx^2 + Gy^2) (kernels / 16, 'nearest' border)."""
    img = np.asarray(image, dtype=np.float64)
    gx = ndimage.correlate(img, _SCHARR, mode="nearest")
    gy = ndimage.correlate(img, _SCHARR.T, mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def _downsample(img: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return img
    smooth = ndimage.uniform_filter(img, size=factor, mode="nearest")
    return smooth[::factor, ::factor]


def compute_fsim(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float,
    t1: float = 0.85,
    t2: float = 160.0,
    downsample: int | None = None,
) -> float:
    """FSIM of ``image`` against ``reference`` (both (H, W), grey levels spanning ``data_range``).

    Returns
    -------
    float
        In (0, 1]; NaN when neither image has any phase congruency (both flat).
    """
    x = np.asarray(image, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected two (H, W) arrays of the same shape, got {x.shape} and {y.shape}")
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    scale = 255.0 / float(data_range)
    factor = max(1, round(min(x.shape) / 256)) if downsample is None else int(downsample)
    x, y = _downsample(x * scale, factor), _downsample(y * scale, factor)
    pc1, pc2 = compute_phase_congruency(x), compute_phase_congruency(y)
    g1, g2 = compute_gradient_magnitude(x), compute_gradient_magnitude(y)
    s_pc = (2.0 * pc1 * pc2 + t1) / (pc1**2 + pc2**2 + t1)
    s_g = (2.0 * g1 * g2 + t2) / (g1**2 + g2**2 + t2)
    pc_m = np.maximum(pc1, pc2)
    total = float(np.sum(pc_m))
    if total == 0.0:
        return float("nan")
    return float(np.sum(s_pc * s_g * pc_m) / total)
