"""What `sem-denoise adapt` adds on the real held-out block, scored with clean images it never sees.

Adapts ``--model`` to the noisy images of the Tin-balls test block (the adaptation reads only those
noisy images), then scores the starting and the adapted model on the same block, aligned and raw
(:mod:`sem_core.evaluate.heldout`). Prints the SURE guard's estimate beside the measured gain, the
cost, and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.adapt import adapt_model  # noqa: E402
from sem_core.adapt.run import GREY2  # noqa: E402
from sem_core.checkpoint import load_model  # noqa: E402
from sem_core.config import load_params  # noqa: E402
from sem_core.evaluate.heldout import score_method  # noqa: E402
from sem_core.io.zarr_store import open_dataset  # noqa: E402
from sem_core.models.predict import predict_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/release/unet_tin_balls.safetensors")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--split", default="test")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kernel-from-train", action="store_true",
                    help="forward kernel fitted clean -> noisy on the training block's pairs (not from the model)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_params(args.params)
    ad = cfg.adapt
    ds = open_dataset(cfg.paths.tin_balls_zarr)
    idx = ds.split[args.split]
    noisy = [ds.noisy[i] for i in idx]
    clean = [ds.clean[i] for i in idx]
    model, _ = load_model(args.model)
    base = score_method(lambda im: predict_image(model, im), noisy, clean)
    print(f"start  {args.model.name}: aligned PSNR {base['psnr_aligned']:.2f} dB SSIM {base['ssim_aligned']:.3f}")
    extra = {}
    if args.kernel_from_train:
        from sem_core.adapt.forward import estimate_forward_kernel

        tr = ds.split["train"]
        extra["forward_kernel"], extra["forward_offset"] = estimate_forward_kernel([ds.clean[i] / 255.0 for i in tr],
                                                          [ds.noisy[i] / 255.0 for i in tr], size_px=ad.forward_kernel_px)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        t0 = time.perf_counter()
        res = adapt_model(model, [n.astype(np.float32) / 255.0 for n in noisy], seed=seed,
                          **{**ad.library_kwargs(), **({"steps": args.steps} if args.steps else {}), **extra},
                          progress=lambda i: print(f"  step {i['step']}/{i['steps']} loss {i['loss']:.5f} "
                                                   f"{i['seconds']:.0f}s" + (f" SURE MSE {-i['sure_gain_grey2']:+.2f} grey²"
                                                   if 'sure_gain_grey2' in i else ""), flush=True)
                          if i["step"] % 25 == 0 else None)
        secs = time.perf_counter() - t0
        r = score_method(lambda im: predict_image(res.model, im), noisy, clean)
        row = {"seed": seed, "kept": res.kept, "estimated_gain_grey2": res.estimated_gain_grey2, "best_step": res.best_step,
               "measured_gain_db": r["psnr_aligned"] - base["psnr_aligned"],
               "measured_gain_grey2": GREY2 * (10 ** (-base["psnr_aligned"] / 10) - 10 ** (-r["psnr_aligned"] / 10)),
               "psnr_aligned": r["psnr_aligned"],
               "ssim_aligned": r["ssim_aligned"], "psnr_raw": r["psnr_raw"], "seconds": secs,
               "model_hash": res.model_hash, "history": res.history}
        rows.append(row)
        print(f"seed {seed}: kept {res.kept} (SURE: MSE {-res.estimated_gain_grey2:+.2f} grey² at step {res.best_step}) "
              f"measured {row['measured_gain_db']:+.2f} dB (MSE {-row['measured_gain_grey2']:+.2f} grey²) -> {r['psnr_aligned']:.2f} dB SSIM {r['ssim_aligned']:.3f}"
              f"  {secs:.0f} s for {len(noisy)} images", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": str(args.model), "split": args.split, "indices": list(map(int, idx)),
                                        "start": base, "adapted": rows, "params": ad.model_dump(), "kernel_from_train": args.kernel_from_train}, indent=2) + "\n")


if __name__ == "__main__":
    main()
