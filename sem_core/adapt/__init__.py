"""Self-supervised adaptation of a trained U-Net to a new batch of noisy SEM images (no clean images).

Modules: :mod:`.masking` (the x-run blind-spot mask: Noise2Self whose masked runs span the fast-axis
noise correlation), :mod:`.sure` (Monte-Carlo SURE with the correlated, signal-dependent SEM noise:
the guard that decides whether the adapted weights are kept), :mod:`.inputs` (reading a folder of
TIFF/PNG or a Zarr/OME-Zarr store), :mod:`.run` (the fine-tuning loop and the guard).
"""

from __future__ import annotations

from .inputs import read_adapt_images
from .masking import make_blind_spot_batch
from .run import AdaptResult, adapt_batch, adapt_checkpoint, adapt_model, hash_state_dict
from .sure import estimate_sure_mse

__all__ = ["AdaptResult", "adapt_batch", "adapt_checkpoint", "adapt_model", "estimate_sure_mse", "hash_state_dict", "make_blind_spot_batch",
           "read_adapt_images"]
