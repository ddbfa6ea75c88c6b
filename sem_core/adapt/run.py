"""Fine-tune a U-Net on noisy images alone (x-run Noise2Self), keeping the result only if SURE says it helps.

Loop: random ``patch_px`` crops of the training images, x-run blind-spot masking
(:func:`~.masking.make_blind_spot_batch`), MSE between the network's output and the *noisy* input on the
scored run cores, Adam. Normalisation layers stay in inference mode (their running statistics are the
pre-trained ones; small batches of masked patches would corrupt them). Every ``eval_every`` steps the
model is scored on the guard crops by Monte-Carlo SURE (:func:`~.sure.estimate_sure_mse`) with the
SEM noise model (variance law + x correlation); the best-scoring weights are kept, and they replace the
starting weights only if SURE's estimated MSE reduction is at least ``min_gain_grey2`` (8-bit grey levels²).
Otherwise the input model is returned unchanged (``kept=False``).

The guard works in MSE units, not dB: SURE's *differences* between two models are precise (common probes), but
its absolute level is off by any error of the noise law (a 2 % error in the variance is ~7 grey² at mid-grey),
so a ratio of two estimates means little. It also scores the noisy domain (``k * f + c`` against ``y``), and the
clean domain can disagree: on the Tin-balls val and test blocks, SURE's estimates matched the measured clean-domain
MSE change within ~1 grey² for a weak starting model (gains of 9-14 grey²), but credited 1.4-4.5 grey² to
adaptations of a strong model whose measured change ranged from a 2.0 grey² gain to a 4.1 grey² loss. The default
threshold (5 grey², ``params.yaml``) sits above that band.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..provenance import hash_bytes
from ..rng import derive_rng
from .forward import apply_forward_kernel, estimate_forward_kernel
from .masking import make_blind_spot_batch
from .sure import estimate_sure_mse, make_noise_probe

GREY2 = 255.0**2  # unit-scale MSE -> 8-bit grey levels²

__all__ = ["AdaptResult", "adapt_batch", "adapt_checkpoint", "adapt_model", "hash_state_dict"]


@dataclass
class AdaptResult:
    """What :func:`adapt_model` did: the model to use, whether adapted weights were kept, the evidence."""

    model: nn.Module
    kept: bool
    sure_before: float
    sure_after: float
    estimated_gain_grey2: float
    best_step: int
    steps: int
    seconds: float
    model_hash: str
    history: list[dict[str, float]] = field(default_factory=list)
    forward_kernel: list[list[float]] | None = None
    forward_offset: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no weights)."""
        return {k: v for k, v in self.__dict__.items() if k != "model"}



def hash_state_dict(model: nn.Module) -> str:
    """sha256 of the model's state dict (keys sorted, tensors as float32/int64 bytes)."""
    parts = []
    for k in sorted(model.state_dict()):
        v = model.state_dict()[k].detach().cpu()
        v = v.float() if v.is_floating_point() else v.long()
        parts.append(k.encode() + b"\0" + v.contiguous().numpy().tobytes())
    return hash_bytes(b"".join(parts))


