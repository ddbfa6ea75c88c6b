"""Oracles for the full-reference, task and aligned metrics (sem_core.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as torch_ms_ssim
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sem_core.metrics import (
    compute_cnr,
    compute_edge_preservation,
    compute_ms_ssim,
    compute_psnr,
    compute_residual_structure,
    compute_ssim,
    compute_uiqi,
    derive_cnr_masks,
    measure_defects,
    score_aligned,
    summarize_defects,
)


def _scene(n: int = 96, *, seed: int = 0) -> np.ndarray:
    """Smooth blobs and a bright square on [0, 1] (float64)."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.random((n, n)), 4)
    base = (base - base.min()) / np.ptp(base)
    img = 0.2 + 0.5 * base
    img[n // 4 : n // 2, n // 4 : n // 2] = 0.9
    return img


# ---- PSNR / SSIM / MS-SSIM -------------------------------------------------------------------

@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_and_ssim_equal_scikit_image(data_range):
    rng = np.random.default_rng(1)
    ref = _scene() * data_range
    out = ref + rng.normal(0, 0.05 * data_range, ref.shape)
    assert compute_psnr(out, ref, data_range=data_range) == pytest.approx(
        peak_signal_noise_ratio(ref, out, data_range=data_range), abs=1e-10)
    assert compute_ssim(out, ref, data_range=data_range) == pytest.approx(
        structural_similarity(out, ref, data_range=data_range), abs=1e-12)


def test_psnr_identical_is_inf_and_known_noise():
    ref = _scene(256)
    assert compute_psnr(ref, ref, data_range=1.0) == math.inf
    sigma = 0.02
    noisy = ref + np.random.default_rng(2).normal(0, sigma, ref.shape)
    # E[MSE] = sigma^2 -> PSNR = 20 log10(1 / sigma) = 33.98 dB (65k samples: +-0.03 dB)
    assert compute_psnr(noisy, ref, data_range=1.0) == pytest.approx(20 * math.log10(1 / sigma), abs=0.05)
    # a constant shift c gives MSE = c^2 exactly
    assert compute_psnr(ref + 0.1, ref, data_range=1.0) == pytest.approx(20.0, abs=1e-9)


def _shifted_pair(shape: tuple[int, int], *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A reference and an output with gain, offset and noise: the difference has a non-zero mean,
    so the luminance term (coarsest scale only) matters."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape), 4)
    ref = 0.2 + 0.5 * (base - base.min()) / np.ptp(base)
    ref[shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = 0.9
    out = np.clip(0.85 * ref + 0.2 + rng.normal(0, 0.05, shape), 0, 1)
    return out, ref


def _gauss64(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return torch.from_numpy(g / g.sum()).view(1, 1, 1, size)


# 442 x 512: the real Tin-balls images; odd sides at several scales; 161: the smallest pytorch-msssim takes.
@pytest.mark.parametrize("shape", [(442, 512), (161, 163), (233, 301), (256, 256), (191, 512)])
def test_ms_ssim_equals_pytorch_msssim_at_the_project_sizes(shape):
    out, ref = _shifted_pair(shape, seed=sum(shape))
    x, y = torch.from_numpy(out)[None, None], torch.from_numpy(ref)[None, None]
    got = compute_ms_ssim(out, ref, data_range=1.0)
    # Same float64 window: the whole multi-scale composition (pooling of odd sides, weights, luminance
    # at the coarsest scale) must agree to rounding.
    assert got == pytest.approx(torch_ms_ssim(x, y, data_range=1.0, win=_gauss64()).item(), abs=1e-12)
    # pytorch-msssim's own window is built in float32 and sums to 1 - 3.1e-8 (eps); SSIM's variances
    # E[x^2] - E[x]^2 then move by ~eps * E[x^2] <= 3e-8, i.e. ~1e-5 relative to the smallest local
    # variance + C2 (~3e-3): the index moves by at most ~1e-5. Measured: <= 2e-6.
    assert got == pytest.approx(torch_ms_ssim(x, y, data_range=1.0).item(), abs=1e-5)
    # the test pair makes the coarsest luminance term count: removing the mean shift moves the index
    # by far more than the tolerances above (a metric that dropped the term would fail them)
    matched = out - out.mean() + ref.mean()
    assert abs(compute_ms_ssim(matched, ref, data_range=1.0) - got) > 1e-3
    assert compute_ms_ssim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(64, 64), (77, 100), (150, 151), (33, 40)])
def test_ms_ssim_on_small_images_equals_the_losses_fewer_scale_ms_ssim(shape):
    """Below 161 px both the metric and the loss use fewer, renormalised scales (the same rule)."""
    from sem_core.losses import _compute_ms_ssim, select_ms_ssim_scales

    out, ref = _shifted_pair(shape, seed=sum(shape))
    weights = select_ms_ssim_scales(min(shape))
    expected = _compute_ms_ssim(torch.from_numpy(out)[None, None], torch.from_numpy(ref)[None, None],
                                weights=weights, win_size=11).item()
    assert compute_ms_ssim(out, ref, data_range=1.0) == pytest.approx(expected, abs=1e-5)  # float32 window


def _ssim_naive(x: np.ndarray, y: np.ndarray, data_range: float, win: int = 7) -> float:
    """Wang et al. 2004 SSIM, scikit-image's conventions: uniform 7x7 window, sample covariance
    (N - 1), K1 = 0.01, K2 = 0.03, mean over windows fully inside the image; one window at a time."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for r in range(x.shape[0] - win + 1):
        for c in range(x.shape[1] - win + 1):
            a, b = x[r : r + win, c : c + win].ravel(), y[r : r + win, c : c + win].ravel()
            ma, mb = a.mean(), b.mean()
            va, vb = a.var(ddof=1), b.var(ddof=1)
            cov = ((a - ma) * (b - mb)).sum() / (a.size - 1)
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_equals_a_window_by_window_oracle():
    """An oracle that does not call scikit-image (the test above compares with the function it wraps)."""
    out, ref = _shifted_pair((30, 37), seed=11)
    assert compute_ssim(out, ref, data_range=1.0) == pytest.approx(_ssim_naive(out, ref, 1.0), abs=1e-9)


def test_ms_ssim_small_images_use_fewer_scales_and_order_noise():
    rng = np.random.default_rng(4)
    ref = _scene(64)
    values = [compute_ms_ssim(ref + rng.normal(0, s, ref.shape), ref, data_range=1.0) for s in (0.01, 0.05, 0.2)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0
    with pytest.raises(ValueError, match="at least 11"):
        compute_ms_ssim(ref[:8, :8], ref[:8, :8], data_range=1.0)


def test_data_range_must_be_positive():
    with pytest.raises(ValueError, match="data_range"):
        compute_psnr(np.zeros((8, 8)), np.ones((8, 8)), data_range=0)


# ---- UIQI ------------------------------------------------------------------------------------

def _uiqi_naive(x: np.ndarray, y: np.ndarray, win: int = 8) -> float:
    qs = []
    for r in range(x.shape[0] - win + 1):
        for c in range(x.shape[1] - win + 1):
            a, b = x[r:r + win, c:c + win], y[r:r + win, c:c + win]
            ma, mb = a.mean(), b.mean()
            va, vb = a.var(), b.var()
            cov = ((a - ma) * (b - mb)).mean()
            qs.append(4 * cov * ma * mb / ((va + vb) * (ma**2 + mb**2)))
    return float(np.mean(qs))


def test_uiqi_hand_cases_single_window():
    ramp = np.arange(64, dtype=float).reshape(8, 8) + 1.0
    assert compute_uiqi(ramp, ramp) == pytest.approx(1.0)
    # y = 2x: luminance 2*m*2m/(m^2+4m^2) = 0.8, structure 2*2v/(v+4v) = 0.8 -> 0.64
    assert compute_uiqi(ramp, 2 * ramp) == pytest.approx(0.64)
    # flat windows, as documented: equal -> 1; a vs b -> 2ab/(a^2+b^2); flat vs textured -> 0
    assert compute_uiqi(np.full((8, 8), 3.0), np.full((8, 8), 3.0)) == 1.0
    assert compute_uiqi(np.full((8, 8), 1.0), np.full((8, 8), 3.0)) == pytest.approx(2 * 3 / (1 + 9))
    assert compute_uiqi(np.full((8, 8), 5.0), ramp) == pytest.approx(0.0)
    assert compute_uiqi(np.zeros((8, 8)), np.zeros((8, 8))) == 1.0


def test_uiqi_equals_naive_sliding_windows_and_is_symmetric():
    rng = np.random.default_rng(5)
    x = rng.random((14, 13)) + 0.5
    y = x + rng.normal(0, 0.2, x.shape)
    assert compute_uiqi(x, y) == pytest.approx(_uiqi_naive(x, y), abs=1e-10)
    assert compute_uiqi(x, y) == pytest.approx(compute_uiqi(y, x), abs=1e-12)


# ---- edge preservation -----------------------------------------------------------------------

def test_edge_preservation_properties():
    ref = _scene(96)
    rng = np.random.default_rng(6)
    assert compute_edge_preservation(ref, ref) == pytest.approx(1.0)
    assert compute_edge_preservation(0.5 * ref + 0.3, ref) == pytest.approx(1.0)  # offset and gain
    from scipy import ndimage

    low = compute_edge_preservation(ref + rng.normal(0, 0.02, ref.shape), ref)
    high = compute_edge_preservation(ref + rng.normal(0, 0.2, ref.shape), ref)
    blurred = compute_edge_preservation(ndimage.gaussian_filter(ref, 2.0), ref)
    assert 1.0 > low > high
    assert blurred < 0.99
    assert math.isnan(compute_edge_preservation(ref, np.full_like(ref, 0.5)))


# ---- CNR -------------------------------------------------------------------------------------

def test_cnr_hand_computed():
    img = np.array([[1.0, 3.0, 0.0, 0.0], [1.0, 3.0, 2.0, 0.0]])
    fg = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool)
    bg = ~fg
    # fg: mean 2, var 1; bg: [0, 0, 2, 0] mean 0.5, var 0.75 -> 1.5 / sqrt(1.75)
    assert compute_cnr(img, foreground=fg, background=bg) == pytest.approx(1.5 / math.sqrt(1.75))
    flat = np.where(fg, 5.0, 1.0)
    assert compute_cnr(flat, foreground=fg, background=bg) == math.inf
    assert math.isnan(compute_cnr(img, foreground=np.zeros_like(fg), background=bg))


def test_cnr_masks_are_eroded_away_from_edges():
    clean = np.zeros((40, 40))
    clean[:, 20:] = 1.0
    fg, bg = derive_cnr_masks(clean, erode_px=3)
    assert fg[:, 23:].all() and not fg[:, :23].any()
    assert bg[:, :17].all() and not bg[:, 17:].any()
    # noise lowers CNR; the clean image measured on its own masks is noise-free (inf)
    noisy = clean + np.random.default_rng(7).normal(0, 0.5, clean.shape)
    assert 1.0 < compute_cnr(noisy, foreground=fg, background=bg) < 2.0  # 1 / sqrt(0.5) = 1.41
    assert compute_cnr(clean, foreground=fg, background=bg) == math.inf


# ---- residual structure ------------------------------------------------------------------------

def test_residual_structure_oracles():
    clean = _scene(96)
    rng = np.random.default_rng(8)
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    assert compute_residual_structure(noisy, noisy, clean) == 0.0  # identity removes nothing
    for a in (0.25, 0.7):  # removes a fraction a of the structure (and a constant)
        assert compute_residual_structure(noisy, noisy - a * clean + 0.1, clean) == pytest.approx(a)
    # a perfect denoiser removes only noise: ~0 (noise is uncorrelated with structure)
    assert abs(compute_residual_structure(noisy, clean, clean)) < 0.05
    # a flat output of a noise-free input removed all structure
    assert compute_residual_structure(clean, np.full_like(clean, 0.5), clean) == pytest.approx(1.0)
    assert math.isnan(compute_residual_structure(clean, clean, np.ones_like(clean)))


# ---- defects ---------------------------------------------------------------------------------

def test_defect_contrast_retention_hand_cases():
    clean = np.zeros((32, 32))
    clean[10:14, 10:14] = 1.0
    box = [(10, 10, 14, 14)]
    half = clean * 0.5
    erased = np.zeros_like(clean)
    kept = measure_defects(clean, clean, boxes=box, data_range=1.0)
    assert kept.loc[0, "contrast_retention"] == pytest.approx(1.0)
    assert kept.loc[0, "psnr"] == math.inf and kept.loc[0, "ssim"] == pytest.approx(1.0)
    assert measure_defects(half, clean, boxes=box, data_range=1.0).loc[0, "contrast_retention"] == pytest.approx(0.5)
    gone = measure_defects(erased, clean, boxes=box, data_range=1.0)
    assert gone.loc[0, "contrast_retention"] == pytest.approx(0.0)
    # region = box dilated by 4 -> 12x12 = 144 px, 16 of them off by 1 -> MSE 1/9
    assert gone.loc[0, "psnr"] == pytest.approx(10 * math.log10(9.0))
    summary = summarize_defects(gone)
    assert summary["n_defects"] == 1 and summary["defect_retention"] == pytest.approx(0.0)
    assert summarize_defects(gone.iloc[:0])["n_defects"] == 0


def test_defect_mask_restricts_the_defect_pixels():
    clean = np.zeros((32, 32))
    clean[10:12, 10:14] = 1.0  # the defect fills only the top half of its box
    mask = (clean > 0).astype(np.uint8)
    box = [(10, 10, 14, 14)]
    with_mask = measure_defects(clean, clean, boxes=box, data_range=1.0, mask=mask)
    without = measure_defects(clean, clean, boxes=box, data_range=1.0)
    assert with_mask.loc[0, "contrast_clean"] == pytest.approx(1.0)
    assert without.loc[0, "contrast_clean"] == pytest.approx(0.5)


# ---- aligned scoring ---------------------------------------------------------------------------

def test_score_aligned_removes_shift_and_offset():
    ref = _scene(128)
    out = np.roll(ref, (3, -2), axis=(0, 1)) + 0.1  # reference moved down 3, left 2, brighter
    raw = compute_psnr(out, ref, data_range=1.0)
    aligned = score_aligned(out, ref, data_range=1.0, border_px=8)
    assert (aligned["shift_dy"], aligned["shift_dx"]) == pytest.approx((3.0, -2.0), abs=0.1)
    assert aligned["offset"] == pytest.approx(0.1, abs=1e-9)
    assert raw < 25 and aligned["psnr_aligned"] > 100
    assert aligned["ssim_aligned"] == pytest.approx(1.0, abs=1e-9)
    # an aligned pair with noise scores like its raw PSNR (minus nothing but the border)
    noisy = ref + np.random.default_rng(9).normal(0, 0.02, ref.shape)
    assert score_aligned(noisy, ref, data_range=1.0)["psnr_aligned"] == pytest.approx(
        compute_psnr(noisy, ref, data_range=1.0), abs=0.3)
