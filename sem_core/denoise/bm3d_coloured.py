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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy import ndimage

from .base import register_denoiser

__all__ = [
    "Bm3dDenoiser",
    "estimate_noise_acf",
    "estimate_pairs_noise_acf",
    "estimate_noise_residual",
    "psd_from_acf",
    "forward_gat",
    "inverse_gat",
]


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


def estimate_pairs_noise_acf(
    noisy: Iterable[np.ndarray], clean: Iterable[np.ndarray], *, border_px: int = 0, max_lag: int = 3,
    max_value: float = 255.0,
) -> np.ndarray:
    """Noise ACF on the unit scale from aligned training pairs (``noisy − clean``, ``border_px`` cut).

    Parameters
    ----------
    noisy, clean : iterables of (H, W) arrays
        Matching pairs in grey levels (same shapes pairwise).
    border_px : int
        Pixels dropped on every side (e.g. the SEM's drawn frame).
    max_lag : int
        Largest lag kept.
    max_value : float
        Grey level that maps to 1.0.

    Returns
    -------
    np.ndarray
        (2·max_lag+1, 2·max_lag+1) float64, as :func:`estimate_noise_acf`.
    """
    b = int(border_px)
    crop = (slice(b, -b), slice(b, -b)) if b else (slice(None), slice(None))
    residuals = [(np.asarray(n, np.float64) - np.asarray(c, np.float64))[crop] / max_value
                 for n, c in zip(noisy, clean, strict=True)]
    return estimate_noise_acf(np.stack(residuals), max_lag=max_lag)


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


def forward_gat(x: np.ndarray, *, slope: float, intercept: float) -> np.ndarray:
    """Generalised Anscombe transform for noise of variance ``slope·mean + intercept``.

    With ``c = x / slope`` (unit-gain counts, read-noise variance ``s = intercept / slope²``) it is
    ``2·sqrt(max(c + 3/8 + s, 0))``: the noise becomes approximately unit-variance whatever the signal
    (Mäkitalo & Foi's Poisson–Gaussian transform). ``x`` (H, W) float; returns float64.
    """
    if slope <= 0:
        raise ValueError(f"GAT slope must be positive, got {slope}")
    c = np.asarray(x, dtype=np.float64) / slope
    return 2.0 * np.sqrt(np.maximum(c + 0.375 + intercept / slope**2, 0.0))


