"""Directional noise statistics: measurement, filter asymmetry, and the refit of filter phase + signal shift."""

import numpy as np
import pytest
from scipy import ndimage

from sem_core.synth.noise_fit import compute_fir_acf
from sem_core.synth.calibrate_direction import compute_fir_asymmetry, fit_direction, solve_fir_taps_with_asymmetry
from sem_core.synth.imaging import NoiseModel, apply_noise_to_clean
from sem_core.synth.noise_stats import measure_direction


def test_fir_asymmetry_sign_and_symmetry():
    h = (0.586, 0.343, 0.071)
    assert compute_fir_asymmetry(h) > 0.1
    assert compute_fir_asymmetry(h[::-1]) == pytest.approx(-compute_fir_asymmetry(h))
    assert compute_fir_asymmetry((0.25, 0.5, 0.25)) == pytest.approx(0.0, abs=1e-12)


def test_measure_direction_detects_causal_filter_and_shift():
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.random((128, 256)) * 200, 3) + 20
    skewed = rng.gamma(2.0, 1.0, clean.shape) - 2.0  # skewed, zero mean
    causal = ndimage.convolve1d(skewed, [0.0, 0.0, 0.586, 0.343, 0.071], axis=1)  # y[j] = sum h_k e[j-k]
    a_causal, _ = measure_direction(clean + 5 * causal, clean)
    a_sym, _ = measure_direction(clean + 5 * ndimage.convolve1d(skewed, [0.25, 0.5, 0.25], axis=1), clean)
    assert a_causal > 0.05 and abs(a_sym) < 0.02
    white = rng.normal(0, 1, clean.shape)
    _, c_right = measure_direction(ndimage.shift(clean, (0, 0.5), order=3) + white, clean)
    _, c_left = measure_direction(ndimage.shift(clean, (0, -0.5), order=3) + white, clean)
    assert c_right < -0.05 and c_left > 0.05


def test_solve_taps_keeps_acf_and_meets_asymmetry():
    acf = compute_fir_acf((0.586, 0.343, 0.071), (1, 2, 3))
    taps = solve_fir_taps_with_asymmetry(acf, 0.08, n_taps=5, start=(0.586, 0.343, 0.071, 0.0, 0.0))
    assert sum(taps) == pytest.approx(1.0)
    assert np.allclose(compute_fir_acf(taps, (1, 2, 3)), acf, atol=1e-4)
    assert compute_fir_asymmetry(taps) == pytest.approx(0.08, abs=1e-3)


def test_fit_direction_converges_on_a_linear_oracle_and_keeps_variance():
    model = NoiseModel(gain_grey_per_se=4.0, fir_taps=(0.586, 0.343, 0.071), offset_grey=-4.0)

    def simulate(m):  # a smooth stand-in for the simulation: asymmetry follows the filter, correlation the shift
        return {"asym_x1": 0.25 * compute_fir_asymmetry(m.fir_taps) + 0.01 * m.signal_shift_px,
                "grad_corr_x": -0.3 * m.signal_shift_px - 0.12}

    fitted, report = fit_direction(model, real={"asym_x1": 0.014, "grad_corr_x": 0.08}, simulate=simulate)
    got = simulate(fitted)
    assert abs(got["asym_x1"] - 0.014) < 0.002 and abs(got["grad_corr_x"] - 0.08) < 0.01
    # the variance law is kept: gain x filter energy unchanged
    e0, e1 = np.dot(model.fir_taps, model.fir_taps), np.dot(fitted.fir_taps, fitted.fir_taps)
    assert fitted.gain_grey_per_se * e1 == pytest.approx(model.gain_grey_per_se * e0)
    assert report["chosen"]["miss"] == min(t["miss"] for t in report["trials"])


def test_signal_shift_moves_the_simulated_signal():
    clean = np.tile(np.r_[np.full(32, 40.0), np.full(32, 200.0)], (16, 2))
    rng = np.random.default_rng(0)
    base = NoiseModel(gain_grey_per_se=1e-3, fir_taps=(1.0,), offset_grey=0.0, read_noise_grey=0.0)
    a = apply_noise_to_clean(clean, rng=rng, noise_model=base).astype(float)
    from dataclasses import replace

    b = apply_noise_to_clean(clean, rng=rng, noise_model=replace(base, signal_shift_px=2.0)).astype(float)
    first = lambda img: (img[:, :64] > 120).argmax(axis=1)  # noqa: E731  (the dark-to-bright step)
    assert np.all(first(a) == 32) and np.all(first(b) == 34)
