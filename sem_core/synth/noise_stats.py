"""The one estimator of noise statistics, used for real and for simulated noisy/clean pairs.

Given an aligned pair (noisy, clean) of grey images, the residual ``r = noisy - clean`` is
measured in *flat* regions of the clean image (small gradient, eroded away from edges), after
removing the mean brightness offset and slow offsets (a wide local mean of ``r`` inside the
flat mask). From it: the noise variance per clean-intensity bin and a weighted linear fit
``var = slope * I + intercept``; the autocorrelation along x (fast-scan axis) at lags 1..3 and
along y at lag 1; the skewness of the standardised residual; the clipped fractions; and,
optionally, the edge blur (Gaussian sigma that best maps clean onto noisy).

Because real and simulated data go through exactly this code, its biases (mask, offset
removal, binning) cancel when the two are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import minimize_scalar

__all__ = ["NoiseStats", "measure_direction", "measure_noise_stats", "aggregate_noise_stats", "fit_variance_law", "make_flat_mask"]


@dataclass(frozen=True)
class NoiseStats:
    """Noise statistics of one pair, or aggregated over pairs (grey levels of the input images).

    ``bin_intensity``, ``bin_variance`` and ``bin_count`` hold the per-bin data behind the fit
    (only bins with enough flat pixels), ``bin_clipped`` the number of clipped noisy pixels per bin
    (left out of the variance); the fit uses the bins with at most ``max_bin_clip`` clipped.
    """

    slope: float
    intercept: float
    acf_x: tuple[float, float, float]
    acf_y1: float
    skew: float
    clip_high: float
    clip_low: float
    edge_sigma: float
    n_flat: int
    offset: float
    asym_x1: float = float("nan")
    grad_corr_x: float = float("nan")
    bin_intensity: tuple[float, ...] = field(default=())
    bin_variance: tuple[float, ...] = field(default=())
    bin_count: tuple[int, ...] = field(default=())
    bin_clipped: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def summary(self) -> dict[str, float]:
        """Flat scalar figures: slope, intercept, acf_x1..3, acf_y1, skew, clip_high, clip_low, edge_sigma,
        asym_x1, grad_corr_x."""
        return {
            "slope": self.slope, "intercept": self.intercept,
            "acf_x1": self.acf_x[0], "acf_x2": self.acf_x[1], "acf_x3": self.acf_x[2],
            "acf_y1": self.acf_y1, "skew": self.skew, "clip_high": self.clip_high,
            "clip_low": self.clip_low, "edge_sigma": self.edge_sigma,
            "asym_x1": self.asym_x1, "grad_corr_x": self.grad_corr_x,
        }


def make_flat_mask(clean: np.ndarray, *, grad_sigma: float = 1.0, grad_max: float = 3.0, erode_px: int = 2) -> np.ndarray:
    """Boolean (H, W) mask of flat regions: Gaussian gradient magnitude of ``clean`` below ``grad_max``
    grey levels per pixel, eroded by ``erode_px`` pixels."""
    grad = ndi.gaussian_gradient_magnitude(np.asarray(clean, dtype=np.float64), grad_sigma)
    mask = grad < grad_max
    if erode_px > 0:
        mask = ndi.binary_erosion(mask, iterations=erode_px, border_value=1)
    return mask


def fit_variance_law(intensity: np.ndarray, variance: np.ndarray, count: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares line ``variance = slope * intensity + intercept``.

    Weights are ``count / variance**2`` (the inverse sampling variance of a variance estimate, up
    to a constant). Returns ``(nan, nan)`` with fewer than two bins.
    """
    intensity, variance, count = (np.asarray(a, dtype=np.float64) for a in (intensity, variance, count))
    ok = np.isfinite(variance) & (variance > 0) & (count > 0)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    w = count[ok] / variance[ok] ** 2
    slope, intercept = np.polyfit(intensity[ok], variance[ok], 1, w=np.sqrt(w))
    return float(slope), float(intercept)


