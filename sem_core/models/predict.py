"""Whole-image U-Net inference on one 8-bit SEM image (optionally self-ensembled)."""

from __future__ import annotations

import numpy as np
import torch

from .ensemble import predict_ensemble

__all__ = ["predict_image"]


@torch.inference_mode()
def predict_image(model: torch.nn.Module, image: np.ndarray, *, device: torch.device | str = "cpu",
                  amp: bool = False, ensemble: str = "none", max_value: float = 255.0) -> np.ndarray:
    """Denoise one (H, W) image in grey levels ``0..max_value``.

    Parameters
    ----------
    model : nn.Module
        Maps (1, 1, H, W) float32 on the unit scale to the same shape; used as is (eval mode expected).
    image : (H, W) array, uint8 or float grey levels
    device : torch device
    amp : bool
        bf16 autocast (and channels_last) on the device.
    ensemble : {"none", "scan", "dihedral"}
        Self-ensemble (:data:`sem_core.models.ensemble.SELF_ENSEMBLES`; "dihedral" is x8).
    max_value : float
        Grey level that maps to 1.0.

    Returns
    -------
    (H, W) float32 grey levels in ``[0, max_value]``.
    """
    device = torch.device(device)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / max_value)[None, None].to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        y = predict_ensemble(model, x, ensemble=ensemble,
                             memory_format=torch.channels_last if amp else torch.contiguous_format)
    return y[0, 0].clamp(0, 1).mul(max_value).cpu().numpy()
