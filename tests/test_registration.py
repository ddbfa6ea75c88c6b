"""Registration: sub-pixel shift recovery despite the drawn frame, sign convention, shifting, offset."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from fixtures_ingest import draw_frame, shifted_pair
from skimage.registration import phase_cross_correlation

from sem_core.registration import apply_shift, estimate_offset, estimate_shift, valid_slices


def _noisy_framed_pair(seed: int, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref, mov = shifted_pair((160, 192), shift, rng)
    ref = draw_frame(ref + 0.05 * rng.standard_normal(ref.shape), 1.0)
    mov = draw_frame(mov + 0.05 * rng.standard_normal(mov.shape), 1.0)
    return ref, mov


@pytest.mark.parametrize(("seed", "shift"), [(0, (1.37, -2.63)), (1, (-2.1, 0.6)), (2, (0.45, 0.2))])
def test_known_subpixel_shift_recovered_despite_frame(seed, shift):
    ref, mov = _noisy_framed_pair(seed, shift)
    dy, dx = estimate_shift(ref, mov)
    assert abs(dy - shift[0]) < 0.1 and abs(dx - shift[1]) < 0.1
    if np.abs(shift).max() > 1:  # the naive estimate on the whole framed images is pulled off by the frame
        naive = phase_cross_correlation(ref, mov, upsample_factor=20)[0]
        assert np.abs(naive - np.array(shift)).max() > 0.5


def test_identical_images_give_zero_and_sign_convention():
    ref, _ = shifted_pair((96, 128), (0.0, 0.0), np.random.default_rng(4))
    assert estimate_shift(ref, ref) == pytest.approx((0.0, 0.0), abs=1e-9)
    down = np.roll(ref, 2, axis=0)  # moving[r + 2] = reference[r]: content moved down by 2 rows
    assert estimate_shift(ref, down) == pytest.approx((-2.0, 0.0), abs=0.05)
    single = estimate_shift(ref, down, prealign=False)  # one windowed pass is biased towards zero
    assert -2.0 < single[0] < -1.5


def test_apply_shift_aligns_moving_onto_reference():
    ref, mov = shifted_pair((96, 128), (1.5, -0.75), np.random.default_rng(5))
    shift = estimate_shift(ref, mov)
    aligned = apply_shift(mov, shift, order=3)
    rows, cols = valid_slices(ref.shape, shift)
    err_after = np.abs(aligned[rows, cols] - ref[rows, cols]).mean()
    err_before = np.abs(mov[rows, cols] - ref[rows, cols]).mean()
    assert aligned.dtype == np.float32 and err_after < 0.1 * err_before


def test_apply_shift_integer_keeps_dtype_and_moves_exactly():
    img = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    out = apply_shift(img, (2.2, -0.9), order="integer")  # rounds to (2, -1)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[2:, :-1], img[:-2, 1:])
    np.testing.assert_array_equal(out[0], out[2])  # vacated rows repeat the edge
    assert valid_slices(img.shape, (2.2, -0.9)) == (slice(3, 20), slice(0, 29))
    np.testing.assert_array_equal(apply_shift(img, (0.3, 0.4), order="integer"), img)


def test_estimate_offset_sign_and_value():
    rng = np.random.default_rng(6)
    ref = rng.random((64, 64)) * 100
    assert estimate_offset(ref, ref - 7.5) == pytest.approx(7.5)
    framed = draw_frame(ref - 7.5, 1000.0)
    assert estimate_offset(ref, framed) == pytest.approx(7.5)  # the border is cut


def test_bad_inputs_raise():
    a = np.zeros((64, 64))
    with pytest.raises(ValueError, match="shapes differ"):
        estimate_shift(a, np.zeros((64, 63)))
    with pytest.raises(ValueError, match="too small"):
        estimate_shift(a, a, border_px=30)
    with pytest.raises(ValueError, match="order"):
        apply_shift(a, (1, 1), order="cubic")
    with pytest.raises(ValueError, match="2-D"):
        estimate_offset(np.zeros((2, 64, 64)), np.zeros((2, 64, 64)))


@pytest.mark.shared_data
def test_real_pairs_frame_locks_naive_estimate(tin_balls_dir):
    """On real pairs the whole-image phase correlation sticks near (0, 0); ours finds the offset."""
    ours, naive = [], []
    for i in (1, 2, 5, 7, 10):
        noisy = tifffile.imread(tin_balls_dir / "time" / "low" / f"100ns_{i:03d}.tif")[:442, :, 1]
        clean = tifffile.imread(tin_balls_dir / "time" / "high" / f"30us_{i:03d}.tif")[:442, :, 1]
        ours.append(estimate_shift(noisy, clean))
        naive.append(phase_cross_correlation(noisy.astype(float), clean.astype(float), upsample_factor=20)[0])
    ours, naive = np.array(ours), np.array(naive)
    assert ours[:, 0].mean() < -1.5  # the pairs are offset by about two rows
    assert np.abs(naive - ours).max() > 1.0
