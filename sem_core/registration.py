"""Rigid sub-pixel registration of an image pair, and their mean brightness offset.

Sign convention (the one of ``skimage.registration.phase_cross_correlation``): :func:`estimate_shift`
returns ``(dy, dx)`` such that ``apply_shift(moving, (dy, dx))`` aligns ``moving`` onto ``reference``,
i.e. ``apply_shift(moving, (dy, dx))[r, c] ≈ moving[r - dy, c - dx] ≈ reference[r, c]``. If ``moving`` is
``reference`` translated down by 2 rows (``moving[r + 2] = reference[r]``), the estimate is ``(-2, 0)``.

Why a border cut and a window: SEM software draws a 1-px frame at the image edge, identical in both images of
a pair. Phase correlation on the full images locks onto that frame (and onto the wrap-around edges of the
FFT) and returns (0, 0). Cutting ``border_px`` pixels on each side and multiplying by a Hann window removes
both, so the specimen decides the shift.

Two measured choices (synthetic blurred "balls" with noise and a frame, 24 seeds, shifts up to 3 px):
plain cross-correlation (``normalization=None``), because phase normalisation whitens the spectrum and gives
the pure-noise high frequencies of a blurred noisy SEM image full weight (errors up to 1.2 px vs 0.26 px);
and an integer pre-alignment (exact, no interpolation) before the sub-pixel pass, because the window biases a
shift of several pixels towards zero. With both, 20 seeds (160x192, noise sigma 0.05 on a 0.65 contrast)
gave a median error of 0.05 px and a maximum of 0.12 px; the 50 Tin-balls pairs give a mean of (-2.11, +0.56).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.fft import fft2, next_fast_len
from skimage.filters import window
from skimage.registration import phase_cross_correlation

__all__ = ["estimate_shift", "apply_shift", "estimate_offset", "valid_slices"]


@lru_cache(maxsize=8)
def _hann(shape: tuple[int, int]) -> np.ndarray:
    """2-D Hann window of ``shape`` (skimage's rotational one), cached: building it costs a warp."""
    win = window("hann", shape)
    win.setflags(write=False)
    return win


def _central(image: np.ndarray, border_px: int, name: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) image, got shape {img.shape}")
    if border_px < 0:
        raise ValueError(f"border_px must be >= 0, got {border_px}")
    h, w = img.shape
    if h - 2 * border_px < 8 or w - 2 * border_px < 8:
        raise ValueError(f"{name} of shape {img.shape} is too small for border_px={border_px}")
    return img[border_px : h - border_px, border_px : w - border_px].astype(np.float64)


def _fast_crop(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Centred slices whose lengths factor into 2, 3, 5 (fast FFTs; e.g. 426 -> 405, 496 -> 486)."""
    out = []
    for n in shape:
        m = n
        while next_fast_len(m, real=False) != m or any(m % p == 0 for p in (7, 11)):
            m -= 1
        start = (n - m) // 2
        out.append(slice(start, start + m))
    return out[0], out[1]


def _correlate(ref_fft: np.ndarray, mov: np.ndarray, win: np.ndarray, upsample: int) -> np.ndarray:
    mov_fft = fft2((mov - mov.mean()) * win)
    shift, _, _ = phase_cross_correlation(
        ref_fft, mov_fft, space="fourier", upsample_factor=upsample, normalization=None
    )
    return np.asarray(shift, dtype=np.float64)


def estimate_shift(
    reference: np.ndarray, moving: np.ndarray, *, border_px: int = 8, upsample: int = 20, prealign: bool = True
) -> tuple[float, float]:
    """Sub-pixel translation that aligns ``moving`` onto ``reference`` (see the module's sign convention).

    Parameters
    ----------
    reference, moving : np.ndarray
        (H, W) images of the same shape, any real dtype (e.g. the noisy and the clean image of a pair).
    border_px : int
        Pixels cut on every side before correlating (drops the microscope's frame).
    upsample : int
        Upsampling factor of the cross-correlation: precision ``1 / upsample`` px.
    prealign : bool
        First find the integer shift, move ``moving`` by it (exactly, no interpolation), then estimate the
        sub-pixel residual. False: one windowed pass, biased towards zero for shifts of several pixels.

    Returns
    -------
    (dy, dx) : tuple of float
        Rows and columns to move ``moving`` by.
    """
    if np.shape(reference) != np.shape(moving):
        raise ValueError(f"shapes differ: reference {np.shape(reference)} vs moving {np.shape(moving)}")
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1, got {upsample}")
    ref = _central(reference, border_px, "reference")
    crop = _fast_crop(ref.shape)
    ref = ref[crop]
    win = _hann(ref.shape)
    ref_fft = fft2((ref - ref.mean()) * win)
    moving = np.asarray(moving)
    if not prealign:
        return tuple(float(v) for v in _correlate(ref_fft, _central(moving, border_px, "moving")[crop], win, upsample))
    coarse = _correlate(ref_fft, _central(moving, border_px, "moving")[crop], win, 1)
    moved = apply_shift(moving, (coarse[0], coarse[1]), order="integer")
    fine = _correlate(ref_fft, _central(moved, border_px, "moving")[crop], win, upsample)
    return float(coarse[0] + fine[0]), float(coarse[1] + fine[1])


def apply_shift(image: np.ndarray, shift: tuple[float, float], *, order: int | str = 1) -> np.ndarray:
    """Translate ``image`` by ``shift = (dy, dx)``: ``out[r, c] = image[r - dy, c - dx]``.

    Parameters
    ----------
    image : np.ndarray
        (H, W) image.
    shift : (float, float)
        Rows and columns (e.g. from :func:`estimate_shift`).
    order : int, "integer" or "linear"
        ``"integer"``: move by the rounded shift, no interpolation, dtype kept. An int 0–5: spline order of
        ``scipy.ndimage.shift`` (``"linear"`` = 1, bilinear), result float32.
        In both cases the vacated border repeats the nearest edge pixel; use :func:`valid_slices` to score
        only pixels that exist in both images.

    Returns
    -------
    np.ndarray
        (H, W), dtype of ``image`` for ``"integer"``, else float32.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {img.shape}")
    dy, dx = (float(s) for s in shift)
    if order == "integer":
        iy, ix = int(round(dy)), int(round(dx))
        if iy == 0 and ix == 0:
            return img.copy()
        return ndimage.shift(img, (iy, ix), order=0, mode="nearest")
    if order == "linear":
        order = 1
    if isinstance(order, str) or not 0 <= int(order) <= 5:
        raise ValueError(f"order must be 'integer', 'linear' or an int in 0..5, got {order!r}")
    return ndimage.shift(img.astype(np.float32), (dy, dx), order=int(order), mode="nearest").astype(np.float32)


def valid_slices(shape: tuple[int, int], shift: tuple[float, float]) -> tuple[slice, slice]:
    """Rows and columns of an image of ``shape`` that stay valid after :func:`apply_shift` by ``shift``.

    Pixels outside these slices were filled from the edge; the slices drop ``ceil(|shift|)`` on the side the
    image moved away from.
    """
    h, w = shape
    out = []
    for size, s in ((h, shift[0]), (w, shift[1])):
        n = int(np.ceil(abs(float(s)) - 1e-9))
        out.append(slice(n, size) if s > 0 else slice(0, size - n))
    return out[0], out[1]


def estimate_offset(reference: np.ndarray, moving: np.ndarray, *, border_px: int = 8) -> float:
    """Mean brightness offset ``mean(reference) - mean(moving)`` over the central region.

    ``moving + offset`` has the same mean as ``reference`` (grey levels of the input dtype, float).
    """
    if np.shape(reference) != np.shape(moving):
        raise ValueError(f"shapes differ: reference {np.shape(reference)} vs moving {np.shape(moving)}")
    return float(_central(reference, border_px, "reference").mean() - _central(moving, border_px, "moving").mean())
