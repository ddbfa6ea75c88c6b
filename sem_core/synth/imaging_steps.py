"""The physical steps of the SEM imaging model, one function each (see ``imaging.simulate_pair``).

Units: lengths in nm (converted with ``pixel_size_nm``), times in s, currents in pA, signals as
electron counts per pixel until the detector turns them into grey levels. Every random step takes
``rng: np.random.Generator``. Shapes are (H, W); outputs are float64 unless stated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "ELEMENTARY_CHARGE_C",
    "blur_beam",
    "compute_primary_dose",
    "sample_primary_electrons",
    "sample_secondary_electrons",
    "apply_detector",
    "filter_fast_axis",
    "add_line_noise",
    "add_charging_streaks",
    "quantise",
]

ELEMENTARY_CHARGE_C = 1.602176634e-19


def blur_beam(
    image: np.ndarray,
    *,
    sigma_nm: float,
    pixel_size_nm: float,
    astigmatism_ratio: float = 1.0,
    astigmatism_angle_deg: float = 0.0,
) -> np.ndarray:
    """Convolve with the Gaussian beam profile.

    ``sigma_nm`` is the standard deviation along the principal axis at ``astigmatism_angle_deg``
    (0 = along x, counter-clockwise towards -y); across it the deviation is
    ``sigma_nm * astigmatism_ratio``. Borders are reflected.
    """
    img = np.asarray(image, dtype=np.float64)
    s_u = sigma_nm / pixel_size_nm
    s_v = s_u * astigmatism_ratio
    if s_u <= 0 and s_v <= 0:
        return img.copy()
    if np.isclose(s_u, s_v) or (np.isclose(astigmatism_angle_deg % 90.0, 0.0)):
        horizontal = np.isclose(astigmatism_angle_deg % 180.0, 0.0)
        sx, sy = (s_u, s_v) if horizontal else (s_v, s_u)
        return ndi.gaussian_filter(img, (sy, sx), mode="reflect")
    half = int(np.ceil(4 * max(s_u, s_v)))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    th = np.deg2rad(astigmatism_angle_deg)
    u = xx * np.cos(th) - yy * np.sin(th)
    v = xx * np.sin(th) + yy * np.cos(th)
    kernel = np.exp(-0.5 * ((u / s_u) ** 2 + (v / s_v) ** 2))
    return ndi.convolve(img, kernel / kernel.sum(), mode="reflect")


def compute_primary_dose(*, beam_current_pa: float, dwell_s: float) -> float:
    """Mean number of primary electrons per pixel: ``I * t / e``."""
    return beam_current_pa * 1e-12 * dwell_s / ELEMENTARY_CHARGE_C


def sample_primary_electrons(mean_pe: np.ndarray | float, *, rng: np.random.Generator,
                             shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Poisson primary-electron counts (int64) with mean ``mean_pe`` (scalar with ``shape``, or an array)."""
    lam = np.broadcast_to(np.asarray(mean_pe, dtype=np.float64), shape if shape is not None else np.shape(mean_pe))
    return rng.poisson(lam)


def sample_secondary_electrons(
    pe_counts: np.ndarray,
    se_per_pe: np.ndarray | float,
    *,
    rng: np.random.Generator,
    model: str = "poisson",
    gamma_shape: float = 4.0,
) -> np.ndarray:
    """SE counts (int64) emitted by ``pe_counts`` primaries, mean ``se_per_pe`` each.

    ``model="poisson"``: each PE yields Poisson(m) SEs, so given N primaries SE ~ Poisson(N m)
    (compound Poisson; marginal variance ``lambda (1 + m)`` for ``lambda = E[N] m``).
    ``model="gamma"``: each PE's yield is Poisson with a Gamma(k, m/k) distributed rate
    (Poisson-Gamma, over-dispersed: per-PE variance ``m + m^2/k``); the sum over N primaries is
    Poisson(Gamma(N k, m/k)).
    """
    n = np.asarray(pe_counts, dtype=np.float64)
    m = np.broadcast_to(np.asarray(se_per_pe, dtype=np.float64), n.shape)
    if model == "poisson":
        return rng.poisson(n * m)
    if model == "gamma":
        if gamma_shape <= 0:
            raise ValueError(f"gamma_shape must be > 0, got {gamma_shape}")
        shape_k = n * gamma_shape
        rate = np.zeros_like(n)
        pos = shape_k > 0
        rate[pos] = rng.gamma(shape_k[pos], (m[pos] / gamma_shape))
        return rng.poisson(rate)
    raise ValueError(f"unknown secondary-electron model {model!r}: use 'poisson' or 'gamma'")


