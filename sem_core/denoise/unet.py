"""The U-Net as a :class:`~sem_core.denoise.base.Denoiser`: batched sub-tiles, automatic device.

A tile is cut into sub-tiles of ``tile_px`` (plus ``ctx`` pixels of context on each side, ``ctx``
= the network's :meth:`~sem_core.models.unet.UNet.required_halo` rounded up to its
``input_multiple``) whose origins sit on the ``input_multiple`` grid, so max-pooling sees the same
pixel alignment as in a whole-image pass; they run ``batch_size`` at a time. CUDA: bfloat16
autocast and ``channels_last``; CPU: float32. The output is clamped to [0, 1]. With ``compile``
the network is ``torch.compile``d on first use (per process) and every batch is padded to
``batch_size`` sub-tiles, so one static shape is compiled once. ``ensemble`` averages the network
over transforms of each sub-tile (:mod:`sem_core.models.ensemble`; ``scan`` keeps the fast-scan axis).
"""

from __future__ import annotations

import copy
import contextlib
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..device import autocast_context, select_device
from ..models.ensemble import SELF_ENSEMBLES, predict_ensemble
from ..provenance import hash_file
from .base import register_denoiser

__all__ = ["UnetDenoiser"]


@register_denoiser("unet")
class UnetDenoiser:
    """U-Net denoiser from a checkpoint (``checkpoint``) or a ready module (``model``, for tests).

    Parameters
    ----------
    checkpoint : str or Path, optional
        Release ``.safetensors`` or training ``.ckpt`` (:func:`sem_core.checkpoint.load_model`).
    model : nn.Module, optional
        A UNet with ``required_halo()`` and ``input_multiple``.
    batch_size : int
        Sub-tiles per forward pass.
    tile_px : int
        Sub-tile core side (rounded up to the network's input multiple).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    compile : bool
        ``torch.compile`` the network (worth it on CUDA for long scans; compiling takes tens of seconds).
    ensemble : {"none", "scan", "dihedral"}
        Self-ensemble: 1, 2 (image and up-down flip) or 8 forward passes per sub-tile.
    """

    name = "unet"

    def __init__(
        self,
        *,
        checkpoint: str | Path | None = None,
        model: nn.Module | None = None,
        batch_size: int = 8,
        tile_px: int = 512,
        device: str = "auto",
        compile: bool = False,  # noqa: A002  (the torch term; a keyword of the config section)
        ensemble: str = "none",
    ) -> None:
        if ensemble not in SELF_ENSEMBLES:
            raise ValueError(f"unet ensemble must be one of {sorted(SELF_ENSEMBLES)}, got {ensemble!r}")
        self.ensemble = ensemble
        self.setup = select_device(device)
        self.compile = bool(compile)
        self._forward = None  # the compiled network, built on first use in each process
        self._lock = threading.Lock()  # compiled forwards run one at a time (dynamo is not thread-safe)
        self.card: dict[str, Any] = {}
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.checkpoint_hash = None
        if model is None:
            if checkpoint is None:
                raise ValueError("method 'unet' needs a checkpoint (--model) or a model")
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"U-Net checkpoint {path} does not exist (train/release a model first)")
            from ..checkpoint import load_model

            model, self.card = load_model(path, device="cpu")
            self.checkpoint_hash = hash_file(path)
        self.model = model.eval().to(self.setup.device, memory_format=self.setup.memory_format)
        self.multiple = int(getattr(model, "input_multiple", 1))
        self.batch_size = int(batch_size)
        self.tile_px = int(math.ceil(tile_px / self.multiple) * self.multiple)
        self.ctx = int(math.ceil(int(model.required_halo()) / self.multiple) * self.multiple)

    @property
    def halo(self) -> int:
        return self.ctx

    @property
    def chunk_multiple(self) -> int:
        """Tiles must start on the pooling grid."""
        return self.multiple

    def describe(self) -> dict[str, Any]:
        """Parameters for provenance: checkpoint, its hash, architecture, tiling."""
        return {
            "checkpoint": self.checkpoint, "checkpoint_hash": self.checkpoint_hash,
            "architecture": dict(getattr(self.model, "config", {})), "tile_px": self.tile_px,
            "batch_size": self.batch_size, "device": str(self.setup.device), "compile": self.compile,
            "ensemble": self.ensemble,
        }

    def __getstate__(self) -> dict[str, Any]:  # processes / distributed: ship the model on CPU
        state = dict(self.__dict__)
        state["model"] = copy.deepcopy(self.model).to("cpu")  # a copy: .to() would move this one in place
        state["_forward"] = None  # compiled graphs do not pickle; the receiving process compiles its own
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.model = self.model.to(self.setup.device, memory_format=self.setup.memory_format)

    def _network(self):
        if not self.compile:
            return self.model
        if self._forward is None:
            self._forward = torch.compile(self.model, dynamic=False)
        return self._forward

    @torch.inference_mode()
    def __call__(self, tile: np.ndarray) -> np.ndarray:
        """Denoise ``tile`` (H, W) float32 on [0, 1]; returns (H, W) float32.

        The padded tile goes to the device once; sub-tiles are cut, batched and stitched there,
        and the result comes back once (no per-batch host round trips).
        """
        x = np.asarray(tile, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"denoisers take 2-D (H, W) tiles, got shape {x.shape}")
        h, w = x.shape
        t, c = self.tile_px, self.ctx
        nh, nw = math.ceil(h / t), math.ceil(w / t)
        dev = self.setup.device
        # Zero context around the tile: it reaches only outputs within `ctx` of the tile's edge, which
        # the caller's own halo (denoise_image / map_overlap) crops away; padding on the device is cheap.
        src = torch.zeros((nh * t + 2 * c, nw * t + 2 * c), dtype=torch.float32, device=dev)
        src[c : c + h, c : c + w] = torch.from_numpy(x).to(dev)
        out = torch.empty((nh * t, nw * t), dtype=torch.float32, device=dev)
        origins = [(i * t, j * t) for i in range(nh) for j in range(nw)]
        net = self._network()
        for start in range(0, len(origins), self.batch_size):
            part = origins[start : start + self.batch_size]
            subs = [src[r : r + t + 2 * c, q : q + t + 2 * c] for r, q in part]
            if self.compile:  # one static batch shape: pad the last batch with copies
                subs += [subs[-1]] * (self.batch_size - len(subs))
            batch = torch.stack(subs)[:, None]
            with self._lock if self.compile else contextlib.nullcontext(), autocast_context(self.setup):
                res = predict_ensemble(net, batch, ensemble=self.ensemble, memory_format=self.setup.memory_format)
            res = res[:, 0, c : c + t, c : c + t].clamp_(0.0, 1.0)
            for (r, q), y in zip(part, res):
                out[r : r + t, q : q + t] = y
        return out[:h, :w].cpu().numpy()
