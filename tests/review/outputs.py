"""Small synthetic pipeline outputs for the review-client tests (and `sem-denoise review` demos).

``make_review_outputs(root)`` writes, under ``root``, what the pipeline writes in a checkout:
``reports/metrics/`` (per-image, summary and defect tables, panels.npz, provenance.json: through the
real writers), an earlier run ``reports/previous/`` (PSNR 1 dB lower) and ``data/interim/scans/<scan>.ome.zarr`` with a denoised ``data/processed/<scan>_gaussian.ome.zarr``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from sem_core.evaluate import summarize_metrics, write_metrics
from sem_core.io.ome_zarr import build_pyramid, create_multiscale, write_level0_block
from sem_core.report import Panel, save_panels
from sem_core.schemas.defects import make_defects_table
from sem_core.schemas.metrics import DEFECT_METRICS_SCHEMA, METRIC_COLUMNS, METRICS_SCHEMA

METHODS = [("noisy_input", "classical"), ("gaussian", "classical"), ("unet", "full")]
LABELS = ["noisy_input", "gaussian", "unet-full"]
SCAN = "wafer_scan"


def _clean_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lines = ((xx // 8) % 2).astype(np.float32) * 0.5 + 0.2
    return np.clip(lines + 0.05 * rng.standard_normal(1)[0], 0, 1).astype(np.float32)


def make_review_outputs(root: Path, *, seed: int = 0, n_images: int = 4, size: int = 96,
                        scan_size: int = 512, scan_levels: int = 3) -> dict[str, object]:
    """Write the outputs; returns the per-image table and the expected image ids."""
    rng = np.random.default_rng(seed)
    rows, defect_rows, panels = [], [], []
    boxes = {i: [(10 + 7 * i, 20, 18 + 7 * i, 30), (50, 40 + 5 * i, 60, 52 + 5 * i)] for i in range(n_images)}
    for i in range(n_images):
        clean = _clean_image(rng, (size, size))
        noisy = np.clip(clean + 0.15 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
        outs = {"noisy_input": noisy, "gaussian": ndimage.gaussian_filter(noisy, 1.0),
                "unet-full": (0.8 * clean + 0.2 * noisy).astype(np.float32)}
        for (method, exp), label in zip(METHODS, LABELS):
            mse = float(np.mean((outs[label] - clean) ** 2))
            row = {c: np.nan for c in METRIC_COLUMNS}
            row.update(dataset="wafers", split="test", method=method, experiment=exp, image_id=f"w{i:03d}",
                       image_index=i, psnr=10 * np.log10(1.0 / mse), ssim=float(1.0 - 4 * mse), n_defects=2,
                       defect_retention=0.9 + 0.01 * i, seconds=0.01, mpix_per_s=1.0)
            rows.append(row)
            for d in range(2):
                defect_rows.append(dict(dataset="wafers", split="test", method=method, experiment=exp,
                                        image_id=f"w{i:03d}", image_index=i, defect_id=d, type=["bridge", "particle"][d],
                                        contrast_clean=0.3, contrast_output=0.3 * (0.8 + 0.05 * d),
                                        contrast_retention=0.8 + 0.05 * d + 0.01 * i, psnr=30.0, ssim=0.9))
        if i < 2:  # the report keeps pixels of a few images only
            panels.append(Panel(dataset="wafers", image_id=f"w{i:03d}", noisy=noisy, clean=clean,
                                outputs={k: v for k, v in outs.items() if k != "noisy_input"}, boxes=boxes[i]))
    table = METRICS_SCHEMA.validate(pd.DataFrame(rows))
    metrics_dir = root / "reports" / "metrics"
    write_metrics(metrics_dir, table=table, summary=summarize_metrics(table),
                  provenance={"created": "2026-12-01T10:00:00+00:00", "code_version": "test", "params_hash": "p0"},
                  defect_table=DEFECT_METRICS_SCHEMA.validate(pd.DataFrame(defect_rows)))
    save_panels(metrics_dir / "panels.npz", panels)
    earlier = table.assign(psnr=table["psnr"] - 1.0)  # an earlier run, 1 dB worse everywhere: deltas of +1 dB
    write_metrics(root / "reports" / "previous", table=earlier, summary=summarize_metrics(earlier),
                  provenance={"created": "2026-11-30T10:00:00+00:00", "code_version": "old", "params_hash": "p1"})

    scan = root / "data" / "interim" / "scans" / f"{SCAN}.ome.zarr"
    out = root / "data" / "processed" / f"{SCAN}_gaussian.ome.zarr"
    clean = (255 * _clean_image(rng, (scan_size, scan_size))).astype(np.uint8)
    noisy = np.clip(clean + 30 * rng.standard_normal(clean.shape), 0, 255).astype(np.uint8)
    den = np.clip(ndimage.gaussian_filter(noisy.astype(np.float32), 1.0), 0, 255).astype(np.uint8)
    for path, comp, img in ((scan, "", noisy), (scan, "clean", clean), (out, "", den)):
        g = create_multiscale(path, shape=clean.shape, dtype="uint8", chunks=(128, 128), n_levels=scan_levels,
                              component=comp)
        write_level0_block(g, img, row=0, col=0)
        build_pyramid(g)
    make_defects_table([{"defect_id": 0, "type": "bridge", "bbox_r0": 100, "bbox_c0": 100, "bbox_r1": 120,
                         "bbox_c1": 130, "size_px": 50},
                        {"defect_id": 1, "type": "break", "bbox_r0": 300, "bbox_c0": 200, "bbox_r1": 310,
                         "bbox_c1": 215, "size_px": 40}]).to_parquet(scan / "defects.parquet", index=False)
    return {"table": table, "metrics_dir": metrics_dir, "scan": scan, "processed": out,
            "images": [f"wafers/w{i:03d}" for i in range(n_images)]}


if __name__ == "__main__":  # python -m tests.review.outputs DIR
    import sys

    print(make_review_outputs(Path(sys.argv[1]))["images"])
