"""Small but real pipeline and batch outputs for the review-service tests, written by the project's own code.

``make_pipeline_outputs`` runs ``sem-denoise evaluate`` and ``sem-denoise report`` (in-process) on a 3-image wafer
store and writes a 2-level synthetic scan with a clean layer and a denoised output; ``make_batch_output`` writes
one published batch folder as the batch flow lays it out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
import zarr

from sem_core.io.ome_zarr import build_pyramid, create_multiscale, write_level0_block
from sem_core.provenance import make_provenance


def _write_wafers(path: Path) -> None:
    rng = np.random.default_rng(2)
    n, size = 3, 96
    clean = np.full((n, size, size), 60, np.uint8)
    clean[:, :, 4:14] = clean[:, :, 40:50] = 160
    mask = np.zeros_like(clean)
    clean[:, 20:25, 18:23], mask[:, 20:25, 18:23] = 230, 4
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    g = zarr.open_group(path, mode="w", zarr_format=3)
    for name, arr in (("noisy", noisy), ("clean", clean), ("mask", mask)):
        g.create_array(name, data=arr, chunks=(1, size, size))
    g.attrs.update({"dataset": "wafers", "bit_depth": 8, "complete": True, "pixel_size_nm": 4.0,
                    "split": {"train": [0], "val": [], "test": [1, 2]}, "image_ids": ["w/a", "w b", "w_c"]})
    pd.DataFrame({"image": [0, 1, 2], "defect_id": [0, 0, 0], "type": ["particle"] * 3, "type_code": [4] * 3,
                  "bbox_r0": [20] * 3, "bbox_c0": [18] * 3, "bbox_r1": [25] * 3, "bbox_c1": [23] * 3,
                  "size_px": [25] * 3}).astype({"type_code": "uint8"}).to_parquet(path / "defects.parquet")


def write_scan(path: Path, *, size: int, chunk: int, seed: int, levels: int = 3, clean: bool = True) -> np.ndarray:
    """An OME-Zarr scan (noisy root, optional ``clean`` component); returns level 0."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size, size), dtype=np.uint8)
    group = create_multiscale(path, shape=(size, size), dtype=np.uint8, chunks=(chunk, chunk), n_levels=levels,
                              pixel_size_nm=4.0, name="noisy")
    write_level0_block(group, img, row=0, col=0)
    build_pyramid(group, method="mean")
    if clean:
        cg = create_multiscale(path, shape=(size, size), dtype=np.uint8, chunks=(chunk, chunk), n_levels=levels,
                               pixel_size_nm=4.0, name="clean", component="clean")
        write_level0_block(cg, (img // 2).astype(np.uint8), row=0, col=0)
        build_pyramid(cg, method="mean")
    return img


def make_pipeline_outputs(root: Path, *, scan_size: int = 1024, scan_chunk: int = 256) -> Path:
    """Write params.yaml + evaluated outputs under ``root``; returns the params file."""
    from typer.testing import CliRunner

    from sem_cli.main import app

    root.mkdir(parents=True, exist_ok=True)
    _write_wafers(root / "wafers.zarr")
    params = {"paths": {"tin_balls_zarr": str(root / "none.zarr"), "wafers_zarr": str(root / "wafers.zarr"),
                        "reports_dir": str(root / "reports"), "scans_dir": str(root / "scans"),
                        "processed_dir": str(root / "processed"), "outputs_dir": str(root / "outputs"),
                        "inbox_dir": str(root / "inbox")},
              "evaluate": {"methods": ["gaussian"], "max_images": 2, "panels_per_dataset": 1, "doses": []}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    res = CliRunner().invoke(app, ["evaluate", "--no-dose", "--params", str(root / "params.yaml")])
    assert res.exit_code == 0, res.output
    # The report stage's output is a self-contained HTML file; a small one stands in (the registration copies it).
    (root / "reports" / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>sem-denoise report</title></head>"
        "<body><h1>method comparison</h1><p>gaussian vs noisy</p></body></html>")
    img = write_scan(root / "scans" / "wafer_scan.ome.zarr", size=scan_size, chunk=scan_chunk, seed=3)
    out = create_multiscale(root / "processed" / "wafer_scan.gaussian.ome.zarr", shape=img.shape, dtype=np.uint8,
                            chunks=(scan_chunk, scan_chunk), n_levels=3, pixel_size_nm=4.0, name="gaussian")
    write_level0_block(out, (255 - img).astype(np.uint8), row=0, col=0)
    build_pyramid(out, method="mean")
    return root / "params.yaml"


def make_batch_output(root: Path, batch: str = "batch-01") -> Path:
    """One published batch output (``outputs/<batch>/``) with its input still in ``inbox/<batch>/``."""
    from PIL import Image

    inbox, out = root / "inbox" / batch, root / "outputs" / batch
    inbox.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    rows = []
    for k in range(2):
        img = rng.integers(0, 256, (160, 200), dtype=np.uint8)
        Image.fromarray(img).save(inbox / f"item{k}.png")
        g = create_multiscale(out / f"item{k}.median.ome.zarr", shape=img.shape, dtype=np.uint8, n_levels=1,
                              name="median")
        write_level0_block(g, img, row=0, col=0)
        rows.append({"item": f"item{k}.png", "method": "median", "output": f"item{k}.median.ome.zarr", "height": 160,
                     "width": 200, "sigma_in": 0.1, "sigma_out": 0.05, "mean_abs_change": 0.02, "seconds": 0.5})
    pd.DataFrame(rows).to_csv(out / "metrics.csv", index=False)
    (out / "errors.json").write_text("[]")
    prov = make_provenance(params={"median": {"size": 3}}, inputs_hash="c0ffee" * 4,
                           extra={"stage": "process_batches", "batch": batch})
    (out / "provenance.json").write_text(json.dumps(prov))
    (out / "_SUCCESS").write_text(json.dumps({"content_hash": "c0ffee"}))
    return out
