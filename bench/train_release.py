"""Train the released Tin-balls U-Net under a wall-clock budget and score it on held-out real pairs.

The package recipe is ``sem-denoise release`` (:mod:`sem_core.release`: fixed steps, deterministic, candidates x
seeds chosen on the val block, augmentation and simulated-noise pre-training); this script is the GPU-budget
variant that produced the committed ``models/release/unet_tin_balls.safetensors`` (on the old random split).

One self-contained run (made for a lent GPU; ``--dry-run`` checks it on the CPU in seconds):

1. Reads ``tin_balls.zarr`` (pairs already aligned by ingest's integer shift) and its stored split.
2. Trains variant ``real`` (real pairs only) and variant ``real_sim`` (half of every batch real pairs,
   half the same clean images with fresh calibrated simulated noise from ``noise_model.json``)
   for ``--seconds`` each: U-Net base 32 / depth 4, ``--loss`` (default ``full``), AdamW, cosine
   schedule sized from the measured step rate, bf16 autocast + channels_last on CUDA.
   Batches are cut on the device from stacks held there (a host-side sampler would starve the GPU).
3. Picks the variant with the better *validation* aligned PSNR (the test split is never used to choose),
   scores both on the *test* split with the issue's aligned protocol (Hann-window phase correlation
   on the central region, integer shift, brightness offset removed, 8 px border cut), with and
   without x8 self-ensembling (flips / rot90), and exports the chosen one as an fp16 safetensors
   release with its JSON card.

Prints one JSON summary and writes it (and the release) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.checkpoint import export_release  # noqa: E402
from sem_core.losses import build_loss  # noqa: E402
from sem_core.metrics.aligned import score_aligned  # noqa: E402
from sem_core.metrics.full_reference import compute_psnr, compute_ssim  # noqa: E402
from sem_core.models.ensemble import apply_transform, predict_ensemble  # noqa: E402
from sem_core.models.unet import UNet  # noqa: E402
from sem_core.provenance import hash_array  # noqa: E402
from sem_core.synth.imaging import apply_noise_to_clean, read_noise_model  # noqa: E402
from sem_core.rng import derive_rng  # noqa: E402
from sem_core.release.recipe import AUGMENT_CODES, cut_batch  # noqa: E402

DIHEDRAL = AUGMENT_CODES["dihedral"]  # one random dihedral per batch, the same stream as before




@torch.inference_mode()
def predict(model, image: np.ndarray, *, device, amp, ensemble: str) -> np.ndarray:
    """Denoise one (H, W) uint8 image; returns float32 grey levels 0..255.

    ``ensemble``: a key of :data:`sem_core.models.ensemble.SELF_ENSEMBLES` (``"dihedral"`` is ×8).
    """
    x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None].to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        y = predict_ensemble(model, x, ensemble=ensemble,
                             memory_format=torch.channels_last if amp else torch.contiguous_format)
    return y[0, 0].clamp(0, 1).mul(255).cpu().numpy()


def score(model, noisy, clean, indices, *, device, amp, ensemble) -> dict:
    rows = []
    for i in indices:
        out = predict(model, noisy[i], device=device, amp=amp, ensemble=ensemble)
        ref = clean[i].astype(np.float32)
        al = score_aligned(out, ref, data_range=255.0, border_px=8)
        rows.append({"psnr_raw": compute_psnr(out, ref, data_range=255.0),
                     "ssim_raw": compute_ssim(out, ref, data_range=255.0),
                     "psnr_aligned": al["psnr_aligned"], "ssim_aligned": al["ssim_aligned"]})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def train_variant(name, *, noisy_t, clean_t, sim_t, args, device, amp, seed) -> tuple[UNet, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = UNet(base_channels=args.base, depth=args.depth, norm="batch").to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build_loss(args.loss)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    mf = torch.channels_last if amp else torch.contiguous_format

    def step(lr_scale: float) -> torch.Tensor:
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_scale
        if sim_t is None:
            xn, xc = cut_batch(noisy_t, clean_t, batch=args.batch, patch=args.patch, gen=gen, codes=DIHEDRAL)
        else:
            half = args.batch // 2
            an, ac = cut_batch(noisy_t, clean_t, batch=args.batch - half, patch=args.patch, gen=gen, codes=DIHEDRAL)
            k = int(torch.randint(0, sim_t.shape[0], (1,), generator=gen))
            bn, bc = cut_batch(sim_t[k], clean_t, batch=half, patch=args.patch, gen=gen, codes=DIHEDRAL)
            xn, xc = torch.cat([an, bn]), torch.cat([ac, bc])
        xn, xc = xn.contiguous(memory_format=mf), xc.contiguous(memory_format=mf)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(xn)
        loss = loss_fn(pred.float(), xc)  # the loss itself in float32, outside autocast
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    model.train()
    warm, settle = 40, 10
    t0 = time.perf_counter()
    for s in range(warm):  # linear warm-up; steps settle..warm measure the step rate (after cuDNN autotuning)
        if s == settle:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_settle = time.perf_counter()
        step((s + 1) / warm)
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = (warm - settle) / (time.perf_counter() - t_settle)
    total = max(warm + 1, int(rate * (args.seconds - (time.perf_counter() - t0)) + warm))
    for s in range(warm, total):
        last = step(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    model.eval()
    return model, {"variant": name, "steps": total, "seconds": round(seconds, 1),
                   "patches_per_s": round(total * args.batch / seconds, 1), "final_loss": float(last)}


def make_card(name, info, summary, args, splits, noisy, clean) -> dict:
    """The release card: training data, experiment, metrics, device."""
    tr, va, te = splits
    return {
        "name": "unet_tin_balls", "experiment": f"{args.loss} loss, variant {name}",
        "training_data": {"dataset": "tin_balls (real SEM pairs, seoleuns/SEMdenoising, MIT, doi:10.1088/1361-6501/ad7e41)",
                          "train_indices": list(tr), "val_indices": list(va), "test_indices": list(te),
                          "data_hash": hash_array(np.stack([noisy, clean]))},
        "input": "8-bit grey SEM image scaled to [0, 1] (data bar removed, G channel)",
        "metrics_test": info["test"], "metrics_test_x8": info["test_x8"], "metrics_val": info["val"],
        "training": {k: info[k] for k in ("steps", "seconds", "patches_per_s")},
        "device": summary["device"], "script": "bench/train_release.py",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/interim/tin_balls.zarr")
    ap.add_argument("--noise-model", type=Path, default=ROOT / "data/interim/noise_model.json")
    ap.add_argument("--out", type=Path, default=ROOT / "models/release")
    ap.add_argument("--seconds", type=float, default=70.0, help="training wall-clock per variant")
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--loss", default="charbonnier")
    ap.add_argument("--variants", default="real,real_sim", help="comma-separated: real, real_sim")
    ap.add_argument("--sim-copies", type=int, default=6, help="simulated noisy copies per training image")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--dry-run", action="store_true", help="tiny CPU run to check the script")
    args = ap.parse_args()
    if args.dry_run:
        args.seconds, args.base, args.depth, args.patch, args.batch, args.sim_copies = 2.0, 8, 2, 64, 4, 1

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = device.type == "cuda"
    g = zarr.open_group(str(args.data), mode="r")
    noisy, clean = g["noisy"][:], g["clean"][:]
    split = g.attrs["split"]
    split = json.loads(split) if isinstance(split, str) else split
    tr, va, te = split["train"], split["val"], split["test"]
    if args.dry_run:
        va, te = va[:1], te[:1]
    summary: dict = {"device": torch.cuda.get_device_name() if amp else "cpu", "torch": torch.__version__,
                     "split": {"train": len(tr), "val": len(va), "test": len(te)}, "args": {
                         k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    print(json.dumps(summary), flush=True)

    t0 = time.perf_counter()
    nm = read_noise_model(args.noise_model)
    if "real_sim" not in args.variants:
        args.sim_copies = 0
    sim = np.zeros((0, len(tr)) + noisy.shape[1:], np.uint8) if args.sim_copies == 0 else np.stack([
        np.stack([apply_noise_to_clean(clean[i], rng=derive_rng(args.seed, "release_sim", k, i), noise_model=nm)
                  for i in tr])
        for k in range(args.sim_copies)])
    summary["sim_seconds"] = round(time.perf_counter() - t0, 1)

    to_t = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).to(device)  # noqa: E731
    noisy_t, clean_t, sim_t = to_t(noisy[tr]), to_t(clean[tr]), to_t(sim)
    summary["baseline_noisy_test"] = {
        k: float(np.mean([score_aligned(noisy[i].astype(np.float32), clean[i].astype(np.float32),
                                        data_range=255.0)[k] for i in te]))
        for k in ("psnr_aligned", "ssim_aligned")}

    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.variants.split(","):
        s_t = sim_t if name == "real_sim" else None
        model, info = train_variant(name, noisy_t=noisy_t, clean_t=clean_t, sim_t=s_t, args=args,
                                    device=device, amp=amp, seed=args.seed)
        info["val"] = score(model, noisy, clean, va, device=device, amp=amp, ensemble="none")
        info["test"] = score(model, noisy, clean, te, device=device, amp=amp, ensemble="none")
        info["test_x8"] = score(model, noisy, clean, te, device=device, amp=amp, ensemble="dihedral")
        results[name] = info
        print(json.dumps(info), flush=True)
        export_release(model.float().to(memory_format=torch.contiguous_format).cpu(),
                       args.out / f"unet_{name}.safetensors", make_card(name, info, summary, args, (tr, va, te), noisy, clean))
        (args.out / "train_release_summary.json").write_text(json.dumps({**summary, "variants": results}, indent=2))

    best = max(results, key=lambda n: results[n]["val"]["psnr_aligned"])
    summary.update(variants=results, chosen=best, release=str(args.out / f"unet_{best}.safetensors"))
    (args.out / "train_release_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"chosen": best, "test": results[best]["test"], "test_x8": results[best]["test_x8"]}))


if __name__ == "__main__":
    main()
