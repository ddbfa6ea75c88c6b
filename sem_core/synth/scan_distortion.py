"""Scan distortion: beam-position errors resampled along the raster timing.

The beam visits pixel ``(i, j)`` at time ``t = i * line_time + j * dwell_s`` with
``line_time = W * dwell_s + flyback_s``. At that time it sits displaced by
``d(t) = sum_k A_k sin(2 pi f_k t + phi_k) u_k + v t + w(t)`` (vibration sinusoids along
directions ``u_k``, linear drift ``v`` and a random walk ``w``), so the recorded pixel shows the
specimen at ``(i, j) + d(t) / pixel_size``. Phases and the random walk come from ``rng``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["make_scan_displacement", "distort_scan"]


def make_scan_displacement(
    shape: tuple[int, int],
    *,
    rng: np.random.Generator,
    pixel_size_nm: float,
    dwell_s: float,
    flyback_s: float = 0.0,
    vibration_amplitude_nm: Sequence[float] = (),
    vibration_frequency_hz: Sequence[float] = (),
    vibration_angle_deg: Sequence[float] = (),
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0),
    random_walk_nm_per_sqrt_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Beam displacement in pixels at every pixel's visit time.

    Parameters
    ----------
    shape : (H, W)
    rng : np.random.Generator
        Source of the vibration phases and the random walk.
    pixel_size_nm, dwell_s, flyback_s
        Raster geometry and timing (dwell per pixel, flyback per line).
    vibration_amplitude_nm, vibration_frequency_hz, vibration_angle_deg : sequences of equal length
        One sinusoid each; angle 0 = along x (fast axis), 90 = along y. Missing angles default to 0.
    drift_nm_per_s : (vy, vx)
        Linear drift velocity.
    random_walk_nm_per_sqrt_s : float
        Diffusion of a 2-D random walk (sampled once per line, linear in between).

    Returns
    -------
    dy, dx : ndarray (H, W) float64
        Displacement in pixels (row, col).
    """
    h, w = shape
    amps = list(vibration_amplitude_nm)
    freqs = list(vibration_frequency_hz)
    if len(amps) != len(freqs):
        raise ValueError(f"vibration amplitudes {amps} and frequencies {freqs} differ in length")
    angles = list(vibration_angle_deg) + [0.0] * (len(amps) - len(vibration_angle_deg))
    line_time = w * dwell_s + flyback_s
    t = np.arange(h)[:, None] * line_time + np.arange(w)[None, :] * dwell_s
    dy = np.full(shape, 0.0) + drift_nm_per_s[0] * t
    dx = np.full(shape, 0.0) + drift_nm_per_s[1] * t
    phases = rng.uniform(0.0, 2 * np.pi, size=len(amps))
    for a, f, ang, ph in zip(amps, freqs, angles, phases):
        s = a * np.sin(2 * np.pi * f * t + ph)
        dy += s * np.sin(np.deg2rad(ang))
        dx += s * np.cos(np.deg2rad(ang))
    if random_walk_nm_per_sqrt_s > 0:
        steps = rng.normal(0.0, random_walk_nm_per_sqrt_s * np.sqrt(line_time), size=(2, h + 1))
        walk = np.cumsum(steps, axis=1)  # position at the start of each line (and one past the end)
        frac = (np.arange(w) * dwell_s / line_time)[None, :]
        for k, d in enumerate((dy, dx)):
            d += walk[k, :-1, None] * (1 - frac) + walk[k, 1:, None] * frac
    return dy / pixel_size_nm, dx / pixel_size_nm


def distort_scan(image: np.ndarray, *, displacement: tuple[np.ndarray, np.ndarray], order: int = 1) -> np.ndarray:
    """Resample ``image`` (H, W) at ``(i + dy, j + dx)``; returns float64 (H, W).

    Out-of-field positions take the nearest edge value.
    """
    dy, dx = displacement
    h, w = image.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    coords = np.stack([rows + dy, cols + dx])
    return ndi.map_coordinates(np.asarray(image, dtype=np.float64), coords, order=order, mode="nearest")
