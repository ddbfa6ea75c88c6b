"""Loss oracles: Charbonnier -> L1, zero at identity, shift-invariant edge loss, MS-SSIM vs pytorch-msssim."""

from __future__ import annotations

import pytest
import torch
from pytorch_msssim import ms_ssim, ssim
from skimage.metrics import structural_similarity

from sem_core import losses
from sem_core.losses import (
    LOSS_NAMES, MS_SSIM_WEIGHTS, build_loss, charbonnier_loss, edge_loss, ms_ssim_index, mse_loss,
    select_ms_ssim_scales, ssim_index,
)


def _pair(size=64, seed=0, sigma=0.1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 1, size, size, generator=g)
    y = (x + sigma * torch.randn(2, 1, size, size, generator=g)).clamp(0, 1)
    return x, y


def test_charbonnier_tends_to_l1_and_is_eps_at_identity():
    x, y = _pair()
    l1 = torch.mean(torch.abs(x - y))
    assert torch.isclose(charbonnier_loss(x, y, eps=1e-6), l1, rtol=1e-4)
    assert charbonnier_loss(x, y, eps=1e-2) > l1
    assert torch.isclose(charbonnier_loss(x, x, eps=1e-3), torch.tensor(1e-3))


def test_mse_matches_torch():
    x, y = _pair()
    assert torch.isclose(mse_loss(x, y), torch.nn.functional.mse_loss(x, y))


def test_edge_loss_zero_for_identity_and_constant_shift_positive_otherwise():
    x, y = _pair()
    assert edge_loss(x, x) == 0
    assert edge_loss(x + 0.25, x) < 1e-6
    assert edge_loss(x, y) > 0.01


def test_ssim_matches_pytorch_msssim_and_skimage():
    x, y = _pair(size=96)
    ours = ssim_index(x, y)
    assert torch.isclose(ours, ssim(x, y, data_range=1.0))
    ref = sum(
        structural_similarity(x[i, 0].double().numpy(), y[i, 0].double().numpy(), data_range=1.0,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for i in range(2)
    ) / 2
    assert abs(float(ours) - ref) < 0.02  # skimage pads the borders, pytorch-msssim crops them
    assert torch.isclose(ssim_index(x, x), torch.tensor(1.0))


def test_ms_ssim_equals_pytorch_msssim_at_5_scales_also_through_our_loop():
    x, y = _pair(size=192)
    ref = ms_ssim(x, y, data_range=1.0)
    assert torch.isclose(ms_ssim_index(x, y), ref)
    assert torch.isclose(losses._compute_ms_ssim(x, y, weights=MS_SSIM_WEIGHTS, win_size=11), ref, atol=1e-6)


@pytest.mark.parametrize(("size", "levels"), [(11, 1), (32, 2), (64, 3), (128, 4), (160, 4), (161, 5), (256, 5)])
def test_ms_ssim_scale_choice(size, levels):
    w = select_ms_ssim_scales(size)
    assert len(w) == levels and abs(sum(w) - 1) < 1e-3


def test_ms_ssim_small_patches_work_and_order_noise_levels():
    x, y_low = _pair(size=64, sigma=0.05)
    _, y_high = _pair(size=64, sigma=0.3)
    assert torch.isclose(ms_ssim_index(x, x), torch.tensor(1.0))
    assert 1 > ms_ssim_index(x, y_low) > ms_ssim_index(x, y_high) > 0
    with pytest.raises(ValueError, match="window"):
        select_ms_ssim_scales(8)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_named_loss_is_near_zero_at_identity_larger_with_noise_and_differentiable(name):
    x, y = _pair(size=64)
    fn = build_loss(name, eps=1e-6)
    assert float(fn(x, x)) < 1e-4
    pred = y.clone().requires_grad_(True)
    value = fn(pred, x)
    value.backward()
    assert float(value.detach()) > 1e-3 and torch.isfinite(pred.grad).all()


def test_composites_are_the_documented_sums():
    x, y = _pair(size=64)
    lam, alpha, beta, eps = 0.3, 0.4, 0.5, 1e-3
    assert torch.isclose(build_loss("baseline", lam=lam)(y, x), mse_loss(y, x) + lam * (1 - ssim_index(y, x)))
    assert torch.isclose(build_loss("charbonnier", lam=lam, eps=eps)(y, x),
                         charbonnier_loss(y, x, eps=eps) + lam * (1 - ssim_index(y, x)))
    full = charbonnier_loss(y, x, eps=eps) + alpha * (1 - ms_ssim_index(y, x)) + beta * edge_loss(y, x)
    assert torch.isclose(build_loss("full", alpha=alpha, beta=beta, eps=eps)(y, x), full)
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("l2")


def test_bf16_inputs_are_computed_in_float32():
    x, y = _pair(size=64)
    assert build_loss("full")(y.bfloat16(), x).dtype == torch.float32


@pytest.mark.parametrize("name", ["baseline", "charbonnier", "full"])
def test_losses_stay_float32_inside_bf16_autocast(name):
    """Called inside a bf16 autocast region, a loss equals its float32 value (SSIM in bf16 is garbage)."""
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(2, 1, 176, 176, generator=gen)
    pred = (target + 0.05 * torch.randn(2, 1, 176, 176, generator=gen)).clamp(0, 1)
    loss = build_loss(name)
    ref = loss(pred, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss(pred, target)
    assert inside.dtype == torch.float32
    assert torch.allclose(inside, ref, rtol=1e-6, atol=1e-7)
