"""U-Net: bare network vs the CLI path on the same scan, plus the classical methods' MPix/s (printed figures).

    python bench/unet_ratio.py                          # 4096² scan, release + default model, CPU, 3 repeats
    python bench/unet_ratio.py --side 2048 --repeats 1 --before /tmp/old_tree   # also the CLI of another tree
    python bench/unet_ratio.py --classical              # per-method MPix/s of the classical methods, same scan
    python bench/unet_ratio.py --classical --write reports/throughput.json   # ... into the report's MPix/s column
    python bench/unet_ratio.py --models default --write reports/throughput.json  # the U-Net (CLI path) too
    python bench/unet_ratio.py --rss 4096 16384 --models tiny       # peak RSS of the CLI path vs scan side
    python bench/unet_ratio.py --side 2048 --strips                 # also the bare row-strip forward (CPU)
    python bench/unet_ratio.py --device cuda [--compile]            # where a GPU exists (eager / compiled)

*Bare*: the checkpoint loaded with :func:`sem_core.checkpoint.load_model`, ``channels_last``,
``inference_mode``, run on the scan's 1024² tiles one at a time (no context, seams and all), in
its own process with ``--threads`` torch threads; only the forward passes are timed. *Bare strips*
(``--strips``, CPU): :func:`~sem_core.models.strips.forward_in_strips` with ``params.yaml``'s strip size on the whole
scan, the function the CLI runs on a one-block scan, so the CLI's ratio to it is what the pipeline adds. *CLI*:
``sem-denoise denoise SCAN OUT --method unet --model M`` in its own process with the same threads
(``OMP_NUM_THREADS``); its time is the ``denoise_zarr`` wall time it prints (start-up, model
load and imports excluded), which includes reading, the halo, writing and the pyramid. Runs
alternate bare/CLI; medians of ``--repeats`` are quoted and the ratio is of medians. Peak RSS is
each child's own (``wait4``). The machine may be shared: only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.denoise_scan import METHODS, write_synthetic_scan  # noqa: E402

MODELS = {"release": ROOT / "models/release/unet_tin_balls.safetensors",
          "default": ROOT / "models/charbonnier_tin_balls/best.ckpt",
          "tiny": None}  # a random base-4, depth-4 U-Net (the release model's halo and blocks, 1/64 of its FLOPs)


def model_path(name: str, tmp: Path) -> Path:
    """The checkpoint of ``name``; ``tiny`` is written to ``tmp`` on first use."""
    if MODELS[name] is not None:
        return MODELS[name]
    path = tmp / "tiny.safetensors"
    if not path.is_file():
        import torch

        from sem_core.checkpoint import export_release
        from sem_core.models.unet import UNet

        torch.manual_seed(0)
        export_release(UNet(base_channels=4, depth=4), path, {"name": "tiny"})
    return path


def _bare(spec: dict) -> dict:
    """Child: time the bare network over the scan's tiles."""
    import torch
    import zarr

    from sem_core.checkpoint import load_model
    from sem_core.denoise.base import to_unit_float
    from sem_core.denoise.throughput import mpix_per_s

    torch.set_num_threads(spec["threads"])
    dev = torch.device(spec["device"])
    net, _ = load_model(spec["model"], device=dev)
    net = net.eval().to(memory_format=torch.channels_last)
    if spec["compile"]:
        net = torch.compile(net, dynamic=False)
    img = to_unit_float(zarr.open_array(spec["scan"], mode="r")[...])
    tile = spec["tile"]
    cuda = dev.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    if spec.get("strips"):  # the CLI's own CPU function on the whole scan (one block): what the pipeline adds
        from sem_core.config import load_params
        from sem_core.models.strips import forward_in_strips

        strip_px = load_params(ROOT / "params.yaml").denoise.unet.cpu_strip_px
        whole = torch.from_numpy(img)[None, None].contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            forward_in_strips(net, whole[..., :tile, :tile].contiguous(memory_format=torch.channels_last),
                              strip_px=strip_px)  # warm-up
            t0 = time.perf_counter()
            forward_in_strips(net, whole, strip_px=strip_px)
            seconds = time.perf_counter() - t0
        return {"seconds": seconds, "mpix_s": mpix_per_s(img.size, seconds), "tflops": float("nan")}
    tiles = [torch.from_numpy(np.ascontiguousarray(img[r : r + tile, c : c + tile]))[None, None]
             for r in range(0, img.shape[0], tile) for c in range(0, img.shape[1], tile)]
    seconds = 0.0
    with torch.inference_mode(), amp:
        net(tiles[0].to(dev).contiguous(memory_format=torch.channels_last))  # warm-up (and compile)
        for t in tiles:
            x = t.to(dev).contiguous(memory_format=torch.channels_last)
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(x)
            if cuda:
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
    from bench.denoise_scan import count_macs

    plain, _ = load_model(spec["model"], device="cpu")
    macs = count_macs(plain, (tile, tile)) * len(tiles)  # multiply-accumulates of all the timed passes
    return {"seconds": seconds, "mpix_s": mpix_per_s(img.size, seconds), "tflops": 2 * macs / seconds / 1e12}


