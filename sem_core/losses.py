"""Training losses and the composite objectives of the experiment ladder.

All losses take ``pred`` and ``target`` of shape (B, C, H, W), float, nominally in
[0, 1], and return a scalar tensor (mean over the batch). They compute in float32
even under bf16 autocast.

Composites (``build_loss``):
    baseline     MSE  + lam * (1 - SSIM)
    charbonnier  Char + lam * (1 - SSIM)
    full         Char + alpha * (1 - MS-SSIM) + beta * Edge
    mse | ssim | ms_ssim | charbonnier_only | edge    the single terms
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from pytorch_msssim import ms_ssim as _pm_ms_ssim
from pytorch_msssim import ssim as _pm_ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

from .models.unet import compute_sobel_gradients

__all__ = [
    "LOSS_NAMES",
    "MS_SSIM_WEIGHTS",
    "build_loss",
    "charbonnier_loss",
    "edge_loss",
    "ms_ssim_index",
    "mse_loss",
    "select_ms_ssim_scales",
    "ssim_index",
]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang et al. (2003) per-scale exponents, finest first (pytorch-msssim's defaults)."""

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _float32(fn: Callable) -> Callable:
    """Run a loss in float32 with autocast off.

    Casting the inputs is not enough: inside a bf16 autocast region the convolutions of SSIM,
    MS-SSIM and Sobel would still run in bf16, and SSIM's E[x^2] - E[x]^2 loses all precision
    there (a bf16 training step that computed the loss inside autocast did not learn).
    """

    @functools.wraps(fn)
    def wrapper(pred: torch.Tensor, target: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(device_type=pred.device.type, enabled=False):
            return fn(pred.float(), target.float(), *args, **kwargs)

    return wrapper


def _f32(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"loss: pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    return pred.float(), target.float()


@_float32
def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    pred, target = _f32(pred, target)
    return torch.mean((pred - target) ** 2)


@_float32
def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): a smooth L1 (tends to mean |pred - target| as eps -> 0)."""
    pred, target = _f32(pred, target)
    return torch.mean(torch.sqrt((pred - target) ** 2 + eps * eps))


@_float32
def edge_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the Sobel gradient maps (d/drow and d/dcol) of pred and target."""
    pred, target = _f32(pred, target)
    py, px = compute_sobel_gradients(pred)
    ty, tx = compute_sobel_gradients(target)
    return 0.5 * (torch.mean(torch.abs(py - ty)) + torch.mean(torch.abs(px - tx)))


@_float32
def ssim_index(pred: torch.Tensor, target: torch.Tensor, *, win_size: int = 11) -> torch.Tensor:
    """Mean SSIM (pytorch-msssim, Gaussian window sigma 1.5, data range 1)."""
    pred, target = _f32(pred, target)
    return _pm_ssim(pred, target, data_range=1.0, win_size=win_size, size_average=True)


def select_ms_ssim_scales(size: int, *, win_size: int = 11) -> tuple[float, ...]:
    """Per-scale weights for MS-SSIM on images whose smaller side is ``size``.

    The full 5 scales need ``size > (win_size - 1) * 16`` (161 px for an 11-px window,
    pytorch-msssim's own check). Smaller images use the largest number of scales ``L``
    whose coarsest level still holds a whole window (``size // 2**(L-1) >= win_size``),
    with the first ``L`` standard weights renormalised to sum to 1. E.g. 64 px -> 3
    scales, 128 px -> 4 scales, 256 px -> 5 scales.

    Raises
    ------
    ValueError
        If ``size < win_size`` (not even one scale fits).
    """
    if size > (win_size - 1) * 16:
        return MS_SSIM_WEIGHTS
    levels = 0
    while levels < 5 and size // 2**levels >= win_size:
        levels += 1
    if levels == 0:
        raise ValueError(f"MS-SSIM: image side {size} px is smaller than the {win_size}-px window")
    w = MS_SSIM_WEIGHTS[:levels]
    return tuple(x / sum(w) for x in w)


@_float32
def ms_ssim_index(
    pred: torch.Tensor, target: torch.Tensor, *, weights: tuple[float, ...] | None = None, win_size: int = 11
) -> torch.Tensor:
    """Mean MS-SSIM (data range 1); scales chosen by :func:`select_ms_ssim_scales` unless ``weights`` is given.

    With the standard 5 scales this is exactly ``pytorch_msssim.ms_ssim``; with fewer it
    runs the same per-scale computation (pytorch-msssim's ``_ssim``) over fewer scales,
    which its public function refuses below 161 px.
    """
    pred, target = _f32(pred, target)
    if weights is None:
        weights = select_ms_ssim_scales(min(pred.shape[-2:]), win_size=win_size)
    if tuple(weights) == MS_SSIM_WEIGHTS and min(pred.shape[-2:]) > (win_size - 1) * 16:
        return _pm_ms_ssim(pred, target, data_range=1.0, win_size=win_size, size_average=True)
    return _compute_ms_ssim(pred, target, weights=tuple(weights), win_size=win_size)


def _compute_ms_ssim(
    pred: torch.Tensor, target: torch.Tensor, *, weights: tuple[float, ...], win_size: int
) -> torch.Tensor:
    """MS-SSIM over ``len(weights)`` scales (pytorch-msssim's per-scale ``_ssim``, relu, product)."""
    win = _fspecial_gauss_1d(win_size, 1.5).repeat([pred.shape[1], 1, 1, 1])
    x, y, factors = pred, target, []
    for level in range(len(weights)):
        ssim_c, cs_c = _ssim(x, y, data_range=1.0, win=win, size_average=False)
        if level < len(weights) - 1:
            factors.append(torch.relu(cs_c))
            pad = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=pad)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=pad)
    factors.append(torch.relu(ssim_c))
    stacked = torch.stack(factors, dim=0)
    w = stacked.new_tensor(weights).view(-1, 1, 1)
    return torch.prod(stacked**w, dim=0).mean()


def build_loss(
    name: str, *, lam: float = 0.2, alpha: float = 0.2, beta: float = 0.1, eps: float = 1e-3
) -> LossFn:
    """Return ``loss(pred, target) -> scalar`` for a named objective (see the module docstring).

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NAMES`.
    lam : float
        SSIM weight of ``baseline`` and ``charbonnier``.
    alpha, beta : float
        MS-SSIM and edge weights of ``full``.
    eps : float
        Charbonnier epsilon.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name == "baseline":
        return lambda p, t: mse_loss(p, t) + lam * (1 - ssim_index(p, t))
    if name == "charbonnier":
        return lambda p, t: charbonnier_loss(p, t, eps=eps) + lam * (1 - ssim_index(p, t))
    if name == "full":
        return lambda p, t: (
            charbonnier_loss(p, t, eps=eps) + alpha * (1 - ms_ssim_index(p, t)) + beta * edge_loss(p, t)
        )
    if name == "mse":
        return mse_loss
    if name == "ssim":
        return lambda p, t: 1 - ssim_index(p, t)
    if name == "ms_ssim":
        return lambda p, t: 1 - ms_ssim_index(p, t)
    if name == "charbonnier_only":
        return lambda p, t: charbonnier_loss(p, t, eps=eps)
    if name == "edge":
        return edge_loss
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSS_NAMES}")


LOSS_NAMES = ("baseline", "charbonnier", "full", "mse", "ssim", "ms_ssim", "charbonnier_only", "edge")