def inverse_gat(f: np.ndarray, *, slope: float, intercept: float) -> np.ndarray:
    """Asymptotically unbiased inverse of :func:`forward_gat`: ``slope·((f/2)² − 1/8 − s)``; float64."""
    f = np.asarray(f, dtype=np.float64)
    return slope * ((f / 2.0) ** 2 - 0.125 - intercept / slope**2)


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

    The bm3d package's result depends on the whole array it is given (the same image mirror-padded
    by 48 or by 60 px differs by up to 0.02 inside: its block grid and PSD follow the array), so
    running it on map_overlap blocks could never reproduce whole-image output. This method is
    therefore *defined* on a fixed grid of ``cell_px`` cells anchored at the tile's core origin:
    each cell is denoised by one bm3d call on the cell plus ``halo`` px of context on every side
    (real pixels inside the image, mirror padding outside), and only the cell is kept. Blocks that
    start on the cell grid (``chunk_multiple = cell_px``) then see exactly the same cell windows as
    the whole image does, so tiled output equals whole-image output bit for bit. The context
    (``search_window // 2 + 16`` ≥ matching radius + two block sizes) keeps every kept pixel's
    block matching inside real data; measured against one bm3d call on the whole image, the cell
    grid changes PSNR by a few hundredths of a dB (``bench/bm3d_cells.py``).

    SEM noise is signal-dependent (variance = slope·mean + intercept, :mod:`sem_core.synth.noise_stats`),
    while bm3d assumes a stationary PSD. With ``vst_slope`` set (unit scale, e.g. grey-level slope / 255
    and intercept / 255²), each window is variance-stabilised (:func:`forward_gat`), denoised with the
    noise's *correlation* (``noise_acf`` divided by its centre, so unit variance) and transformed back.

    ``search_window`` (odd) sets both stages' block-matching window. bm3d runs single-threaded
    (``num_threads = 1``), the only setting under which concurrent calls from several Python
    threads are safe; parallelism comes from the tiles.
    """

    sigma: float = 0.05
    psd_mode: Literal["white", "coloured"] = "white"
    noise_acf: tuple[tuple[float, ...], ...] | None = None
    search_window: int = 39
    cell_px: int = 512
    vst_slope: float | None = None
    vst_intercept: float = 0.0
    name: ClassVar[str] = "bm3d"

    def __post_init__(self) -> None:
        _import_bm3d()
        if self.psd_mode == "coloured" and self.noise_acf is None:
            raise ValueError("bm3d psd_mode='coloured' needs noise_acf (see estimate_noise_acf)")
        if self.psd_mode not in ("white", "coloured"):
            raise ValueError(f"bm3d psd_mode must be 'white' or 'coloured', got {self.psd_mode!r}")
        if self.vst_slope is not None and self.vst_slope <= 0:
            raise ValueError(f"bm3d vst_slope must be positive, got {self.vst_slope}")
        if int(self.cell_px) < 16:
            raise ValueError(f"bm3d cell_px must be at least 16, got {self.cell_px}")
        if self.noise_acf is not None:  # lists from YAML/JSON -> hashable tuples
            object.__setattr__(self, "noise_acf", tuple(tuple(float(v) for v in row) for row in self.noise_acf))

    @property
    def halo(self) -> int:
        """Context around each cell: the block-matching radius plus two block sizes (8 px)."""
        return int(self.search_window) // 2 + 16

    @property
    def chunk_multiple(self) -> int:
        """Blocks must start on the cell grid for tiled output to equal whole-image output."""
        return int(self.cell_px)

    def _profile(self):
        bm3d = _import_bm3d()
        p = bm3d.BM3DProfile()
        p.num_threads = 1
        p.search_window_ht = int(self.search_window)
        p.search_window_wiener = int(self.search_window)
        return p

    def denoise_window(self, window: np.ndarray) -> np.ndarray:
        """One bm3d call on a whole (H, W) float32 array (no cells); returns (H, W) float32."""
        bm3d = _import_bm3d()
        x = np.ascontiguousarray(window, dtype=np.float32)
        if self.vst_slope is None:
            noise = psd_from_acf(np.asarray(self.noise_acf), x.shape) if self.psd_mode == "coloured" else float(self.sigma)
            return np.asarray(bm3d.bm3d(x, noise, profile=self._profile()), dtype=np.float32)
        gat = {"slope": float(self.vst_slope), "intercept": float(self.vst_intercept)}
        f = forward_gat(x, **gat)
        if self.psd_mode == "coloured":
            acf = np.asarray(self.noise_acf)
            noise = psd_from_acf(acf / acf[acf.shape[0] // 2, acf.shape[1] // 2], x.shape)
        else:
            noise = 1.0
        return inverse_gat(bm3d.bm3d(f, noise, profile=self._profile()), **gat).astype(np.float32)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        """Denoise the core of ``tile`` (its central part, ``halo`` px in from each side) cell by cell.

        The ``halo`` border of the result is the input unchanged (callers crop it).
        """
        x = np.asarray(tile, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"denoisers take 2-D (H, W) tiles, got shape {x.shape}")
        h, c = self.halo, int(self.cell_px)
        core_h, core_w = x.shape[0] - 2 * h, x.shape[1] - 2 * h
        if core_h <= 0 or core_w <= 0:
            raise ValueError(f"bm3d tile {x.shape} has no core inside its {h}-px halo")
        out = x.copy()
        for r in range(0, core_h, c):
            for q in range(0, core_w, c):
                ch, cw = min(c, core_h - r), min(c, core_w - q)
                den = self.denoise_window(x[r : r + ch + 2 * h, q : q + cw + 2 * h])
                out[h + r : h + r + ch, h + q : h + q + cw] = den[h : h + ch, h : h + cw]
        return out
