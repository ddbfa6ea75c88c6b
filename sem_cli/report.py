"""``sem-denoise report``: the static HTML comparison report from the tables ``evaluate`` wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "report_cmd"]


def report_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    metrics_dir: Annotated[Path | None, typer.Option(
        "--metrics", help="Folder written by `evaluate` (default: <reports_dir>/metrics).")] = None,
    curves: Annotated[list[Path] | None, typer.Option(
        "--curves", help="Training-curve CSV (columns epoch|step, metrics; optional experiment). Repeatable.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: <reports_dir>).")] = None,
) -> None:
    """Write <reports_dir>/index.html: benchmark table, bar charts, quality vs dose, example panels."""
    import pandas as pd

    from sem_core.evaluate import read_metrics
    from sem_core.report import load_panels, write_report
    from sem_pipeline.paths import pipeline_paths

    cfg = read_params(params, profile)
    paths = pipeline_paths(cfg)
    source = metrics_dir or paths.metrics_dir
    try:
        frames = read_metrics(source)
        panel_file = source / "panels.npz"
        panels = load_panels(panel_file) if panel_file.exists() else []
        training = None
        if curves:
            parts = []
            for path in curves:
                df = pd.read_csv(path)
                if "experiment" not in df.columns:  # <models_dir>/<experiment>/metrics.csv from training
                    df["experiment"] = path.parent.name if path.name == "metrics.csv" else path.stem
                parts.append(df)
            training = pd.concat(parts, ignore_index=True)
        prov_file = source / "provenance.json"
        provenance = json.loads(prov_file.read_text()) if prov_file.exists() else None
    except (FileNotFoundError, ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    summary = frames["summary"]
    if paths.throughput.exists():  # MPix/s per method: a committed benchmark result, not this run's wall time
        from sem_core.denoise.throughput import add_throughput_rows, read_throughput

        try:
            summary = add_throughput_rows(summary, read_throughput(paths.throughput))
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    if provenance:
        provenance.pop("errors", None)
    path = write_report(out or paths.report.parent, metrics_table=frames["per_image"], summary=summary,
                        dose_table=frames.get("dose"), panels=panels, training_curves=training,
                        defect_table=frames.get("defect_metrics"),
                        provenance=provenance)
    console.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report_cmd)