def _masked_corr(r: np.ndarray, mask: np.ndarray, *, dy: int, dx: int) -> float:
    h, w = r.shape
    a = r[: h - dy, : w - dx]
    b = r[dy:, dx:]
    m = mask[: h - dy, : w - dx] & mask[dy:, dx:]
    if m.sum() < 10:
        return float("nan")
    a, b = a[m], b[m]
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def measure_direction(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Left-right statistics of the residual ``r = noisy - clean`` (whole image, standardised).

    Returns
    -------
    asym_x1 : float
        Third-order lag-1 asymmetry along x, ``mean(r[x+1] r[x]^2) - mean(r[x] r[x+1]^2)``: zero for noise whose
        statistics are the same mirrored; shot noise through a causal detector filter makes it positive.
    grad_corr_x : float
        Correlation of ``r[:, x]`` with the clean image's forward difference ``clean[:, x+1] - clean[:, x]``:
        a left-right displacement (or smear) of the noisy image relative to the clean one.
    """
    r = np.asarray(noisy, np.float64) - np.asarray(clean, np.float64)
    sd = r.std()
    if sd == 0:
        return 0.0, 0.0
    r = (r - r.mean()) / sd
    asym = float(np.mean(r[:, 1:] * r[:, :-1] ** 2) - np.mean(r[:, :-1] * r[:, 1:] ** 2))
    grad = np.diff(np.asarray(clean, np.float64), axis=1)
    corr = float(np.corrcoef(r[:, :-1].ravel(), grad.ravel())[0, 1]) if grad.std() > 0 else 0.0
    return asym, corr


def _edge_sigma(noisy: np.ndarray, clean: np.ndarray, edges: np.ndarray) -> float:
    if edges.sum() < 50:
        return float("nan")

    def loss(sigma: float) -> float:
        blurred = ndi.gaussian_filter(clean, sigma) if sigma > 1e-3 else clean
        return float(np.mean((blurred[edges] - noisy[edges]) ** 2))

    res = minimize_scalar(loss, bounds=(0.0, 5.0), method="bounded", options={"xatol": 0.01})
    return float(res.x)


def measure_noise_stats(
    noisy: np.ndarray,
    clean: np.ndarray,
    *,
    border_px: int = 8,
    grad_sigma: float = 1.0,
    grad_max: float = 3.0,
    erode_px: int = 2,
    local_mean_px: int = 41,
    bin_width: float = 8.0,
    min_bin_count: int = 200,
    max_value: float = 255.0,
    max_bin_clip: float = 0.01,
    min_fit_intensity: float = 0.0,
    edge_blur: bool = False,
) -> NoiseStats:
    """Measure the noise statistics of an aligned pair.

    Parameters
    ----------
    noisy, clean : ndarray (H, W), any real dtype
        Aligned images in grey levels (the clean one already shifted onto the noisy one).
    border_px : int
        Pixels cut from every side before anything (frame lines, shift wrap-around).
    grad_sigma, grad_max, erode_px
        Flat-region mask, see :func:`make_flat_mask`.
    local_mean_px : int
        Width of the box whose (flat-masked) mean of the residual is subtracted (slow offsets).
    bin_width, min_bin_count
        Clean-intensity bins for the variance law; bins with fewer flat pixels are dropped.
    max_value : float
        The clipping level (255 for 8 bit). Noisy pixels at 0 or ``max_value`` are left out of the
        statistics, and bins where more than ``max_bin_clip`` of the flat pixels are clipped (their
        variance is truncated) are left out of the variance fit, as are bins darker than
        ``min_fit_intensity``.
    edge_blur : bool
        Also fit the Gaussian sigma (px) that best maps clean onto noisy near edges (slower).

    Returns
    -------
    NoiseStats
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    if noisy.shape != clean.shape or noisy.ndim != 2:
        raise ValueError(f"need two 2-D images of one shape, got {noisy.shape} and {clean.shape}")
    b = int(border_px)
    if b > 0:
        noisy, clean = noisy[b:-b, b:-b], clean[b:-b, b:-b]
    clip_high = float(np.mean(noisy >= max_value))
    clip_low = float(np.mean(noisy <= 0))
    flat = make_flat_mask(clean, grad_sigma=grad_sigma, grad_max=grad_max, erode_px=erode_px)
    # Clipped pixels carry no noise information: keep them out of the statistics.
    unclipped = (noisy < max_value) & (noisy > 0)
    flat_clipped = flat & ~unclipped
    flat &= unclipped
    if flat.sum() < min_bin_count:
        raise ValueError(f"only {int(flat.sum())} flat pixels: cannot measure noise statistics")
    r = noisy - clean
    offset = float(np.mean(r[flat]))
    r = r - offset
    rm = np.where(flat, r, 0.0)
    num = ndi.uniform_filter(rm, local_mean_px, mode="reflect")
    den = ndi.uniform_filter(flat.astype(np.float64), local_mean_px, mode="reflect")
    r = r - num / np.maximum(den, 1e-9)
    rf, cf = r[flat], clean[flat]
    edges = np.arange(0.0, max_value + bin_width, bin_width)
    idx = np.clip(np.digitize(cf, edges) - 1, 0, len(edges) - 2)
    count = np.bincount(idx, minlength=len(edges) - 1)
    s1 = np.bincount(idx, weights=cf, minlength=len(edges) - 1)
    s2 = np.bincount(idx, weights=rf * rf, minlength=len(edges) - 1)
    clipped = np.bincount(np.clip(np.digitize(clean[flat_clipped], edges) - 1, 0, len(edges) - 2),
                          minlength=len(edges) - 1)
    keep = count >= min_bin_count
    b_int = s1[keep] / count[keep]
    b_var = s2[keep] / count[keep]
    b_cnt = count[keep]
    b_clip = clipped[keep]
    usable = (b_clip <= max_bin_clip * (b_cnt + b_clip)) & (b_int >= min_fit_intensity)
    slope, intercept = fit_variance_law(b_int[usable], b_var[usable], b_cnt[usable])
    # Standardise by the bin's own variance (robust where the linear law is poor, e.g. near 0).
    var_all = s2 / np.maximum(count, 1)
    z = rf / np.sqrt(np.maximum(var_all[idx], 1e-6))
    skew = float(np.mean((z - z.mean()) ** 3) / np.std(z) ** 3)
    acf_x = tuple(_masked_corr(r, flat, dy=0, dx=k) for k in (1, 2, 3))
    acf_y1 = _masked_corr(r, flat, dy=1, dx=0)
    asym_x1, grad_corr_x = measure_direction(noisy, clean)
    sigma = float("nan")
    if edge_blur:
        edge_region = ndi.binary_dilation(~make_flat_mask(clean, grad_sigma=grad_sigma, grad_max=grad_max, erode_px=0), iterations=2)
        edge_region &= (noisy < max_value) & (noisy > 0)
        sigma = _edge_sigma(noisy, clean, edge_region)
    return NoiseStats(
        slope=slope, intercept=intercept, acf_x=acf_x, acf_y1=acf_y1, skew=skew,
        clip_high=clip_high, clip_low=clip_low, edge_sigma=sigma, n_flat=int(flat.sum()), offset=offset,
        asym_x1=asym_x1, grad_corr_x=grad_corr_x,
        bin_intensity=tuple(float(v) for v in b_int), bin_variance=tuple(float(v) for v in b_var),
        bin_count=tuple(int(v) for v in b_cnt), bin_clipped=tuple(int(v) for v in b_clip),
    )


def aggregate_noise_stats(stats: Sequence[NoiseStats], *, bin_width: float = 8.0, max_value: float = 255.0,
                          max_bin_clip: float = 0.01, min_fit_intensity: float = 0.0) -> NoiseStats:
    """Pool several pairs' statistics into one.

    The per-bin variances are pooled (count-weighted, bins matched by intensity to ``bin_width``)
    and the variance law refitted; correlations, skew and clip fractions are averaged with weights
    ``n_flat`` (clip fractions and edge sigma unweighted, NaNs ignored).
    """
    if not stats:
        raise ValueError("aggregate_noise_stats needs at least one NoiseStats")
    nb = int(np.ceil(max_value / bin_width)) + 1
    cnt = np.zeros(nb)
    s_int = np.zeros(nb)
    s_var = np.zeros(nb)
    n_clip = np.zeros(nb)
    for s in stats:
        k = np.clip((np.asarray(s.bin_intensity) // bin_width).astype(int), 0, nb - 1)
        c = np.asarray(s.bin_count, dtype=np.float64)
        np.add.at(cnt, k, c)
        np.add.at(s_int, k, c * np.asarray(s.bin_intensity))
        np.add.at(s_var, k, c * np.asarray(s.bin_variance))
        np.add.at(n_clip, k, np.asarray(s.bin_clipped, dtype=np.float64))
    keep = cnt > 0
    b_int, b_var, b_cnt, b_clip = s_int[keep] / cnt[keep], s_var[keep] / cnt[keep], cnt[keep], n_clip[keep]
    usable = (b_clip <= max_bin_clip * (b_cnt + b_clip)) & (b_int >= min_fit_intensity)
    slope, intercept = fit_variance_law(b_int[usable], b_var[usable], b_cnt[usable])
    w = np.array([s.n_flat for s in stats], dtype=np.float64)

    def wmean(values) -> float:
        v = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(v)
        return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")

    acf_x = tuple(wmean([s.acf_x[k] for s in stats]) for k in range(3))
    edge = np.array([s.edge_sigma for s in stats], dtype=np.float64)
    return NoiseStats(
        slope=slope, intercept=intercept, acf_x=acf_x, acf_y1=wmean([s.acf_y1 for s in stats]),
        skew=wmean([s.skew for s in stats]), clip_high=float(np.mean([s.clip_high for s in stats])),
        clip_low=float(np.mean([s.clip_low for s in stats])),
        edge_sigma=float(np.nanmean(edge)) if np.isfinite(edge).any() else float("nan"),
        n_flat=int(w.sum()), offset=wmean([s.offset for s in stats]),
        asym_x1=float(np.nanmean([s.asym_x1 for s in stats])), grad_corr_x=float(np.nanmean([s.grad_corr_x for s in stats])),
        bin_intensity=tuple(float(v) for v in b_int), bin_variance=tuple(float(v) for v in b_var),
        bin_count=tuple(int(v) for v in b_cnt), bin_clipped=tuple(int(v) for v in b_clip),
    )
