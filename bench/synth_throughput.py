"""Synthesis throughput and memory: wafer pairs (MPix/s), scans (MPix/s) and the peak RSS of a scan.

Usage::

    nice python bench/synth_throughput.py            # wafers 16 x 512², scans 4096² and 16384²
    python bench/synth_throughput.py --quick         # wafers 8 x 256², scans 1024² and 2048²

Each scan runs in its own subprocess; its peak RSS is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``
read after that child alone has finished (a fresh parent per measurement), so the figures compare
memory at two sizes: bounded-memory synthesis keeps them close although the pixel count grows 16x.
Timings on a shared machine are noisy: the median of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_wafers(n: int, size: int, workers: int, repeat: int) -> dict:
    from sem_core.synth.dataset import synthesize_wafer_dataset

    times = []
    for k in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            synthesize_wafer_dataset(Path(d) / "w.zarr", n_images=n, shape=(size, size), seed=k, workers=workers)
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"what": f"wafers {n} x {size}²", "workers": workers, "median_s": med, "mpix_s": n * size * size / med / 1e6}


_CHILD = """
import json, resource, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from sem_core.synth.scan import synthesize_scan
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    synthesize_scan(Path(d) / "s.ome.zarr", size={size}, chunk={chunk}, seed=1, pattern="lines", workers={workers})
    dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt}}))
"""

_PARENT = """
import json, resource, subprocess, sys
out = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
if out.returncode:
    sys.exit(out.stderr)
res = json.loads(out.stdout.strip().splitlines()[-1])
res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(res))
"""


def bench_scan(size: int, chunk: int, workers: int) -> dict:
    """Run one scan synthesis in a child process (through a fresh parent that reads RUSAGE_CHILDREN)."""
    child = _CHILD.format(root=str(ROOT), size=size, chunk=chunk, workers=workers)
    out = subprocess.run([sys.executable, "-c", _PARENT, child], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"scan {size}² failed:\n{out.stderr}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # RUSAGE_CHILDREN is the largest single descendant (worker or main), not their sum.
    return {"what": f"scan {size}² (chunk {chunk})", "workers": workers, "median_s": res["seconds"],
            "mpix_s": size * size / res["seconds"] / 1e6, "peak_rss_mib": res["peak_rss_mib"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scan-sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"),
                    help="the two scan sizes compared (default 4096 16384; --quick 1024 2048)")
    ap.add_argument("--skip-wafers", action="store_true", help="only the scans")
    ap.add_argument("--skip-scans", action="store_true", help="only the wafer datasets")
    args = ap.parse_args()
    if args.quick:
        wafer_n, wafer_size, scans, chunk = 8, 256, (1024, 2048), 512
    else:
        wafer_n, wafer_size, scans, chunk = 16, 512, (4096, 16384), 1024
    scans = tuple(args.scan_sizes or scans)
    print(f"{'what':<28}{'workers':>8}{'seconds':>10}{'MPix/s':>9}{'peak RSS MiB':>14}", flush=True)
    jobs = []
    if not args.skip_wafers:
        jobs.append(lambda: bench_wafers(wafer_n, wafer_size, 1, args.repeat))
        if args.workers > 1:
            jobs.append(lambda: bench_wafers(wafer_n, wafer_size, args.workers, args.repeat))
    if not args.skip_scans:
        jobs += [lambda s=s: bench_scan(s, chunk, args.workers) for s in scans]
    rows = []
    for job in jobs:
        r = job()
        rows.append(r)
        rss = f"{r['peak_rss_mib']:.0f}" if "peak_rss_mib" in r else "-"
        print(f"{r['what']:<28}{r['workers']:>8}{r['median_s']:>10.2f}{r['mpix_s']:>9.3f}{rss:>14}", flush=True)
    if args.skip_scans:
        return
    big, small = rows[-1], rows[-2]
    print(f"peak RSS {scans[1]}² / {scans[0]}²: {big['peak_rss_mib'] / small['peak_rss_mib']:.2f}x "
          f"for {(scans[1] / scans[0]) ** 2:.0f}x the pixels")


if __name__ == "__main__":
    main()
