"""1 vs 2 Dask worker *processes* (real ``dask scheduler`` + ``dask worker`` on loopback) for ``sem-denoise denoise``.

    python bench/dask_scaling.py                       # nlm on a 2048² scan, chunk 256, 3 repeats
    python bench/dask_scaling.py --method tv --side 1024 --repeats 1

Each configuration starts its own cluster (:func:`sem_core.dask_cluster.local_dask_cluster`, ``--nthreads
1`` per process), runs ``sem-denoise denoise SCAN OUT --method M --scheduler tcp://…`` ``--repeats`` times
and quotes the median of the time the CLI prints (the ``denoise_zarr`` wall time: blocks, writes,
pyramid; start-up excluded). The output of the first run of each configuration is compared byte for
byte with a threaded run. The load average before and after is printed: on a shared machine a
speed-up below the goal can be the neighbours'.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.denoise_scan import METHODS, write_synthetic_scan  # noqa: E402
from sem_core.dask_cluster import local_dask_cluster  # noqa: E402


def run_cli(scan: Path, out: Path, method: str, chunk: int, scheduler: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    sets = [a for k, v in METHODS[method][0].items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "sem_cli.main", "denoise", str(scan), str(out), "--method", method, *sets,
           "--chunk", str(chunk), "--scheduler", scheduler, "--calibration", "fixed", "--no-resume"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)}:\n{res.stdout[-1500:]}\n{res.stderr[-1500:]}")
    return float(re.search(r"in ([0-9.]+) s", res.stdout.replace("\n", " ")).group(1))


def levels(path: Path) -> list[np.ndarray]:
    g = zarr.open_group(path, mode="r")
    return [g[d["path"]][...] for d in g.attrs["ome"]["multiscales"][0]["datasets"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="nlm", choices=sorted(METHODS))
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="sem_dask_scaling_") as tmp:
        tmp = Path(tmp)
        scan = tmp / "scan.zarr"
        write_synthetic_scan(scan, args.side)
        ref = tmp / "threads.ome.zarr"
        t_threads = run_cli(scan, ref, args.method, args.chunk, "threads")
        print(f"{args.method} on {args.side}², chunk {args.chunk}: threads scheduler {t_threads:.1f} s", flush=True)
        med = {}
        for n in args.workers:
            with local_dask_cluster(n, threads=1, env={"PYTHONPATH": str(ROOT)}) as addr:
                times = []
                for i in range(args.repeats):
                    out = tmp / f"cluster_{n}.ome.zarr"
                    times.append(run_cli(scan, out, args.method, args.chunk, addr))
                    if i == 0:
                        same = all(np.array_equal(a, b) for a, b in zip(levels(ref), levels(out), strict=True))
                med[n] = statistics.median(times)
                print(f"{n} worker process(es): median {med[n]:.1f} s ({args.side**2 / 1e6 / med[n]:.3f} MPix/s), "
                      f"runs {', '.join(f'{t:.1f}' for t in times)} s; byte-identical to threads: {same}",
                      flush=True)
        if 1 in med and 2 in med:
            print(f"speed-up 2 vs 1 worker processes: {med[1] / med[2]:.2f}x (goal >= 1.8 on an idle 2-core machine)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
