"""Classical denoisers: Gaussian, median, bilateral, non-local means, total variation, wavelet.

Every method is *local with a fixed receptive field* and its ``halo`` covers it, so tiled and
whole-image results agree (see :mod:`sem_core.denoise.base`). Where a library routine depends on
global image statistics it is replaced or pinned:

- bilateral: scikit-image quantises colour distances on ``[0, image.max()]`` (a global value), so
  the filter is written here directly (exactly local);
- total variation (Chambolle): the stopping test is global, so it runs exactly ``n_iter``
  iterations (``eps=0``); each iteration after the first widens the receptive field by one pixel;
- wavelet: scikit-image's thresholds (BayesShrink / VisuShrink) use global statistics or the image
  size, so the threshold is a fixed parameter here; a decimated transform is shift-variant, so
  tiles must start on the ``2**levels`` grid: chunk sizes must be multiples of ``2**levels``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import ndimage

from .base import register_denoiser

__all__ = [
    "GaussianDenoiser",
    "MedianDenoiser",
    "BilateralDenoiser",
    "NlmDenoiser",
    "TvDenoiser",
    "WaveletDenoiser",
]


def _check_tile(tile: np.ndarray) -> np.ndarray:
    tile = np.asarray(tile, dtype=np.float32)
    if tile.ndim != 2:
        raise ValueError(f"denoisers take 2-D (H, W) tiles, got shape {tile.shape}")
    return tile


@register_denoiser("gaussian")
@dataclass(frozen=True)
class GaussianDenoiser:
    """Gaussian low-pass (``scipy.ndimage.gaussian_filter``), ``sigma_px`` in pixels."""

    sigma_px: float = 1.0
    truncate: float = 4.0
    name: ClassVar[str] = "gaussian"

    @property
    def halo(self) -> int:
        return int(self.truncate * self.sigma_px + 0.5)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(_check_tile(tile), self.sigma_px, mode="reflect", truncate=self.truncate)


@register_denoiser("median")
@dataclass(frozen=True)
class MedianDenoiser:
    """Square median filter of side ``size_px`` (``scipy.ndimage.median_filter``)."""

    size_px: int = 3
    name: ClassVar[str] = "median"

    @property
    def halo(self) -> int:
        return int(self.size_px) // 2

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return ndimage.median_filter(_check_tile(tile), size=int(self.size_px), mode="reflect")


@register_denoiser("bilateral")
@dataclass(frozen=True)
class BilateralDenoiser:
    """Bilateral filter: weights ``exp(-d²/2σs²) · exp(-ΔI²/2σc²)`` over a square window.

    ``sigma_color`` is on the unit intensity scale; the window side is
    ``max(5, 2·ceil(3·sigma_spatial) + 1)`` as in scikit-image.
    """

    sigma_color: float = 0.1
    sigma_spatial: float = 1.5
    name: ClassVar[str] = "bilateral"

    @property
    def halo(self) -> int:
        return max(5, 2 * math.ceil(3 * self.sigma_spatial) + 1) // 2

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        x = _check_tile(tile).astype(np.float64)
        r = self.halo
        pad = np.pad(x, r, mode="symmetric")
        num = np.zeros_like(x)
        den = np.zeros_like(x)
        inv_c = -0.5 / self.sigma_color**2
        inv_s = -0.5 / self.sigma_spatial**2
        h, w = x.shape
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                shifted = pad[r + dy : r + dy + h, r + dx : r + dx + w]
                wgt = np.exp(inv_c * (shifted - x) ** 2 + inv_s * (dy * dy + dx * dx))
                num += wgt * shifted
                den += wgt
        return (num / den).astype(np.float32)


@register_denoiser("nlm")
@dataclass(frozen=True)
class NlmDenoiser:
    """Non-local means (``skimage.restoration.denoise_nl_means``, computed in float64).

    ``h`` is the patch-distance cut-off on the unit intensity scale, ``sigma`` the noise standard
    deviation (0: not used). The receptive field is ``patch_distance + patch_size // 2`` (search
    window plus the patch around each candidate), and the halo is exactly that: one pixel less
    shows at the seams (tested).
    """

    h: float = 0.08
    patch_size: int = 5
    patch_distance: int = 6
    sigma: float = 0.0
    fast_mode: bool = True
    name: ClassVar[str] = "nlm"

    @property
    def halo(self) -> int:
        return int(self.patch_distance) + int(self.patch_size) // 2

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_nl_means

        x = _check_tile(tile).astype(np.float64)
        out = denoise_nl_means(
            x, patch_size=int(self.patch_size), patch_distance=int(self.patch_distance),
            h=float(self.h), sigma=float(self.sigma), fast_mode=bool(self.fast_mode),
        )
        return out.astype(np.float32)


@register_denoiser("tv")
@dataclass(frozen=True)
class TvDenoiser:
    """Total-variation denoising (Chambolle), exactly ``n_iter`` iterations.

    ``weight``: larger is smoother (scikit-image's ``weight``, unit intensity scale). Iteration
    ``k`` (from 0) returns ``image + div p`` with ``p`` built from ``k`` forward-difference steps, so
    the output reaches ``n_iter - 1`` pixels: that is the halo (one pixel less shows at the seams).
    """

    weight: float = 0.1
    n_iter: int = 40
    name: ClassVar[str] = "tv"

    @property
    def halo(self) -> int:
        return max(0, int(self.n_iter) - 1)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        x = _check_tile(tile)
        return denoise_tv_chambolle(x, weight=float(self.weight), eps=0.0, max_num_iter=int(self.n_iter)).astype(
            np.float32
        )


@register_denoiser("wavelet")
@dataclass(frozen=True)
class WaveletDenoiser:
    """Soft/hard thresholding of a ``levels``-level 2-D DWT (PyWavelets) with a fixed ``threshold``.

    Tiles must start on the ``2**levels`` pixel grid relative to the image origin (use chunk sizes
    that are multiples of ``2**levels``); the halo covers the synthesis + analysis filter support.
    """

    threshold: float = 0.06
    wavelet: str = "db2"
    levels: int = 3
    mode: str = "soft"
    name: ClassVar[str] = "wavelet"

    @property
    def halo(self) -> int:
        import pywt

        flen = pywt.Wavelet(self.wavelet).dec_len
        return 2 * (flen - 1) * 2 ** int(self.levels) + 2 ** int(self.levels)

    @property
    def chunk_multiple(self) -> int:
        """The decimated transform is shift-variant: tiles must start on the ``2**levels`` grid."""
        return 2 ** int(self.levels)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        import pywt

        x = _check_tile(tile).astype(np.float64)
        with warnings.catch_warnings():  # small tiles: "all coefficients will experience boundary effects";
            warnings.filterwarnings("ignore", message="Level value", category=UserWarning)  # the halo absorbs them
            coeffs = pywt.wavedec2(x, self.wavelet, level=int(self.levels), mode="symmetric")
        out = [coeffs[0]] + [
            tuple(pywt.threshold(c, value=float(self.threshold), mode=self.mode) for c in detail)
            for detail in coeffs[1:]
        ]
        rec = pywt.waverec2(out, self.wavelet, mode="symmetric")
        return rec[: x.shape[0], : x.shape[1]].astype(np.float32)