def run_child(cmd: list[str], *, threads: int, pythonpath: Path = ROOT) -> tuple[str, float]:
    """Run ``cmd`` with ``threads`` OpenMP threads; return stdout and its peak RSS (MiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(pythonpath)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=pythonpath, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-3000:]}")
    return text, usage.ru_maxrss / 1024


def bare(model: Path, scan: Path, args, *, strips: bool = False) -> tuple[float, float]:
    spec = {"model": str(model), "scan": str(scan), "threads": args.threads, "device": args.device,
            "compile": args.compile, "tile": 1024, "strips": strips}
    text, rss = run_child([sys.executable, __file__, "--bare-child", json.dumps(spec)], threads=args.threads)
    res = json.loads(text.strip().splitlines()[-1])
    peak = f" = {res['tflops'] / args.peak_tflops:.2f} of {args.peak_tflops:g}" if args.device.startswith("cuda") else ""
    if not strips:
        print(f"  bare: {res['tflops']:.3f} TFLOP/s{peak}", flush=True)
    return res["seconds"], rss


def cli(model: Path, scan: Path, out: Path, args, *, tree: Path = ROOT, extra: list[str] = ()) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    sets = ["--set", f"device={args.device}"] + (["--set", "compile=true"] if args.compile else [])
    cmd = [sys.executable, "-m", "sem_cli.main", "denoise", str(scan), str(out), "--method", "unet",
           "--model", str(model), "--no-resume", *sets, *extra]
    text, rss = run_child(cmd, threads=args.threads, pythonpath=tree)
    m = re.search(r"in ([0-9.]+) s", text.replace("\n", " "))
    if not m:
        raise RuntimeError(f"no time in the CLI output: {text[-500:]}")
    shutil.rmtree(out, ignore_errors=True)
    return float(m.group(1)), rss


def _record(args, mpix: dict[str, float]) -> None:
    """With ``--write FILE``: merge these MPix/s into the report's throughput file."""
    if args.write and mpix:
        from sem_core.denoise.throughput import write_throughput

        setup = {"scan_px": args.side, "threads": args.threads, "device": args.device, "repeats": args.repeats,
                 "bench": "bench/unet_ratio.py", "cpu_count": os.cpu_count()}
        print(f"wrote {write_throughput(args.write, mpix, setup=setup)}: {mpix}")


def bench_ratio(tmp: Path, scan: Path, args) -> None:
    from sem_core.denoise.throughput import mpix_per_s

    mpix = args.side**2
    print(f"== U-Net bare vs CLI on a {args.side}² uint8 scan, {args.device}, {args.threads} threads, "
          f"{'compiled' if args.compile else 'eager'}, median of {args.repeats} ==")
    for name in args.models:
        model = model_path(name, tmp)
        if not model.is_file():
            print(f"{name}: {model} missing (train: `dvc repro train` / release: see README); skipped")
            continue
        rows: dict[str, list[tuple[float, float]]] = {"bare": [], "cli": []}
        if args.strips:
            rows["bare strips"] = []
        if args.before:
            rows["cli before"] = []
        for _ in range(args.repeats):  # alternate, so that load drifts hit every variant alike
            rows["bare"].append(bare(model, scan, args))
            if args.strips:
                rows["bare strips"].append(bare(model, scan, args, strips=True))
            rows["cli"].append(cli(model, scan, tmp / "o.ome.zarr", args))
            if args.before:
                rows["cli before"].append(cli(model, scan, tmp / "o.ome.zarr", args, tree=args.before))
        med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
        if name == "default":  # the pipeline's U-Net: the report's row
            _record(args, {"unet": mpix_per_s(mpix, med["cli"])})
        for k, v in rows.items():
            print(f"{name:8s} {k:11s} {mpix_per_s(mpix, med[k]):7.3f} MPix/s  {med[k]:7.1f} s  "
                  f"peak RSS {max(r for _, r in v):6.0f} MiB  ratio to bare {med['bare'] / med[k]:.3f}  "
                  + (f"to bare strips {med['bare strips'] / med[k]:.3f}  " if "bare strips" in med else "") +
                  f"(runs: {', '.join(f'{s:.1f}' for s, _ in v)} s)", flush=True)


