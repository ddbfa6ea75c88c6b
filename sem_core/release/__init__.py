"""The release recipe: train U-Net candidates on the real training block, choose on val, export fp16.

Modules: :mod:`.augment` (brightness/contrast and noise-level augmentation of pairs), :mod:`.recipe`
(one candidate: optional pre-training on calibrated simulated noise, then real pairs), :mod:`.card`
(the release card), :mod:`.run` (candidates x seeds, scored on the val and test blocks, the chosen one
exported).
"""

from __future__ import annotations

from .augment import augment_pairs
from .recipe import train_candidate
from .run import run_release

__all__ = ["augment_pairs", "run_release", "train_candidate"]
