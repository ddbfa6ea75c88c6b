"""Load test of the review service from a second process on loopback: requests/s and p50/p99 latency of the tile and
run-list endpoints at 1, 8 and 32 concurrent clients.

Usage::

    python bench/service_load.py                 # own stack in a temp dir: PostgreSQL + SeaweedFS + uvicorn
    python bench/service_load.py --quick         # fewer requests
    python bench/service_load.py --url http://127.0.0.1:8765 --token "$(cat .serve/admin.token)" --run RUN_ID

Without ``--url`` it starts the whole stack itself (``sem_review.local.up``: uvicorn in its own process, 1 worker),
registers a 4096² scan with two layers (1024² chunks, 4 levels, like ``make run``'s scan) and stops everything by
PID at the end. Each concurrency level sends a fixed number of requests (bounded loop) with an ``httpx`` async
client from this process. Tile requests pick random (layer, level, row, col) tiles of 256²; the "cold" rows run
against a server started with its tile and chunk caches off (every tile reads its 1024² chunk from S3, decodes it
and encodes a PNG), the "warm" rows with the default caches after one pass over all tiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def _load(url: str, token: str, paths: list[str], *, clients: int, n_requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = list(paths[:n_requests])
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=60) as client:
        async def worker() -> None:
            nonlocal errors
            while queue:
                path = queue.pop()
                t0 = time.perf_counter()
                try:
                    resp = await client.get(path)
                    errors += resp.status_code != 200
                except httpx.TransportError:  # counted, not fatal: the figure says how many
                    errors += 1
                latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(lat), "errors": errors, "rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1)}


def _tile_paths(image: dict, rng: random.Random, n: int) -> list[str]:
    layers = ["noisy", "clean", *image["methods"]] if image["has_clean"] else ["noisy", *image["methods"]]
    out = []
    for _ in range(n):
        level = rng.randrange(image["levels"])
        tiles = max(1, (image["height"] >> level) // 256)
        out.append(f"/api/images/{image['id']}/tile?method={rng.choice(layers)}&level={level}"
                   f"&row={rng.randrange(tiles)}&col={rng.randrange(tiles)}&size=256")
    return out


def _all_tiles(image: dict) -> list[str]:
    layers = ["noisy", "clean", *image["methods"]] if image["has_clean"] else ["noisy", *image["methods"]]
    out = []
    for level in range(image["levels"]):
        tiles = max(1, (image["height"] >> level) // 256)
        out += [f"/api/images/{image['id']}/tile?method={m}&level={level}&row={r}&col={c}&size=256"
                for m in layers for r in range(tiles) for c in range(tiles)]
    return out


def run_levels(url: str, token: str, run_id: str, *, counts: dict[int, int], seed: int, label: str) -> list[dict]:
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        images = c.get(f"/api/runs/{run_id}/images").json()["images"]
    scan = max(images, key=lambda i: i["height"] * i["width"])
    rows = []
    if label == "warm":
        asyncio.run(_load(url, token, _all_tiles(scan), clients=8, n_requests=10**6))
    for clients, n in counts.items():
        rng = random.Random(seed + clients)
        tiles = asyncio.run(_load(url, token, _tile_paths(scan, rng, n), clients=clients, n_requests=n))
        rows.append({"endpoint": f"tile ({label})", **tiles})
        print(json.dumps(rows[-1]), flush=True)
    if label == "warm":
        for clients, n in counts.items():
            runs = asyncio.run(_load(url, token, ["/api/runs?limit=50"] * n, clients=clients, n_requests=n))
            rows.append({"endpoint": "runs list", **runs})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _own_stack(workdir: Path, *, tile_cache: int, chunk_cache_mb: float):
    """Start the stack with the given cache sizes (data kept between starts)."""
    from sem_review.local import up

    os.environ["SEM_REVIEW_TILE_CACHE_SIZE"] = str(tile_cache)
    os.environ["SEM_REVIEW_CHUNK_CACHE_MB"] = str(chunk_cache_mb)
    t0 = time.perf_counter()
    info = up(workdir / "stack", port=0)
    healthy_s = time.perf_counter() - t0
    token = Path(info["token_file"]).read_text().strip()
    return info["url"], token, healthy_s


def _register_scan(url: str, token: str, data: Path) -> str:
    from sem_review.client import ServiceClient, register_bundle
    from sem_review.collect import collect_pipeline
    from tests.service_data import make_pipeline_outputs, write_scan

    make_pipeline_outputs(data, scan_size=4096, scan_chunk=1024)
    shutil.rmtree(data / "scans" / "wafer_scan.ome.zarr")
    img = write_scan(data / "scans" / "wafer_scan.ome.zarr", size=4096, chunk=1024, seed=3, levels=4)
    shutil.rmtree(data / "processed")
    from sem_core.io.ome_zarr import build_pyramid, create_multiscale, write_level0_block

    out = create_multiscale(data / "processed" / "wafer_scan.gaussian.ome.zarr", shape=img.shape, dtype=np.uint8,
                            chunks=(1024, 1024), n_levels=4, name="gaussian")
    write_level0_block(out, (255 - img).astype(np.uint8), row=0, col=0)
    build_pyramid(out, method="mean")
    bundle = collect_pipeline(metrics_dir=data / "reports" / "metrics", report=data / "reports" / "index.html",
                              datasets={"wafers": data / "wafers.zarr"}, scans_dir=data / "scans",
                              processed_dir=data / "processed")
    try:
        with ServiceClient(url, token) as client:
            return register_bundle(client, bundle)["run_id"]
    finally:
        bundle.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--run", help="run id with a scan (with --url)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = {1: 50, 8: 200, 32: 400} if args.quick else {1: 150, 8: 600, 32: 1200}
    results: dict = {"counts": counts}
    if args.url:
        rows = run_levels(args.url, args.token, args.run, counts=counts, seed=args.seed, label="warm")
    else:
        from sem_review.local import down

        work = Path(tempfile.mkdtemp(prefix="sem-bench-service-"))
        work.chmod(0o755)
        try:
            url, token, healthy_s = _own_stack(work, tile_cache=0, chunk_cache_mb=0)
            results["seconds_to_healthy"] = round(healthy_s, 2)
            t0 = time.perf_counter()
            run_id = _register_scan(url, token, work / "data")
            results["register_seconds"] = round(time.perf_counter() - t0, 2)
            rows = run_levels(url, token, run_id, counts=counts, seed=args.seed, label="cold")
            down(work / "stack")
            url, token, _ = _own_stack(work, tile_cache=4096, chunk_cache_mb=256)
            rows += run_levels(url, token, run_id, counts=counts, seed=args.seed, label="warm")
        finally:
            down(work / "stack")
            shutil.rmtree(work, ignore_errors=True)
    results["rows"] = rows
    print(f"{'endpoint':<14} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r['endpoint']:<14} {r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8} "
              f"{r['p50_ms']:>8} {r['p99_ms']:>8}")
    print(json.dumps({k: v for k, v in results.items() if k != "rows"}))


if __name__ == "__main__":
    main()
