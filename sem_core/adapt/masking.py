"""The x-run blind-spot mask for Noise2Self training under noise correlated along the fast axis.

SEM noise is correlated along x (the fast scan axis; lag-1 about 0.47, lag-2 about 0.08 on Tin balls)
and independent between rows. A one-pixel blind spot lets the network read the masked pixel's noise
back from its x-neighbours, so it learns to copy the noise. As in the x-run J-invariance that
calibrates NLM and TV (:mod:`sem_core.denoise.calibration`), whole runs of ``run_px`` pixels along x
are masked on every ``row_stride``-th row (phase random per patch), filled with the mean of the rows
above and below (independent noise), and the loss is scored only on run pixels at least
``corr_len_px`` from both run ends: no unmasked input pixel carries noise correlated with a scored one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["make_blind_spot_batch"]


def make_blind_spot_batch(
    x: torch.Tensor, *, gen: torch.Generator, run_px: int = 8, corr_len_px: int = 2, row_stride: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch of noisy patches with x-runs.

    Parameters
    ----------
    x : Tensor, float, shape (B, 1, H, W)
        Noisy patches on the unit scale.
    gen : torch.Generator
        Source of the per-patch row phase (0..row_stride-1) and column phase (0..2·run_px-1).
    run_px, corr_len_px, row_stride : int
        Run length along x, noise correlation length along x, masked-row period (>= 2).

    Returns
    -------
    masked : Tensor (B, 1, H, W)
        ``x`` with the runs replaced by the mean of the rows above and below (reflect at the edges).
    score : Tensor (B, 1, H, W) bool
        Pixels the loss may use (run cores).
    """
    if run_px <= 2 * corr_len_px:
        raise ValueError(f"run_px ({run_px}) must exceed 2·corr_len_px ({2 * corr_len_px})")
    if row_stride < 2:
        raise ValueError(f"row_stride must be >= 2, got {row_stride}")
    b, _, h, w = x.shape
    row_phase = torch.randint(0, row_stride, (b, 1, 1, 1), generator=gen).to(x.device)
    col_phase = torch.randint(0, 2 * run_px, (b, 1, 1, 1), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
    pos = (cols + col_phase) % (2 * run_px)  # runs where pos < run_px
    on_row = (rows % row_stride) == row_phase
    in_run = on_row & (pos < run_px)
    score = on_row & (pos >= corr_len_px) & (pos < run_px - corr_len_px)
    padded = F.pad(x, (0, 0, 1, 1), mode="reflect")
    vertical = 0.5 * (padded[..., :-2, :] + padded[..., 2:, :])
    return torch.where(in_run, vertical, x), score
