#!/usr/bin/env python
"""CPU training throughput: patches/s of our training step machinery vs a bare loop of the same net.

Machinery = PatchSampler (numpy, flips/rot90) -> move_batch -> make_train_step (loss via
build_loss, AdamW, schedule, gradient clipping), exactly what ``sem_core.train`` runs per
step. Bare = the same network on one pre-made batch, forward/loss/backward/AdamW step.
Prints the median over repeats (the machine is shared: quote medians and the load).

    python bench/train_throughput.py --quick
    python bench/train_throughput.py --base 16 --depth 3 --patch 64 --batch 8 --loss charbonnier
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sem_core.device import move_batch, select_device  # noqa: E402
from sem_core.train_step import make_scheduler, make_train_step  # noqa: E402
from sem_core.losses import build_loss  # noqa: E402
from sem_core.models.unet import UNet  # noqa: E402
from sem_core.patches import PatchSampler  # noqa: E402


def _rate(fn, *, steps: int, batch: int, repeats: int) -> float:
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny: base 8, depth 2, 32^2 patches, few steps")
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--loss", default="charbonnier")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.quick:
        args.base, args.depth, args.patch, args.batch, args.steps, args.repeats = 8, 2, 32, 4, 5, 3
    torch.set_num_threads(args.threads)
    setup = select_device("cpu")
    rng = np.random.default_rng(0)
    clean = (rng.random((8, 256, 256)) * 255).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    sampler = PatchSampler(noisy, clean, patch_size=args.patch)
    loss_fn = build_loss(args.loss)

    torch.manual_seed(0)
    model = UNet(base_channels=args.base, depth=args.depth)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = make_train_step(model, loss_fn, opt, make_scheduler(opt, schedule="cosine", lr=1e-3, steps=10**6),
                           setup, grad_clip=1.0)

    def machinery() -> None:
        x, y = sampler.sample(args.batch, rng=rng)
        step(move_batch(x, setup), move_batch(y, setup))

    torch.manual_seed(0)
    bare_model = UNet(base_channels=args.base, depth=args.depth)
    bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=1e-3)
    xb, yb = (torch.from_numpy(a) for a in sampler.sample(args.batch, rng=rng))

    def bare() -> None:
        bare_opt.zero_grad()
        loss_fn(bare_model(xb), yb).backward()
        bare_opt.step()

    r_m = _rate(machinery, steps=args.steps, batch=args.batch, repeats=args.repeats)
    r_b = _rate(bare, steps=args.steps, batch=args.batch, repeats=args.repeats)
    load = os.getloadavg()[0]
    print(f"U-Net base {args.base} depth {args.depth}, {args.patch}^2 patches, batch {args.batch}, loss {args.loss}, "
          f"{args.threads} threads, load avg {load:.1f}")
    print(f"machinery {r_m:8.1f} patches/s   bare {r_b:8.1f} patches/s   ratio {r_m / r_b:.2f}  "
          f"(medians of {args.repeats})")


if __name__ == "__main__":
    main()
