"""Photometric augmentation of training pairs so a model does not memorise one session's histogram."""

from __future__ import annotations

import torch

__all__ = ["augment_pairs"]


def augment_pairs(noisy: torch.Tensor, clean: torch.Tensor, *, gen: torch.Generator, brightness: float = 0.0,
                  contrast: float = 0.0, noise_scale: tuple[float, float] = (1.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Random per-patch brightness/contrast and noise level.

    Parameters
    ----------
    noisy, clean : Tensor (B, 1, P, P), float on the unit scale
    gen : torch.Generator
    brightness : float
        Offset ``b ~ U(-brightness, brightness)`` (unit scale) added to both images.
    contrast : float
        Gain ``a ~ U(1 - contrast, 1 + contrast)`` about the patch's clean mean, applied to both (the noise
        scales with it, as with a detector gain change).
    noise_scale : (lo, hi)
        The residual ``noisy - clean`` is multiplied by ``s ~ U(lo, hi)`` (a dose change).

    Returns
    -------
    (noisy, clean) : Tensors like the inputs. With all ranges empty the inputs are returned unchanged
    (and no random number is drawn).
    """
    b = noisy.shape[0]
    shape = (b, 1, 1, 1)
    if noise_scale != (1.0, 1.0):
        lo, hi = noise_scale
        s = lo + (hi - lo) * torch.rand(shape, generator=gen)
        noisy = clean + s.to(noisy) * (noisy - clean)
    if contrast > 0:
        a = (1 - contrast + 2 * contrast * torch.rand(shape, generator=gen)).to(noisy)
        mean = clean.mean(dim=(-2, -1), keepdim=True)
        noisy, clean = mean + a * (noisy - mean), mean + a * (clean - mean)
    if brightness > 0:
        off = (brightness * (2 * torch.rand(shape, generator=gen) - 1)).to(noisy)
        noisy, clean = noisy + off, clean + off
    return noisy, clean
