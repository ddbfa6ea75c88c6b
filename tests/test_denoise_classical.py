"""Denoisers: registry, seam-free tiling per method (tiled == whole image), BM3D coloured PSD."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from sem_core.denoise.base import build_denoiser, denoise_image, describe_denoiser, list_denoisers
from sem_core.io.ome_zarr import open_multiscale
from sem_core.parallel import denoise_zarr

# 184 = 2·64 + 56 and 248 = 3·64 + 56: 12 blocks of 64, the smallest (56) still covers every halo used here.
SHAPE = (184, 248)
CHUNK = 64


def _clean_scene(shape=SHAPE) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (0.25 + 0.3 * (((yy // 24) + (xx // 40)) % 2) + 0.2 * np.sin(xx / 9.0)).astype(np.float32)


def _scene(rng: np.random.Generator, shape=SHAPE) -> np.ndarray:
    return (_clean_scene(shape) + rng.normal(0, 0.08, shape)).astype(np.float32)


def _tiled(tmp_path, image: np.ndarray, denoiser, chunk: int = CHUNK, scheduler: str = "threads") -> np.ndarray:
    src = zarr.create_array(tmp_path / "in.zarr", shape=image.shape, dtype="float32", chunks=(100, 100))
    src[...] = image
    denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.ome.zarr", denoiser=denoiser, chunks=chunk, progress=False,
                 scheduler=scheduler, num_workers=2)
    return open_multiscale(tmp_path / "out.ome.zarr")[...]


def test_registry_lists_every_method_and_rejects_unknown_names_and_params():
    assert {"gaussian", "median", "bilateral", "nlm", "tv", "wavelet", "bm3d", "unet"} <= set(list_denoisers())
    with pytest.raises(ValueError, match="unknown denoising method 'nope'"):
        build_denoiser("nope")
    with pytest.raises(ValueError, match="bad parameters for method 'gaussian'"):
        build_denoiser("gaussian", sigma=2.0)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("gaussian", {"sigma_px": 1.5}),
        ("median", {"size_px": 5}),
        ("bilateral", {"sigma_color": 0.1, "sigma_spatial": 1.5}),
        ("nlm", {"h": 0.06, "patch_size": 5, "patch_distance": 5}),
        ("tv", {"weight": 0.1, "n_iter": 20}),
        ("wavelet", {"threshold": 0.05, "levels": 3}),
    ],
)
def test_tiled_output_equals_whole_image_output(tmp_path, method, params):
    image = _scene(np.random.default_rng(3))
    denoiser = build_denoiser(method, **params)
    assert denoiser.halo <= 56
    whole = denoise_image(image, denoiser=denoiser)
    tiled = _tiled(tmp_path, image, denoiser)
    assert tiled.shape == image.shape and tiled.dtype == np.float32
    assert np.abs(tiled - whole).max() <= 1e-4
    # ... and the method did something: closer to the smooth scene than the input is
    assert np.abs(whole - image).mean() > 0.01


def test_a_too_small_halo_does_show_seams(tmp_path):
    """The equality above is not vacuous: TV with a halo below its receptive field differs at the seams."""
    from sem_core.denoise.classical import TvDenoiser

    class ShortHalo(TvDenoiser):
        @property
        def halo(self) -> int:
            return 4

    image = _scene(np.random.default_rng(4))
    d = ShortHalo(weight=0.2, n_iter=20)
    assert np.abs(_tiled(tmp_path, image, d) - denoise_image(image, denoiser=d)).max() > 1e-3


def test_unet_tiled_equals_whole_image_with_a_tiny_random_network(tmp_path):
    torch = pytest.importorskip("torch")
    from sem_core.models.unet import UNet

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 cores shared: torch's own threads collapse under contention
    net = UNet(base_channels=4, depth=2, norm="none")
    d = build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu")
    assert d.halo >= net.required_halo() and d.chunk_multiple == 4
    rng = np.random.default_rng(5)
    image = rng.random((120, 136)).astype(np.float32)  # blocks of 48: last ones 24 and 40 >= halo 24
    whole = denoise_image(image, denoiser=d)
    try:
        tiled = _tiled(tmp_path, image, d, chunk=48, scheduler="sync")
    finally:
        torch.set_num_threads(threads)
    assert np.abs(tiled - whole).max() <= 1e-4
    assert describe_denoiser(d)["params"]["architecture"]["depth"] == 2


@pytest.mark.slow
def test_compiled_unet_matches_eager_and_survives_threads_and_pickling():
    """torch.compile (inductor on CPU, ~1 min to compile): same output, one static shape, picklable."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    torch = pytest.importorskip("torch")
    from sem_core.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(base_channels=4, depth=2, norm="none")
    eager = build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu")
    compiled = build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu", compile=True)
    image = np.random.default_rng(8).random((120, 136)).astype(np.float32)  # 20 sub-tiles: last batch padded
    ref = denoise_image(image, denoiser=eager)
    with ThreadPoolExecutor(2) as pool:  # two threads hitting the first (compiling) call at once
        outs = list(pool.map(lambda _: denoise_image(image, denoiser=compiled), range(2)))
    for out in outs:
        assert np.abs(out - ref).max() <= 1e-4
    clone = pickle.loads(pickle.dumps(compiled))
    assert clone.compile and clone._forward is None
    assert describe_denoiser(compiled)["params"]["compile"] is True


