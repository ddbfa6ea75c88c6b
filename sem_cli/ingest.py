"""``sem-denoise ingest``: discover, check and register the real (noisy, clean) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "ingest_cmd"]


def ingest_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    source: Annotated[
        Path | None, typer.Option("--source", help="Data folder (default: paths.tin_balls_source).")
    ] = None,
    crop: Annotated[
        int | None,
        typer.Option("--crop", min=0, help="Data-bar rows to cut for files without data-bar metadata."),
    ] = None,
    align: Annotated[
        bool | None,
        typer.Option("--align/--no-align", help="Record that loaders align clean onto noisy (default: ingest.align)."),
    ] = None,
) -> None:
    """Write the pair manifest (Parquet) and the ingest report (JSON); exit 1 if no pair is good."""
    from sem_core.ingest import IngestError, describe_dataset, ingest_pairs, write_ingest_outputs
    from sem_core.provenance import hash_tree, make_provenance

    cfg_all = read_params(params, profile)
    cfg = cfg_all.ingest
    overrides = {k: v for k, v in {"crop_rows": crop, "align": align}.items() if v is not None}
    cfg = cfg.model_copy(update=overrides) if overrides else cfg
    source_dir = source if source is not None else cfg_all.paths.tin_balls_source
    noisy_dir, clean_dir = source_dir / cfg.noisy_subdir, source_dir / cfg.clean_subdir
    dataset = describe_dataset(source_dir, licence=cfg.licence, licence_file=cfg.licence_file,
                               citation=cfg.citation, repository=cfg.source_repository)
    try:
        result = ingest_pairs(noisy_dir, clean_dir, pattern=cfg.pair_pattern, mode=cfg.pair_mode,
                              channel=cfg.channel, crop_rows=cfg.crop_rows, border_px=cfg.border_px,
                              upsample=cfg.upsample, dataset=dataset)
        inputs = [noisy_dir, clean_dir] + ([source_dir / cfg.licence_file]
                                           if (source_dir / cfg.licence_file).is_file() else [])
        provenance = make_provenance(
            params={"ingest": cfg, "source": source_dir}, inputs_hash=hash_tree(inputs),
            extra={"stage": "ingest", "align": cfg.align, "align_order": cfg.align_order},
        )
        report = write_ingest_outputs(result, manifest_path=cfg_all.paths.tin_balls_manifest,
                                      report_path=cfg_all.paths.tin_balls_ingest_report, provenance=provenance)
    except IngestError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    summary = report["summary"]
    table = Table(title=f"ingest: {source_dir}")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("pairs ingested", str(summary["n_pairs"]))
    table.add_row("files (noisy / clean)", f"{summary['n_noisy_files']} / {summary['n_clean_files']}")
    table.add_row("bad items", str(summary["n_bad_items"]))
    if summary["n_pairs"]:
        dy, dx = summary["shift_dy"], summary["shift_dx"]
        table.add_row("mean shift dy, dx (px)", f"{dy['mean']:+.2f}, {dx['mean']:+.2f}")
        table.add_row("shift std dy, dx (px)", f"{dy['std']:.2f}, {dx['std']:.2f}")
        table.add_row("mean brightness offset", f"{summary['brightness_offset']['mean']:+.2f}")
        table.add_row("pixel size (nm)", ", ".join(sorted({f"{v:.3f}" for v in summary["pixel_size_nm"]})) or "unknown")
        table.add_row("image shape", ", ".join(f"{h}×{w}" for h, w in summary["shape"]))
    table.add_row("manifest", str(cfg_all.paths.tin_balls_manifest))
    table.add_row("report", str(cfg_all.paths.tin_balls_ingest_report))
    console.print(table)
    for item in result.bad:
        err_console.print(f"[yellow]bad:[/yellow] {item.path}: {item.reason}")
    if summary["n_pairs"] == 0:
        err_console.print("[red]error:[/red] no good pair was ingested")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to ``app``."""
    app.command("ingest")(ingest_cmd)
