"""The optimiser step and the per-step learning-rate schedule of U-Net training.

The step machinery that :mod:`sem_core.train` and the benchmarks share (torch only, so it runs
where the data stack is not installed); device placement and precision are in :mod:`sem_core.device`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .device import DeviceSetup, autocast_context

__all__ = ["make_scheduler", "make_train_step"]


def make_train_step(
    model: torch.nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer, scheduler: Any,
    setup: DeviceSetup, *, grad_clip: float | None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One optimiser step on a batch (B, 1, P, P) already on the device; returns the detached loss."""

    def step(noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(setup):
            pred = model(noisy)
        loss = loss_fn(pred, clean)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        return loss.detach()

    return step


def make_scheduler(optimizer: torch.optim.Optimizer, *, schedule: str, lr: float, steps: int) -> Any:
    """Per-step learning-rate schedule: ``"cosine"`` (to lr/100) or ``"onecycle"`` over ``steps``."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.01)
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    raise ValueError(f"unknown schedule {schedule!r}; expected 'cosine' or 'onecycle'")
