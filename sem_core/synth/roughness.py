"""Line-edge roughness with the Palasantzas power spectrum, by Fourier filtering of white noise.

PSD(k) ∝ σ² ξ / (1 + k² ξ²)^(1 + H), with k in radians per pixel, ξ the correlation length and H
the roughness (Hurst) exponent: flat below k ≈ 1/ξ, falling as k^(−2(1+H)) above it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["synthesize_edge_roughness", "compute_palasantzas_psd", "make_roughness_filter"]


def compute_palasantzas_psd(k: np.ndarray, *, sigma_px: float, xi_px: float, hurst: float) -> np.ndarray:
    """Palasantzas PSD ``σ² ξ / (1 + k² ξ²)^(1 + H)`` (float64, same shape as ``k``, k in rad/px)."""
    k = np.asarray(k, dtype=np.float64)
    return sigma_px**2 * xi_px / (1.0 + (k * xi_px) ** 2) ** (1.0 + hurst)


def synthesize_edge_roughness(
    n: int,
    *,
    rng: np.random.Generator,
    sigma_px: float,
    xi_px: float,
    hurst: float,
    spacing_px: float = 1.0,
) -> np.ndarray:
    """Draw one edge-displacement profile with a Palasantzas spectrum.

    Parameters
    ----------
    n : int
        Number of samples along the edge (>= 2).
    rng : np.random.Generator
        Source of the white noise (n standard normals are drawn).
    sigma_px : float
        RMS edge displacement (pixels, >= 0).
    xi_px : float
        Correlation length (pixels, > 0).
    hurst : float
        Roughness exponent H in [0, 1]; the high-frequency PSD slope is −2(1 + H).
    spacing_px : float
        Distance between samples along the edge (pixels).

    Returns
    -------
    np.ndarray
        float64 (n,) displacements with zero mean. The discrete spectrum is normalised so that
        E[mean(x²)] = σ² exactly (the DC term is removed, so this is also the expected sample
        variance). The profile is periodic with period ``n * spacing_px``.
    """
    amplitude = make_roughness_filter(n, sigma_px=sigma_px, xi_px=xi_px, hurst=hurst, spacing_px=spacing_px)
    white = rng.standard_normal(n)
    return np.fft.irfft(np.fft.rfft(white) * amplitude, n=n)


def make_roughness_filter(
    n: int, *, sigma_px: float, xi_px: float, hurst: float, spacing_px: float = 1.0
) -> np.ndarray:
    """Half-spectrum amplitude (float64, ``n // 2 + 1``) that turns ``rfft`` of n unit normals into the profile.

    ``irfft(rfft(white) * amplitude, n)`` is what :func:`synthesize_edge_roughness` returns; building
    the filter once lets callers draw many profiles of the same length cheaply.
    """
    if n < 2:
        raise ValueError(f"edge roughness needs n >= 2 samples, got {n}")
    if sigma_px < 0 or xi_px <= 0 or spacing_px <= 0 or not 0.0 <= hurst <= 1.0:
        raise ValueError(
            f"invalid roughness parameters sigma_px={sigma_px}, xi_px={xi_px}, hurst={hurst}, spacing_px={spacing_px}"
        )
    k = 2.0 * np.pi * np.fft.rfftfreq(n, d=spacing_px)
    if sigma_px == 0:
        return np.zeros(k.shape)
    psd = compute_palasantzas_psd(k, sigma_px=1.0, xi_px=xi_px, hurst=hurst)
    psd[0] = 0.0
    # weights of the half spectrum in the full one: DC and (even n) Nyquist once, the rest twice
    weight = np.full(k.shape, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    variance = float(np.sum(weight * psd)) / n
    return np.sqrt(psd * (sigma_px**2 / variance))
