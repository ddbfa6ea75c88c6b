"""Benchmarks of tiled scan denoising (printed figures, not tests).

    python bench/denoise_scan.py --quick            # per-method MPix/s + peak RSS, 1 vs 2 workers, U-Net vs GEMM
    python bench/denoise_scan.py --memory-check     # peak RSS: 16384² vs 4096² scan (gaussian, chunk 1024)
    python bench/denoise_scan.py --gpu              # U-Net pipeline vs bare model throughput on CUDA

Every measurement of RSS runs in its own subprocess (its peak RSS, ``VmHWM``: ``ru_maxrss`` would
include the forking parent's size on Linux). The machine is shared: timings are noisy, medians of ``--repeats`` are quoted.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = {  # method: (params, scan side, chunk) for the full run; --quick halves the side
    "gaussian": ({"sigma_px": 1.5}, 2048, 512),
    "median": ({"size_px": 3}, 2048, 512),
    "bilateral": ({"sigma_color": 0.1, "sigma_spatial": 1.5}, 2048, 512),
    "nlm": ({"h": 0.08, "patch_size": 5, "patch_distance": 6}, 2048, 512),
    "tv": ({"weight": 0.1, "n_iter": 40}, 2048, 512),
    "wavelet": ({"threshold": 0.06, "levels": 3}, 2048, 512),
    "bm3d": ({"sigma": 0.08, "cell_px": 256}, 1024, 512),  # chunk: a multiple of the cell grid
}


def write_synthetic_scan(path: Path, side: int, *, chunk: int = 1024, seed: int = 0) -> None:
    """A uint8 (side, side) line/space pattern + noise correlated along x, written one chunk row at a time."""
    import zarr

    arr = zarr.create_array(path, shape=(side, side), dtype="uint8", chunks=(chunk, chunk), overwrite=True)
    rng = np.random.default_rng(seed)
    xx = np.arange(side)
    pattern = np.where((xx // 24) % 2 == 0, 170.0, 80.0)
    for r in range(0, side, chunk):
        h = min(chunk, side - r)
        w = rng.normal(0, 25, (h, side + 1))
        arr[r : r + h] = np.clip(pattern + 0.5 * (w[:, 1:] + w[:, :-1]), 0, 255).astype(np.uint8)


def _child(spec: dict) -> dict:
    """Run one denoise_zarr in this process; report time and peak RSS."""
    import torch

    torch.set_num_threads(1)
    import dask.distributed  # noqa: F401  (dask imports it on first compute: keep that out of the timing)

    from sem_core.denoise.base import build_denoiser
    from sem_core.denoise_zarr import denoise_zarr

    d = build_denoiser(spec["method"], **spec["params"])
    with tempfile.TemporaryDirectory() as tmp:
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = usage0.ru_utime + usage0.ru_stime
        t0 = time.perf_counter()
        run = denoise_zarr(spec["src"], Path(tmp) / "out.ome.zarr", denoiser=d, chunks=spec["chunk"],
                           scheduler="threads", num_workers=spec["workers"], progress=False, resume=False,
                           n_levels=spec.get("levels", 2))
        seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - cpu0
    return {"seconds": seconds, "cpu_s": cpu_s, "rss_mib": peak_rss_mib(), "blocks": run.blocks_total}


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM of its own address space (Linux), else ru_maxrss.

    ru_maxrss survives exec on Linux, so a child forked from a big parent would report the
    parent's size; VmHWM belongs to the exec'd address space only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass  # not Linux: fall back to getrusage
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"child {spec['method']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_methods(tmp: Path, repeats: int, quick: bool, only: list[str] | None = None) -> None:
    print("== per method: tiled denoise_zarr, threads scheduler, 2 workers (median of runs) ==")
    print("(MPix/s: wall clock on a shared machine; MPix/CPU-s: per CPU-second of the run, robust to contention)")
    print(f"{'method':10s} {'scan':>6s} {'chunk':>5s} {'MPix/s':>8s} {'s/MPix':>7s} {'MPix/CPU-s':>10s} "
          f"{'peak RSS MiB':>12s}")
    scans: dict[int, Path] = {}
    for method, (params, side, chunk) in METHODS.items():
        if only and method not in only:
            continue
        side = side // 2 if quick else side
        if side not in scans:
            scans[side] = tmp / f"scan_{side}.zarr"
            write_synthetic_scan(scans[side], side)
        res = [run_child({"method": method, "params": params, "src": str(scans[side]), "chunk": chunk, "workers": 2})
               for _ in range(repeats)]
        sec = statistics.median(r["seconds"] for r in res)
        mpix = side * side / 1e6
        cpu = statistics.median(r["cpu_s"] for r in res)
        print(f"{method:10s} {side:6d} {chunk:5d} {mpix / sec:8.3f} {sec / mpix:7.2f} {mpix / cpu:10.3f} "
              f"{max(r['rss_mib'] for r in res):12.0f}", flush=True)


def bench_scaling(tmp: Path, repeats: int) -> None:
    print("== scaling: nlm on 1024², chunk 256, threads ==")
    src = tmp / "scan_1024.zarr"
    if not src.exists():
        write_synthetic_scan(src, 1024)
    times = {}
    for workers in (1, 2):
        res = [run_child({"method": "nlm", "params": METHODS["nlm"][0], "src": str(src), "chunk": 256,
                          "workers": workers}) for _ in range(repeats)]
        times[workers] = statistics.median(r["seconds"] for r in res)
        cpu = statistics.median(r["cpu_s"] for r in res)
        print(f"workers={workers}: {times[workers]:.2f} s wall ({1.048576 / times[workers]:.3f} MPix/s), "
              f"{cpu:.2f} CPU-s", flush=True)
    print(f"speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x")


def count_macs(model, shape: tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass on a (1, 1, H, W) input (convolutions + transposed convolutions)."""
    import torch
    from torch import nn

    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        if isinstance(mod, nn.ConvTranspose2d):
            total += inp[0].numel() * mod.out_channels * k // mod.groups
        else:
            total += out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.inference_mode():
        model(torch.zeros(1, 1, *shape))
    for h in handles:
        h.remove()
    return total


