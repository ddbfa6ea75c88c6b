"""The noise-statistics estimator recovers known variance laws and correlations (oracles)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from sem_core.synth.imaging_steps import filter_fast_axis
from sem_core.synth.noise_stats import (
    aggregate_noise_stats,
    fit_variance_law,
    make_flat_mask,
    measure_noise_stats,
)


def _tiles(levels=(20, 50, 80, 110, 140, 170, 200), *, tile=64, rows=3) -> np.ndarray:
    """A clean image of flat tiles, one intensity per tile column, shape (rows*tile, len(levels)*tile)."""
    row = np.concatenate([np.full((tile, tile), float(v)) for v in levels], axis=1)
    return np.concatenate([np.roll(row, k * tile, axis=1) for k in range(rows)], axis=0)


def _noisy(clean, *, slope, intercept, taps, rng):
    """Gaussian noise with variance slope*I + intercept, correlated along x by ``taps``."""
    h = np.asarray(taps)
    z = filter_fast_axis(rng.normal(size=clean.shape), taps=h) / np.sqrt(h @ h)
    return clean + np.sqrt(slope * clean + intercept) * z


def test_fit_variance_law_is_exact_on_a_line():
    x = np.array([10.0, 50.0, 90.0, 150.0])
    slope, intercept = fit_variance_law(x, 3.0 * x + 40.0, np.array([100, 200, 300, 400]))
    assert slope == pytest.approx(3.0) and intercept == pytest.approx(40.0)
    assert np.isnan(fit_variance_law(x[:1], x[:1], np.array([5]))[0])


def test_flat_mask_avoids_edges():
    clean = _tiles(tile=32, rows=1)
    mask = make_flat_mask(clean, erode_px=2)
    assert mask[:, 5:25].all()
    assert not mask[:, 30:34].any()  # the step between tiles 0 and 1 at column 32


@pytest.mark.parametrize("taps", [(0.6, 0.3, 0.1), (1.0,)])
def test_estimator_recovers_known_variance_law_and_correlation(taps):
    rng = np.random.default_rng(11)
    clean = _tiles()
    h = np.asarray(taps)
    rho1 = float(h[:-1] @ h[1:] / (h @ h)) if h.size > 1 else 0.0
    stats = [measure_noise_stats(_noisy(clean, slope=3.2, intercept=40.0, taps=taps, rng=rng), clean,
                                 max_value=1e6) for _ in range(3)]
    s = aggregate_noise_stats(stats, max_value=1e6)
    assert s.slope == pytest.approx(3.2, rel=0.05)
    assert s.intercept == pytest.approx(40.0, abs=8.0)
    assert s.acf_x[0] == pytest.approx(rho1, abs=0.02)
    assert abs(s.acf_y1) < 0.02
    assert abs(s.skew) < 0.05  # Gaussian noise
    assert stats[0].offset == pytest.approx(0.0, abs=0.3)


def test_estimator_ignores_brightness_offset_and_slow_offsets():
    rng = np.random.default_rng(12)
    clean = _tiles()
    noisy = _noisy(clean, slope=3.0, intercept=30.0, taps=(0.6, 0.3, 0.1), rng=rng)
    ramp = 5.0 + 4.0 * np.sin(np.arange(clean.shape[0]) / 60.0)[:, None]  # slow drift of the brightness
    a = measure_noise_stats(noisy, clean, max_value=1e6)
    b = measure_noise_stats(noisy + ramp, clean, max_value=1e6)
    assert b.offset == pytest.approx(a.offset + ramp.mean(), abs=0.3)
    assert b.slope == pytest.approx(a.slope, rel=0.05)
    assert b.acf_x[0] == pytest.approx(a.acf_x[0], abs=0.01)
    # without the local-mean removal (a box wider than the image) the drift inflates the variance
    c = measure_noise_stats(noisy + ramp, clean, max_value=1e6, local_mean_px=2001)
    assert c.intercept > b.intercept + 0.5 * ramp.var()


def test_clipping_is_counted_and_kept_out_of_the_fit():
    rng = np.random.default_rng(13)
    clean = _tiles(levels=(30, 90, 150, 240))
    noisy = np.clip(np.rint(_noisy(clean, slope=3.0, intercept=30.0, taps=(1.0,), rng=rng)), 0, 255)
    s = measure_noise_stats(noisy, clean, border_px=0)
    assert s.clip_high == pytest.approx(np.mean(noisy >= 255))
    assert s.clip_high > 0.05
    # the 240 tile is mostly clipped: its bin is left out and the law still holds
    assert s.slope == pytest.approx(3.0, rel=0.1)
    assert max(s.bin_clipped) > 1000


def test_skew_is_positive_for_poisson_like_noise():
    rng = np.random.default_rng(14)
    clean = _tiles(levels=(2, 4, 6, 8))
    noisy = rng.poisson(clean).astype(float)
    s = measure_noise_stats(noisy, clean, max_value=1e6, min_bin_count=50, bin_width=1.0)
    assert s.skew > 0.2
    assert s.slope == pytest.approx(1.0, rel=0.1)


def test_edge_blur_sigma_is_recovered():
    rng = np.random.default_rng(15)
    rr, cc = np.mgrid[:192, :192]
    clean = np.where((rr - 96) ** 2 + (cc - 96) ** 2 < 50**2, 170.0, 30.0)
    clean[20:60, 20:60] = 120.0
    noisy = ndi.gaussian_filter(clean, 1.5) + rng.normal(0, 3.0, clean.shape)
    s = measure_noise_stats(noisy, clean, edge_blur=True, min_bin_count=50)
    assert s.edge_sigma == pytest.approx(1.5, abs=0.15)


def test_aggregate_pools_bins_and_rejects_empty():
    rng = np.random.default_rng(16)
    clean = _tiles()
    a = measure_noise_stats(_noisy(clean, slope=2.0, intercept=10.0, taps=(1.0,), rng=rng), clean, max_value=1e6)
    b = measure_noise_stats(_noisy(clean, slope=4.0, intercept=10.0, taps=(1.0,), rng=rng), clean, max_value=1e6)
    agg = aggregate_noise_stats([a, b], max_value=1e6)
    assert agg.slope == pytest.approx(3.0, rel=0.05)
    assert agg.n_flat == a.n_flat + b.n_flat
    assert sum(agg.bin_count) == sum(a.bin_count) + sum(b.bin_count)
    with pytest.raises(ValueError, match="at least one"):
        aggregate_noise_stats([])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one shape"):
        measure_noise_stats(np.zeros((64, 64)), np.zeros((64, 65)))
    edges = np.random.default_rng(0).uniform(0, 250, (64, 64))  # no flat region at all
    with pytest.raises(ValueError, match="flat pixels"):
        measure_noise_stats(edges, edges, border_px=0)
