"""``sem-denoise chunk``: materialise the ingested real pairs into ``tin_balls.zarr``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "chunk_cmd"]


def chunk_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output store (default: paths.tin_balls_zarr).")] = None,
) -> None:
    """Write the manifest's pairs (noisy, clean, Otsu ball mask, split, licence) to the Tin-balls Zarr."""
    from sem_core.ingest import IngestError, describe_dataset, read_manifest
    from sem_core.io.zarr_store import open_dataset
    from sem_core.synth.dataset import chunk_tin_balls

    cfg = read_params(params, profile)
    ds_cfg, paths = cfg.datasets.tin_balls, cfg.paths
    target = out or paths.tin_balls_zarr
    try:
        manifest = read_manifest(paths.tin_balls_manifest)
    except IngestError as exc:
        err_console.print(f"[red]error:[/red] {exc} (run `sem-denoise ingest` first)")
        raise typer.Exit(1) from exc
    info = describe_dataset(paths.tin_balls_source, licence=cfg.ingest.licence,
                            licence_file=cfg.ingest.licence_file, citation=cfg.ingest.citation,
                            repository=cfg.ingest.source_repository)
    info["manifest_provenance"] = manifest.attrs.get("provenance")
    try:
        path = chunk_tin_balls(
            manifest, path=target, seed=cfg.seed, align=ds_cfg.align, split_fractions=ds_cfg.split,
            split_mode=ds_cfg.split_mode, split_gap=ds_cfg.split_gap,
            images_per_chunk=ds_cfg.images_per_chunk, mask_min_area_px=ds_cfg.mask_min_area_px,
            dataset_info=info, params_for_provenance={"seed": cfg.seed, "datasets.tin_balls": ds_cfg},
            progress=True,
        )
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    ds = open_dataset(path)
    sizes = {k: len(v) for k, v in ds.split.items()}
    console.print(f"tin_balls: {len(ds)} pairs {ds.noisy.shape[1:]} {ds.noisy.dtype} -> {path}  split {sizes}")
    for item in ds.attrs.get("skipped", []):
        err_console.print(f"[yellow]skipped:[/yellow] pair {item['pair_id']}: {item['error']}")


def register(app: typer.Typer) -> None:
    """Add the ``chunk`` command to ``app``."""
    app.command("chunk")(chunk_cmd)