def _freeze_norm_stats(model: nn.Module) -> None:
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _split_guard(images: Sequence[np.ndarray], n: int, crop_px: int, patch_px: int
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Guard crops the training never sees, and the training images.

    With more than ``2 n`` images, ``n`` images spread over the batch are the guard (centred crops) and the rest
    train. Otherwise (a small batch) every image is cut in two along y: the guard crop comes from its bottom
    rows, training patches from the rows above (noise is independent between rows, so nothing leaks). A network
    scored by SURE on pixels it was trained on memorises their noise and SURE cannot tell (the estimate covers
    the output's dependence on the noise at inference, not through training).
    """
    def centre(img: np.ndarray, h: int, w: int) -> np.ndarray:
        r, c = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        return np.ascontiguousarray(img[r:r + h, c:c + w], np.float32)

    if len(images) > 2 * n:
        idx = sorted({int(round(i)) for i in np.linspace(0, len(images) - 1, n)})
        guard = [centre(images[i], min(crop_px, images[i].shape[0]), min(crop_px, images[i].shape[1])) for i in idx]
        return guard, [images[i] for i in range(len(images)) if i not in idx]
    guard, train = [], []
    for img in images:
        h, w = img.shape
        top = max(patch_px, h - min(crop_px, h // 2))
        if h - top < 32:  # too short to split: guard and train share the image (the guard is optimistic)
            guard.append(centre(img, min(crop_px, h), min(crop_px, w)))
            train.append(img)
            continue
        bottom = img[top:]
        guard.append(centre(bottom, bottom.shape[0], min(crop_px, w)))
        train.append(img[:top])
    return guard, train


def adapt_model(
    model: nn.Module,
    images: Sequence[np.ndarray],
    *,
    steps: int = 1000,
    batch_size: int = 8,
    patch_px: int = 96,
    lr: float = 1e-4,
    run_px: int = 8,
    corr_len_px: int = 2,
    row_stride: int = 4,
    noise_slope_grey: float = 3.48,
    noise_intercept_grey2: float = 16.0,
    noise_fir_taps: Sequence[float] = (0.586, 0.343, 0.071),
    guard_images: int = 4,
    guard_crop_px: int = 256,
    eval_every: int = 50,
    min_gain_grey2: float = 5.0,
    forward_kernel_px: int = 5,
    forward_kernel: np.ndarray | None = None,
    forward_offset: float = 0.0,
    seed: int = 0,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> AdaptResult:
    """Adapt ``model`` to ``images`` without clean references.

    Parameters
    ----------
    model : nn.Module
        (B, 1, H, W) -> (B, 1, H, W) on the unit scale, on the CPU; not modified (a copy is trained).
    images : sequence of (H, W) float32 in [0, 1]
        The batch's noisy images (each at least ``patch_px`` on both sides).
    steps, batch_size, patch_px, lr
        Fine-tuning length, patches per step, patch side (a multiple of the model's input multiple), Adam rate.
    run_px, corr_len_px, row_stride
        The x-run mask (:func:`~.masking.make_blind_spot_batch`).
    noise_slope_grey, noise_intercept_grey2, noise_fir_taps
        The SEM noise model of the guard: variance = slope·I + intercept in 8-bit grey levels, correlation
        along x from the FIR taps (defaults: the Tin-balls training-block fit).
    guard_images, guard_crop_px, eval_every, min_gain_grey2
        Guard: pixels the training never sees (:func:`_split_guard`: ``guard_images`` whole images of a large
        batch, else the bottom rows of every image), scored every ``eval_every`` steps; adapted weights are
        kept only if SURE's estimated MSE reduction (grey levels² of an 8-bit image) is ``>= min_gain_grey2``.
    forward_kernel_px : int
        Side of the forward kernel ``k`` (:mod:`.forward`) fitted from the starting model's outputs on the
        guard crops, with an offset ``c``; the loss and the guard compare ``k * f + c`` with the noisy image.
        0: plain Noise2Self.
    forward_kernel : (K, K) array, optional
        A known forward kernel instead (e.g. fitted clean -> noisy on the training session's pairs with
        :func:`~.forward.estimate_forward_kernel`): the microscope's own operator, not the starting model's.
    forward_offset : float
        Its offset ``c`` (unit scale), with ``forward_kernel``.
    seed : int
        Patches, masks and probes come from generators derived from it (same seed => same result).
    progress : callable, optional
        Called with ``{"step", "steps", "loss", "seconds"}`` (and ``"sure_gain_grey2"`` at guard steps).

    Returns
    -------
    AdaptResult
    """
    if not images:
        raise ValueError("adapt_model needs at least one image")
    small = [i for i, im in enumerate(images) if min(im.shape) < patch_px]
    if small:
        raise ValueError(f"images {small} are smaller than patch_px={patch_px}")
    t0 = time.perf_counter()
    guard, train_images = _split_guard(images, guard_images, guard_crop_px, patch_px)
    prng = derive_rng(seed, "adapt", "probe")
    probes = [make_noise_probe(g, rng=prng, slope=noise_slope_grey, intercept=noise_intercept_grey2,
                               fir_taps=noise_fir_taps) for g in guard]

    net = copy.deepcopy(model).cpu()
    net.eval()
    kernel, offset = None, 0.0
    if forward_kernel is not None:
        kernel, offset = torch.from_numpy(np.asarray(forward_kernel, np.float32)), float(forward_offset)
    elif forward_kernel_px:
        with torch.no_grad():
            outs = [net(torch.from_numpy(g)[None, None])[0, 0].numpy() for g in guard]
        fitted, offset = estimate_forward_kernel(outs, guard, size_px=forward_kernel_px)
        kernel = torch.from_numpy(fitted)

    def sure(m: nn.Module) -> float:
        m.eval()
        return estimate_sure_mse(lambda t: apply_forward_kernel(m(t), kernel, offset), guard, probes)

    before = sure(net)
    best, best_step, best_state = before, 0, copy.deepcopy(net.state_dict())
    history: list[dict[str, float]] = [{"step": 0, "sure_mse": before}]
    gen = torch.Generator().manual_seed(int(derive_rng(seed, "adapt", "patches").integers(2**62)))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    stacks = [torch.from_numpy(np.ascontiguousarray(im, np.float32)) for im in train_images]
    running = float("nan")
    for step in range(1, steps + 1):
        _freeze_norm_stats(net)
        k = torch.randint(0, len(stacks), (batch_size,), generator=gen).tolist()
        batch = []
        for i in k:
            h, w = stacks[i].shape
            r = int(torch.randint(0, h - patch_px + 1, (1,), generator=gen))
            c = int(torch.randint(0, w - patch_px + 1, (1,), generator=gen))
            patch = stacks[i][r:r + patch_px, c:c + patch_px]
            if int(torch.randint(0, 2, (1,), generator=gen)):
                patch = patch.flip(0)  # up-down flip keeps the fast-scan axis and direction
            batch.append(patch)
        x = torch.stack(batch)[:, None]
        masked, score = make_blind_spot_batch(x, gen=gen, run_px=run_px, corr_len_px=corr_len_px,
                                              row_stride=row_stride)
        lr_now = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        opt.zero_grad(set_to_none=True)
        out = apply_forward_kernel(net(masked), kernel, offset)
        loss = F.mse_loss(out[score], x[score])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        value_now = float(loss.detach())
        running = value_now if math.isnan(running) else 0.9 * running + 0.1 * value_now
        info = {"step": step, "steps": steps, "loss": running, "seconds": time.perf_counter() - t0}
        if step % eval_every == 0 or step == steps:
            value = sure(net)
            info["sure_gain_grey2"] = (before - value) * GREY2
            history.append({"step": step, "sure_mse": value, "loss": running})
            if value < best:
                best, best_step, best_state = value, step, copy.deepcopy(net.state_dict())
        if progress is not None:
            progress(info)
    gain = (before - best) * GREY2
    kept = best_step > 0 and gain >= min_gain_grey2
    final = copy.deepcopy(model).cpu()
    if kept:
        final.load_state_dict(best_state)
    final.eval()
    return AdaptResult(model=final, kept=kept, sure_before=before, sure_after=best if kept else before,
                       estimated_gain_grey2=gain if kept else 0.0, best_step=best_step if kept else 0, steps=steps,
                       seconds=time.perf_counter() - t0, model_hash=hash_state_dict(final), history=history,
                       forward_kernel=kernel.tolist() if kernel is not None else None, forward_offset=offset)


def adapt_checkpoint(
    source: str | Path,
    images: Sequence[np.ndarray],
    out: str | Path,
    *,
    input_names: Sequence[str] = (),
    input_path: str = "",
    **kwargs: Any,
) -> dict[str, Any]:
    """Load ``source`` (release or checkpoint), :func:`adapt_model` it on ``images``, write ``out``.

    ``out`` ending ``.safetensors`` is an fp16 release with a card (``adapted_from``, ``adapt``); ``.ckpt``
    a float32 training-format checkpoint. Both load with :func:`sem_core.checkpoint.load_model`, so
    ``sem-denoise denoise --model OUT`` accepts them. ``kwargs`` go to :func:`adapt_model`.

    Returns
    -------
    dict
        :meth:`AdaptResult.summary` plus ``path``, ``file_sha256``, ``source``, ``source_sha256``,
        ``n_images``; ``model_hash`` is the adapted weights' hash (record it in the batch provenance).
    """
    from ..checkpoint import export_release, load_model, save_checkpoint
    from ..provenance import hash_file

    source, out = Path(source), Path(out)
    model, card = load_model(source)
    result = adapt_model(model, images, **kwargs)
    report = {**result.summary(), "source": str(source), "source_sha256": hash_file(source),
              "n_images": len(images), "input": input_path, "input_names": list(input_names),
              "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items() if k != "progress"}}
    arch = dict(card["architecture"])
    if out.suffix == ".safetensors":
        new_card = {k: v for k, v in card.items() if k not in ("architecture", "date")}
        new_card.update(name=out.stem, adapted_from=str(source), adapt=report)
        export_release(result.model, out, new_card)
    else:
        save_checkpoint(out, {"model": result.model.state_dict(), "config": {"model_kwargs": arch},
                              "data_hash": None, "val_metrics": {}, "step": result.best_step,
                              "adapt": report})
    report.update(path=str(out), file_sha256=hash_file(out))
    return report


def adapt_batch(input_path: str | Path, source: str | Path, out: str | Path, *, seed: int, channel: str = "auto",
                max_images: int | None = None, **kwargs: Any) -> dict[str, Any]:
    """Read a batch (folder of TIFF/PNG or a Zarr store, :func:`~.inputs.read_adapt_images`) and
    :func:`adapt_checkpoint` ``source`` on it into ``out``; returns the report (``model_hash``, ``kept``, ...).

    The one call the batch flow makes per batch when ``adapt.per_batch`` is on:
    ``adapt_batch(batch_dir, release_model, out, seed=params.seed, max_images=params.adapt.max_images,
    **params.adapt.library_kwargs())``.
    """
    from .inputs import read_adapt_images

    images, names = read_adapt_images(input_path, channel=channel, max_images=max_images)
    return adapt_checkpoint(source, images, out, seed=seed, input_names=names, input_path=str(input_path), **kwargs)
