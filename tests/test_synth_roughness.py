"""Palasantzas line-edge roughness: amplitude, correlation length and high-frequency slope."""

import numpy as np
import pytest

from sem_core.synth.roughness import compute_palasantzas_psd, synthesize_edge_roughness


def _mean_periodogram(n, draws, seed, **kw):
    rng = np.random.default_rng(seed)
    prof = np.stack([synthesize_edge_roughness(n, rng=rng, **kw) for _ in range(draws)])
    k = 2 * np.pi * np.fft.rfftfreq(n)
    return k, np.mean(np.abs(np.fft.rfft(prof, axis=1)) ** 2, axis=0) / n


def test_same_seed_same_profile_and_shape():
    a = synthesize_edge_roughness(300, rng=np.random.default_rng(4), sigma_px=1.5, xi_px=6.0, hurst=0.5)
    b = synthesize_edge_roughness(300, rng=np.random.default_rng(4), sigma_px=1.5, xi_px=6.0, hurst=0.5)
    c = synthesize_edge_roughness(300, rng=np.random.default_rng(5), sigma_px=1.5, xi_px=6.0, hurst=0.5)
    assert a.shape == (300,) and a.dtype == np.float64
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean()) < 1e-12  # the DC term is removed


@pytest.mark.parametrize("n", [257, 1024])
def test_sample_std_is_sigma_in_expectation(n):
    rng = np.random.default_rng(11)
    var = [synthesize_edge_roughness(n, rng=rng, sigma_px=2.0, xi_px=12.0, hurst=0.7).var() for _ in range(300)]
    assert np.mean(var) == pytest.approx(4.0, rel=0.05)


def test_measured_psd_rolls_off_at_the_correlation_length():
    xi, hurst = 16.0, 0.5
    k, psd = _mean_periodogram(2048, 150, 2, sigma_px=1.0, xi_px=xi, hurst=hurst)
    sel = (k > 0) & (k < 1.5)
    candidates = np.array([8.0, 12.0, 14.0, 16.0, 18.0, 22.0, 32.0])
    errors = []
    for c in candidates:
        model = np.log(compute_palasantzas_psd(k[sel], sigma_px=1.0, xi_px=c, hurst=hurst))
        resid = np.log(psd[sel]) - model
        errors.append(np.mean((resid - resid.mean()) ** 2))  # free amplitude
    assert candidates[int(np.argmin(errors))] == pytest.approx(xi, abs=2.1)
    # flat plateau below 1/xi: PSD(k << 1/xi) / PSD(1/xi) = 2 ** (1 + H)
    low = psd[(k > 0) & (k < 0.15 / xi)].mean()
    at = psd[np.abs(k - 1 / xi) < 0.1 / xi].mean()
    assert low / at == pytest.approx(2 ** (1 + hurst), rel=0.2)


def test_hurst_sets_the_high_frequency_slope():
    slopes = {}
    for hurst in (0.2, 0.9):
        k, psd = _mean_periodogram(4096, 60, 3, sigma_px=1.0, xi_px=10.0, hurst=hurst)
        sel = (k > 0.8) & (k < 2.5)
        slopes[hurst] = np.polyfit(np.log(k[sel]), np.log(psd[sel]), 1)[0]
        assert slopes[hurst] == pytest.approx(-2 * (1 + hurst), abs=0.15)
    assert slopes[0.9] < slopes[0.2] - 1.0


def test_psd_formula_and_bad_parameters():
    assert compute_palasantzas_psd(np.array([0.0]), sigma_px=2.0, xi_px=5.0, hurst=0.3)[0] == pytest.approx(20.0)
    rng = np.random.default_rng(0)
    for bad in (dict(sigma_px=-1, xi_px=5, hurst=0.5), dict(sigma_px=1, xi_px=0, hurst=0.5), dict(sigma_px=1, xi_px=5, hurst=1.5)):
        with pytest.raises(ValueError, match="invalid roughness"):
            synthesize_edge_roughness(64, rng=rng, **bad)
    with pytest.raises(ValueError, match="n >= 2"):
        synthesize_edge_roughness(1, rng=rng, sigma_px=1, xi_px=5, hurst=0.5)
    assert not synthesize_edge_roughness(64, rng=rng, sigma_px=0.0, xi_px=5, hurst=0.5).any()
