"""Physics of each step of the SEM forward model, and determinism of the whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sem_core.synth.imaging import NoiseModel, apply_noise_to_clean, read_noise_model, simulate_pair, write_noise_model
from sem_core.synth.imaging_steps import (
    add_charging_streaks,
    add_line_noise,
    blur_beam,
    compute_primary_dose,
    filter_fast_axis,
    quantise,
    sample_primary_electrons,
    sample_secondary_electrons,
)
from sem_core.synth.scan_distortion import distort_scan, make_scan_displacement


def _yield_map(h: int = 96, w: int = 128) -> np.ndarray:
    rr, cc = np.mgrid[:h, :w]
    y = np.full((h, w), 0.15)
    y[(rr - h / 2) ** 2 + (cc - w / 2) ** 2 < (h / 4) ** 2] = 0.7
    return y


@pytest.mark.parametrize("mean", [4.0, 40.0])
def test_primary_shot_noise_is_poisson_and_scales_with_dose(mean):
    pe = sample_primary_electrons(mean, rng=np.random.default_rng(1), shape=(300, 300))
    assert pe.dtype.kind == "i"
    assert pe.mean() == pytest.approx(mean, rel=0.02)
    assert pe.var() == pytest.approx(mean, rel=0.04)


def test_primary_dose_from_current_and_dwell():
    # 100 pA for 100 ns = 1e-17 C = 62.4 electrons; doubling the dwell doubles it
    assert compute_primary_dose(beam_current_pa=100, dwell_s=1e-7) == pytest.approx(62.415, rel=1e-4)
    assert compute_primary_dose(beam_current_pa=100, dwell_s=2e-7) == pytest.approx(2 * 62.415, rel=1e-4)


@pytest.mark.parametrize("m", [0.3, 2.0])
def test_compound_poisson_variance_is_lambda_one_plus_delta(m):
    rng = np.random.default_rng(2)
    mu_pe = 10.0
    se = sample_secondary_electrons(sample_primary_electrons(mu_pe, rng=rng, shape=(400, 400)), m, rng=rng)
    lam = mu_pe * m
    assert se.mean() == pytest.approx(lam, rel=0.02)
    assert se.var() == pytest.approx(lam * (1 + m), rel=0.04)
    # and it is over-dispersed compared with plain Poisson
    assert se.var() > 1.1 * se.mean()


def test_poisson_gamma_adds_m_over_k():
    rng = np.random.default_rng(3)
    mu_pe, m, k = 10.0, 1.0, 2.0
    pe = sample_primary_electrons(mu_pe, rng=rng, shape=(400, 400))
    se = sample_secondary_electrons(pe, m, rng=rng, model="gamma", gamma_shape=k)
    assert se.var() == pytest.approx(mu_pe * m * (1 + m + m / k), rel=0.05)
    with pytest.raises(ValueError, match="unknown secondary-electron model"):
        sample_secondary_electrons(pe, m, rng=rng, model="binomial")


def test_fir_gives_expected_lag1_correlation_on_white_noise():
    taps = (0.6, 0.3, 0.1)
    expected1 = (0.6 * 0.3 + 0.3 * 0.1) / (0.36 + 0.09 + 0.01)
    expected2 = (0.6 * 0.1) / 0.46
    x = np.random.default_rng(4).normal(size=(200, 2000))
    y = filter_fast_axis(x, taps=taps)[:, 5:]
    r1 = np.mean(y[:, 1:] * y[:, :-1]) / y.var()
    r2 = np.mean(y[:, 2:] * y[:, :-2]) / y.var()
    assert r1 == pytest.approx(expected1, abs=0.01)
    assert r2 == pytest.approx(expected2, abs=0.01)
    # nothing along y
    ry = np.mean(y[1:] * y[:-1]) / y.var()
    assert abs(ry) < 0.01


def test_fir_is_causal_and_keeps_flat_lines():
    x = np.zeros((3, 32))
    x[:, 10] = 1.0
    y = filter_fast_axis(x, taps=(0.5, 0.3, 0.2))
    assert np.all(y[:, :10] == 0)
    np.testing.assert_allclose(y[0, 10:13], [0.5, 0.3, 0.2])
    assert np.all(y[:, 13:] == 0)
    flat = np.full((4, 20), 7.0)
    np.testing.assert_allclose(filter_fast_axis(flat, taps=(0.5, 0.3, 0.2)), flat)


def test_quantise_range_dtype_and_rounding():
    x = np.array([[-5.0, 0.4, 0.6, 254.6, 300.0]])
    q8 = quantise(x, bit_depth=8)
    assert q8.dtype == np.uint8
    assert q8.tolist() == [[0, 0, 1, 255, 255]]
    q16 = quantise(x * 300, bit_depth=16)
    assert q16.dtype == np.uint16 and q16.max() == 65535 and q16.min() == 0
    assert quantise(np.array([[10.0]]), contrast=2.0, brightness=3.0)[0, 0] == 23
    with pytest.raises(ValueError, match="bit_depth"):
        quantise(x, bit_depth=12)


def test_beam_blur_conserves_signal_and_follows_astigmatism():
    img = np.zeros((65, 65))
    img[32, 32] = 1.0
    iso = blur_beam(img, sigma_nm=12.0, pixel_size_nm=6.0)
    assert iso.sum() == pytest.approx(1.0, abs=1e-9)
    rr, cc = np.mgrid[:65, :65] - 32

    def spread(b):
        return float(np.sum(b * cc**2)), float(np.sum(b * rr**2))

    vx, vy = spread(iso)
    assert vx == pytest.approx(4.0, rel=0.05) and vy == pytest.approx(4.0, rel=0.05)
    ast = blur_beam(img, sigma_nm=12.0, pixel_size_nm=6.0, astigmatism_ratio=0.5)
    vx, vy = spread(ast)
    assert vx == pytest.approx(4.0, rel=0.05) and vy == pytest.approx(1.0, rel=0.1)
    rot = blur_beam(img, sigma_nm=12.0, pixel_size_nm=6.0, astigmatism_ratio=0.5, astigmatism_angle_deg=90.0)
    vx, vy = spread(rot)
    assert vy == pytest.approx(4.0, rel=0.05) and vx == pytest.approx(1.0, rel=0.1)
    diag = blur_beam(img, sigma_nm=12.0, pixel_size_nm=6.0, astigmatism_ratio=0.5, astigmatism_angle_deg=45.0)
    assert diag.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.sum(diag * rr * cc) < -0.5  # principal axis along (x, -y): negative row-col covariance


def test_scan_distortion_follows_raster_timing():
    shape = (40, 50)
    rng = np.random.default_rng(5)
    none = make_scan_displacement(shape, rng=rng, pixel_size_nm=5.0, dwell_s=1e-6)
    assert np.all(none[0] == 0) and np.all(none[1] == 0)
    # drift along x of 5 nm per line time: displacement grows one pixel per line
    line_time = 50 * 1e-6 + 1e-5
    dy, dx = make_scan_displacement(shape, rng=rng, pixel_size_nm=5.0, dwell_s=1e-6, flyback_s=1e-5,
                                    drift_nm_per_s=(0.0, 5.0 / line_time))
    assert dx[10, 0] == pytest.approx(10.0) and np.all(dy == 0)
    img = np.tile(np.arange(50.0), (40, 1))
    out = distort_scan(img, displacement=(np.zeros(shape), np.full(shape, 2.0)))
    np.testing.assert_allclose(out[:, :40], img[:, 2:42])
    # vibration: amplitude in pixels, along the requested direction
    dy, dx = make_scan_displacement((200, 50), rng=rng, pixel_size_nm=5.0, dwell_s=1e-6,
                                    vibration_amplitude_nm=(10.0,), vibration_frequency_hz=(700.0,),
                                    vibration_angle_deg=(90.0,))
    assert np.abs(dy).max() == pytest.approx(2.0, rel=0.02) and np.abs(dx).max() < 1e-9


def test_line_noise_and_streaks():
    rng = np.random.default_rng(6)
    out = add_line_noise(np.zeros((256, 64)), rng=rng, sigma=3.0, alpha=1.0)
    assert np.allclose(out, out[:, :1])  # constant along each line
    assert out[:, 0].std() == pytest.approx(3.0, rel=1e-6)
    s = add_charging_streaks(np.zeros((200, 100)), rng=rng, rate_per_line=0.2, amplitude=20.0, decay_px=10.0)
    hit = s.max(axis=1) > 0
    assert 20 < hit.sum() < 60
    row = s[np.flatnonzero(hit)[0]]
    start = int(np.flatnonzero(row)[0])
    assert np.all(np.diff(row[start:]) <= 0)  # decays along x after the jump


def test_simulate_pair_is_deterministic_and_clean_is_noise_free():
    y = _yield_map()
    a = simulate_pair(y, rng=np.random.default_rng(7))
    b = simulate_pair(y, rng=np.random.default_rng(7))
    c = simulate_pair(y, rng=np.random.default_rng(8))
    for u, v in zip(a, b):
        assert u.dtype == np.uint8 and u.shape == y.shape
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])  # clean: no noise, ideal geometry (distort_clean=False)
    d = simulate_pair(y, rng=np.random.default_rng(8), distort_clean=True, vibration_amplitude_nm=(30.0,))
    assert not np.array_equal(d[1], c[1])


def test_simulate_pair_noise_follows_dose():
    y = np.full((128, 128), 0.5)
    kw = dict(distortion_enabled=False, blur_enabled=False, filter_enabled=False, read_noise_grey=0.0,
              offset_grey=0.0, bit_depth=16)
    lo_noisy, lo_clean = simulate_pair(y, rng=np.random.default_rng(9), beam_current_pa=50, gain_grey_per_se=40, **kw)
    hi_noisy, hi_clean = simulate_pair(y, rng=np.random.default_rng(9), beam_current_pa=200, gain_grey_per_se=10, **kw)
    # same mean grey level, SNR^2 four times higher at four times the dose
    assert lo_clean.mean() == pytest.approx(hi_clean.mean(), rel=1e-3)
    snr2 = [(n.mean() / n.std()) ** 2 for n in (lo_noisy.astype(float), hi_noisy.astype(float))]
    assert snr2[1] / snr2[0] == pytest.approx(4.0, rel=0.1)
    # expected value of the noisy image is the clean one
    assert lo_noisy.astype(float).mean() == pytest.approx(float(lo_clean.mean()), rel=0.01)
    quiet, _ = simulate_pair(y, rng=np.random.default_rng(9), shot_noise_enabled=False, se_noise_enabled=False, **kw)
    assert quiet.std() == 0


def test_apply_noise_to_clean_matches_the_analytic_variance_law():
    nm = NoiseModel(gain_grey_per_se=3.0, se_per_pe=0.5, offset_grey=4.0, read_noise_grey=2.0,
                    fir_taps=(0.6, 0.3, 0.1))
    e = 0.36 + 0.09 + 0.01
    for level in (40.0, 160.0):
        clean = np.full((200, 200), level)
        noisy = apply_noise_to_clean(clean, rng=np.random.default_rng(10), noise_model=nm).astype(float)
        expected = e * (3.0 * 1.5 * (level - 4.0) + 4.0) + 1 / 12
        assert noisy.mean() == pytest.approx(level, abs=0.3)
        assert noisy[:, 3:].var() == pytest.approx(expected, rel=0.05)
    again = apply_noise_to_clean(clean, rng=np.random.default_rng(10), noise_model=nm.to_dict())
    np.testing.assert_array_equal(again, noisy.astype(np.uint8))


def test_signal_blur_softens_edges_but_keeps_flat_levels():
    clean = np.zeros((64, 64))
    clean[:, 32:] = 200.0
    sharp = NoiseModel(gain_grey_per_se=0.01, se_per_pe=0.01, fir_taps=(1.0,), read_noise_grey=0.0)
    blurred = NoiseModel(**{**sharp.to_dict(), "fir_taps": (1.0,), "signal_blur_px": 2.0})
    a = apply_noise_to_clean(clean, rng=np.random.default_rng(1), noise_model=sharp).astype(float).mean(axis=0)
    b = apply_noise_to_clean(clean, rng=np.random.default_rng(1), noise_model=blurred).astype(float).mean(axis=0)
    assert a[30] == pytest.approx(0.0, abs=1) and a[33] == pytest.approx(200.0, abs=1)
    assert 5 < b[30] < 60 and 140 < b[33] < 195  # the step is spread over a few pixels
    assert b[5] == pytest.approx(0.0, abs=1) and b[60] == pytest.approx(200.0, abs=1)


def test_noise_model_json_round_trip(tmp_path):
    nm = NoiseModel(gain_grey_per_se=2.5, fir_taps=(0.7, 0.3), bit_depth=16)
    assert NoiseModel.from_json(nm.to_json()) == nm
    assert NoiseModel.from_dict(json.loads(json.dumps(nm.to_dict()))) == nm
    with pytest.raises(ValueError, match="unknown NoiseModel keys"):
        NoiseModel.from_dict({**nm.to_dict(), "gain": 1.0})
    path = tmp_path / "sub" / "nm.json"
    write_noise_model(path, nm, provenance={"params_hash": "x"})
    assert read_noise_model(path) == nm
    assert json.loads(path.read_text())["provenance"] == {"params_hash": "x"}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        read_noise_model(tmp_path / "bad.json")
