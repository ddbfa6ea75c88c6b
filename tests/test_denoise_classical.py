"""Denoisers: registry, seam-free tiling per method (tiled == whole image), BM3D coloured PSD."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from sem_core.denoise.base import build_denoiser, denoise_image, describe_denoiser, list_denoisers
from sem_core.denoise.tiled import denoise_tiled
from sem_core.io.ome_zarr import open_multiscale
from sem_core.denoise_zarr import denoise_zarr

# 184 = 2·64 + 56 and 248 = 3·64 + 56: 12 blocks of 64, the smallest (56) still covers every halo used here.
SHAPE = (184, 248)
CHUNK = 64


def _clean_scene(shape=SHAPE) -> np.ndarray:
    """Checkerboard + ripple, with fine structure *on the block seams* (where a short halo shows).

    A 1-px diagonal line crosses every seam, and 3x3 bright squares sit on every seam crossing:
    a tile cut there without enough context sees them mirrored or not at all.
    """
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 0.25 + 0.3 * (((yy // 24) + (xx // 40)) % 2) + 0.2 * np.sin(xx / 9.0)
    img[np.abs(yy - (xx * shape[0]) // shape[1]) == 0] = 0.95
    for r in range(CHUNK, shape[0], CHUNK):
        for c in range(CHUNK, shape[1], CHUNK):
            img[r - 2 : r + 1, c - 1 : c + 2] = 0.05
    return img.astype(np.float32)


def _scene(rng: np.random.Generator, shape=SHAPE) -> np.ndarray:
    return (_clean_scene(shape) + rng.normal(0, 0.08, shape)).astype(np.float32)


class OverlapDepth:
    """The same method, tiled with an overlap ``depth`` other than its halo (the method itself unchanged).

    Wraps a denoiser: ``halo`` (what the tiler reads as the overlap depth) is ``depth``; the call,
    ``chunk_multiple`` and ``describe`` are the wrapped method's. Whole-image runs use the real method.
    """

    def __init__(self, denoiser, depth: int) -> None:
        self.inner, self.halo, self.name = denoiser, int(depth), denoiser.name
        self.chunk_multiple = int(getattr(denoiser, "chunk_multiple", 1))

    def describe(self) -> dict:
        return describe_denoiser(self.inner)["params"]

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return self.inner(tile)


def _tiled(tmp_path, image: np.ndarray, denoiser, chunk: int = CHUNK, scheduler: str = "threads") -> np.ndarray:
    tmp_path.mkdir(parents=True, exist_ok=True)
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


CLASSICAL = [
    ("gaussian", {"sigma_px": 1.5}),
    ("median", {"size_px": 5}),
    ("bilateral", {"sigma_color": 0.1, "sigma_spatial": 1.5}),
    ("nlm", {"h": 0.06, "patch_size": 5, "patch_distance": 5}),
    ("tv", {"weight": 0.1, "n_iter": 6}),  # few iterations: the far influence stays above float32 rounding
    ("wavelet", {"threshold": 0.05, "levels": 3}),
]


@pytest.mark.parametrize(("method", "params"), CLASSICAL)
def test_tiled_output_equals_whole_image_output_exactly(tmp_path, method, params):
    """Bit-for-bit: every classical method computes each output pixel from the same inputs in the same order.

    scipy's separable filters, the median, the bilateral loop, scikit-image's NLM (odd patch size; an
    even one is off by ~1e-8 from its integral images) and Chambolle TV are local, element-wise
    sequences of operations; the wavelet transform sees the same ``2**levels`` grid. So a tile with
    enough context reproduces the whole-image value exactly; any seam error is a real bug.
    """
    image = _scene(np.random.default_rng(3))
    denoiser = build_denoiser(method, **params)
    assert denoiser.halo <= 56
    whole = denoise_image(image, denoiser=denoiser)
    tiled = _tiled(tmp_path, image, denoiser)
    assert tiled.shape == image.shape and tiled.dtype == np.float32
    np.testing.assert_array_equal(tiled, whole)
    # ... and the method did something: it moved the image
    assert np.abs(whole - image).mean() > 0.01


@pytest.mark.parametrize(("method", "params"), CLASSICAL)
def test_one_pixel_short_halo_shows_at_the_seams(tmp_path, method, params):
    """Every halo is tight: overlapping one pixel less than ``halo`` changes pixels next to the seams.

    (So the exact equality above guards the halo formula: a halo one pixel too small fails it.)
    """
    image = _scene(np.random.default_rng(3))
    d = build_denoiser(method, **params)
    whole = denoise_image(image, denoiser=d)
    diff = np.abs(_tiled(tmp_path, image, OverlapDepth(d, d.halo - 1), scheduler="sync") - whole)
    assert diff.max() > 0.0
    rows, cols = np.nonzero(diff)  # the differences sit within the halo of a block edge, nowhere else

    def near(v: np.ndarray, n: int) -> np.ndarray:
        edges = np.array([*range(0, n, CHUNK), n])
        return np.abs(v[:, None] - edges[None, :]).min(axis=1) <= d.halo

    assert (near(rows, SHAPE[0]) | near(cols, SHAPE[1])).all()


def test_the_mutated_gaussian_halo_of_issue_16_is_caught():
    """The mutation that survived before (halo formula one pixel short): 1.7e-5 off, now an inequality."""
    from sem_core.denoise.classical import GaussianDenoiser

    class OneShort(GaussianDenoiser):
        @property
        def halo(self) -> int:
            return super().halo - 1

    image = _scene(np.random.default_rng(3))
    d = OneShort(sigma_px=1.5)
    tiled = denoise_tiled(image, denoiser=d, chunk_px=CHUNK, scheduler="sync")
    assert np.abs(tiled - denoise_image(image, denoiser=d)).max() > 0.0


# The U-Net is the one inexact method: oneDNN picks convolution kernels by batch shape, so the same
# sub-tile summed in another batch composition rounds differently. Derivation of the tolerance: each
# of the net's 11 convolution layers (depth 2) re-associates sums of at most 9 * 16 = 144 products;
# float32 re-association of n terms moves a sum by at most about sqrt(n) ulps in practice (random
# rounding), i.e. ~12 ulps of the layer's scale, and with weights of He scale (|w| sum ~ 1 per
# output) this does not grow from layer to layer: <= 11 * 12 ulps ~ 132 * 2**-24 ~ 8e-6 at unit scale.
# Measured: 6e-8. A pooling grid shifted by one pixel (one pixel short of the halo) moves outputs by ~1e-3.
UNET_TOL = 11 * 12 * 2.0**-24


def _tiny_unet(torch):
    from sem_core.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(base_channels=4, depth=2, norm="none")
    return build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu"), net


def test_unet_tiled_equals_whole_image_with_a_tiny_random_network(tmp_path):
    torch = pytest.importorskip("torch")
    d, net = _tiny_unet(torch)
    assert d.halo >= net.required_halo() and d.chunk_multiple == 4
    rng = np.random.default_rng(5)
    image = rng.random((120, 136)).astype(np.float32)  # blocks of 48: last ones 24 and 40 >= halo 24
    whole = denoise_image(image, denoiser=d)
    tiled = _tiled(tmp_path, image, d, chunk=48, scheduler="sync")
    assert np.abs(tiled - whole).max() <= UNET_TOL
    short = _tiled(tmp_path / "short", image, OverlapDepth(d, d.halo - 1), chunk=48, scheduler="sync")
    assert np.abs(short - whole).max() > 100 * UNET_TOL
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
    image = _scene(np.random.default_rng(2), shape=(128, 128))  # 4 blocks, 4 cells: bm3d is slow on CPU
    d = build_denoiser("bm3d", sigma=0.1, search_window=11, cell_px=64)
    assert d.chunk_multiple == 64 and CHUNK % 64 == 0 and d.halo <= 56
    whole = denoise_image(image, denoiser=d)
    tiled = _tiled(tmp_path, image, d)
    np.testing.assert_array_equal(tiled, whole)  # same cell windows, same bm3d calls: bit for bit
    # the halo (each cell's context) is tight too: one pixel less moves the cells' windows
    short = _tiled(tmp_path / "short", image, OverlapDepth(d, d.halo - 1), scheduler="sync")
    assert np.abs(short - whole).max() > 1e-3
    # and it denoises: much closer to the noise-free scene than the input
    clean = _clean_scene((128, 128))
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
