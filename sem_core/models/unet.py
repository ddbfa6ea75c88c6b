"""Ronneberger-style U-Net for single-channel SEM denoising.

Double 3x3 conv blocks (conv-norm-ReLU, twice), 2x2 max-pool down, 2x2 transposed-conv
up, skip concatenation. Options: residual prediction (the network predicts the noise
and returns input - noise) and a Sobel-magnitude input channel computed inside the model.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "compute_sobel_gradients", "compute_sobel_magnitude"]

NormName = Literal["batch", "group", "none"]

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def compute_sobel_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives of each channel (replicate padding, kernel normalised by 1/8).

    Parameters
    ----------
    x : Tensor, float, shape (B, C, H, W)

    Returns
    -------
    (gy, gx) : Tensors of shape (B, C, H, W), d/drow and d/dcol.
    """
    c = x.shape[1]
    kx = _SOBEL_X.to(device=x.device, dtype=x.dtype).expand(c, 1, 3, 3)
    ky = _SOBEL_X.t().to(device=x.device, dtype=x.dtype).expand(c, 1, 3, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, ky, groups=c), F.conv2d(xp, kx, groups=c)


def compute_sobel_magnitude(x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Gradient magnitude sqrt(gy^2 + gx^2 + eps^2), same shape as ``x`` (B, C, H, W)."""
    gy, gx = compute_sobel_gradients(x)
    return torch.sqrt(gy * gy + gx * gx + eps * eps)


def _make_norm(norm: NormName, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; expected 'batch', 'group' or 'none'")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: NormName) -> None:
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _make_norm(norm, cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), _make_norm(norm, cout), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net mapping a (B, C, H, W) float32 image in [0, 1] to a denoised (B, C_out, H, W) image.

    Inputs of any size are reflect-padded to a multiple of :attr:`input_multiple`
    internally and cropped back, so the output always has the input's H and W.
    The output is not clamped (callers clamp to [0, 1] at inference).

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels (1 for grey SEM images).
    base_channels : int
        Width of the first level; level ``l`` has ``base_channels * 2**l``.
    depth : int
        Number of down-sampling steps (>= 1).
    norm : {"batch", "group", "none"}
        Normalisation after each convolution.
    residual : bool
        Predict the noise and return ``input - noise`` (needs in_channels == out_channels).
    edge_input : bool
        Append the Sobel magnitude of the input as an extra channel.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 32,
        depth: int = 4,
        norm: NormName = "batch",
        residual: bool = False,
        edge_input: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"depth and base_channels must be >= 1, got depth={depth}, base_channels={base_channels}")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True needs in_channels == out_channels, got {in_channels}, {out_channels}")
        _make_norm(norm, 8)  # validate the name early
        self.config = dict(
            in_channels=in_channels, out_channels=out_channels, base_channels=base_channels,
            depth=depth, norm=norm, residual=residual, edge_input=edge_input,
        )
        self.depth, self.residual, self.edge_input = depth, residual, edge_input
        widths = [base_channels * 2**level for level in range(depth + 1)]
        cin = in_channels * (2 if edge_input else 1)
        self.down = nn.ModuleList()
        for w in widths[:-1]:
            self.down.append(_DoubleConv(cin, w, norm))
            cin = w
        self.bottleneck = _DoubleConv(widths[-2], widths[-1], norm)
        levels = list(reversed(range(depth)))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in levels)
        self.dec = nn.ModuleList(_DoubleConv(2 * widths[i], widths[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    @property
    def input_multiple(self) -> int:
        """H and W are padded internally to a multiple of this (2**depth)."""
        return 2**self.depth

    def required_halo(self) -> int:
        """Largest one-sided reach (pixels) of an output pixel into the input.

        A tile needs at least this halo on each side for its centre to equal the
        untiled result. Per level ``l`` (in level-``l`` pixels): 2 for the encoder convs,
        2 for the decoder convs, and ``2 * R_{l+1} + 1`` through the pool / transposed
        conv (pool alignment costs one pixel); the bottleneck reaches 2. Hence
        ``R = 7 * 2**depth - 5``, plus 1 for the Sobel input channel. Exact (checked
        against autograd in the tests).
        """
        return 7 * 2**self.depth - 5 + (1 if self.edge_input else 0)

    def receptive_field(self) -> int:
        """Width in pixels of the (centred, worst-case) receptive field: ``2 * required_halo() + 1``."""
        return 2 * self.required_halo() + 1

    def _core(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (B, C, H, W) float; returns (B, C_out, H, W)."""
        if x.ndim != 4:
            raise ValueError(f"UNet expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.input_multiple
        ph, pw = (-h) % m, (-w) % m
        inp = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate") if ph or pw else x
        feats = torch.cat([inp, compute_sobel_magnitude(inp)], dim=1) if self.edge_input else inp
        out = self._core(feats)
        if self.residual:
            out = inp - out
        return out[..., :h, :w] if ph or pw else out
