#!/usr/bin/env python
"""One self-contained GPU check for the U-Net (about 5 minutes on an H100/H200).

Synthetic data only (no Zarr, no pandera: it imports sem_core.models/losses/patches/device).
(a) Training throughput, patches/s of 256^2, batch 32, bf16 autocast + channels_last:
    our step machinery (PatchSampler on the host -> move_batch -> make_train_step with
    the `full` loss, AdamW, cosine schedule, clipping) vs a bare loop of the same network
    on pre-made device tensors (same loss, and plain MSE); the ratio is what our
    machinery costs.
(b) Inference throughput, MPix/s of the U-Net (base 32 and 64, depth 4) on batches of
    tiles, bf16 + channels_last, eager and torch.compile; "effective" discounts the halo
    a tiled run must overlap (tile - 2 * required_halo)^2 / tile^2.
(c) As (a) with torch.compile (the `train.compile` flag).
(d) ``train_model`` itself on a small synthetic Zarr (when zarr/pandera are installed):
    time, validation PSNR, resume-vs-uninterrupted weight difference, reload and infer.
Every section is warmed up and timed between torch.cuda.synchronize() calls; figures are
printed as they come and a JSON summary at the end (and to --json). A failing section
prints its traceback, is recorded as an error, and makes the exit status 1.

    python bench/gpu_check.py                 # on the GPU machine
    python bench/gpu_check.py --dry-run       # tiny CPU configuration (run by the tests)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sem_core.device import DeviceSetup, autocast_context, move_batch, select_device  # noqa: E402
from sem_core.train_step import make_scheduler, make_train_step  # noqa: E402
from sem_core.losses import build_loss  # noqa: E402
from sem_core.models.unet import UNet  # noqa: E402
from sem_core.patches import PatchSampler  # noqa: E402

FULL = dict(patch=256, batch=32, base=64, depth=4, warmup=5, timed=30, images=16, image_size=1024,
            tile=1024, tile_batch=8, infer_warmup=3, infer_timed=20, bases=(32, 64),
            tm_images=12, tm_size=512, tm_base=32, tm_depth=4, tm_patch=128, tm_batch=16, tm_steps=80)
DRY = dict(patch=32, batch=2, base=8, depth=2, warmup=1, timed=2, images=3, image_size=64,
           tile=64, tile_batch=1, infer_warmup=1, infer_timed=2, bases=(32, 64),
           tm_images=4, tm_size=64, tm_base=4, tm_depth=2, tm_patch=32, tm_batch=2, tm_steps=4)


def log(msg: str) -> None:
    print(msg, flush=True)


def sync(setup: DeviceSetup) -> None:
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)


def make_synthetic(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blocky-smooth clean images and noisy copies, uint8 (n, size, size)."""
    low = rng.random((n, size // 16, size // 16))
    clean = np.kron(low, np.ones((16, 16)))
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1)
    return (noisy * 255).astype(np.uint8), (clean * 255).astype(np.uint8)


def new_model(cfg: dict, setup: DeviceSetup, seed: int = 0, base: int | None = None) -> UNet:
    torch.manual_seed(seed)
    model = UNet(base_channels=base or cfg["base"], depth=cfg["depth"])
    return model.to(setup.device, memory_format=setup.memory_format)


def bench_train(cfg: dict, setup: DeviceSetup, *, compiled: bool = False) -> dict:
    rng = np.random.default_rng(0)
    noisy, clean = make_synthetic(cfg["images"], cfg["image_size"], rng)
    sampler = PatchSampler(noisy, clean, patch_size=cfg["patch"])
    loss_fn = build_loss("full")
    n_steps = cfg["warmup"] + cfg["timed"]
    out: dict = {"patch": cfg["patch"], "batch": cfg["batch"], "base": cfg["base"], "depth": cfg["depth"],
                 "loss": "full", "autocast": str(setup.autocast_dtype), "channels_last": setup.channels_last}

    model = new_model(cfg, setup)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = make_scheduler(opt, schedule="cosine", lr=1e-3, steps=n_steps)
    step = make_train_step(torch.compile(model) if compiled else model, loss_fn, opt, sched,
                           setup, grad_clip=1.0)

    def machinery_step() -> torch.Tensor:
        x, y = sampler.sample(cfg["batch"], rng=rng)
        return step(move_batch(x, setup), move_batch(y, setup))

    x0, y0 = sampler.sample(cfg["batch"], rng=rng)
    xd, yd = move_batch(x0, setup), move_batch(y0, setup)

    def bare_loop(loss):
        m = new_model(cfg, setup)
        o = torch.optim.AdamW(m.parameters(), lr=1e-3)

        def one() -> torch.Tensor:
            o.zero_grad(set_to_none=True)
            with autocast_context(setup):
                pred = m(xd)
            value = loss(pred.float(), yd)
            value.backward()
            o.step()
            return value.detach()
        return one

    runs = [("machinery", machinery_step)]
    if not compiled:
        runs += [("bare_same_loss", bare_loop(loss_fn)), ("bare_mse", bare_loop(F.mse_loss))]
    out["compiled"] = compiled
    for name, fn in runs:
        t0 = time.perf_counter()
        for _ in range(cfg["warmup"]):
            fn()
        sync(setup)
        out[f"{name}_warmup_s"] = time.perf_counter() - t0
        sync(setup)
        t0 = time.perf_counter()
        for _ in range(cfg["timed"]):
            last = fn()
        sync(setup)
        dt = time.perf_counter() - t0
        rate = cfg["timed"] * cfg["batch"] / dt
        out[f"{name}_patches_per_s"] = rate
        out[f"{name}_last_loss"] = float(last)
        log(f"  train {name:15s} {rate:9.1f} patches/s ({dt / cfg['timed'] * 1e3:.1f} ms/step)")
    if not compiled:
        out["ratio_machinery_vs_bare_same_loss"] = out["machinery_patches_per_s"] / out["bare_same_loss_patches_per_s"]
        out["ratio_machinery_vs_bare_mse"] = out["machinery_patches_per_s"] / out["bare_mse_patches_per_s"]
    if setup.device.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(setup.device) / 2**30
    return out


@torch.inference_mode()
def bench_infer(cfg: dict, setup: DeviceSetup, base: int, compiled: bool) -> dict:
    model = new_model(cfg | {"depth": 4}, setup, base=base).eval()
    run = torch.compile(model) if compiled else model
    x = torch.rand(cfg["tile_batch"], 1, cfg["tile"], cfg["tile"], device=setup.device)
    x = x.contiguous(memory_format=setup.memory_format)
    t0 = time.perf_counter()
    with autocast_context(setup):
        run(x)
        sync(setup)
        first_s = time.perf_counter() - t0
        for _ in range(cfg["infer_warmup"]):
            run(x)
        sync(setup)
        t0 = time.perf_counter()
        for _ in range(cfg["infer_timed"]):
            y = run(x)
        sync(setup)
    dt = time.perf_counter() - t0
    mpix = cfg["infer_timed"] * x.numel() / 1e6 / dt
    halo = model.required_halo()
    keep = max(cfg["tile"] - 2 * halo, 0) / cfg["tile"]
    res = {"base_channels": base, "depth": 4, "compiled": compiled, "tile": cfg["tile"], "batch": cfg["tile_batch"],
           "mpix_per_s": mpix, "mpix_per_s_effective_with_halo": mpix * keep**2, "halo": halo,
           "first_call_s": first_s, "finite": bool(torch.isfinite(y).all())}
    log(f"  infer base {base:3d} {'compiled' if compiled else 'eager   '} {mpix:9.3f} MPix/s "
        f"(first call {first_s:.1f} s, halo {halo})")
    return res


def bench_train_model(cfg: dict, setup: DeviceSetup) -> dict:
    """(d) ``train_model`` end to end on a synthetic Zarr: timing, resume vs uninterrupted, reload.

    Needs the data stack (zarr, pandas, pandera); recorded as skipped where it is missing.
    """
    try:
        import pandas as pd
        import zarr

        from sem_core.checkpoint import load_checkpoint, load_model
        from sem_core.train import train_model
    except ImportError as exc:
        return {"skipped": f"data stack not installed: {exc!r}"}
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    noisy, clean = make_synthetic(cfg["tm_images"], cfg["tm_size"], np.random.default_rng(1))
    group = zarr.open_group(str(tmp / "d.zarr"), mode="w")
    for name, arr in (("noisy", noisy), ("clean", clean)):
        group.create_array(name, data=arr, chunks=(1, *arr.shape[1:]))
    n = cfg["tm_images"]
    group.attrs["split"] = {"train": list(range(n - 2)), "val": [n - 2, n - 1], "test": []}
    steps = cfg["tm_steps"]
    common = dict(dataset_path=tmp / "d.zarr", experiment_name="gpu_check", loss_kwargs={"name": "full"},
                  model_kwargs={"base_channels": cfg["tm_base"], "depth": cfg["tm_depth"]},
                  patch_size=cfg["tm_patch"], batch_size=cfg["tm_batch"], steps=steps,
                  steps_per_epoch=max(steps // 4, 1), seed=0, device=str(setup.device), progress=False,
                  early_stopping_patience=None, val_crop=cfg["tm_size"])
    t0 = time.perf_counter()
    full = train_model(out_dir=tmp / "a", **common)
    seconds = time.perf_counter() - t0
    train_model(out_dir=tmp / "b", stop_after_steps=steps // 2 + 1, **common)
    resumed = train_model(out_dir=tmp / "b", resume=True, **common)
    wa, wb = load_checkpoint(full.last_checkpoint)["model"], load_checkpoint(resumed.last_checkpoint)["model"]
    diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    metrics = pd.read_csv(tmp / "a" / "metrics.csv")
    model, _ = load_model(full.best_checkpoint, device=setup.device)
    with torch.inference_mode(), autocast_context(setup):
        y = model(torch.rand(1, 1, cfg["tm_size"], cfg["tm_size"], device=setup.device))
    res = {"steps": steps, "batch": cfg["tm_batch"], "patch": cfg["tm_patch"], "base": cfg["tm_base"],
           "depth": cfg["tm_depth"], "seconds": seconds,
           "patches_per_s_incl_val_and_ckpt": steps * cfg["tm_batch"] / seconds,
           "val_psnr_first": float(metrics["val_psnr"].iloc[0]), "val_psnr_last": float(metrics["val_psnr"].iloc[-1]),
           "resume_steps": resumed.steps, "resume_max_abs_weight_diff": diff, "resume_bit_identical": diff == 0.0,
           "reloaded_output_finite": bool(torch.isfinite(y).all())}
    log(f"  train_model {steps} steps in {seconds:.1f} s; val PSNR {res['val_psnr_first']:.2f} -> "
        f"{res['val_psnr_last']:.2f} dB; resume max |dw| {diff:.3g}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny configuration on the CPU (compile skipped)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile inference runs")
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument("--sections", default="abcd", help="which sections to run (default: abcd)")
    args = ap.parse_args(argv)
    cfg = DRY if args.dry_run else FULL
    setup = select_device("cpu" if args.dry_run else "auto")
    if setup.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(1)  # 2 shared cores: more threads collapse under contention
    summary: dict = {"config": "dry-run" if args.dry_run else "full", "torch": torch.__version__,
                     "python": platform.python_version(), "device": str(setup.device),
                     "device_name": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else
                     platform.processor() or "cpu", "errors": {}}
    log(f"gpu_check: {summary['config']} on {summary['device_name']} (torch {torch.__version__})")
    t_all = time.perf_counter()

    def save() -> None:
        summary["total_s"] = time.perf_counter() - t_all
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")

    try:
        if "a" in args.sections:
            log("(a) training throughput")
            summary["train"] = bench_train(cfg, setup)
    except Exception as exc:  # recorded and reported, never swallowed: exit status 1
        traceback.print_exc()
        summary["errors"]["train"] = repr(exc)
    save()
    summary["inference"] = []
    if "b" in args.sections:
        log("(b) inference throughput")
    for base in cfg["bases"] if "b" in args.sections else ():
        for compiled in (False, True):
            if compiled and (args.dry_run or args.no_compile):
                summary["inference"].append({"base_channels": base, "compiled": True, "skipped": "dry-run/no-compile"})
                continue
            try:
                summary["inference"].append(bench_infer(cfg, setup, base, compiled))
            except Exception as exc:  # recorded and reported, never swallowed: exit status 1
                traceback.print_exc()
                summary["errors"][f"infer_base{base}_compiled{compiled}"] = repr(exc)
            save()
    if not (args.dry_run or args.no_compile) and "c" in args.sections:
        try:
            log("(c) training throughput, torch.compile (train.compile: true)")
            summary["train_compiled"] = bench_train(cfg, setup, compiled=True)
        except Exception as exc:  # recorded and reported, never swallowed: exit status 1
            traceback.print_exc()
            summary["errors"]["train_compiled"] = repr(exc)
    save()
    try:
        if "d" in args.sections:
            log("(d) train_model end to end (synthetic Zarr, resume, reload)")
            summary["train_model"] = bench_train_model(cfg, setup)
    except Exception as exc:  # recorded and reported, never swallowed: exit status 1
        traceback.print_exc()
        summary["errors"]["train_model"] = repr(exc)
    save()
    print(json.dumps(summary, indent=2), flush=True)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
