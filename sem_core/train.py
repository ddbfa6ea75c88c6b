"""U-Net training loop: AdamW, cosine/one-cycle schedule, clipping, early stopping, exact resume.

Outputs in ``out_dir``: ``last.ckpt`` and ``best.ckpt`` (see :mod:`sem_core.checkpoint`),
``metrics.csv`` (one row per epoch: epoch, step, train_loss, val_loss, val_psnr, lr) and
``metrics.json`` (the last row, the best epoch, provenance): byte-identical for the same inputs,
parameters, code and seed. Wall time goes to ``timing.csv`` (epoch, seconds) only. An "epoch" is
``steps_per_epoch`` optimiser steps on random patches, followed by validation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import torch
import zarr
from torch.optim.swa_utils import AveragedModel

from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .device import DeviceSetup, autocast_context, move_batch, select_device
from .train_step import make_scheduler, make_train_step
from .losses import build_loss
from .models.unet import UNet
from .patches import PatchSampler, crop_validation_images, resolve_augment
from .provenance import hash_array, hash_bytes, hash_file, make_provenance
from .rng import derive_rng

__all__ = ["METRICS_SCHEMA", "TrainResult", "TrainingData", "load_training_data", "make_ema_update", "train_model"]

METRICS_SCHEMA = pa.DataFrameSchema(
    {
        "epoch": pa.Column(int, pa.Check.ge(1)),
        "step": pa.Column(int, pa.Check.ge(1)),
        "train_loss": pa.Column(float),
        "val_loss": pa.Column(float),
        "val_psnr": pa.Column(float),
        "lr": pa.Column(float, pa.Check.ge(0)),
    },
    strict=True, coerce=True,
)
TIMING_FILE = "timing.csv"
"""Per-epoch wall time (``epoch``, ``seconds``): kept out of ``metrics.csv``/``metrics.json``, which are hashed."""


@dataclass(frozen=True)
class TrainingData:
    """Training and validation stacks (N, H, W) as stored, the grey value of 1.0, and a content hash."""

    noisy_train: np.ndarray
    clean_train: np.ndarray
    noisy_val: np.ndarray
    clean_val: np.ndarray
    max_value: float
    data_hash: str
    shifts_train: list[tuple[int, int]] | None
    val_max_value: float
    defect_boxes_train: np.ndarray | None = None
    """(K, 5) int64 rows ``(position in the training stack, r0, c0, r1, c1)`` from the store's
    ``defects.parquet`` (synthetic wafers), or None when the store has no defect table."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    best_val_loss: float
    best_epoch: int
    steps: int
    epochs: int
    stopped_early: bool
    seconds: float


def load_training_data(dataset_path: str | Path, *, align_pairs: bool = False) -> TrainingData:
    """Read the ``train`` and ``val`` images of a dataset Zarr (layout in docs/DESIGN.md).

    With ``align_pairs`` the per-image integer shifts ``attrs["pair_shifts"]`` ([[dy, dx], ...]
    per dataset index, clean relative to noisy) are used for the training pairs.
    """
    path = Path(dataset_path)
    try:
        group = zarr.open_group(str(path), mode="r")
        split = group.attrs["split"]
        train_idx, val_idx = [int(i) for i in split["train"]], [int(i) for i in split["val"]]
        noisy, clean = group["noisy"][:], group["clean"][:]
        shifts = group.attrs["pair_shifts"] if align_pairs else None
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise ValueError(f"cannot read training data from {path}: {exc!r}") from exc
    if not train_idx or not val_idx:
        raise ValueError(f"{path}: split needs non-empty 'train' and 'val', got {len(train_idx)}/{len(val_idx)}")
    boxes = _read_defect_boxes(path, train_idx)
    bits = group.attrs.get("bit_depth")
    max_value = float(2**int(bits) - 1) if bits and noisy.dtype == np.uint16 else float(np.iinfo(noisy.dtype).max)
    digest = hash_bytes("|".join([hash_array(noisy), hash_array(clean), json.dumps(split, sort_keys=True)]).encode())
    return TrainingData(
        noisy[train_idx], clean[train_idx], noisy[val_idx], clean[val_idx], max_value, digest,
        [tuple(int(v) for v in shifts[i]) for i in train_idx] if shifts is not None else None, max_value, boxes,
    )