def bench_rss(tmp: Path, args) -> None:
    print(f"== peak RSS of the U-Net CLI path ({args.device}, {args.threads} threads) ==")
    for name in args.models:
        rss = {}
        for side in args.rss:
            scan = tmp / f"rss_{side}.zarr"
            write_synthetic_scan(scan, side)
            sec, rss[side] = cli(model_path(name, tmp), scan, tmp / "o.ome.zarr", args)
            shutil.rmtree(scan)
            print(f"{name} {side}²: {sec:.1f} s = {side * side / 1e6 / sec:.2f} MPix/s end to end (Zarr -> "
                  f"{args.device} -> OME-Zarr), peak RSS {rss[side]:.0f} MiB", flush=True)
        sides = sorted(rss)
        print(f"{name}: peak RSS {sides[-1]}² / {sides[0]}² = {rss[sides[-1]] / rss[sides[0]]:.2f} (goal <= 1.20)")


def _classical_child(spec: dict) -> dict:
    import torch

    from sem_core.denoise.base import build_denoiser
    from sem_core.denoise.throughput import mpix_per_s, time_call
    from sem_core.denoise_zarr import denoise_zarr

    torch.set_num_threads(1)
    d = build_denoiser(spec["method"], **spec["params"])
    with tempfile.TemporaryDirectory() as tmp:
        run, seconds = time_call(lambda: denoise_zarr(spec["scan"], Path(tmp) / "o.ome.zarr", denoiser=d,
                                                      chunks=spec["chunk"], num_workers=spec["threads"],
                                                      progress=False, resume=False))
    return {"seconds": seconds, "mpix_s": mpix_per_s(spec["pixels"], seconds)}


def bench_classical(scan: Path, args) -> None:
    print(f"== classical methods on the same {args.side}² scan: denoise_zarr, threads scheduler, {args.threads} "
          f"workers, median of {args.repeats} (MPix/s by sem_core.denoise.throughput.mpix_per_s) ==")
    found = {}
    for method, (params, _, chunk) in METHODS.items():
        try:
            res = []
            for _ in range(args.repeats):
                spec = {"method": method, "params": params, "scan": str(scan), "chunk": chunk,
                        "threads": args.threads, "pixels": args.side**2}
                text, rss = run_child([sys.executable, __file__, "--classical-child", json.dumps(spec)],
                                      threads=1)
                res.append((json.loads(text.strip().splitlines()[-1]), rss))
        except RuntimeError as exc:
            print(f"{method:10s} failed: {str(exc).splitlines()[-1]}")
            continue
        sec = statistics.median(r["seconds"] for r, _ in res)
        found[method] = args.side**2 / 1e6 / sec
        print(f"{method:10s} {args.side**2 / 1e6 / sec:8.3f} MPix/s  {sec:7.1f} s  peak RSS "
              f"{max(r for _, r in res):6.0f} MiB", flush=True)
    _record(args, found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["release", "default"], choices=sorted(MODELS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile both the bare model and the CLI's")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H200: 989)")
    ap.add_argument("--strips", action="store_true", help="CPU: also the bare row-strip forward (the CLI's own "
                    "function) on the whole scan, so the ratio to it is what the pipeline itself adds")
    ap.add_argument("--before", type=Path, help="another source tree (e.g. a `git archive` of main): its CLI too")
    ap.add_argument("--classical", action="store_true", help="per-method MPix/s of the classical methods")
    ap.add_argument("--write", type=Path, help="merge the MPix/s into this throughput file (the report's column)")
    ap.add_argument("--rss", type=int, nargs="+", help="scan sides for the peak-RSS check of the CLI path")
    ap.add_argument("--bare-child", help=argparse.SUPPRESS)
    ap.add_argument("--classical-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        print(json.dumps(_bare(json.loads(args.bare_child))))
        return
    if args.classical_child:
        print(json.dumps(_classical_child(json.loads(args.classical_child))))
        return
    if args.strips and args.device != "cpu":
        ap.error("--strips is the CPU path (row strips); drop it with --device cuda")
    with tempfile.TemporaryDirectory(prefix="sem_unet_ratio_") as tmp:
        tmp = Path(tmp)
        if args.rss:
            bench_rss(tmp, args)
            return
        scan = tmp / f"scan_{args.side}.zarr"
        write_synthetic_scan(scan, args.side)
        if args.classical:
            bench_classical(scan, args)
        else:
            bench_ratio(tmp, scan, args)


if __name__ == "__main__":
    main()
