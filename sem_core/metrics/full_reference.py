"""Full-reference image quality metrics on single (H, W) images.

Every function takes the image under test first and the reference second, both
(H, W) arrays of any real dtype (computed in float64), and an explicit
``data_range`` (the span of possible values, e.g. 255 for 8-bit, 1.0 for images
scaled to [0, 1]). Nothing is inferred from the data.

Metrics
-------
- :func:`compute_psnr` -- peak signal-to-noise ratio in dB (``inf`` for identical images).
- :func:`compute_ssim` -- scikit-image's SSIM (7x7 uniform window, K1=0.01, K2=0.03), unchanged.
- :func:`compute_ms_ssim` -- multi-scale SSIM (Wang, Simoncelli & Bovik 2003) as pytorch-msssim defines it,
  11x11 Gaussian window (sigma 1.5), up to 5 scales; small images use fewer scales (see its docstring).
- :func:`compute_uiqi` -- universal image quality index (Wang & Bovik 2002) on 8x8 sliding windows.
- :func:`compute_edge_preservation` -- correlation of Laplacian-of-Gaussian responses inside the
  clean image's edge band.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity

__all__ = [
    "compute_psnr",
    "compute_ssim",
    "compute_ssim_map",
    "compute_ms_ssim",
    "compute_uiqi",
    "compute_edge_preservation",
    "MS_SSIM_WEIGHTS",
]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of MS-SSIM (Wang et al. 2003), finest scale first."""


def _pair(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(image, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected two (H, W) arrays of the same shape, got {x.shape} and {y.shape}")
    return x, y


def _check_range(data_range: float) -> float:
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return float(data_range)


def compute_psnr(image: np.ndarray, reference: np.ndarray, *, data_range: float) -> float:
    """PSNR = 10 log10(data_range^2 / MSE) in dB.

    Parameters
    ----------
    image, reference : (H, W) array
    data_range : float
        Peak-to-peak range of the pixel values (255 for uint8).

    Returns
    -------
    float
        ``inf`` when the images are identical.
    """
    x, y = _pair(image, reference)
    rng = _check_range(data_range)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(rng * rng / mse))


def compute_ssim(image: np.ndarray, reference: np.ndarray, *, data_range: float) -> float:
    """Mean SSIM exactly as ``skimage.metrics.structural_similarity`` with its defaults.

    (7x7 uniform window, K1=0.01, K2=0.03, sample covariance, border of 3 px
    excluded from the mean.)
    """
    x, y = _pair(image, reference)
    return float(structural_similarity(x, y, data_range=_check_range(data_range)))


def compute_ssim_map(image: np.ndarray, reference: np.ndarray, *, data_range: float) -> np.ndarray:
    """(H, W) float64 SSIM map of :func:`compute_ssim` (used to score regions, e.g. defects)."""
    x, y = _pair(image, reference)
    _, smap = structural_similarity(x, y, data_range=_check_range(data_range), full=True)
    return np.asarray(smap, dtype=np.float64)


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of ``img`` with the 1-D window ``g`` on both axes."""
    from numpy.lib.stride_tricks import sliding_window_view

    rows = sliding_window_view(img, g.size, axis=0) @ g
    return sliding_window_view(rows, g.size, axis=1) @ g


def _ssim_cs(x: np.ndarray, y: np.ndarray, g: np.ndarray, c1: float, c2: float) -> tuple[float, float]:
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mx * mx
    syy = _filter_valid(y * y, g) - my * my
    sxy = _filter_valid(x * y, g) - mx * my
    cs = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def _pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling as ``torch.nn.functional.avg_pool2d(x, 2, padding=[h % 2, w % 2])``.

    An odd axis gets one zero in front (the zero padding at the back is never reached by a
    window) and every window is divided by 4 (``count_include_pad``): sizes ``n -> ceil(n / 2)``.
    """
    for axis in (0, 1):
        if x.shape[axis] % 2:
            pad = [(0, 0), (0, 0)]
            pad[axis] = (1, 0)
            x = np.pad(x, pad)
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) / 4.0


def select_scales(side: int, *, win_size: int = 11, max_scales: int = 5) -> int:
    """Number of MS-SSIM scales for an image whose smaller side is ``side`` px.

    ``max_scales`` when ``side > (win_size - 1) * 2**(max_scales - 1)`` (pytorch-msssim's own
    condition, 160 px for 5 scales); otherwise the largest ``S`` whose coarsest level
    ``side // 2**(S-1)`` still holds a whole window (the same rule as
    :func:`sem_core.losses.select_ms_ssim_scales`).
    """
    if side > (win_size - 1) * 2 ** (max_scales - 1):
        return max_scales
    scales = 1
    while scales < max_scales and side // 2**scales >= win_size:
        scales += 1
    return scales


