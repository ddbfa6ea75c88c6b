"""What BM3D's cell grid costs: cells (the seam-free definition) vs one bm3d call on the whole image.

On held-out real Tin-balls test pairs (aligned protocol, coloured PSD estimated from the training
residuals, as in ``bench/eval_tin_balls.py``) it prints, per variant, PSNR/SSIM, seconds per image,
and the largest and mean absolute difference to the one-call output.

Example: ``python bench/bm3d_cells.py --max-images 3 --cells 256 512``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.denoise.base import denoise_image  # noqa: E402
from sem_core.denoise.bm3d_coloured import Bm3dDenoiser, estimate_pairs_noise_acf  # noqa: E402
from sem_core.io.zarr_store import open_dataset  # noqa: E402
from sem_core.metrics.aligned import score_aligned  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/interim/tin_balls.zarr")
    ap.add_argument("--cells", nargs="+", type=int, default=[256, 512])
    ap.add_argument("--max-images", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    ds = open_dataset(args.data)
    train = ds.split["train"]
    acf = estimate_pairs_noise_acf((ds.noisy[i] for i in train), (ds.clean[i] for i in train), border_px=8).tolist()
    test = ds.split["test"][: args.max_images]

    variants: dict[str, object] = {"one_call": None, **{f"cells_{c}": c for c in args.cells}}
    outputs: dict[str, list[np.ndarray]] = {}
    results = {}
    for name, cell in variants.items():
        d = Bm3dDenoiser(psd_mode="coloured", noise_acf=acf, cell_px=cell or 256)
        rows, outs, t0 = [], [], time.perf_counter()
        for i in test:
            x = ds.noisy[i].astype(np.float32) / 255.0
            y = d.denoise_window(x) if cell is None else denoise_image(x, denoiser=d)
            outs.append(y)
            rows.append(score_aligned(y * 255.0, ds.clean[i].astype(np.float32), data_range=255.0, border_px=8))
        outputs[name] = outs
        res = {
            "psnr_aligned": float(np.mean([r["psnr_aligned"] for r in rows])),
            "ssim_aligned": float(np.mean([r["ssim_aligned"] for r in rows])),
            "seconds_per_image": (time.perf_counter() - t0) / len(test),
        }
        if cell is not None:
            diffs = [np.abs(a - b) * 255.0 for a, b in zip(outs, outputs["one_call"])]
            inner = [d[8:-8, 8:-8] for d in diffs]  # without the border that scoring cuts (the microscope's frame)
            res["max_abs_diff_grey"] = float(max(d.max() for d in diffs))
            res["max_abs_diff_grey_inner"] = float(max(d.max() for d in inner))
            res["mean_abs_diff_grey_inner"] = float(np.mean([d.mean() for d in inner]))
        results[name] = res
        print(f"{name:<10} " + "  ".join(f"{k} {v:.4g}" for k, v in res.items()), flush=True)
    shape = tuple(int(s) for s in ds.noisy.shape[1:])
    summary = {"test_indices": list(map(int, test)), "image_shape": shape, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