def bench_unet_cpu(repeats: int, base: int = 16, depth: int = 4) -> None:
    import torch

    from sem_core.denoise.unet import UnetDenoiser
    from sem_core.models.unet import UNet

    torch.set_num_threads(2)
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, a)
        t.append(time.perf_counter() - t0)
    gemm = 2 * 2048**3 / statistics.median(t)
    torch.manual_seed(0)
    net = UNet(base_channels=base, depth=depth, norm="batch").eval()
    tile = 512
    d = UnetDenoiser(model=net, tile_px=tile, batch_size=1, device="cpu")
    side = tile + 2 * d.ctx
    macs = count_macs(net, (side, side))
    x = np.random.default_rng(0).random((side, side), dtype=np.float32)
    with torch.inference_mode():
        net(torch.from_numpy(x)[None, None])  # warm-up
    bare = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.inference_mode():
            net(torch.from_numpy(x)[None, None])
        bare.append(time.perf_counter() - t0)
    img = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
    pipe = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        d(img)
        pipe.append(time.perf_counter() - t0)
    tb, tp = statistics.median(bare), statistics.median(pipe)
    flops = 2 * macs / tb
    print(f"== U-Net (base {base}, depth {depth}) on CPU, 2 torch threads ==")
    print(f"GEMM 2048³ float32: {gemm / 1e9:.1f} GFLOP/s")
    print(f"bare model on {side}² ({macs / 1e9:.2f} GMAC): {tb:.2f} s = {flops / 1e9:.1f} GFLOP/s "
          f"= {flops / gemm:.2f} of GEMM; {tile * tile / tb / 1e6:.3f} MPix/s of {tile}² core")
    print(f"pipeline (halo {d.ctx}, tile {tile}) on 1024²: {1.048576 / tp:.3f} MPix/s")


def bench_unet_gpu(repeats: int = 10) -> None:
    import torch

    from sem_core.denoise.unet import UnetDenoiser
    from sem_core.models.unet import UNet

    if not torch.cuda.is_available():
        print("no CUDA device: GPU benchmark skipped")
        return
    for base in (32, 64):
        net = UNet(base_channels=base, depth=4, norm="batch").eval()
        d = UnetDenoiser(model=net, tile_px=1024, batch_size=8, device="cuda")
        side = d.tile_px + 2 * d.ctx
        xb = torch.rand(d.batch_size, 1, side, side, device="cuda").to(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                d.model(xb)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(repeats):
                d.model(xb)
            torch.cuda.synchronize()
        bare = repeats * d.batch_size * d.tile_px**2 / (time.perf_counter() - t0) / 1e6
        img = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
        d(img)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            d(img)
        torch.cuda.synchronize()
        pipe = 3 * img.size / (time.perf_counter() - t0) / 1e6
        print(f"U-Net base {base}: bare {bare:.0f} MPix/s (core pixels), pipeline {pipe:.0f} MPix/s "
              f"= {pipe / bare:.2f} of bare ({torch.cuda.get_device_name()})", flush=True)
    net = UNet(base_channels=16, depth=4, norm="batch").eval()
    small = np.random.default_rng(2).random((600, 700), dtype=np.float32)
    gpu = UnetDenoiser(model=net, tile_px=256, batch_size=4, device="cuda")(small)
    cpu = UnetDenoiser(model=net.to("cpu"), tile_px=256, batch_size=4, device="cpu")(small)
    print(f"bf16 CUDA vs float32 CPU on 600x700 (base 16): max |diff| {np.abs(gpu - cpu).max():.4f}, "
          f"mean {np.abs(gpu - cpu).mean():.5f}")


def memory_check(tmp: Path) -> None:
    print("== bounded memory: gaussian σ=1.5, chunk 1024, threads, 2 workers ==")
    rss = {}
    for side in (4096, 16384):
        src = tmp / f"mem_{side}.zarr"
        t0 = time.perf_counter()
        write_synthetic_scan(src, side)
        print(f"wrote {side}² scan in {time.perf_counter() - t0:.1f} s", flush=True)
        r = run_child({"method": "gaussian", "params": {"sigma_px": 1.5}, "src": str(src), "chunk": 1024,
                       "workers": 2, "levels": 4})
        rss[side] = r["rss_mib"]
        print(f"{side}²: {r['seconds']:.1f} s ({side * side / 1e6 / r['seconds']:.1f} MPix/s, "
              f"{r['cpu_s']:.0f} CPU-s), peak RSS {r['rss_mib']:.0f} MiB", flush=True)
    print(f"peak RSS ratio 16384² / 4096²: {rss[16384] / rss[4096]:.2f} (goal: <= 1.20)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small scans, 1 repeat")
    ap.add_argument("--memory-check", action="store_true", help="16384² vs 4096² peak RSS")
    ap.add_argument("--gpu", action="store_true", help="U-Net pipeline vs bare model on CUDA")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=None, help="only these methods (skips scaling and U-Net)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="sem_bench_") as tmp:  # outside the repository
        tmp = Path(tmp)
        if args.gpu:
            bench_unet_gpu()
        elif args.memory_check:
            memory_check(tmp)
        else:
            bench_methods(tmp, repeats, args.quick, args.methods)
            if not args.methods:
                bench_scaling(tmp, repeats)
                bench_unet_cpu(max(repeats, 3))


if __name__ == "__main__":
    main()