def compute_ms_ssim(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float,
    win_size: int = 11,
    win_sigma: float = 1.5,
    max_scales: int = 5,
) -> float:
    """Multi-scale SSIM with an explicit data range.

    The definition of ``pytorch_msssim.ms_ssim`` (the training loss's): Gaussian window,
    'valid' filtering, 2x2 average pooling between scales with one zero row/column of padding
    on odd sides (``avg_pool2d(padding=size % 2)``), the contrast-structure term at every scale
    but the coarsest, the full SSIM (with luminance) at the coarsest, negative terms clipped to 0.
    pytorch-msssim requires the smaller side to exceed ``(win_size - 1) * 16`` (160 px); smaller
    images use ``S`` = :func:`select_scales` scales with the first ``S`` standard weights
    renormalised to sum to 1 (as :func:`sem_core.losses.ms_ssim_index` does); with all five
    scales the standard weights are used as published (they sum to 1.0001), as pytorch-msssim
    does. Equal to pytorch-msssim in float64 to rounding, odd sizes included (tested).

    Raises
    ------
    ValueError
        If the image is smaller than ``win_size`` pixels.
    """
    x, y = _pair(image, reference)
    rng = _check_range(data_range)
    side = min(x.shape)
    if side < win_size:
        raise ValueError(f"MS-SSIM needs images of at least {win_size} px, got {x.shape}")
    scales = select_scales(side, win_size=win_size, max_scales=max_scales)
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    if scales < len(MS_SSIM_WEIGHTS):  # the standard five sum to 1.0001 and are used as they are
        weights /= weights.sum()
    g = _gaussian_window(win_size, win_sigma)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    values = []
    for level in range(scales):
        ssim_val, cs_val = _ssim_cs(x, y, g, c1, c2)
        if level < scales - 1:
            values.append(max(cs_val, 0.0))
            x, y = _pool2(x), _pool2(y)
        else:
            values.append(max(ssim_val, 0.0))
    return float(np.prod(np.asarray(values) ** weights))


def _box_mean(x: np.ndarray, win: int) -> np.ndarray:
    """Mean over every win x win window fully inside the image: (H-win+1, W-win+1)."""
    if min(x.shape) < win:
        raise ValueError(f"image {x.shape} is smaller than the {win}x{win} window")
    lo = win // 2
    hi_r, hi_c = x.shape[0] - (win - 1 - lo), x.shape[1] - (win - 1 - lo)
    return ndimage.uniform_filter(x, size=win, mode="constant")[lo:hi_r, lo:hi_c]


def compute_uiqi(image: np.ndarray, reference: np.ndarray, *, window: int = 8) -> float:
    """Universal image quality index Q (Wang & Bovik 2002), mean over sliding windows.

    For each ``window`` x ``window`` block (all positions fully inside the image)
    with means mx, my, variances sx^2, sy^2 and covariance sxy (population, 1/n)::

        Q = [2 mx my / (mx^2 + my^2)] * [2 sxy / (sx^2 + sy^2)]

    which equals the paper's 4 sxy mx my / ((sx^2 + sy^2)(mx^2 + my^2)).
    Flat windows, defined explicitly: the luminance factor is 1 when
    mx^2 + my^2 == 0 and the structure factor is 1 when sx^2 + sy^2 == 0
    (both windows constant). Hence two constant, equal windows score 1; two
    constant windows with different levels score 2 mx my / (mx^2 + my^2); a
    constant window against a textured one scores 0. "== 0" means below
    1e-12 times the squared largest absolute value of the pair (rounding).

    Returns
    -------
    float
        In [-1, 1]; 1 only for identical images.
    """
    x, y = _pair(image, reference)
    if window < 2:
        raise ValueError(f"UIQI window must be >= 2, got {window}")
    scale2 = max(float(np.max(np.abs(x))), float(np.max(np.abs(y))), 1e-300) ** 2
    tol = 1e-12 * scale2
    mx, my = _box_mean(x, window), _box_mean(y, window)
    # variances from centred data (shift-invariant, less rounding)
    xc, yc = x - x.mean(), y - y.mean()
    mxc, myc = _box_mean(xc, window), _box_mean(yc, window)
    exx, eyy, exy = _box_mean(xc * xc, window), _box_mean(yc * yc, window), _box_mean(xc * yc, window)
    sxx = np.maximum(exx - mxc * mxc, 0.0)
    syy = np.maximum(eyy - myc * myc, 0.0)
    sxy = exy - mxc * myc
    lum_den = mx * mx + my * my
    var_den = sxx + syy
    lum = np.where(lum_den > tol, 2.0 * mx * my / np.where(lum_den > tol, lum_den, 1.0), 1.0)
    struct = np.where(var_den > tol, 2.0 * sxy / np.where(var_den > tol, var_den, 1.0), 1.0)
    return float(np.mean(lum * struct))


def compute_edge_preservation(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    sigma: float = 1.0,
    band_px: int = 2,
) -> float:
    """Edge preservation index: correlation of Laplacians within the reference's edge band.

    The edge band is where the reference's Gaussian gradient magnitude (scale
    ``sigma``) is above its Otsu threshold, dilated by ``band_px`` pixels.
    Inside it, EPI is the Pearson correlation of the Laplacian-of-Gaussian
    (scale ``sigma``) responses of ``image`` and ``reference``. 1 for identical
    images and invariant to brightness offset and positive gain; lower when
    edges are blurred, displaced or buried in noise.

    Returns
    -------
    float
        In [-1, 1]; NaN if the reference has no edges (flat) or the image's
        Laplacian is constant in the band.
    """
    x, y = _pair(image, reference)
    grad = ndimage.gaussian_gradient_magnitude(y, sigma=sigma)
    if float(np.ptp(grad)) == 0.0:
        return float("nan")
    band = grad > threshold_otsu(grad)
    if band_px > 0:
        band = ndimage.binary_dilation(band, iterations=band_px)
    lx = ndimage.gaussian_laplace(x, sigma=sigma)[band]
    ly = ndimage.gaussian_laplace(y, sigma=sigma)[band]
    lx, ly = lx - lx.mean(), ly - ly.mean()
    den = float(np.sqrt(np.sum(lx * lx) * np.sum(ly * ly)))
    if den == 0.0:
        return float("nan")
    return float(np.sum(lx * ly) / den)
