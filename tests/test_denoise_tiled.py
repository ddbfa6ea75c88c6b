"""In-memory tiled denoising (TIFF/PNG inputs): block plan, and equality with whole-image output."""

from __future__ import annotations

import numpy as np
import pytest

from sem_core.denoise.base import build_denoiser, denoise_image
from sem_core.denoise.tiled import denoise_tiled, plan_blocks, read_with_halo


def test_plan_blocks_covers_the_axis_and_merges_a_thin_last_block():
    assert plan_blocks(256, chunk_px=64, halo=10) == (64, 64, 64, 64)
    assert plan_blocks(200, chunk_px=64, halo=10) == (64, 64, 72)  # 8 px < halo: merged into its neighbour
    assert plan_blocks(200, chunk_px=64, halo=8) == (64, 64, 64, 8)
    assert plan_blocks(30, chunk_px=64, halo=40) == (30,)
    for n in (1, 63, 64, 65, 1000):
        sizes = plan_blocks(n, chunk_px=64, halo=20)
        assert sum(sizes) == n and all(s == 64 for s in sizes[:-1])
    with pytest.raises(ValueError, match="chunk_px must be positive"):
        plan_blocks(10, chunk_px=0, halo=1)


@pytest.mark.parametrize("mode", ["reflect", "none"])
def test_read_with_halo_is_the_block_map_overlap_gives(mode):
    """Oracle: Dask's own overlap of every block, for ragged blocks, blocks thinner than two halos and both edges."""
    import dask.array as da
    from dask.array.overlap import overlap

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (53, 41), dtype=np.uint8)
    chunks, halo = ((20, 20, 13), (16, 16, 9)), 7
    expect = overlap(da.from_array(image, chunks=chunks), depth=halo, boundary=mode)
    blocks = expect.to_delayed()
    r0 = 0
    for i, h in enumerate(chunks[0]):
        c0 = 0
        for j, w in enumerate(chunks[1]):
            region, (top, left) = read_with_halo(image, (r0, r0 + h), (c0, c0 + w), halo=halo, mode=mode)
            np.testing.assert_array_equal(region, blocks[i, j].compute())
            np.testing.assert_array_equal(region[top : top + h, left : left + w], image[r0 : r0 + h, c0 : c0 + w])
            c0 += w
        r0 += h
    with pytest.raises(ValueError, match="boundary must be"):
        read_with_halo(image, (0, 5), (0, 5), halo=2, mode="wrap")


@pytest.mark.parametrize(
    ("method", "params"),
    [("gaussian", {"sigma_px": 2.0}), ("nlm", {"h": 0.06, "patch_size": 5, "patch_distance": 5}),
     ("wavelet", {"threshold": 0.05, "levels": 3})],
)
def test_tiled_equals_whole_image_on_ragged_blocks(method, params):
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:203, :170]  # neither side a multiple of the block; 203 = 3·64 + 11 (thinner than the halo)
    image = (0.3 + 0.4 * ((yy // 20 + xx // 30) % 2) + rng.normal(0, 0.08, yy.shape)).astype(np.float32)
    d = build_denoiser(method, **params)
    tiled = denoise_tiled(image, denoiser=d, chunk_px=64, num_workers=2)
    assert tiled.shape == image.shape and tiled.dtype == np.float32
    np.testing.assert_array_equal(tiled, denoise_image(image, denoiser=d))  # exact (see test_denoise_classical)
    assert np.abs(tiled - image).mean() > 0.02  # it did denoise


def test_tiled_rejects_non_2d_input():
    with pytest.raises(ValueError, match="2-D"):
        denoise_tiled(np.zeros((2, 8, 8), np.float32), denoiser=build_denoiser("gaussian"))
