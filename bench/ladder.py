"""The loss ladder: experiments × seeds × datasets, trained with ``sem-denoise train`` and scored on the test split.

For each (experiment, dataset, seed) it trains with the params file's profile (the CPU default profile unless
``--profile`` says otherwise) into ``models/<experiment>_<dataset>_s<seed>/``, then scores ``best.ckpt`` on the
dataset's *test* split: PSNR/SSIM aligned (tin balls: the issue's protocol) or plain (wafers, which are
pixel-registered), and on wafers also the PSNR inside the dilated defect boxes and the mean defect contrast
retention (:func:`sem_core.metrics.measure_defects`). Prints mean ± std over seeds and writes JSON.

Example: ``python bench/ladder.py --experiments baseline charbonnier full --seeds 1 2 3 --datasets tin_balls wafers``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.checkpoint import load_model  # noqa: E402
from sem_core.config import load_params  # noqa: E402
from sem_core.io.zarr_store import open_dataset  # noqa: E402
from sem_core.metrics import compute_psnr, compute_ssim, measure_defects  # noqa: E402
from sem_core.metrics.aligned import score_aligned  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from train_release import predict  # noqa: E402  (the inference helper of the release evaluation)

CPU = torch.device("cpu")


def score_checkpoint(ckpt: Path, dataset: Path, *, aligned: bool) -> dict[str, float]:
    """Mean test-split metrics of one checkpoint (grey levels 0..255)."""
    model, _ = load_model(ckpt)
    ds = open_dataset(dataset)
    rows, retention, defect_psnr = [], [], []
    for i in ds.split["test"]:
        out = predict(model, ds.noisy[i], device=CPU, amp=False, ensemble="none")
        ref = ds.clean[i].astype(np.float32)
        raw = (compute_psnr(out, ref, data_range=255.0), compute_ssim(out, ref, data_range=255.0))
        if aligned:
            r = score_aligned(out, ref, data_range=255.0, border_px=8)
            rows.append((r["psnr_aligned"], r["ssim_aligned"], *raw))
        else:
            rows.append((*raw, *raw))
        if ds.defects is not None:
            boxes = ds.defects[ds.defects["image"] == i]
            if len(boxes):
                d = measure_defects(out, ref, boxes=boxes, data_range=255.0, mask=ds.mask[i])
                retention += [v for v in d["contrast_retention"] if np.isfinite(v)]
                defect_psnr += [v for v in d["psnr"] if np.isfinite(v)]
    # psnr/ssim: aligned on Tin-balls (the protocol), plain on the pixel-registered Wafers; *_raw: the
    # whole image as stored (Tin-balls pairs are integer-registered by `chunk`; no offset removal, no border cut)
    res = {k: float(np.mean([r[j] for r in rows])) for j, k in enumerate(("psnr", "ssim", "psnr_raw", "ssim_raw"))}
    if defect_psnr:
        res["defect_psnr"] = float(np.mean(defect_psnr))
        res["defect_retention"] = float(np.median(retention)) if retention else float("nan")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--experiments", nargs="+", default=["baseline", "charbonnier", "full"])
    ap.add_argument("--datasets", nargs="+", default=["tin_balls", "wafers"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "reports/ladder.json")
    args = ap.parse_args()
    cfg = load_params(args.params, profile=args.profile)
    paths = {"tin_balls": cfg.paths.tin_balls_zarr, "wafers": cfg.paths.wafers_zarr}
    # Results accumulate in --out: a run of some experiments replaces only their (dataset, experiment, seed) rows.
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    runs = []
    for ds_name in args.datasets:
        for exp in args.experiments:
            spec = cfg.train.experiments[exp]
            if (spec.train_data is not None or spec.init_from is not None) and ds_name != "tin_balls":
                # sim2real / sim2real_ft: trained on (or started from) simulated Tin-balls pairs; Wafers is not theirs.
                continue
            for seed in args.seeds:
                run_dir = Path(cfg.paths.models_dir) / f"{exp}_{ds_name}_s{seed}"
                if not (run_dir / "best.ckpt").is_file():
                    cmd = [sys.executable, "-m", "sem_cli.main", "train", "--params", str(args.params), "-e", exp,
                           "--dataset", ds_name, "--seed", str(seed), "--threads", str(args.threads)]
                    if args.profile:
                        cmd += ["--profile", args.profile]
                    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
                seconds = json.loads((run_dir / "metrics.json").read_text()).get("seconds")
                res = score_checkpoint(run_dir / "best.ckpt", Path(paths[ds_name]), aligned=ds_name == "tin_balls")
                runs.append({"dataset": ds_name, "experiment": exp, "seed": seed, "train_seconds": seconds, **res})
                print(json.dumps(runs[-1]), flush=True)
    done = {(r["dataset"], r["experiment"], r["seed"]) for r in runs}
    runs = [r for r in previous if (r["dataset"], r["experiment"], r["seed"]) not in done] + runs
    table = {}
    for ds_name, exp in dict.fromkeys((r["dataset"], r["experiment"]) for r in runs):
        sel = [r for r in runs if r["dataset"] == ds_name and r["experiment"] == exp]
        table[f"{ds_name}/{exp}"] = {
            k: {"mean": float(np.mean([r[k] for r in sel])), "std": float(np.std([r[k] for r in sel], ddof=1))
                if len(sel) > 1 else 0.0}
            for k in ("psnr", "ssim", "psnr_raw", "ssim_raw", "defect_psnr", "defect_retention")
            if all(k in r for r in sel)
        }
        cells = "  ".join(f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in table[f"{ds_name}/{exp}"].items())
        print(f"{ds_name:<10} {exp:<12} n={len(sel)}  {cells}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"profile": cfg.profile, "runs": runs, "summary": table}, indent=2))


if __name__ == "__main__":
    main()
