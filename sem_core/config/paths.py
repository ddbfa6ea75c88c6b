"""File-system paths of the pipeline, defined once (dvc.yaml reads them with ``${paths.*}``)."""

from __future__ import annotations

from pathlib import Path

from .base import Section

__all__ = ["PathsConfig"]


class PathsConfig(Section):
    """Where every stage reads and writes, relative to the repository root."""

    tin_balls_source: Path = Path("../shared/data/tin_balls")
    """Real Tin-balls pairs (read-only; ``time/low`` noisy, ``time/high`` clean)."""
    tin_balls_manifest: Path = Path("data/interim/tin_balls/manifest.parquet")
    tin_balls_ingest_report: Path = Path("data/interim/tin_balls/ingest_report.json")
    noise_model: Path = Path("data/interim/noise_model.json")
    noise_fit_report: Path = Path("reports/noise_fit.json")
    tin_balls_zarr: Path = Path("data/interim/tin_balls.zarr")
    tin_balls_sim_zarr: Path = Path("data/interim/tin_balls_sim.zarr")
    """Simulated noise on the real train/val clean images (``sem-denoise synth tin-balls-sim``, sim2real)."""
    wafers_zarr: Path = Path("data/interim/wafers.zarr")
    scans_dir: Path = Path("data/interim/scans")
    processed_dir: Path = Path("data/processed")
    models_dir: Path = Path("models")
    release_model: Path = Path("models/release/unet_tin_balls.safetensors")
    reports_dir: Path = Path("reports")
    throughput: Path = Path("reports/throughput.json")
    """MPix/s per method measured by ``bench/unet_ratio.py --classical --write`` (committed; the report's column)."""
    inbox_dir: Path = Path("data/inbox")
    outputs_dir: Path = Path("data/outputs")
