"""Self-ensembles: the transforms invert exactly, and the U-Net denoiser averages the right views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sem_core.denoise.base import build_denoiser, denoise_image
from sem_core.denoise.tiled import denoise_tiled
from sem_core.models.ensemble import SELF_ENSEMBLES, apply_transform, predict_ensemble, undo_transform
from sem_core.models.unet import UNet


def test_the_eight_transforms_are_distinct_and_undo_inverts_each():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = {apply_transform(x, code).flatten().tolist().__repr__() for code in range(8)}
    assert len(views) == 8
    for code in range(8):
        assert torch.equal(undo_transform(apply_transform(x, code), code), x)
    # the scan ensemble keeps each row's left-to-right order (the fast-scan direction)
    up_down = apply_transform(x, SELF_ENSEMBLES["scan"][1])
    assert torch.equal(up_down[0, 0, 0], x[0, 0, -1])


def test_predict_ensemble_of_an_equivariant_net_is_the_net_and_of_a_biased_one_the_mean_of_views():
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in SELF_ENSEMBLES:  # a pointwise map commutes with every transform
        assert torch.allclose(predict_ensemble(lambda t: 2 * t, x, ensemble=name), 2 * x)

    def shift_right(t):  # not flip-equivariant: the output moves one pixel to the right
        return torch.roll(t, 1, dims=-1)

    out = predict_ensemble(shift_right, x, ensemble="scan")
    assert torch.allclose(out, shift_right(x))  # up-down flips keep a horizontal shift
    out8 = predict_ensemble(shift_right, x, ensemble="dihedral")
    assert not torch.allclose(out8, shift_right(x))  # left-right views undo it
    with pytest.raises(ValueError, match="self-ensemble"):
        predict_ensemble(shift_right, x, ensemble="rot")


def test_unet_denoiser_scan_ensemble_is_the_mean_of_the_image_and_its_flip_and_tiles_exactly():
    torch.manual_seed(1)
    net = UNet(base_channels=4, depth=2, norm="none").eval()
    image = np.random.default_rng(2).random((72, 80)).astype(np.float32)
    plain = build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu")
    scan = build_denoiser("unet", model=net, tile_px=32, batch_size=4, device="cpu", ensemble="scan")
    flipped = denoise_image(image[::-1].copy(), denoiser=plain)[::-1]
    expected = np.clip((denoise_image(image, denoiser=plain) + flipped) / 2, 0, 1)
    got = denoise_image(image, denoiser=scan)
    assert np.abs(got - expected).max() <= 1e-4 and np.abs(got - denoise_image(image, denoiser=plain)).max() > 1e-3
    assert np.abs(denoise_tiled(image, denoiser=scan, chunk_px=24, scheduler="sync") - got).max() <= 1e-4
    assert scan.describe()["ensemble"] == "scan"
    with pytest.raises(ValueError, match="ensemble"):
        build_denoiser("unet", model=net, ensemble="x4")
