"""The U-Net as a :class:`~sem_core.denoise.base.Denoiser`: context paid once per block, model once per process.

The caller's halo between blocks (:func:`~sem_core.denoise.tiled.read_with_halo`) is the only context; at the image's own edges
the network's zero padding applies, as in training (``boundary = "none"``), so a scan that fits in one
block runs with no context at all. A tile up to ``tile_px`` (+ that context) runs through the network in one pass, padded at its
far edges to the network's ``input_multiple`` so that max-pooling sees the whole image's pixel
grid (the tile's origin is on that grid: blocks start on multiples of ``chunk_multiple``). On CPU
the pass is :func:`~sem_core.models.strips.forward_in_strips` (same function, ~1/2 of the memory, faster)
in ``channels_last``, one pass at a time per process (torch's own threads use the cores). Larger
tiles (a device with less memory: set ``tile_px`` below the block) are cut into sub-tiles of
``tile_px`` core plus ``ctx`` context per side, run ``batch_size`` at a time. CUDA: bfloat16
autocast and ``channels_last``. The output is clamped to [0, 1]. ``ensemble`` averages the network
over transforms (:mod:`sem_core.models.ensemble`; ``scan`` keeps the fast-scan axis).

A model loaded from a checkpoint is cached per process by the file's SHA-256 (:func:`cached_model`),
and a pickled denoiser (Dask processes, ``dask.distributed`` workers) carries the path and hash
only: each worker process loads the weights once, from the same (shared) file system it reads
the scan from, and checks the hash.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..device import autocast_context, select_device
from ..models.ensemble import SELF_ENSEMBLES, predict_ensemble
from ..models.strips import DEFAULT_STRIP_PX
from ..provenance import hash_file
from .base import register_denoiser

__all__ = ["UnetDenoiser", "cached_model"]

_MODELS: dict[tuple[str, str, bool], nn.Module] = {}
_MODELS_LOCK = threading.Lock()
PLAIN_BYTES_PER_PX_PER_CHANNEL = 28
"""Peak RSS of a plain CPU forward pass per input pixel and base channel (float32, channels_last; measured
27.6 for base 16 and 26.8 for base 32, depth 4, on a 1536² input)."""
_CPU_PASS = threading.Lock()  # one CPU forward pass at a time per process: memory of one pass, torch threads busy


def cached_model(checkpoint: str | Path, *, checkpoint_hash: str | None = None, device: torch.device,
                 channels_last: bool) -> tuple[nn.Module, dict[str, Any], str]:
    """The model of ``checkpoint`` on ``device``, loaded once per process (keyed by the file's SHA-256).

    Parameters
    ----------
    checkpoint : path
        Release ``.safetensors`` or training ``.ckpt``.
    checkpoint_hash : str, optional
        Expected SHA-256 (a pickled denoiser's); a different file at the path is an error.
    device : torch.device
    channels_last : bool
        Memory format of the cached copy.

    Returns
    -------
    (nn.Module, dict, str)
        The model in eval mode (shared: use it read-only, under ``inference_mode``), its card, the hash.
    """
    key = (checkpoint_hash, str(device), bool(channels_last))
    if checkpoint_hash is not None and key in _MODELS:  # an unpickled denoiser, model already here: no file read
        return _MODELS[key], _MODELS[key].card, checkpoint_hash
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"U-Net checkpoint {path} does not exist (train/release a model first; Dask "
                                "workers must see the same path)")
    digest = hash_file(path)
    if checkpoint_hash is not None and digest != checkpoint_hash:
        raise ValueError(f"U-Net checkpoint {path} has SHA-256 {digest[:12]}…, expected {checkpoint_hash[:12]}… "
                         "(the file changed since the denoiser was built)")
    key = (digest, str(device), bool(channels_last))
    with _MODELS_LOCK:
        if key not in _MODELS:
            from ..checkpoint import load_model

            model, card = load_model(path, device="cpu")
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = model.eval().to(device, memory_format=fmt)
            model.card = card
            _MODELS[key] = model
        model = _MODELS[key]
    return model, model.card, digest


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
        Sub-tiles per forward pass (tiles larger than ``tile_px``).
    tile_px : int
        Largest core side of one forward pass (rounded up to the network's input multiple); a tile
        up to ``tile_px + 2 * ctx`` runs whole, larger ones are cut into sub-tiles of this core.
    block_px : int
        Preferred block side for tiled denoising of scans on a GPU (the CLI's default chunk for this method):
        the context is paid once per block, so larger blocks waste less; memory grows with it.
    cpu_block_px : int
        The same on CPU. Smaller than ``block_px``: a pass's memory is faulted in fresh each time it grows, and
        2048² blocks (~1.3 GB for base 16) ran a 4096² scan faster than one 4096² block (~3.2 GB) despite the
        context they add.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    compile : bool
        ``torch.compile`` the network (worth it on CUDA for long scans; compiling takes tens of seconds per
        shape: a scan's blocks have at most 4, sub-tile batches are padded to ``batch_size``, one shape).
    ensemble : {"none", "scan", "dihedral"}
        Self-ensemble: 1, 2 (image and up-down flip) or 8 forward passes per tile.
    cpu_plain_mb : int
        CPU: a pass whose estimated peak memory (:data:`PLAIN_BYTES_PER_PX_PER_CHANNEL` x base channels x
        pixels) fits in this many MiB runs as the plain forward; larger ones run in row strips
        (:func:`~sem_core.models.strips.forward_in_strips`: the same function, a fraction of the memory, and
        faster from about 512² up, since small strips keep temporaries in cache and in malloc's reused heap).
    cpu_strip_px : int
        CPU: pixels per row strip (at least 16 rows).
    """

    name = "unet"
    boundary = "none"  # the convolutions' zero padding at the image edges, as in training: no context outside
    max_parallel_blocks = 1  # one pass uses the whole device (CPU: torch's threads); more blocks only hold memory

    def __init__(
        self,
        *,
        checkpoint: str | Path | None = None,
        model: nn.Module | None = None,
        batch_size: int = 8,
        tile_px: int = 4096,
        block_px: int = 4096,
        cpu_block_px: int = 2048,
        device: str = "auto",
        compile: bool = False,  # noqa: A002  (the torch term; a keyword of the config section)
        ensemble: str = "none",
        cpu_plain_mb: int = 64,
        cpu_strip_px: int = DEFAULT_STRIP_PX,
    ) -> None:
        if ensemble not in SELF_ENSEMBLES:
            raise ValueError(f"unet ensemble must be one of {sorted(SELF_ENSEMBLES)}, got {ensemble!r}")
        self.ensemble = ensemble
        self.cpu_plain_mb = int(cpu_plain_mb)
        self.cpu_strip_px = int(cpu_strip_px)
        self.setup = select_device(device, channels_last=True)  # channels_last: ~1.4x faster on CPU too
        self.compile = bool(compile)
        self._forward = None  # the compiled network, built on first use in each process
        self._lock = threading.Lock()  # compiled forwards run one at a time (dynamo is not thread-safe)
        self.card: dict[str, Any] = {}
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.checkpoint_hash = None
        if model is None:
            if checkpoint is None:
                raise ValueError("method 'unet' needs a checkpoint (--model) or a model")
            model, self.card, self.checkpoint_hash = cached_model(
                checkpoint, device=self.setup.device, channels_last=self.setup.channels_last)
        else:
            model = model.eval().to(self.setup.device, memory_format=self.setup.memory_format)
        self.model = model
        self.multiple = int(getattr(model, "input_multiple", 1))
        self.batch_size = int(batch_size)
        self.tile_px = int(math.ceil(tile_px / self.multiple) * self.multiple)
        block = cpu_block_px if self.setup.device.type == "cpu" else block_px
        self.block_px = int(math.ceil(block / self.multiple) * self.multiple)
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

    def __getstate__(self) -> dict[str, Any]:
        """Processes / distributed: a checkpoint's model travels as its path and hash (loaded once per process);
        a module given directly travels as a CPU copy."""
        state = dict(self.__dict__)
        if self.checkpoint_hash is not None:
            state["model"] = None
        else:
            state["model"] = copy.deepcopy(self.model).to("cpu")  # a copy: .to() would move this one in place
        state["_forward"] = None  # compiled graphs do not pickle; the receiving process compiles its own
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if self.model is None:
            self.model, _, _ = cached_model(self.checkpoint, checkpoint_hash=self.checkpoint_hash,
                                            device=self.setup.device, channels_last=self.setup.channels_last)
        else:
            self.model = self.model.to(self.setup.device, memory_format=self.setup.memory_format)

    def _network(self):
        if self.compile:
            if self._forward is None:
                self._forward = torch.compile(self.model, dynamic=False)
            return self._forward
        if self.setup.device.type == "cpu" and hasattr(self.model, "down"):
            from ..models.strips import forward_in_strips

            strip_px = self.cpu_strip_px
            per_px = PLAIN_BYTES_PER_PX_PER_CHANNEL * int(getattr(self.model, "config", {}).get("base_channels", 32))
            budget = self.cpu_plain_mb * 2**20

            def forward(x: torch.Tensor) -> torch.Tensor:
                if x.shape[-2] * x.shape[-1] * x.shape[0] * per_px <= budget:
                    return self.model(x)
                return torch.cat([forward_in_strips(self.model, x[i : i + 1], strip_px=strip_px)
                                  for i in range(x.shape[0])])

            return forward
        return self.model

    def _predict(self, batch: torch.Tensor) -> torch.Tensor:
        """The network (+ ensemble) on a (B, 1, H, W) batch, clamped to [0, 1]; (B, H, W) float32."""
        net = self._network()
        cpu = self.setup.device.type == "cpu"
        with (self._lock if self.compile else contextlib.nullcontext()), \
                (_CPU_PASS if cpu else contextlib.nullcontext()), autocast_context(self.setup):
            res = predict_ensemble(net, batch, ensemble=self.ensemble, memory_format=self.setup.memory_format)
        return res[:, 0].clamp_(0.0, 1.0)

    @torch.inference_mode()
    def __call__(self, tile: np.ndarray) -> np.ndarray:
        """Denoise ``tile`` (H, W) float32 on [0, 1]; returns (H, W) float32.

        Pixels within ``halo`` of the tile's edge see the network's zero padding: the caller crops them
        where the edge is a cut between blocks; at the image's own edges that is the intended result.
        The tile goes to the device once and comes back once.
        """
        x = np.asarray(tile, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"denoisers take 2-D (H, W) tiles, got shape {x.shape}")
        h, w = x.shape
        t, c, m = self.tile_px, self.ctx, self.multiple
        dev = self.setup.device
        hp, wp = math.ceil(h / m) * m, math.ceil(w / m) * m  # zero-padded far edges: the pooling grid
        src = torch.zeros((hp, wp), dtype=torch.float32, device=dev)
        src[:h, :w] = torch.from_numpy(x).to(dev)
        if max(h, w) <= t + 2 * c:  # one pass (compiled: one graph per block shape, <= 4 in a scan)
            return self._predict(src[None, None])[0, :h, :w].cpu().numpy()
        rows, cols = _sub_tiles(hp, core=t, ctx=c), _sub_tiles(wp, core=t, ctx=c)
        sh, sw = rows[0][1] - rows[0][0], cols[0][1] - cols[0][0]
        out = torch.empty((hp, wp), dtype=torch.float32, device=dev)
        tiles = [(rr, cc) for rr in rows for cc in cols]
        for start in range(0, len(tiles), self.batch_size):
            part = tiles[start : start + self.batch_size]
            subs = [src[r0 : r0 + sh, q0 : q0 + sw] for (r0, *_), (q0, *_) in part]
            if self.compile:  # one static batch shape: pad the last batch with copies
                subs += [subs[-1]] * (self.batch_size - len(subs))
            res = self._predict(torch.stack(subs)[:, None])
            for ((r0, _, ra, rb), (q0, _, qa, qb)), y in zip(part, res):
                out[ra:rb, qa:qb] = y[ra - r0 : rb - r0, qa - q0 : qb - q0]
        return out[:h, :w].cpu().numpy()


def _sub_tiles(n: int, *, core: int, ctx: int) -> list[tuple[int, int, int, int]]:
    """Sub-tiles along an axis of ``n`` (padded) pixels: ``(start, stop, keep_from, keep_to)``.

    Each sub-tile spans ``core + 2 * ctx`` pixels (or the whole axis), starting on multiples of ``core``;
    the last one is shifted back to end at ``n`` (same shape for all: one batch, one compiled graph).
    A sub-tile keeps the pixels at least ``ctx`` from its cut edges; at the axis ends (the image's own
    edges) it keeps everything, as the whole-image pass would compute it. The kept ranges tile ``[0, n)``.
    """
    span = min(core + 2 * ctx, n)
    starts = list(range(0, n - span, core)) + [n - span]
    out, kept = [], 0
    for k, a in enumerate(starts):
        last = k == len(starts) - 1
        keep_from = 0 if k == 0 else max(a + ctx, kept)
        keep_to = n if last else a + span - ctx
        out.append((a, a + span, keep_from, keep_to))
        kept = keep_to
    return out