def _read_defect_boxes(path: Path, train_idx: list[int]) -> np.ndarray | None:
    """The training images' defect boxes as (K, 5) rows (stack position, r0, c0, r1, c1), or None."""
    from .io.zarr_store import DEFECTS_FILE, read_defects

    if not (path / DEFECTS_FILE).is_file():
        return None
    table = read_defects(path)
    position = {image: k for k, image in enumerate(train_idx)}
    table = table[table["image"].isin(position)]
    rows = np.column_stack([table["image"].map(position).to_numpy(np.int64),
                            table[["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]].to_numpy(np.int64)])
    return rows.reshape(-1, 5)


def make_ema_update(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: an EMA whose decay warms up as ``min(decay, (1 + n) / (10 + n))``
    after ``n`` updates, so the average forgets the random initial weights within the first steps
    (a fixed 0.999 still gives them a weight of 0.37 after 1,000 steps)."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, weight)
            else:  # counters such as BatchNorm's num_batches_tracked
                a.copy_(c)

    return update


def _load_initial_weights(model: UNet, path: str | Path) -> None:
    """Copy the weights of checkpoint ``path`` into ``model`` (same architecture, else a clear error)."""
    source, _ = load_model(path, device="cpu")
    try:
        model.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"init_from {path}: its architecture differs from this run's model: {exc}") from exc


@torch.inference_mode()
def _validate(model, loss_fn, noisy: np.ndarray, clean: np.ndarray, setup: DeviceSetup) -> tuple[float, float]:
    model.eval()
    losses, psnrs = [], []
    for i in range(noisy.shape[0]):
        x, y = move_batch(noisy[i : i + 1], setup), move_batch(clean[i : i + 1], setup)
        with autocast_context(setup):
            pred = model(x)
        pred = pred.float().clamp(0, 1)
        losses.append(float(loss_fn(pred, y)))
        psnrs.append(float(10 * torch.log10(1.0 / torch.mean((pred - y) ** 2).clamp_min(1e-12))))
    model.train()
    return float(np.mean(losses)), float(np.mean(psnrs))


def _append_csv(csv: Path, row: Mapping[str, Any], *, keep_epochs: int | None, schema: Any = None) -> None:
    old = pd.read_csv(csv) if csv.is_file() else None
    if old is not None and keep_epochs is not None:
        old = old[old["epoch"] <= keep_epochs].reindex(columns=list(row))  # a file of an older layout: its columns
    frame = pd.DataFrame([dict(row)]) if old is None else pd.concat([old, pd.DataFrame([dict(row)])])
    (schema.validate(frame) if schema is not None else frame).to_csv(csv, index=False)


def _append_metrics(out_dir: Path, row: Mapping[str, Any], *, keep_epochs: int | None = None) -> None:
    """Append an epoch's row: the metrics to ``metrics.csv``, its wall time to ``timing.csv``."""
    row = dict(row)
    seconds = row.pop("seconds", None)
    _append_csv(out_dir / "metrics.csv", row, keep_epochs=keep_epochs, schema=METRICS_SCHEMA)
    if seconds is not None:
        _append_csv(out_dir / TIMING_FILE, {"epoch": row["epoch"], "seconds": seconds}, keep_epochs=keep_epochs)


def train_model(
    *,
    dataset_path: str | Path,
    out_dir: str | Path,
    experiment_name: str,
    model_kwargs: Mapping[str, Any],
    loss_kwargs: Mapping[str, Any],
    patch_size: int = 64,
    batch_size: int = 8,
    steps: int = 300,
    steps_per_epoch: int = 50,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    schedule: str = "cosine",
    grad_clip: float | None = 1.0,
    early_stopping_patience: int | None = 5,
    val_crop: int = 256,
    val_dataset_path: str | Path | None = None,
    augment: bool | str = True,
    defect_fraction: float = 0.0,
    ema_decay: float | None = None,
    align_pairs: bool = False,
    seed: int = 0,
    device: str = "auto",
    compile_model: bool = False,
    init_from: str | Path | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a :class:`UNet` on a dataset Zarr; see the module docstring for the outputs.

    ``model_kwargs`` go to ``UNet``; ``loss_kwargs`` to :func:`build_loss` (``name`` plus
    weights). With ``resume`` the run continues from ``out_dir/last.ckpt`` (model,
    optimiser, scheduler, sampler RNG, step, early-stopping state): on CPU a resumed run
    ends at the same weights as an uninterrupted one (a different config is refused).
    ``val_dataset_path`` takes the validation images from another dataset's ``val``
    split (sim2real: validate on real pairs). ``init_from`` starts from another run's weights
    (a ``.ckpt`` or release ``.safetensors`` of the same architecture; fine-tuning after
    simulated-noise pre-training); optimiser and schedule start fresh. ``augment`` is a mode of
    :data:`sem_core.patches.AUGMENT_CODES` (``"scan"`` keeps the fast-scan direction). ``defect_fraction``
    of the patches are placed on defects of the training images (the store's ``defects.parquet``;
    an error if it has none). With ``ema_decay`` an exponential moving average of the weights
    (``torch.optim.swa_utils.AveragedModel``, buffers included) is validated and is what
    ``best.ckpt`` and ``last.ckpt`` hold as ``model``; ``last.ckpt`` also holds the optimised weights
    (``raw_model``) and the averager's state (``ema``) for resume. ``stop_after_steps`` interrupts the
    run after that many total steps (checkpointed), as if it had been killed.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = select_device(device)
    if init_from is not None and not Path(init_from).is_file():
        raise ValueError(f"init_from checkpoint {init_from} does not exist (train that run first)")
    config = dict(
        experiment=experiment_name, dataset_path=str(dataset_path), model_kwargs=dict(model_kwargs),
        loss_kwargs=dict(loss_kwargs), patch_size=patch_size, batch_size=batch_size, steps=steps,
        steps_per_epoch=steps_per_epoch, lr=lr, weight_decay=weight_decay, schedule=schedule, grad_clip=grad_clip,
        early_stopping_patience=early_stopping_patience, val_crop=val_crop,
        augment=resolve_augment(augment),
        defect_fraction=defect_fraction, ema_decay=ema_decay,
        val_dataset_path=None if val_dataset_path is None else str(val_dataset_path),
        align_pairs=align_pairs, seed=seed, compile_model=compile_model,
        init_from=None if init_from is None else str(init_from),
        init_hash=None if init_from is None else hash_file(init_from),
    )
    data = load_training_data(dataset_path, align_pairs=align_pairs)
    if val_dataset_path is not None:  # e.g. sim2real: train on simulated pairs, validate on real ones
        real = load_training_data(val_dataset_path)
        data = dataclasses.replace(data, noisy_val=real.noisy_val, clean_val=real.clean_val,
                                   val_max_value=real.val_max_value,
                                   data_hash=hash_bytes(f"{data.data_hash}|{real.data_hash}".encode()))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(derive_rng(seed, "train", "init").integers(2**62)))
        model = UNet(**model_kwargs)
    if init_from is not None:
        _load_initial_weights(model, init_from)
    model = model.to(setup.device, memory_format=setup.memory_format)
    run_model = torch.compile(model) if compile_model else model
    loss_fn = build_loss(**loss_kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = make_scheduler(optimizer, schedule=schedule, lr=lr, steps=steps)
    if defect_fraction > 0 and (data.defect_boxes_train is None or not len(data.defect_boxes_train)):
        raise ValueError(f"defect_fraction {defect_fraction} needs defects in {dataset_path}/defects.parquet "
                         "for the training images (a wafers dataset)")
    sampler = PatchSampler(data.noisy_train, data.clean_train, patch_size=patch_size, max_value=data.max_value,
                           shifts=data.shifts_train, augment=augment, focus_boxes=data.defect_boxes_train,
                           focus_fraction=defect_fraction)
    ema = None
    if ema_decay is not None:
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        ema = AveragedModel(model, multi_avg_fn=make_ema_update(ema_decay), use_buffers=True)
    eval_model = run_model if ema is None else ema.module
    val_n, val_c = crop_validation_images(data.noisy_val, data.clean_val, size=val_crop,
                                          multiple=model.input_multiple, max_value=data.val_max_value)
    rng = derive_rng(seed, "train", "patches")
    torch_state = None  # the training's own torch RNG: seeded, or restored on resume (never the process's state)
    st = dict(step=0, epoch=0, best_val_loss=math.inf, best_epoch=0, bad_epochs=0, loss_sum=0.0, loss_n=0,
              seconds=0.0, stopped_early=False)
    if resume and (out / "last.ckpt").is_file():
        ckpt = load_checkpoint(out / "last.ckpt", map_location=setup.device)
        if ckpt["data_hash"] != data.data_hash:
            raise ValueError(f"{out / 'last.ckpt'} was trained on other data (hash {ckpt['data_hash'][:12]})")
        changed = sorted(k for k in config.keys() | ckpt["config"].keys() if config.get(k) != ckpt["config"].get(k))
        if changed:
            raise ValueError(f"cannot resume {out / 'last.ckpt'}: its config differs in {changed}")
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
            model.load_state_dict(ckpt["raw_model"])
        else:
            model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        rng.bit_generator.state = json.loads(ckpt["rng"]["sampler"])
        torch_state = ckpt["rng"]["torch"].cpu()  # map_location moved it to the device
        st.update(ckpt["state"])
    provenance = make_provenance(params=config, inputs_hash=data.data_hash, extra={"stage": "train"})

    def payload(val_metrics: Mapping[str, float]) -> dict[str, Any]:
        weights = dict(model=model.state_dict()) if ema is None else dict(
            model=ema.module.state_dict(), raw_model=model.state_dict(), ema=ema.state_dict())
        return dict(**weights, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    rng={"sampler": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state()},
                    step=st["step"], epoch=st["epoch"], state={k: v for k, v in st.items() if k != "seconds"},
                    config=config, data_hash=data.data_hash,
                    val_metrics={k: v for k, v in val_metrics.items() if k != "seconds"}, provenance=provenance)

    train_step = make_train_step(run_model, loss_fn, optimizer, scheduler, setup, grad_clip=grad_clip)
    pending: list[torch.Tensor] = []
    bar = _progress(progress, total=steps, done=st["step"], name=experiment_name)
    with bar as advance, torch.random.fork_rng(devices=[]):
        if torch_state is None:
            torch.manual_seed(int(derive_rng(seed, "train", "torch").integers(2**62)))
        else:
            torch.set_rng_state(torch_state)
        model.train()
        while st["step"] < steps and not st["stopped_early"]:
            tick = time.perf_counter()
            x, y = sampler.sample(batch_size, rng=rng)
            pending.append(train_step(move_batch(x, setup), move_batch(y, setup)))
            if ema is not None:
                ema.update_parameters(model)
            st["step"] += 1
            st["seconds"] += time.perf_counter() - tick
            advance()
            if st["step"] % steps_per_epoch == 0 or st["step"] == steps or st["step"] == stop_after_steps:
                st["loss_sum"] += float(torch.stack(pending).sum())  # one device sync per epoch
                st["loss_n"] += len(pending)
                pending.clear()
            if st["step"] % steps_per_epoch == 0 or st["step"] == steps:
                tick = time.perf_counter()
                val_loss, val_psnr = _validate(eval_model, loss_fn, val_n, val_c, setup)
                st["epoch"] += 1
                st["seconds"] += time.perf_counter() - tick
                row = dict(epoch=st["epoch"], step=st["step"], train_loss=st["loss_sum"] / st["loss_n"],
                           val_loss=val_loss, val_psnr=val_psnr, lr=optimizer.param_groups[0]["lr"],
                           seconds=st["seconds"])
                st.update(loss_sum=0.0, loss_n=0)
                if val_loss < st["best_val_loss"]:
                    st.update(best_val_loss=val_loss, best_epoch=st["epoch"], bad_epochs=0)
                    save_checkpoint(out / "best.ckpt", payload(row))
                else:
                    st["bad_epochs"] += 1
                    st["stopped_early"] = bool(early_stopping_patience) and st["bad_epochs"] >= early_stopping_patience
                _append_metrics(out, row, keep_epochs=st["epoch"] - 1)
                summary = dict({k: v for k, v in row.items() if k != "seconds"}, best_val_loss=st["best_val_loss"],
                               best_epoch=st["best_epoch"],
                               experiment=experiment_name, stopped_early=st["stopped_early"], provenance=provenance)
                (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
                save_checkpoint(out / "last.ckpt", payload(row))
                advance(f"epoch {st['epoch']} val {val_psnr:.2f} dB")
            elif stop_after_steps is not None and st["step"] >= stop_after_steps:
                save_checkpoint(out / "last.ckpt", payload({}))
            if stop_after_steps is not None and st["step"] >= stop_after_steps:
                break
    return TrainResult(out, out / "last.ckpt", out / "best.ckpt", st["best_val_loss"], st["best_epoch"],
                       st["step"], st["epoch"], st["stopped_early"], time.perf_counter() - t0)


@contextlib.contextmanager
def _progress(enabled: bool, *, total: int, done: int, name: str):
    """Yield ``advance(note=None)``: a rich progress bar when enabled, else a no-op.

    ``advance()`` counts one step; ``advance(note)`` only updates the note shown (no step).
    """
    if not enabled:
        yield lambda note=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[note]}")) as bar:
        task = bar.add_task(f"train {name}", total=total, completed=done, note="")

        def advance(note: str | None = None) -> None:
            if note is None:
                bar.update(task, advance=1)
            else:
                bar.update(task, note=note)

        yield advance
