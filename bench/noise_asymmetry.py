"""Direction of the noise: how much the noise of real and simulated pairs tells left from right.

For each dataset Zarr (training split, up to ``--max-images`` pairs, an 8 px border cut) it prints, with the
residual r = noisy − clean normalised to unit variance:

- the third-order lag asymmetry ``mean(r[x+k]·r[x]²) − mean(r[x]·r[x+k]²)`` along the rows (fast-scan axis,
  lags 1 and 2) and along the columns: zero for noise whose statistics are the same mirrored, large for shot
  noise through a causal (left-to-right) detector filter;
- the correlation of r with the clean image's horizontal gradient (a left-right displacement or smear of the
  noisy image relative to the clean one).

A network trained with left-right flips must undo both directions; the larger the asymmetry, the more the
``scan`` augmentation (up-down flips only) can gain. ``python bench/noise_asymmetry.py`` compares the real
Tin-balls pairs, the calibrated simulator on the same clean images, and the Wafers set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sem_core.io.zarr_store import open_dataset  # noqa: E402


def lag_asymmetry(r: np.ndarray, *, lag: int, axis: int) -> float:
    """``mean(r[i+lag]·r[i]²) − mean(r[i]·r[i+lag]²)`` along ``axis`` of a unit-variance (H, W) residual."""
    a = np.moveaxis(r, axis, -1)
    return float(np.mean(a[..., lag:] * a[..., :-lag] ** 2) - np.mean(a[..., :-lag] * a[..., lag:] ** 2))


def measure(path: Path, *, max_images: int, border_px: int = 8) -> dict[str, float]:
    """Mean asymmetries and gradient correlation over the training pairs of one dataset Zarr."""
    ds = open_dataset(path)
    rows = []
    for i in list(ds.split["train"])[:max_images]:
        crop = (slice(border_px, -border_px), slice(border_px, -border_px))
        clean = ds.clean[i].astype(np.float64)[crop]
        r = ds.noisy[i].astype(np.float64)[crop] - clean
        r = (r - r.mean()) / r.std()
        grad = np.diff(clean, axis=1)
        rows.append({
            "x_lag1": lag_asymmetry(r, lag=1, axis=1), "x_lag2": lag_asymmetry(r, lag=2, axis=1),
            "y_lag1": lag_asymmetry(r, lag=1, axis=0), "y_lag2": lag_asymmetry(r, lag=2, axis=0),
            "corr_dclean_dx": float(np.corrcoef(r[:, :-1].ravel(), grad.ravel())[0, 1]),
        })
    return {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stores", nargs="*", type=Path, default=[
        ROOT / "data/interim/tin_balls.zarr", ROOT / "data/interim/tin_balls_sim.zarr",
        ROOT / "data/interim/wafers.zarr"])
    ap.add_argument("--max-images", type=int, default=20)
    args = ap.parse_args()
    for store in args.stores:
        res = measure(store, max_images=args.max_images)
        print(f"{store.name:<24} " + "  ".join(f"{k} {v:+.4f}" for k, v in res.items()))


if __name__ == "__main__":
    main()
