"""BM3D with a white σ or a coloured noise PSD (SEM noise is correlated along the fast axis x).

Licence: the ``bm3d`` package (Tampere University, closed native core) is free for
**non-commercial use only**. It is an optional dependency (``pip install sem-denoise[bm3d]``);
building this method without it raises an :class:`ImportError` that says so.

The coloured mode describes the noise by its autocorrelation at small lags (``noise_acf``, a
``(2L+1, 2L+1)`` array, centre = lag 0), estimated from a noise residual (noisy − clean of a
training pair, or noisy − a smooth estimate). For a tile of any shape ``(M, N)`` the PSD that
bm3d expects is ``M·N·DFT(acf)`` on that tile's frequency grid (:func:`psd_from_acf`), so the
same noise model serves every tile size. A white σ loses several dB on fast-axis-correlated noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy import ndimage

from .base import register_denoiser

__all__ = ["Bm3dDenoiser", "estimate_noise_acf", "estimate_noise_residual", "psd_from_acf"]


def estimate_noise_residual(noisy: np.ndarray, *, clean: np.ndarray | None = None, sigma_px: float = 2.0) -> np.ndarray:
    """The noise residual ``noisy − clean``, or ``noisy − gaussian(noisy, sigma_px)`` without clean data.

    Parameters
    ----------
    noisy, clean : np.ndarray
        (H, W) float images on the same scale.
    sigma_px : float
        Smoothing used when ``clean`` is None (removes the structure, keeps most of the noise).

    Returns
    -------
    np.ndarray
        (H, W) float64, mean removed.
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    ref = ndimage.gaussian_filter(noisy, sigma_px, mode="reflect") if clean is None else np.asarray(clean, np.float64)
    if ref.shape != noisy.shape:
        raise ValueError(f"noisy {noisy.shape} and clean {ref.shape} differ in shape")
    r = noisy - ref
    return r - r.mean()


def estimate_noise_acf(residual: np.ndarray, *, max_lag: int = 3) -> np.ndarray:
    """Autocorrelation of a noise residual at lags ``-max_lag..max_lag`` on both axes.

    Parameters
    ----------
    residual : np.ndarray
        (H, W) or (N, H, W) zero-mean noise residual(s).
    max_lag : int
        Largest lag kept.

    Returns
    -------
    np.ndarray
        (2·max_lag+1, 2·max_lag+1) float64; the centre is the noise variance.
    """
    r = np.asarray(residual, dtype=np.float64)
    stack = r[None] if r.ndim == 2 else r
    acc = np.zeros((2 * max_lag + 1, 2 * max_lag + 1))
    for img in stack:
        h, w = img.shape
        f = np.fft.rfft2(img - img.mean(), s=(2 * h, 2 * w))  # zero-padded: linear, not circular
        ac = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))
        ac = np.fft.fftshift(ac)[h - max_lag : h + max_lag + 1, w - max_lag : w + max_lag + 1]
        lags_y = h - np.abs(np.arange(-max_lag, max_lag + 1))
        lags_x = w - np.abs(np.arange(-max_lag, max_lag + 1))
        acc += ac / np.outer(lags_y, lags_x)  # unbiased per-lag normalisation
    return acc / len(stack)


def psd_from_acf(acf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bm3d's PSD for an ``(M, N)`` image: ``M·N`` times the DFT of the (wrapped) ``acf``.

    White noise of variance v gives ``M·N·v`` everywhere, as in bm3d's own examples. Values are
    clipped at 1 % of the mean, since a truncated estimated ACF can dip below zero.
    """
    acf = np.asarray(acf, dtype=np.float64)
    m, n = shape
    ly, lx = acf.shape[0] // 2, acf.shape[1] // 2
    if m <= 2 * ly or n <= 2 * lx:
        raise ValueError(f"tile {shape} too small for a noise ACF of shape {acf.shape}")
    wrapped = np.zeros((m, n))
    for i in range(-ly, ly + 1):
        for j in range(-lx, lx + 1):
            wrapped[i % m, j % n] += acf[i + ly, j + lx]
    psd = np.real(np.fft.fft2(wrapped))
    psd = np.maximum(psd, 0.01 * psd.mean())
    return psd * m * n


def _import_bm3d():
    try:
        import bm3d
    except ImportError as exc:
        raise ImportError(
            "method 'bm3d' needs the optional package 'bm3d' (non-commercial licence): pip install 'sem-denoise[bm3d]'"
        ) from exc
    if not hasattr(np, "trapz"):
        # bm3d 4.0.3 calls np.trapz with a full PSD; numpy 2.4 removed it in favour of np.trapezoid.
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    return bm3d


@register_denoiser("bm3d")
@dataclass(frozen=True)
class Bm3dDenoiser:
    """BM3D (both stages) with ``psd_mode`` ``"white"`` (``sigma``) or ``"coloured"`` (``noise_acf``).

    ``search_window`` (odd) sets both stages' block-matching window. The halo covers both stages'
    matching and aggregation (≥ search window + patch size per stage) and tiles start on the
    reference-block step grid of 3 px (``chunk_multiple``). Even so, tiled output is NOT exactly the
    whole-image output: the bm3d package's result depends on the whole input it is given (measured:
    the same image mirror-padded by 48 or by 60 px differs by up to 0.02 inside), so seams of up to a
    few 1e-3 (well under one uint8 grey level on average) remain; every other method is exact. bm3d runs single-threaded
    (``num_threads = 1``), the only setting under which concurrent calls from several Python
    threads are safe; parallelism comes from the tiles.
    """

    sigma: float = 0.05
    psd_mode: Literal["white", "coloured"] = "white"
    noise_acf: tuple[tuple[float, ...], ...] | None = None
    search_window: int = 39
    name: ClassVar[str] = "bm3d"

    def __post_init__(self) -> None:
        _import_bm3d()
        if self.psd_mode == "coloured" and self.noise_acf is None:
            raise ValueError("bm3d psd_mode='coloured' needs noise_acf (see estimate_noise_acf)")
        if self.psd_mode not in ("white", "coloured"):
            raise ValueError(f"bm3d psd_mode must be 'white' or 'coloured', got {self.psd_mode!r}")
        if self.noise_acf is not None:  # lists from YAML/JSON -> hashable tuples
            object.__setattr__(self, "noise_acf", tuple(tuple(float(v) for v in row) for row in self.noise_acf))

    @property
    def halo(self) -> int:
        # ≥ two stages × (search_window // 2 + 2 × block size 8); no halo makes bm3d exact (see above).
        return 2 * (int(self.search_window) // 2 + 16) + 6

    @property
    def chunk_multiple(self) -> int:
        """Reference blocks sit on a 3-pixel grid (step 3): tiles must start on it."""
        return 3

    def _profile(self):
        bm3d = _import_bm3d()
        p = bm3d.BM3DProfile()
        p.num_threads = 1
        p.search_window_ht = int(self.search_window)
        p.search_window_wiener = int(self.search_window)
        return p

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        bm3d = _import_bm3d()
        x = np.asarray(tile, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"denoisers take 2-D (H, W) tiles, got shape {x.shape}")
        if self.psd_mode == "coloured":
            noise = psd_from_acf(np.asarray(self.noise_acf), x.shape)
        else:
            noise = float(self.sigma)
        return np.asarray(bm3d.bm3d(x, noise, profile=self._profile()), dtype=np.float32)
