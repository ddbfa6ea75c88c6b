"""The U-Net forward pass level by level in row strips: the same output, a fraction of the memory.

A plain forward pass over an (H, W) image holds several full-resolution feature maps at once
(~850 bytes per pixel for base 32, depth 4, float32 on CPU), which caps the image a CPU can take in
one pass and so forces context-heavy sub-tiling. :func:`forward_in_strips` computes the same function
keeping only the skip connections whole (``2 * base_channels`` floats per pixel summed over levels):
at each level the encoder's double convolution runs on row strips with 2 rows of context (its reach),
the deeper levels recurse on the pooled map, and the decoder's transposed convolution + double
convolution run on row strips again (the transposed convolution maps rows ``r`` to ``2r, 2r+1`` and
needs no context). Strips start on even rows, so every strip sees the pooling grid of the whole pass.
Equal to ``net(x)`` within float rounding (tested); the recomputed context is 4 rows per strip.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .unet import UNet, compute_sobel_magnitude

__all__ = ["DEFAULT_STRIP_PX", "forward_in_strips", "strip_rows"]

_REACH = 2  # rows of context of a double 3x3 convolution
MIN_ROWS = 16  # a strip recomputes 2 * _REACH rows: at 16 rows that is 25 % of its first convolution
DEFAULT_STRIP_PX = 1 << 15
"""Pixels per strip: 16 rows of a 2048-wide block. Small strips keep every temporary in the cache and in
malloc's reused heap (below glibc's 32 MiB mmap threshold), so no page is faulted in twice: on 2 CPU threads
this made the first 2048² pass of the base-16 model in a process 1.1-1.4x faster than the plain forward
and ~1.4x faster than strips of 1<<19 px (medians of fresh processes; ``bench/unet_ratio.py``)."""


def strip_rows(width: int, *, strip_px: int) -> int:
    """Rows per strip (even, >= :data:`MIN_ROWS`) so that one strip holds about ``strip_px`` pixels of width ``width``."""
    rows = max(MIN_ROWS, math.ceil(strip_px / max(1, width)))
    return rows + rows % 2


def _encode(block, x: torch.Tensor, rows: int) -> torch.Tensor:
    """``block(x)`` over row strips of ``x`` (1, C, H, W) with ``_REACH`` rows of context each side."""
    h = x.shape[-2]
    out = None
    for a in range(0, h, rows):
        b = min(h, a + rows)
        lo, hi = max(0, a - _REACH), min(h, b + _REACH)
        y = block(x[..., lo:hi, :])[..., a - lo : a - lo + (b - a), :]
        if out is None:
            out = torch.empty((*y.shape[:-2], h, y.shape[-1]), dtype=y.dtype, device=y.device,
                              memory_format=_format_of(y))
        out[..., a:b, :] = y
        del y
    return out


def _decode(up, dec, deep: torch.Tensor, skip: torch.Tensor, rows: int, head=None) -> torch.Tensor:
    """``dec(cat(up(deep), skip))`` (then ``head``) over row strips of the skip's resolution."""
    h = skip.shape[-2]
    out = None
    for a in range(0, h, rows):  # a, rows even: strip and context edges fall on pooled-row boundaries
        b = min(h, a + rows)
        lo, hi = max(0, a - _REACH), min(h, b + _REACH)
        lo2, hi2 = lo // 2, (hi + 1) // 2
        u = up(deep[..., lo2:hi2, :])[..., lo - 2 * lo2 : lo - 2 * lo2 + (hi - lo), :]
        y = dec(torch.cat([u, skip[..., lo:hi, :]], dim=1))
        del u
        if head is not None:
            y = head(y)
        y = y[..., a - lo : a - lo + (b - a), :]
        if out is None:
            out = torch.empty((*y.shape[:-2], h, y.shape[-1]), dtype=y.dtype, device=y.device,
                              memory_format=_format_of(y))
        out[..., a:b, :] = y
        del y
    return out


def _format_of(x: torch.Tensor) -> torch.memory_format:
    """The layout of a computed strip, for the whole map it is written into (no transposing copies)."""
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def forward_in_strips(net: UNet, x: torch.Tensor, *, strip_px: int = DEFAULT_STRIP_PX) -> torch.Tensor:
    """``net(x)`` computed level by level in row strips (same result, bounded temporaries).

    Parameters
    ----------
    net : UNet
        In eval mode (batch norm uses running statistics; dropout-free).
    x : Tensor, shape (1, C, H, W)
        One image; any H, W (padded to the input multiple as :meth:`UNet.forward` does).
    strip_px : int
        Pixels per strip at full resolution (rows = ``strip_px / W``, at least 8, even); deeper
        levels use the same pixel budget.

    Returns
    -------
    Tensor, shape (1, C_out, H, W)
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"forward_in_strips takes one (1, C, H, W) image, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    m = net.input_multiple
    ph, pw = (-h) % m, (-w) % m
    inp = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate") if ph or pw else x
    feats = torch.cat([inp, compute_sobel_magnitude(inp)], dim=1) if net.edge_input else inp

    def level(i: int, z: torch.Tensor) -> torch.Tensor:
        rows = strip_rows(z.shape[-1], strip_px=strip_px)
        if i == net.depth:
            return _encode(net.bottleneck, z, rows)
        skip = _encode(net.down[i], z, rows)
        deep = level(i + 1, F.max_pool2d(skip, 2))
        j = net.depth - 1 - i  # the decoder lists run from the deepest level up
        return _decode(net.up[j], net.dec[j], deep, skip, rows, head=net.head if i == 0 else None)

    out = level(0, feats)
    if net.residual:
        out = inp - out
    return out[..., :h, :w] if ph or pw else out
