"""Device and numeric-precision selection for training and inference.

CUDA: bfloat16 autocast and ``channels_last`` memory format (tensor cores, no loss
scaling needed). CPU: plain float32 and the default (NCHW) layout, so that CPU runs
are bit-reproducible. :func:`move_batch` puts a host batch on the device (the optimiser step and
the learning-rate schedule are in :mod:`sem_core.train_step`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
import numpy as np
import torch

__all__ = ["DeviceSetup", "autocast_context", "move_batch", "select_device"]


@dataclass(frozen=True)
class DeviceSetup:
    """How tensors and models are placed.

    Attributes
    ----------
    device : torch.device
        Where the model runs.
    autocast_dtype : torch.dtype or None
        ``torch.bfloat16`` on CUDA, ``None`` (float32) on CPU.
    channels_last : bool
        Whether models and input batches use ``torch.channels_last``.
    """

    device: torch.device
    autocast_dtype: torch.dtype | None
    channels_last: bool

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format for 4-D tensors on this device."""
        return torch.channels_last if self.channels_last else torch.contiguous_format


def select_device(device: str = "auto", *, bf16: bool = True, channels_last: bool | None = None) -> DeviceSetup:
    """Choose the device and precision.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    bf16 : bool
        Use bfloat16 autocast on CUDA (ignored on CPU, which always runs float32).
    channels_last : bool, optional
        Override the layout; default: True on CUDA, False on CPU.

    Raises
    ------
    ValueError
        If CUDA is requested but not available, or the device string is malformed.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        return DeviceSetup(dev, torch.bfloat16 if bf16 else None, True if channels_last is None else channels_last)
    if dev.type != "cpu":
        raise ValueError(f"unsupported device type {dev.type!r} (use 'cpu', 'cuda' or 'auto')")
    return DeviceSetup(dev, None, bool(channels_last))


@contextlib.contextmanager
def autocast_context(setup: DeviceSetup) -> Iterator[None]:
    """Autocast to ``setup.autocast_dtype`` when set, else a no-op context."""
    if setup.autocast_dtype is None:
        yield
        return
    with torch.autocast(device_type=setup.device.type, dtype=setup.autocast_dtype):
        yield


def move_batch(arr: np.ndarray, setup: DeviceSetup) -> torch.Tensor:
    """Host float32 batch (B, C, H, W) -> tensor on ``setup.device`` in ``setup.memory_format``."""
    return torch.from_numpy(arr).to(setup.device, non_blocking=True).contiguous(memory_format=setup.memory_format)
