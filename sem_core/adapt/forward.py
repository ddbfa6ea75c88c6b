"""The forward operator between the clean domain and the noisy image's mean, estimated from the starting model.

Self-supervised losses can only learn ``E[y | x]``, the noisy image's expectation, and for real SEM pairs
that is not the clean image: the fast scan's detector smears the signal along x and the short and long
dwell frames sit a fraction of a pixel apart. A supervised model has learnt to undo both; plain Noise2Self
fine-tuning pulls it back toward ``E[y]`` and loses (measured on the Tin-balls held-out block). So the
adaptation compares ``k * f(y)`` with ``y``, where the small kernel ``k`` maps the starting model's output
to the noisy image (least squares over the batch): ``f`` keeps producing clean-domain images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["estimate_forward_kernel", "apply_forward_kernel"]


def estimate_forward_kernel(outputs: Sequence[np.ndarray], images: Sequence[np.ndarray], *, size_px: int = 5,
                            border_px: int = 8) -> np.ndarray:
    """Least-squares kernel ``k`` (size_px, size_px) with ``k * output ≈ image`` (plus a constant).

    Parameters
    ----------
    outputs : (H, W) float arrays
        The starting model's outputs for ``images``.
    images : (H, W) float arrays
        The noisy images (unit scale).
    size_px : int
        Odd kernel side (1 gives a gain only).

    Returns
    -------
    (size_px, size_px) float32, correlation-oriented as :func:`torch.nn.functional.conv2d` uses it.
    """
    if size_px < 1 or size_px % 2 == 0:
        raise ValueError(f"size_px must be odd and >= 1, got {size_px}")
    r = size_px // 2
    b = border_px + r
    rows, targets = [], []
    for out, img in zip(outputs, images, strict=True):
        out = np.asarray(out, np.float64)
        h, w = out.shape
        cols = [out[b + dy:h - b + dy, b + dx:w - b + dx].ravel() for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
        rows.append(np.stack(cols + [np.ones_like(cols[0])], axis=1))
        targets.append(np.asarray(img, np.float64)[b:h - b, b:w - b].ravel())
    a, t = np.concatenate(rows), np.concatenate(targets)
    coef, *_ = np.linalg.lstsq(a, t, rcond=None)
    return coef[:-1].reshape(size_px, size_px).astype(np.float32)


def apply_forward_kernel(x: torch.Tensor, kernel: torch.Tensor | None) -> torch.Tensor:
    """``kernel * x`` for (B, 1, H, W) with reflect padding; ``None`` is the identity."""
    if kernel is None:
        return x
    r = kernel.shape[-1] // 2
    return F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), kernel.view(1, 1, *kernel.shape[-2:]).to(x))
