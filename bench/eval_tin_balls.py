"""Score denoisers on the held-out real Tin-balls pairs with the issue's aligned protocol.

Superseded by ``sem-denoise heldout`` (:mod:`sem_core.evaluate.heldout`: the same baselines, aligned *and* raw
scores, the shift estimated once per pair on the noisy image, and a check that a model never trained on a
held-out image). Kept for the figures recorded in ``reports/tin_balls_release_eval.json``.

Test split of ``tin_balls.zarr`` (never seen in training), whole images (data bar removed, G
channel). Aligned scores: shift by Hann-windowed phase correlation on the central region, reference
moved by the whole-pixel shift, brightness offset removed, 8 px border cut
(:func:`sem_core.metrics.aligned.score_aligned`). Methods: the noisy input, Gaussian σ=1.5,
median 5×5, BM3D with a coloured noise PSD estimated from the *training* residuals (noisy − clean),
and U-Net checkpoints/releases given with ``--model NAME=PATH`` (with and without ×8 self-ensembling).

Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.checkpoint import load_model  # noqa: E402
from sem_core.denoise.base import denoise_image  # noqa: E402
from sem_core.denoise.bm3d_coloured import Bm3dDenoiser, estimate_pairs_noise_acf  # noqa: E402
from sem_core.io.zarr_store import open_dataset  # noqa: E402
from sem_core.metrics.aligned import score_aligned  # noqa: E402
from sem_core.synth.noise_stats import aggregate_noise_stats, measure_noise_stats  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from train_release import predict  # noqa: E402  (the ×8 dihedral self-ensemble used in training too)

CPU = torch.device("cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/interim/tin_balls.zarr")
    ap.add_argument("--model", action="append", default=[], help="NAME=PATH (.safetensors release or .ckpt)")
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    ds = open_dataset(args.data)
    test = ds.split["test"][: args.max_images]
    noisy = {i: ds.noisy[i] for i in test}
    clean = {i: ds.clean[i].astype(np.float32) for i in test}
    methods = {
        "noisy": lambda im: im.astype(np.float32),
        "gaussian_1.5": lambda im: ndimage.gaussian_filter(im.astype(np.float32), 1.5),
        "median_5": lambda im: ndimage.median_filter(im.astype(np.float32), size=5),
    }
    if not args.no_bm3d:
        train = ds.split["train"]
        acf = estimate_pairs_noise_acf((ds.noisy[i] for i in train), (ds.clean[i] for i in train), border_px=8)
        bm3d = Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist())
        methods["bm3d_coloured"] = lambda im: denoise_image(im.astype(np.float32) / 255.0, denoiser=bm3d) * 255.0
        # The variance law (variance = slope·I + intercept) of the training pairs (stored aligned by `chunk`).
        law = aggregate_noise_stats([measure_noise_stats(ds.noisy[i], ds.clean[i]) for i in train])
        print(f"variance law of the training pairs: {law.slope:.3f}·I + {law.intercept:.2f} (grey levels)")
        bm3d_gat = Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist(), vst_slope=law.slope / 255.0,
                                vst_intercept=law.intercept / 255.0**2)
        methods["bm3d_coloured_gat"] = lambda im: denoise_image(im.astype(np.float32) / 255.0, denoiser=bm3d_gat) * 255.0
    for spec in args.model:
        name, _, path = spec.partition("=")
        model, _card = load_model(path)
        methods[name] = lambda im, m=model: predict(m, im, device=CPU, amp=False, ensemble="none")
        methods[f"{name}_scan"] = lambda im, m=model: predict(m, im, device=CPU, amp=False, ensemble="scan")
        methods[f"{name}_x8"] = lambda im, m=model: predict(m, im, device=CPU, amp=False, ensemble="dihedral")

    results = {}
    for name, fn in methods.items():
        rows, t0 = [], time.perf_counter()
        for i in test:
            out = fn(noisy[i])
            rows.append(score_aligned(out, clean[i], data_range=255.0, border_px=8))
        secs = time.perf_counter() - t0
        results[name] = {
            "psnr_aligned": float(np.mean([r["psnr_aligned"] for r in rows])),
            "psnr_aligned_std": float(np.std([r["psnr_aligned"] for r in rows])),
            "ssim_aligned": float(np.mean([r["ssim_aligned"] for r in rows])),
            "seconds_per_image": secs / len(test),
        }
        r = results[name]
        print(f"{name:<22} PSNR {r['psnr_aligned']:6.2f} ± {r['psnr_aligned_std']:.2f} dB   "
              f"SSIM {r['ssim_aligned']:.3f}   {r['seconds_per_image']:.2f} s/image", flush=True)
    summary = {"dataset": str(args.data), "test_indices": list(map(int, test)), "protocol": "aligned, 8 px border",
               "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