def _x_correlated_noise(rng, shape, sigma):
    w = rng.normal(0, sigma, (shape[0], shape[1] + 1))
    return 0.5 * (w[:, 1:] + w[:, :-1])


def test_noise_acf_recovers_fast_axis_correlation_and_white_psd_is_flat():
    from sem_core.denoise.bm3d_coloured import estimate_noise_acf, psd_from_acf

    rng = np.random.default_rng(0)
    noise = _x_correlated_noise(rng, (256, 256), 0.2)
    acf = estimate_noise_acf(noise, max_lag=2)
    c = acf[2, 2]
    assert c == pytest.approx(0.02, rel=0.05)  # var = 0.2² / 2
    assert acf[2, 3] / c == pytest.approx(0.5, abs=0.03)  # lag-1 along x
    assert abs(acf[3, 2] / c) < 0.03  # none along y
    white = np.zeros((5, 5))
    white[2, 2] = 0.01
    psd = psd_from_acf(white, (40, 30))
    np.testing.assert_allclose(psd, 40 * 30 * 0.01)


def test_bm3d_coloured_psd_beats_white_sigma_on_x_correlated_noise():
    pytest.importorskip("bm3d")
    from sem_core.denoise.bm3d_coloured import estimate_noise_acf

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    clean = ndimage.gaussian_filter((((yy // 16) + (xx // 16)) % 2).astype(float) * 0.5 + 0.25, 1.0)
    noise = _x_correlated_noise(rng, clean.shape, 0.2)
    noisy = (clean + noise).astype(np.float32)
    acf = estimate_noise_acf(noise, max_lag=3)
    white = build_denoiser("bm3d", sigma=float(np.sqrt(acf[3, 3])), psd_mode="white", search_window=11)
    coloured = build_denoiser("bm3d", psd_mode="coloured", noise_acf=acf.tolist(), search_window=11)
    p_white = peak_signal_noise_ratio(clean, denoise_image(noisy, denoiser=white), data_range=1)
    p_col = peak_signal_noise_ratio(clean, denoise_image(noisy, denoiser=coloured), data_range=1)
    assert p_col > p_white + 1.0


def test_bm3d_tiled_equals_whole_image_on_its_cell_grid(tmp_path):
    """bm3d runs on fixed cells anchored at the image origin; blocks on that grid reproduce it exactly."""
    pytest.importorskip("bm3d")
    image = _scene(np.random.default_rng(2))
    d = build_denoiser("bm3d", sigma=0.1, search_window=11, cell_px=32)
    assert d.chunk_multiple == 32 and CHUNK % 32 == 0 and d.halo <= 56
    whole = denoise_image(image, denoiser=d)
    tiled = _tiled(tmp_path, image, d)
    assert np.abs(tiled - whole).max() <= 1e-4
    # and it denoises: much closer to the noise-free scene than the input
    clean = _clean_scene()
    assert np.abs(whole - clean).mean() < 0.5 * np.abs(image - clean).mean()


def test_bm3d_cells_stay_close_to_one_whole_array_call():
    """The cell grid is a definition, not a degradation: the cells' output is near one bm3d call on the image."""
    pytest.importorskip("bm3d")
    image = _scene(np.random.default_rng(4), shape=(128, 128))
    d = build_denoiser("bm3d", sigma=0.1, search_window=11, cell_px=32)
    cells = denoise_image(image, denoiser=d)
    one = d.denoise_window(image)
    assert np.abs(cells - one).mean() < 5e-3
    with pytest.raises(ValueError, match="cell_px must be at least 16"):
        build_denoiser("bm3d", cell_px=8)


def test_gat_stabilises_poisson_gaussian_variance_and_inverts_without_bias():
    from sem_core.denoise.bm3d_coloured import forward_gat, inverse_gat

    rng = np.random.default_rng(5)
    slope, intercept = 0.0136, 0.00025  # the Tin-balls law on the unit scale (3.48 / 255, 16 / 255²)
    for mean in (0.05, 0.3, 0.9):
        x = rng.poisson(mean / slope, 100_000) * slope + rng.normal(0, np.sqrt(intercept), 100_000)
        assert x.var() == pytest.approx(slope * mean + intercept, rel=0.05)
        f = forward_gat(x, slope=slope, intercept=intercept)
        assert f.var() == pytest.approx(1.0, abs=0.08)  # raw variance spans ~10x; at ~4 counts the GAT is off by ~6 %
        assert inverse_gat(np.array([f.mean()]), slope=slope, intercept=intercept)[0] == pytest.approx(mean, rel=0.01)
    with pytest.raises(ValueError, match="slope must be positive"):
        forward_gat(x, slope=0.0, intercept=0.0)


def test_bm3d_with_variance_stabilisation_beats_a_stationary_psd_on_signal_dependent_noise():
    pytest.importorskip("bm3d")
    from sem_core.denoise.bm3d_coloured import estimate_noise_acf

    rng = np.random.default_rng(6)
    clean = (0.05 + 0.9 * _clean_scene((96, 96)) ** 2).astype(np.float64)  # dark and bright regions
    slope, intercept = 0.02, 0.0001
    noisy = (rng.poisson(clean / slope) * slope + rng.normal(0, np.sqrt(intercept), clean.shape)).astype(np.float32)
    acf = estimate_noise_acf(noisy - clean, max_lag=3)
    plain = build_denoiser("bm3d", psd_mode="coloured", noise_acf=acf.tolist(), search_window=11)
    vst = build_denoiser("bm3d", psd_mode="coloured", noise_acf=acf.tolist(), search_window=11,
                         vst_slope=slope, vst_intercept=intercept)
    p_plain = peak_signal_noise_ratio(clean, denoise_image(noisy, denoiser=plain), data_range=1)
    p_vst = peak_signal_noise_ratio(clean, denoise_image(noisy, denoiser=vst), data_range=1)
    assert p_vst > p_plain + 0.3


def test_pairs_noise_acf_equals_the_acf_of_the_cropped_scaled_residuals():
    from sem_core.denoise.bm3d_coloured import estimate_noise_acf, estimate_pairs_noise_acf

    rng = np.random.default_rng(9)
    clean = [rng.integers(0, 200, (40, 50)).astype(np.uint8) for _ in range(3)]
    noisy = [np.clip(c + 30 + _x_correlated_noise(rng, c.shape, 12.0), 0, 255).astype(np.uint8) for c in clean]
    got = estimate_pairs_noise_acf(noisy, clean, border_px=4, max_lag=2)
    want = estimate_noise_acf(np.stack([(n.astype(float) - c)[4:-4, 4:-4] / 255.0 for n, c in zip(noisy, clean)]),
                              max_lag=2)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[2, 3] / got[2, 2] > 0.3  # the fast-axis correlation survives the offset (+30) and the scaling
    with pytest.raises(ValueError):
        estimate_pairs_noise_acf(noisy, clean[:2])
