"""Self-ensembles for inference: average the network over flips/transposes of its input.

Codes follow bit flags: 4 = transpose the (row, col) axes, 1 = left-right flip, 2 = up-down flip,
applied in that order; :func:`undo_transform` inverts :func:`apply_transform`.

SEM noise is filtered causally along the fast-scan axis (left to right), so transforms that swap or
mirror that axis show the network noise the microscope cannot make; the ``scan`` ensemble (the image
and its up-down flip) keeps it. A model trained with all 8 transforms can still be orientation
dependent: on the Wafers test split the ×8 ensemble of such a model lost 1.9 dB, the ``scan``
ensemble gained 0.5 dB (``bench/wafers_vs_bm3d.py --ensemble``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["SELF_ENSEMBLES", "apply_transform", "undo_transform", "predict_ensemble"]

SELF_ENSEMBLES: dict[str, tuple[int, ...]] = {"none": (0,), "scan": (0, 2), "dihedral": tuple(range(8))}
"""Transform codes averaged by each self-ensemble."""


def apply_transform(x: torch.Tensor, code: int) -> torch.Tensor:
    """Transform the last two axes of ``x`` (..., H, W) by ``code`` in 0..7 (transposes need H == W
    for a batch to stay stackable)."""
    if code & 4:
        x = x.transpose(-1, -2)
    if code & 1:
        x = x.flip(-1)
    if code & 2:
        x = x.flip(-2)
    return x


def undo_transform(x: torch.Tensor, code: int) -> torch.Tensor:
    """Inverse of :func:`apply_transform` with the same ``code``."""
    if code & 2:
        x = x.flip(-2)
    if code & 1:
        x = x.flip(-1)
    if code & 4:
        x = x.transpose(-1, -2)
    return x


def predict_ensemble(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, ensemble: str = "none",
                     memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Mean of ``undo(net(apply(x)))`` over the ensemble's codes, in float32.

    Parameters
    ----------
    net : callable
        Maps a (B, C, H, W) batch to (B, C', H, W).
    x : Tensor, shape (B, C, H, W)
    ensemble : {"none", "scan", "dihedral"}
    memory_format : torch.memory_format
        Layout of each transformed batch (``torch.channels_last`` on CUDA).
    """
    if ensemble not in SELF_ENSEMBLES:
        raise ValueError(f"unknown self-ensemble {ensemble!r}; expected one of {sorted(SELF_ENSEMBLES)}")
    codes = SELF_ENSEMBLES[ensemble]
    acc = None
    for code in codes:
        y = undo_transform(net(apply_transform(x, code).contiguous(memory_format=memory_format)).float(), code)
        acc = y if acc is None else acc + y
    return acc / len(codes)
