"""Wafers test split: the U-Net ladder checkpoints against BM3D, over whole images and over the defects.

For every method it prints, as mean over the test images (U-Net rows: mean ± std over seeds):
whole-image PSNR/SSIM, PSNR/SSIM over the *defect region* (the union of the defect boxes dilated
by 4 px, as in :func:`sem_core.metrics.measure_defects`; PSNR pooled over those pixels, SSIM the
mean of the full-image SSIM map there), the same over the *defect mask* (the defect pixels only),
the defect-region PSNR per defect type, the median per-defect contrast retention, and the worst image's PSNR.
BM3D gets a coloured PSD from the noise ACF of the training pairs (noisy − clean), optionally with
variance stabilisation (GAT with the training pairs' variance law), and a white σ for comparison;
all run through the seam-free cell grid (:class:`Bm3dDenoiser`).

Example: ``python bench/wafers_vs_bm3d.py --experiments baseline charbonnier full --seeds 1 2 3``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.checkpoint import load_model  # noqa: E402
from sem_core.denoise.base import denoise_image  # noqa: E402
from sem_core.denoise.bm3d_coloured import Bm3dDenoiser, estimate_pairs_noise_acf  # noqa: E402
from sem_core.io.zarr_store import open_dataset  # noqa: E402
from sem_core.metrics import compute_psnr, compute_ssim, measure_defects  # noqa: E402
from sem_core.metrics.full_reference import compute_ssim_map  # noqa: E402
from sem_core.models.ensemble import SELF_ENSEMBLES  # noqa: E402
from sem_core.synth.noise_stats import fit_variance_law  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from train_release import predict  # noqa: E402  (the inference helper of the release evaluation)

CPU = torch.device("cpu")


def defect_region(shape: tuple[int, int], boxes, *, margin_px: int = 4) -> np.ndarray:
    """(H, W) bool union of the defect boxes dilated by ``margin_px`` (clipped to the image)."""
    region = np.zeros(shape, bool)
    for r0, c0, r1, c1 in boxes[["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]].itertuples(index=False):
        region[max(0, r0 - margin_px) : r1 + margin_px, max(0, c0 - margin_px) : c1 + margin_px] = True
    return region


def fit_binned_variance_law(ds, indices, *, bin_width: float = 8.0) -> tuple[float, float]:
    """Noise variance vs clean grey level over pixel-registered pairs: (slope, intercept) in grey levels.

    (The flat-region estimator of the noise fit needs flat areas that 256² wafer patterns do not have;
    these pairs are exactly registered, so the residual binned by the clean level measures the law.)
    """
    clean = np.concatenate([ds.clean[i].ravel() for i in indices]).astype(np.float64)
    resid = np.concatenate([(ds.noisy[i].astype(np.float64) - ds.clean[i]).ravel() for i in indices])
    bins = np.floor(clean / bin_width).astype(int)
    count = np.bincount(bins)
    ok = count > 200
    mean_c = np.bincount(bins, clean)[ok] / count[ok]
    m1 = np.bincount(bins, resid)[ok] / count[ok]
    var = np.bincount(bins, resid**2)[ok] / count[ok] - m1**2
    return fit_variance_law(mean_c, var, count[ok].astype(float))


def score_outputs(ds, outputs: dict[int, np.ndarray]) -> dict[str, float]:
    """Mean metrics of denoised test images (grey levels 0..255) against the clean references."""
    rows = []
    retention = []
    by_type: dict[str, list[float]] = {}
    for i, out in outputs.items():
        ref = ds.clean[i].astype(np.float64)
        boxes = ds.defects[ds.defects["image"] == i]
        region = defect_region(ref.shape, boxes)
        inside = ds.mask[i] != 0  # the defect pixels themselves
        smap = compute_ssim_map(out, ref, data_range=255.0)
        rows.append({
            "psnr": compute_psnr(out, ref, data_range=255.0),
            "ssim": compute_ssim(out, ref, data_range=255.0),
            "defect_psnr": _psnr(out[region], ref[region]),
            "defect_ssim": float(smap[region].mean()),
            "mask_psnr": _psnr(out[inside], ref[inside]) if inside.any() else float("nan"),
            "mask_ssim": float(smap[inside].mean()) if inside.any() else float("nan"),
        })
        for kind in boxes["type"].unique():
            r = defect_region(ref.shape, boxes[boxes["type"] == kind])
            by_type.setdefault(str(kind), []).append(float(np.mean((out[r] - ref[r]) ** 2)))
        d = measure_defects(out, ref, boxes=boxes, data_range=255.0, mask=ds.mask[i])
        retention += [v for v in d["contrast_retention"] if np.isfinite(v)]
    res = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    res["psnr_worst_image"] = float(min(r["psnr"] for r in rows))  # a collapsed region shows here, not in means
    res["defect_retention_median"] = float(np.median(retention))
    res.update({f"defect_psnr_{k}": float(10 * np.log10(255.0**2 / max(np.mean(v), 1e-12)))
                for k, v in sorted(by_type.items())})
    return res


def _psnr(out: np.ndarray, ref: np.ndarray) -> float:
    """PSNR (grey levels 0..255) pooled over the given pixels."""
    return float(10 * np.log10(255.0**2 / max(float(np.mean((out - ref) ** 2)), 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/interim/wafers.zarr")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--experiments", nargs="*", default=["baseline", "charbonnier", "full"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR: also score RUN_DIR/best.ckpt")
    ap.add_argument("--ensemble", nargs="+", default=["none"], choices=list(SELF_ENSEMBLES),
                    help="self-ensembles to score the U-Nets with (rows get a _scan / _dihedral suffix)")
    ap.add_argument("--skip-bm3d", action="store_true", help="score only the noisy input and the U-Nets")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    ds = open_dataset(args.data)
    test = [int(i) for i in ds.split["test"]]
    noisy = {i: ds.noisy[i].astype(np.float32) for i in test}
    train = ds.split["train"]
    acf = estimate_pairs_noise_acf((ds.noisy[i] for i in train), (ds.clean[i] for i in train))
    results: dict[str, dict] = {}

    def report(name: str, res: dict) -> None:
        results[name] = res
        print(f"{name:<16} " + "  ".join(f"{k} {v:.3f}" if not isinstance(v, dict) else
                                         f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in res.items()), flush=True)

    report("noisy", score_outputs(ds, noisy))
    if not args.skip_bm3d:
        slope, intercept = fit_binned_variance_law(ds, train)
        print(f"variance law of the training pairs: {slope:.3f}·I + {intercept:.2f} (grey levels)")
        for label, den in {
            "bm3d_coloured": Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist()),
            "bm3d_coloured_gat": Bm3dDenoiser(psd_mode="coloured", noise_acf=acf.tolist(), vst_slope=slope / 255.0,
                                              vst_intercept=intercept / 255.0**2),
            "bm3d_white": Bm3dDenoiser(psd_mode="white", sigma=float(np.sqrt(acf[3, 3]))),
        }.items():
            outs = {i: denoise_image(noisy[i] / 255.0, denoiser=den) * 255.0 for i in test}
            report(label, score_outputs(ds, outs))

    def run_checkpoint(ckpt: Path, ensemble: str) -> dict[str, float]:
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt} missing: train it first (bench/ladder.py or sem-denoise train)")
        model, _ = load_model(ckpt)
        return score_outputs(ds, {i: predict(model, noisy[i], device=CPU, amp=False, ensemble=ensemble)
                                  for i in test})

    names = []
    for ens in args.ensemble:
        suffix = "" if ens == "none" else f"_{ens}"
        for exp in args.experiments:
            per_seed = [run_checkpoint(args.models_dir / f"{exp}_wafers_s{seed}" / "best.ckpt", ens)
                        for seed in args.seeds]
            names.append(f"unet_{exp}{suffix}")
            report(names[-1], {k: {"mean": float(np.mean([r[k] for r in per_seed])),
                                   "std": float(np.std([r[k] for r in per_seed], ddof=1)) if len(per_seed) > 1
                                   else 0.0} for k in per_seed[0]})
        for spec in args.run:
            name, _, run_dir = spec.partition("=")
            names.append(f"unet_{name}{suffix}")
            report(names[-1], {k: {"mean": v, "std": 0.0}
                               for k, v in run_checkpoint(Path(run_dir) / "best.ckpt", ens).items()})
    bm3d = results.get("bm3d_coloured")
    for name in names if bm3d else []:
        r = results[name]
        print(f"{name} − bm3d_coloured: PSNR {r['psnr']['mean'] - bm3d['psnr']:+.2f} dB, "
              f"defect-region PSNR {r['defect_psnr']['mean'] - bm3d['defect_psnr']:+.2f} dB, "
              f"defect-region SSIM {r['defect_ssim']['mean'] - bm3d['defect_ssim']:+.3f}, "
              f"defect-mask PSNR {r['mask_psnr']['mean'] - bm3d['mask_psnr']:+.2f} dB")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"test_indices": test, "noise_acf": acf.tolist(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
