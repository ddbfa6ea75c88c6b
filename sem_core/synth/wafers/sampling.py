"""Draw diverse wafer-layout parameters (pattern, pitch, pixel size, CD, orientation, LER) for dataset images."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_wafer_kwargs"]


def sample_wafer_kwargs(
    rng: np.random.Generator,
    *,
    pixel_size_nm_range: tuple[float, float] = (2.0, 6.0),
    pitch_nm_range: tuple[float, float] = (60.0, 200.0),
    pitch_px_range: tuple[float, float] = (10.0, 48.0),
    duty_range: tuple[float, float] = (0.35, 0.6),
    contacts_fraction: float = 0.35,
    axis_aligned_fraction: float = 0.8,
    ler_sigma_nm_range: tuple[float, float] = (0.5, 2.5),
    ler_xi_nm_range: tuple[float, float] = (10.0, 40.0),
    ler_hurst_range: tuple[float, float] = (0.3, 0.9),
    defect_density_per_um2: float = 4.0,
) -> dict[str, Any]:
    """Draw keyword arguments of :func:`make_wafer_layout` for one diverse dataset image.

    The pitch is drawn in nm, then the pixel size is kept inside ``pixel_size_nm_range`` and such
    that the pitch spans ``pitch_px_range`` pixels; the CD is ``duty * pitch``; orientation is 0 or
    90 with probability ``axis_aligned_fraction``, else uniform in [0, 180).
    """
    pattern = "contacts" if rng.random() < contacts_fraction else "lines"
    pitch = float(rng.uniform(*pitch_nm_range))
    lo = max(pixel_size_nm_range[0], pitch / pitch_px_range[1])
    hi = min(pixel_size_nm_range[1], pitch / pitch_px_range[0])
    px = float(rng.uniform(lo, hi)) if hi > lo else float(np.clip(pitch / 16.0, *pixel_size_nm_range))
    duty = float(rng.uniform(*duty_range))
    cd = float(np.clip(duty * pitch, 2.5 * px, pitch - 2.5 * px))
    orientation = float(rng.choice([0.0, 90.0])) if rng.random() < axis_aligned_fraction else float(rng.uniform(0, 180))
    return {
        "pattern": pattern,
        "pixel_size_nm": px,
        "pitch_nm": pitch,
        "cd_nm": cd,
        "orientation_deg": orientation,
        "ler_sigma_nm": float(rng.uniform(*ler_sigma_nm_range)),
        "ler_xi_nm": float(rng.uniform(*ler_xi_nm_range)),
        "ler_hurst": float(rng.uniform(*ler_hurst_range)),
        "defect_density_per_um2": float(defect_density_per_um2),
    }
