"""Build the dataset Zarr stores: synthetic ``wafers.zarr`` and real ``tin_balls.zarr``.

Wafer image ``i`` depends only on ``(seed, i)`` and the parameters: its generator is
``derive_rng(seed, "wafers", i)`` (spawned into a specimen and an imaging stream), so any image can be
regenerated alone with :func:`render_wafer_item`, and the store does not depend on the worker count.

Modules: :mod:`.image_pair` (the imaging function), :mod:`.wafer_store` (``wafers.zarr``),
:mod:`.tin_balls_store` (``tin_balls.zarr``), :mod:`.progress` (optional progress bar).
"""

from __future__ import annotations

from .image_pair import imaging_kwargs, make_image_pair
from .tin_balls_store import chunk_tin_balls, make_ball_mask
from .wafer_store import WaferItem, render_wafer_item, synthesize_wafer_dataset

__all__ = [
    "WaferItem",
    "make_image_pair",
    "imaging_kwargs",
    "render_wafer_item",
    "synthesize_wafer_dataset",
    "make_ball_mask",
    "chunk_tin_balls",
]
