"""``sem-denoise synth wafers|scan|tin-balls-sim``: synthetic wafer datasets, large OME-Zarr wafer scans, sim-to-real pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "synth_app"]

synth_app = typer.Typer(help="Synthetic data: wafer pair datasets and large wafer scans.", no_args_is_help=True)


def _imaging(cfg: Any) -> tuple[dict[str, Any], Any, str]:
    """Imaging kwargs from params.imaging, the fitted noise model if present, and the inputs hash."""
    from sem_core.provenance import hash_file, hash_params
    from sem_core.synth.dataset import imaging_kwargs
    from sem_core.synth.imaging import read_noise_model

    imaging = imaging_kwargs(cfg.imaging.model_dump())  # field names are simulate_pair's keywords
    nm_path = cfg.paths.noise_model
    if not nm_path.is_file():
        console.print(f"no noise model at {nm_path}: using the imaging section's noise")
        return imaging, None, hash_params({"noise_model": None})
    try:
        model = read_noise_model(nm_path)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] noise model {nm_path} is unreadable: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"noise model: {nm_path}")
    return imaging, model, hash_file(nm_path)


@synth_app.command("wafers")
def wafers_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Images (default: datasets.wafers.n_images).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output store (default: paths.wafers_zarr).")] = None,
) -> None:
    """Synthesise the wafer pair dataset (noisy, clean, defect mask, pattern, defects.parquet)."""
    from sem_core.io.zarr_store import open_dataset
    from sem_core.synth.dataset import synthesize_wafer_dataset

    cfg = read_params(params, profile)
    w = cfg.datasets.wafers
    n_images = n or w.n_images
    imaging, model, inputs_hash = _imaging(cfg)
    path = synthesize_wafer_dataset(
        out or cfg.paths.wafers_zarr, n_images=n_images, shape=w.shape, seed=cfg.seed, pattern=w.pattern,
        noise_model=model, imaging_params=imaging, specimen_ranges=cfg.specimen.wafers.sampling_kwargs(),
        layout_kwargs=cfg.specimen.wafers.level_kwargs(),
        split_fractions=w.split, images_per_chunk=w.images_per_chunk, workers=w.workers,
        params_for_provenance={"seed": cfg.seed, "datasets.wafers": w, "n": n_images, "imaging": cfg.imaging,
                               "specimen": cfg.specimen},
        inputs_hash=inputs_hash, progress=True,
    )
    ds = open_dataset(path)
    n_def = 0 if ds.defects is None else len(ds.defects)
    console.print(f"wafers: {len(ds)} pairs {ds.noisy.shape[1:]}, {n_def} defects -> {path}")


@synth_app.command("scan")
def scan_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output .ome.zarr (default: paths.scans_dir/<scan.name>.ome.zarr).")] = None,
    size: Annotated[int | None, typer.Option("--size", min=64, help="Scan side N (default: scan.size).")] = None,
    chunk: Annotated[int | None, typer.Option("--chunk", min=32, help="Chunk side (default: scan.chunk).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Seed (default: seed + scan.seed_offset).")] = None,
    pattern: Annotated[
        Literal["lines", "contacts"] | None, typer.Option("--pattern", help="Layout (default: scan.pattern).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Threads (default: scan.workers).")] = None,
) -> None:
    """Synthesise an N x N wafer scan chunk by chunk (noisy + pyramid, clean, defect labels, defects.parquet)."""
    from sem_core.synth.scan import synthesize_scan

    cfg = read_params(params, profile)
    s = cfg.scan
    chunk = chunk or s.chunk
    if s.halo >= chunk:
        err_console.print(f"[red]error:[/red] --chunk {chunk} must exceed scan.halo {s.halo}")
        raise typer.Exit(2)
    imaging, model, _ = _imaging(cfg)
    target = out or cfg.paths.scans_dir / f"{s.name}.ome.zarr"
    wafer = cfg.specimen.wafers
    layout_kwargs = {**wafer.level_kwargs(), "defect_density_per_um2": wafer.defect_density_per_um2}
    run = {"size": size or s.size, "chunk": chunk, "seed": seed if seed is not None else cfg.seed + s.seed_offset,
           "pattern": pattern or s.pattern, "workers": workers or s.workers}
    path = synthesize_scan(
        target, halo=s.halo, n_levels=s.n_levels, pixel_size_nm=s.pixel_size_nm,
        noise_model=model, imaging_params=imaging, layout_kwargs=layout_kwargs,
        params_for_provenance={"scan": s, "run": run, "imaging": cfg.imaging, "specimen": cfg.specimen},
        progress=True, **run,
    )
    console.print(f"scan: {run['size']}² ({run['pattern']}, seed {run['seed']}) -> {path}")


def tin_balls_sim_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    copies: Annotated[int, typer.Option("--copies", min=1, help="Noisy copies of each real train/val image.")] = 2,
    out: Annotated[Path | None, typer.Option("--out", help="Output store (default: paths.tin_balls_sim_zarr).")] = None,
) -> None:
    """Simulated noise (the fitted noise model) on the real Tin-balls train/val clean images (sim2real)."""
    from sem_core.io.zarr_store import DatasetError, open_dataset
    from sem_core.synth.imaging import read_noise_model
    from sem_core.synth.sim_pairs import synthesize_sim_pairs

    cfg = read_params(params, profile)
    real, nm_path = cfg.paths.tin_balls_zarr, cfg.paths.noise_model
    if not real.exists():
        err_console.print(f"[red]error:[/red] no real dataset at {real}: run `sem-denoise chunk` first")
        raise typer.Exit(1)
    if not nm_path.is_file():
        err_console.print(f"[red]error:[/red] no noise model at {nm_path}: run `sem-denoise noise fit` first")
        raise typer.Exit(1)
    try:
        model = read_noise_model(nm_path)
        path = synthesize_sim_pairs(
            real, out or cfg.paths.tin_balls_sim_zarr, noise_model=model, seed=cfg.seed, copies=copies,
            progress=True, params_for_provenance={"seed": cfg.seed, "copies": copies, "noise_model": model.to_dict()},
        )
    except (DatasetError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    ds = open_dataset(path)
    sizes = {k: len(v) for k, v in ds.split.items()}
    console.print(f"tin balls sim: {len(ds)} pairs {ds.noisy.shape[1:]} (split {sizes}, copies {copies}) -> {path}")


synth_app.command("tin-balls-sim")(tin_balls_sim_cmd)


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to ``app``."""
    app.add_typer(synth_app, name="synth")
