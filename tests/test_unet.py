"""U-Net shapes, variants, and the receptive-field/halo helpers (checked against autograd)."""

from __future__ import annotations

import pytest
import torch

from sem_core.models.unet import UNet, compute_sobel_magnitude


@pytest.mark.parametrize(("depth", "size"), [(1, 32), (2, 48), (3, 64), (4, 64), (3, 50), (2, 37)])
def test_output_shape_matches_input_for_any_size(depth, size):
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=depth).eval()
    x = torch.rand(2, 1, size, size + 6)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert model.input_multiple == 2**depth


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_norm_variants_train_mode_backward(norm):
    torch.manual_seed(0)
    model = UNet(base_channels=8, depth=2, norm=norm)
    x = torch.rand(2, 1, 32, 32)
    model(x).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_residual_predicts_noise():
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2, norm="none", residual=True).eval()
    for p in model.head.parameters():  # a zero noise estimate must return the input unchanged
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 1, 40, 40)
    with torch.inference_mode():
        assert torch.equal(model(x), x)


def test_edge_input_adds_a_channel_inside_the_model():
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2, edge_input=True)
    assert model.down[0][0].in_channels == 2
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_sobel_magnitude_of_a_ramp_is_its_slope_and_zero_for_constants():
    ramp = torch.arange(16.0).repeat(16, 1)[None, None] * 0.01  # d/dcol = 0.01
    mag = compute_sobel_magnitude(ramp, eps=0.0)
    assert torch.allclose(mag[..., 1:-1, 1:-1], torch.full((14, 14), 0.01), atol=1e-6)
    assert compute_sobel_magnitude(torch.full((1, 1, 8, 8), 0.3), eps=0.0).abs().max() == 0


@pytest.mark.parametrize(("depth", "edge"), [(1, False), (2, False), (2, True), (3, False)])
def test_required_halo_equals_the_measured_reach(depth, edge):
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=depth, norm="none", edge_input=edge).double().eval()
    reach = 0
    centre = 60
    for p in range(centre, centre + 2**depth):  # every alignment to the pooling grid
        x = torch.rand(1, 1, 128, 128, dtype=torch.double, requires_grad=True)
        model(x)[0, 0, p, p].backward()
        cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
        reach = max(reach, p - int(cols.min()), int(cols.max()) - p)
    assert reach == model.required_halo()
    assert model.receptive_field() == 2 * reach + 1


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="norm"):
        UNet(norm="layer")
    with pytest.raises(ValueError, match="residual"):
        UNet(in_channels=1, out_channels=2, residual=True)
    with pytest.raises(ValueError, match="B, C, H, W"):
        UNet(depth=1, base_channels=2)(torch.rand(1, 16, 16))
