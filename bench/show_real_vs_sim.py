"""Real vs simulated Tin-balls noise, side by side: writes docs/real_vs_sim_tin_balls.png.

The simulated noisy image is made from the SAME (aligned) clean image as the real noisy one, with the
fitted noise model (``--model``, e.g. ``data/interim/noise_model.json``; without it the model is fitted
here on the first pairs). Prints the statistics of both for the shown pair.

    .venv/bin/python bench/show_real_vs_sim.py [--quick] [--pair 045] [--model PATH] [--out PNG]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sem_core.rng import derive_rng  # noqa: E402
from sem_core.synth.noise_fit import fit_noise_model  # noqa: E402
from sem_core.synth.imaging import apply_noise_to_clean, read_noise_model  # noqa: E402
from sem_core.synth.noise_stats import make_flat_mask, measure_noise_stats  # noqa: E402
from sem_core.synth.real_pairs import find_time_pairs, load_aligned_pair, load_aligned_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _residual_in_flat(noisy, clean, border=8):
    n = noisy[border:-border, border:-border].astype(float)
    c = clean[border:-border, border:-border].astype(float)
    m = make_flat_mask(c) & (n > 0) & (n < 255)
    return (n - c)[m], m, n - c


def _acf_x(r, mask, lags=6):
    out = [1.0]
    for k in range(1, lags):
        a, b = r[:, :-k], r[:, k:]
        mm = mask[:, :-k] & mask[:, k:]
        a, b = a[mm] - a[mm].mean(), b[mm] - b[mm].mean()
        out.append(float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "tin_balls")
    ap.add_argument("--pair", default="045", help="pair id to show (045 is held out by the default split)")
    ap.add_argument("--model", type=Path, default=None, help="fitted noise model JSON (else fit here)")
    ap.add_argument("--quick", action="store_true", help="fit on 8 pairs with 1 iteration")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "real_vs_sim_tin_balls.png")
    args = ap.parse_args()

    t0 = time.perf_counter()
    found = find_time_pairs(args.source)
    if args.model is not None:
        model = read_noise_model(args.model)
        print(f"model from {args.model}")
    else:
        n_fit = 8 if args.quick else 40
        pairs, _ = load_aligned_pairs([(p, n, c, None) for p, n, c in found[:n_fit]])
        model, _ = fit_noise_model([(p.noisy, p.clean) for p in pairs], rng=derive_rng(args.seed, "noise_fit"),
                                   n_train=n_fit, iterations=1 if args.quick else 3)
        print(f"model fitted on {n_fit} pairs in {time.perf_counter() - t0:.1f} s")
    print(model)
    pid, npath, cpath = next(x for x in found if x[0] == args.pair)
    pair = load_aligned_pair(pid, npath, cpath)
    clean = np.rint(pair.clean).astype(np.float64)
    real = pair.noisy
    sim = apply_noise_to_clean(clean, rng=derive_rng(args.seed, "show_real_vs_sim", pid), noise_model=model)

    s_real = measure_noise_stats(real, clean)
    s_sim = measure_noise_stats(sim, clean)
    print(f"pair {pid} (shift {pair.shift[0]:+.2f}, {pair.shift[1]:+.2f} px)")
    print(f"{'statistic':>10} {'real':>10} {'sim':>10}")
    for (k, a), b in zip(s_real.summary().items(), s_sim.summary().values()):
        print(f"{k:>10} {a:10.4g} {b:10.4g}")

    r0, c0, size = 150, 180, 160
    crop = (slice(r0, r0 + size), slice(c0, c0 + size))
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 9.4), gridspec_kw={"height_ratios": [1.25, 1]})
    for ax, img, title in zip(axes[0], (real, sim, clean),
                              ("real noisy (100 ns)", "simulated noisy (fitted model)", "clean (30 µs, aligned)")):
        ax.imshow(img[crop], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{title}\npair {pid}, rows {r0}-{r0 + size}, cols {c0}-{c0 + size}", fontsize=10)
        ax.axis("off")
    rr, mr, full_r = _residual_in_flat(real, clean)
    rs, ms, full_s = _residual_in_flat(sim, clean)
    bins = np.arange(-80, 121, 2)
    ax = axes[1, 0]
    ax.hist(rr, bins=bins, histtype="step", density=True, label="real", lw=1.5)
    ax.hist(rs, bins=bins, histtype="step", density=True, label="simulated", lw=1.5)
    ax.set_yscale("log")
    ax.set_xlabel("noisy - clean in flat regions (grey levels)")
    ax.legend()
    ax.set_title("residual histogram", fontsize=10)
    ax = axes[1, 1]
    lags = np.arange(6)
    ax.plot(lags, _acf_x(full_r, mr), "o-", label="real")
    ax.plot(lags, _acf_x(full_s, ms), "s--", label="simulated")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("lag along x (fast scan), px")
    ax.set_title(f"autocorrelation; along y lag 1: real {s_real.acf_y1:+.3f}, sim {s_sim.acf_y1:+.3f}", fontsize=10)
    ax.legend()
    ax = axes[1, 2]
    for s, mk, name in ((s_real, "o", "real"), (s_sim, "s", "simulated")):
        x = np.asarray(s.bin_intensity)
        ax.plot(x, s.bin_variance, mk, ms=4, label=f"{name}: {s.slope:.2f} I + {s.intercept:.1f}")
        ax.plot(x, s.slope * x + s.intercept, "-", lw=0.8)
    ax.set_xlabel("clean intensity I (grey levels)")
    ax.set_ylabel("noise variance")
    ax.set_title("variance law (flat regions)", fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
