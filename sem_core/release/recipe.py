"""One release candidate: (optional) pre-training on simulated noise, then the real training pairs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..losses import build_loss
from ..models.ensemble import apply_transform
from ..models.unet import UNet
from .augment import augment_pairs

__all__ = ["train_candidate", "cut_batch", "AUGMENT_CODES"]

# Transform codes of sem_core.models.ensemble: "scan" keeps the fast-scan axis (up-down flip only).
AUGMENT_CODES = {"none": (0,), "scan": (0, 2), "dihedral": tuple(range(8))}


def cut_batch(noisy: torch.Tensor, clean: torch.Tensor, *, batch: int, patch: int, gen: torch.Generator,
              codes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (B, 1, P, P) crops of the (N, H, W) stacks, one transform of ``codes`` for the whole batch."""
    n, h, w = noisy.shape
    idx = torch.randint(0, n, (batch,), generator=gen).tolist()
    rs = torch.randint(0, h - patch + 1, (batch,), generator=gen).tolist()
    cs = torch.randint(0, w - patch + 1, (batch,), generator=gen).tolist()
    xn = torch.stack([noisy[i, r:r + patch, c:c + patch] for i, r, c in zip(idx, rs, cs)])[:, None]
    xc = torch.stack([clean[i, r:r + patch, c:c + patch] for i, r, c in zip(idx, rs, cs)])[:, None]
    code = codes[int(torch.randint(0, len(codes), (1,), generator=gen))]
    return apply_transform(xn, code), apply_transform(xc, code)


def train_candidate(
    noisy: np.ndarray,
    clean: np.ndarray,
    *,
    sim_noisy: np.ndarray | None = None,
    model_kwargs: dict[str, Any],
    steps: int,
    pretrain_steps: int = 0,
    batch_size: int = 8,
    patch_px: int = 64,
    lr: float = 2e-3,
    loss: str = "charbonnier",
    augment: str = "scan",
    brightness: float = 0.0,
    contrast: float = 0.0,
    noise_scale: tuple[float, float] = (1.0, 1.0),
    seed: int = 0,
    progress: Callable[[dict[str, float]], None] | None = None,
    snapshot: Callable[[UNet, str, int], None] | None = None,
    snapshot_every: int = 500,
) -> tuple[UNet, dict[str, Any]]:
    """Train one U-Net on the CPU (deterministic for a seed).

    Parameters
    ----------
    noisy, clean : (N, H, W) uint8
        The real training block's aligned pairs.
    sim_noisy : (K, N, H, W) uint8, optional
        ``K`` simulated noisy copies of ``clean`` (calibrated noise model); used for the first
        ``pretrain_steps`` steps (pre-training), then the real pairs for ``steps`` steps (fine-tuning).
    model_kwargs : dict
        :class:`~sem_core.models.unet.UNet` arguments.
    steps, pretrain_steps, batch_size, patch_px, lr, loss
        Schedule: linear warm-up (5 %) and cosine decay in each phase; AdamW, gradient clip 1.
    augment : {"none", "scan", "dihedral"}
        Geometric transforms per batch (``scan`` keeps the fast-scan direction of the noise).
    brightness, contrast, noise_scale
        Photometric augmentation (:func:`~.augment.augment_pairs`), every phase.
    seed : int
    progress : callable, optional
        ``{"phase", "step", "steps", "loss", "seconds"}`` every 50 steps.
    snapshot : callable, optional
        ``snapshot(model, phase, step)`` every ``snapshot_every`` steps and at the end of each phase (the model
        is in train mode; save its ``state_dict``), so a long CPU run can be inspected or stopped early.

    Returns
    -------
    model : UNet in eval mode (float32, CPU)
    info : dict with ``steps``, ``pretrain_steps``, ``seconds``, ``final_loss``.
    """
    if pretrain_steps and sim_noisy is None:
        raise ValueError("pretrain_steps > 0 needs sim_noisy")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = UNet(**model_kwargs)
    loss_fn = build_loss(loss)
    codes = AUGMENT_CODES[augment]
    to_t = lambda a: torch.from_numpy(np.asarray(a, np.float32) / 255.0)  # noqa: E731
    real_n, real_c = to_t(noisy), to_t(clean)
    phases = []
    if pretrain_steps:
        sim = to_t(sim_noisy)
        phases.append(("pretrain", pretrain_steps, sim.reshape(-1, *sim.shape[-2:]), real_c.repeat(sim.shape[0], 1, 1)))
    phases.append(("real", steps, real_n, real_c))
    t0, last = time.perf_counter(), float("nan")
    model.train()
    for phase, n_steps, src_n, src_c in phases:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        warm = max(1, n_steps // 20)
        for s in range(n_steps):
            scale = (s + 1) / warm if s < warm else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, n_steps - warm)))
            for g in opt.param_groups:
                g["lr"] = lr * scale
            xn, xc = cut_batch(src_n, src_c, batch=batch_size, patch=patch_px, gen=gen, codes=codes)
            xn, xc = augment_pairs(xn, xc, gen=gen, brightness=brightness, contrast=contrast, noise_scale=noise_scale)
            opt.zero_grad(set_to_none=True)
            value = loss_fn(model(xn), xc)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            last = float(value.detach())
            if progress is not None and ((s + 1) % 50 == 0 or s + 1 == n_steps):
                progress({"phase": phase, "step": s + 1, "steps": n_steps, "loss": last,
                          "seconds": time.perf_counter() - t0})
            if snapshot is not None and ((s + 1) % snapshot_every == 0 or s + 1 == n_steps):
                snapshot(model, phase, s + 1)
    model.eval()
    return model, {"steps": steps, "pretrain_steps": pretrain_steps, "seconds": round(time.perf_counter() - t0, 1),
                   "final_loss": last}
