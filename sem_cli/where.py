"""Print where the pipeline's outputs are (the last line of `make run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from sem_core.config import load_params


def list_outputs(params_path: Path, profile: str | None = None) -> list[tuple[str, Path, bool]]:
    """Return ``(label, path, exists)`` for each product of the pipeline."""
    paths = load_params(params_path, profile=profile).paths
    items = [
        ("Tin-balls manifest", paths.tin_balls_manifest),
        ("Ingest report (bad files)", paths.tin_balls_ingest_report),
        ("Noise-fit report", paths.noise_fit_report),
        ("Tin-balls dataset (Zarr)", paths.tin_balls_zarr),
        ("Wafers dataset (Zarr)", paths.wafers_zarr),
        ("Wafer scans (OME-Zarr)", paths.scans_dir),
        ("Denoised outputs (OME-Zarr)", paths.processed_dir),
        ("Report", paths.reports_dir / "index.html"),
    ]
    return [(label, p, p.exists()) for label, p in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    console = Console(soft_wrap=True)
    console.print("[bold]sem-denoise outputs[/bold]")
    for label, path, exists in list_outputs(args.params, args.profile):
        status = "[green]ready[/green]" if exists else "[yellow]not built[/yellow]"
        console.print(f"  {label:<30} {path.resolve()}  {status}")


if __name__ == "__main__":
    main()
