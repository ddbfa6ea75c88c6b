"""Time every metric of sem_core.metrics on one image pair; prints the median of repeats (seconds).

Usage: python bench/bench_metrics.py [--quick] [--size 512] [--repeats 5]
Timings on a shared 2-core machine are noisy: compare medians from the same run only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import ndimage

from sem_core.evaluate import score_image
from sem_core.metrics import (
    compute_cnr,
    compute_edge_preservation,
    compute_fsim,
    compute_ms_ssim,
    compute_psnr,
    compute_residual_structure,
    compute_ssim,
    compute_uiqi,
    derive_cnr_masks,
    score_aligned,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 px, 3 repeats")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    size, repeats = (256, 3) if args.quick else (args.size, args.repeats)
    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.random((size, size)), 4)
    clean = (clean - clean.min()) / np.ptp(clean)
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    out = ndimage.gaussian_filter(noisy, 1.0)
    fg, bg = derive_cnr_masks(clean)
    cases = {
        "psnr": lambda: compute_psnr(out, clean, data_range=1.0),
        "ssim": lambda: compute_ssim(out, clean, data_range=1.0),
        "ms_ssim": lambda: compute_ms_ssim(out, clean, data_range=1.0),
        "fsim": lambda: compute_fsim(out, clean, data_range=1.0),
        "uiqi": lambda: compute_uiqi(out, clean),
        "epi": lambda: compute_edge_preservation(out, clean),
        "cnr (+masks)": lambda: (derive_cnr_masks(clean), compute_cnr(out, foreground=fg, background=bg)),
        "residual_structure": lambda: compute_residual_structure(noisy, out, clean),
        "score_aligned": lambda: score_aligned(out, clean, data_range=1.0),
        "score_image (all, aligned)": lambda: score_image(out, clean, data_range=1.0, noisy=noisy, align=True),
    }
    print(f"image {size}x{size}, median of {repeats} runs")
    for name, fn in cases.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"{name:28s} {statistics.median(times) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