def apply_detector(se_counts: np.ndarray, *, rng: np.random.Generator, gain: float, offset: float,
                   read_noise: float) -> np.ndarray:
    """Grey levels ``gain * SE + offset + N(0, read_noise^2)``."""
    grey = gain * np.asarray(se_counts, dtype=np.float64) + offset
    if read_noise > 0:
        grey = grey + rng.normal(0.0, read_noise, size=grey.shape)
    return grey


def filter_fast_axis(image: np.ndarray, *, taps: Sequence[float]) -> np.ndarray:
    """Causal FIR low-pass along x (detector bandwidth): ``y[:, j] = sum_k h[k] x[:, j - k]``.

    Before the first column the line is taken as constant (its first value), so a flat line
    stays flat. The taps are used as given (unit DC gain means ``sum(taps) == 1``).
    """
    h = np.asarray(taps, dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"taps must be a non-empty 1-D sequence, got {taps!r}")
    k = h.size
    pad = np.concatenate([np.repeat(img[:, :1], k - 1, axis=1), img], axis=1)
    w = img.shape[1]
    out = np.zeros_like(img)
    for i, hk in enumerate(h):
        out += hk * pad[:, k - 1 - i : k - 1 - i + w]
    return out


def add_line_noise(image: np.ndarray, *, rng: np.random.Generator, sigma: float, alpha: float = 1.0) -> np.ndarray:
    """Add one offset per line (row), a 1/f^alpha sequence over the line index with standard deviation ``sigma``."""
    img = np.asarray(image, dtype=np.float64)
    if sigma <= 0:
        return img.copy()
    h = img.shape[0]
    spec = np.fft.rfft(rng.normal(size=h))
    f = np.fft.rfftfreq(h)
    f[0] = f[1] if h > 1 else 1.0
    spec *= f ** (-alpha / 2.0)
    spec[0] = 0.0
    seq = np.fft.irfft(spec, n=h)
    sd = seq.std()
    seq = seq * (sigma / sd) if sd > 0 else seq
    return img + seq[:, None]


def add_charging_streaks(image: np.ndarray, *, rng: np.random.Generator, rate_per_line: float,
                         amplitude: float, decay_px: float) -> np.ndarray:
    """Charging streaks: on each line, with probability ``rate_per_line``, a jump of about ``amplitude``
    grey levels (exponentially distributed) starting at a random column and decaying along x with
    length ``decay_px``."""
    img = np.asarray(image, dtype=np.float64).copy()
    if rate_per_line <= 0 or amplitude == 0:
        return img
    h, w = img.shape
    hit = rng.random(h) < rate_per_line
    starts = rng.integers(0, w, size=h)
    amps = rng.exponential(abs(amplitude), size=h) * np.sign(amplitude)
    cols = np.arange(w)
    for r in np.flatnonzero(hit):
        d = cols - starts[r]
        img[r] += np.where(d >= 0, amps[r] * np.exp(-np.maximum(d, 0) / decay_px), 0.0)
    return img


def quantise(image: np.ndarray, *, bit_depth: int = 8, contrast: float = 1.0, brightness: float = 0.0) -> np.ndarray:
    """``contrast * image + brightness``, rounded, clipped to ``[0, 2**bit_depth - 1]``; uint8 or uint16."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top = 2**bit_depth - 1
    out = np.clip(np.rint(contrast * np.asarray(image, dtype=np.float64) + brightness), 0, top)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)
