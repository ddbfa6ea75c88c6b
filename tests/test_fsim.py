"""Properties of FSIM and its phase congruency (sem_core.metrics.fsim)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from sem_core.metrics import compute_fsim, compute_gradient_magnitude, compute_phase_congruency


def _scene(n: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.random((n, n)), 3)
    img = 0.2 + 0.5 * (base - base.min()) / np.ptp(base)
    img[n // 4 : n // 2, n // 3 : 2 * n // 3] = 0.9
    return img


def test_fsim_identical_is_one_and_symmetric():
    ref = _scene()
    other = ref + np.random.default_rng(1).normal(0, 0.05, ref.shape)
    assert compute_fsim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    assert compute_fsim(other, ref, data_range=1.0) == pytest.approx(compute_fsim(ref, other, data_range=1.0),
                                                                     abs=1e-12)


def test_fsim_decreases_with_noise_and_blur():
    ref = _scene()
    rng = np.random.default_rng(2)
    noise = [compute_fsim(ref + rng.normal(0, s, ref.shape), ref, data_range=1.0) for s in (0.01, 0.05, 0.15)]
    blur = [compute_fsim(ndimage.gaussian_filter(ref, s), ref, data_range=1.0) for s in (0.7, 1.5, 3.0)]
    assert 1.0 > noise[0] > noise[1] > noise[2] > 0.0
    assert 1.0 > blur[0] > blur[1] > blur[2] > 0.0


def test_fsim_uses_the_data_range_to_reach_8bit_thresholds():
    ref = _scene()
    out = ref + np.random.default_rng(3).normal(0, 0.05, ref.shape)
    unit = compute_fsim(out, ref, data_range=1.0)
    assert compute_fsim(out * 255, ref * 255, data_range=255.0) == pytest.approx(unit, abs=1e-5)
    assert compute_fsim(out * 4095, ref * 4095, data_range=4095.0) == pytest.approx(unit, abs=1e-5)
    with pytest.raises(ValueError, match="data_range"):
        compute_fsim(out, ref, data_range=-1.0)


def test_phase_congruency_is_high_on_edges_low_on_flat_and_bounded():
    # PC is contrast-invariant: on a noise-free image even weak responses far from an edge are
    # congruent; the noise threshold is what suppresses them in real (noisy) images.
    img = np.zeros((128, 128))
    img[:, 64:] = 1.0
    img += np.random.default_rng(4).normal(0, 0.05, img.shape)
    pc = compute_phase_congruency(img)
    assert pc.shape == img.shape and pc.min() >= 0.0 and pc.max() <= 1.0
    assert pc[32:96, 63:65].mean() > 0.8  # at the step
    assert pc[32:96, 24:40].mean() < 0.1  # 24+ px from it
    assert compute_phase_congruency(np.full((32, 32), 7.0)).max() == 0.0
    assert math.isnan(compute_fsim(np.full((32, 32), 0.5), np.full((32, 32), 0.5), data_range=1.0))


def test_gradient_magnitude_is_scharr():
    img = np.tile(np.arange(16, dtype=float), (16, 1))  # unit ramp along x
    g = compute_gradient_magnitude(img)
    # Scharr / 16 on a unit ramp: (3 + 10 + 3) * 2 / 16 = 2 in the interior
    assert np.allclose(g[2:-2, 2:-2], 2.0)
