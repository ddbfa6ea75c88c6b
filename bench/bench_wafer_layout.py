"""Time wafer-layout construction and 1024² window rendering for a large scan layout.

Usage: python bench/bench_wafer_layout.py [--size 16384] [--window 1024] [--quick]
Prints construction time, peak traced memory of construction, the median render time of a few
windows and the time to measure the global defect table, as wall and process-CPU seconds (on a
shared machine wall times are noisy; medians of few repeats).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from sem_core.synth.wafers import make_wafer_layout

CASES = {
    "lines 0°, 4 nm/px, pitch 15 px": dict(pattern="lines", pixel_size_nm=4.0, pitch_nm=60.0, cd_nm=30.0),
    "lines 30°, 4 nm/px, pitch 15 px": dict(pattern="lines", pixel_size_nm=4.0, pitch_nm=60.0, cd_nm=30.0,
                                            orientation_deg=30.0),
    "contacts, 6 nm/px, pitch 10 px": dict(pattern="contacts", pixel_size_nm=6.0, pitch_nm=60.0, cd_nm=30.0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--density", type=float, default=2.0, help="defects per µm²")
    ap.add_argument("--quick", action="store_true", help="one case, two windows")
    args = ap.parse_args()
    cases = list(CASES.items())[:1] if args.quick else list(CASES.items())
    n_win = 2 if args.quick else 4
    for name, kw in cases:
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        layout = make_wafer_layout(shape=(args.size, args.size), seed=1, defect_density_per_um2=args.density, **kw)
        build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        times, cpu = [], []
        step = (args.size - args.window) // max(1, n_win - 1)
        for i in range(n_win):
            a = i * step
            t0, c0 = time.perf_counter(), time.process_time()
            layout.render(slice(a, a + args.window), slice(args.size - args.window - a, args.size - a))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        table = layout.defects
        measure, measure_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{name}: {args.size}² layout built in {build:.2f} s wall / {build_cpu:.2f} s CPU, peak "
              f"{peak / 2**20:.1f} MiB, {len(layout.defect_list)} defects; render {args.window}² median "
              f"{statistics.median(times):.2f} s wall / {statistics.median(cpu):.2f} s CPU; global defect table "
              f"({len(table)} rows) {measure:.1f} s wall / {measure_cpu:.1f} s CPU", flush=True)


if __name__ == "__main__":
    main()
