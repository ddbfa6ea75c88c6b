"""``sem-denoise noise fit``: calibrate the SEM noise model on the real Tin-balls pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "noise_app"]

noise_app = typer.Typer(help="The SEM noise model: fit it to real pairs.", no_args_is_help=True)


def _jsonable(obj: Any) -> Any:
    """NaN/inf become null (strict JSON readers, dvc metrics)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _pair_items(source: Path, manifest: Path) -> tuple[list[tuple[str, Path, Path, tuple[float, float] | None]], str]:
    """Pairs from the ingest manifest when it exists (with its shifts), else from ``<source>/time/{low,high}``."""
    if manifest.is_file():
        import pandas as pd

        try:
            df = pd.read_parquet(manifest)
            items = [
                (str(r.pair_id) if "pair_id" in df.columns else str(i), Path(r.noisy_path), Path(r.clean_path),
                 (float(r.shift_dy), float(r.shift_dx)))
                for i, r in enumerate(df.itertuples(index=False))
            ]
        except (OSError, ValueError, AttributeError) as exc:
            raise typer.BadParameter(f"cannot use the manifest {manifest}: {exc}") from exc
        return items, f"manifest {manifest}"
    from sem_core.synth.real_pairs import find_time_pairs

    try:
        found = find_time_pairs(source)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return [(pid, n, c, None) for pid, n, c in found], f"folder {source}"


def _print_table(report: dict[str, Any]) -> None:
    table = Table(title="Real vs simulated noise statistics (Tin balls)")
    for col in ("statistic", "split", "real", "simulated", "tolerance", "pass"):
        table.add_column(col, justify="right" if col in ("real", "simulated") else "left")
    for part in ("train", "held_out"):
        for key, line in report.get(part, {}).items():
            ok = line.get("passed")
            mark = "" if ok is None else ("[green]yes[/green]" if ok else "[red]NO[/red]")
            table.add_row(key, part, f"{line['real']:.4g}", f"{line['sim']:.4g}", line.get("tolerance", ""), mark)
    edge = report.get("edge_blur")
    if edge:
        table.add_row("edge_sigma", f"train[:{edge['n_pairs']}]", f"{edge['real']:.3g}",
                      f"{edge['sim_per_step'][-1]:.3g}", "", "")
    console.print(table)


@noise_app.command("fit")
def fit_cmd(
    params_path: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a check fails.")] = False,
) -> None:
    """Fit the noise model to the real pairs; write paths.noise_model and paths.noise_fit_report."""
    from sem_core.provenance import hash_tree, make_provenance
    from sem_core.rng import derive_rng
    from sem_core.synth.noise_fit import fit_noise_model, flatten_report, make_noise_stats_table
    from sem_core.synth.imaging import write_noise_model
    from sem_core.synth.real_pairs import load_aligned_pairs

    params = read_params(params_path, profile)
    nf, paths = params.noise_fit, params.paths
    items, origin = _pair_items(paths.tin_balls_source, paths.tin_balls_manifest)
    if nf.max_pairs is not None:
        items = items[: nf.max_pairs]
    pairs, errors = load_aligned_pairs(items, border_px=nf.border_px)
    for e in errors:
        err_console.print(f"[yellow]skipped pair {e['pair_id']}:[/yellow] {e['error']}")
    if len(pairs) < 2:
        err_console.print(f"[red]error:[/red] only {len(pairs)} usable pairs from {origin}")
        raise typer.Exit(1)
    console.print(f"{len(pairs)} pairs from {origin}")
    tolerances = {"slope": ("rel", nf.tol_slope_rel), "intercept": ("rel", nf.tol_intercept_rel),
                  "acf_x1": ("abs", nf.tol_acf_x1_abs), "acf_y1": ("abs", nf.tol_acf_y1_abs)}
    if nf.fit_direction:
        tolerances.update(asym_x1=("abs", nf.tol_asym_x1_abs), grad_corr_x=("abs", nf.tol_grad_corr_x_abs))
    estimator = {"border_px": nf.border_px, "local_mean_px": nf.local_mean_px, "grad_max": nf.grad_max,
                 "bin_width": nf.bin_width}
    model, report = fit_noise_model(
        [(p.noisy, p.clean) for p in pairs], rng=derive_rng(params.seed, "noise_fit"),
        n_train=nf.n_train, split=nf.split, split_seed=params.seed, iterations=nf.iterations,
        se_per_pe=nf.se_per_pe, n_taps=nf.n_taps, se_model=nf.se_model, se_gamma_shape=nf.se_gamma_shape,
        intercept_from=nf.intercept_from, check_repeats=nf.check_repeats,
        fit_edge_blur=nf.fit_edge_blur, edge_pairs=nf.edge_pairs, fit_direction=nf.fit_direction,
        direction_taps=nf.direction_taps, direction_steps=nf.direction_steps, estimator=estimator, tolerances=tolerances,
    )
    used = [f for _, n, c, _ in items for f in (n, c)]
    provenance = make_provenance(
        params={"seed": params.seed, "noise_fit": nf}, inputs_hash=hash_tree(used),
        extra={"stage": "noise_fit", "source": origin, "pair_ids": [p.pair_id for p in pairs]},
    )
    write_noise_model(paths.noise_model, model, provenance=provenance)
    table = make_noise_stats_table(report, [p.pair_id for p in pairs])
    report["real_per_pair"] = table.to_dict(orient="records")
    report["pairs"] = [{"pair_id": p.pair_id, "shift_dy": p.shift[0], "shift_dx": p.shift[1]} for p in pairs]
    report["errors"] = errors
    out = {**flatten_report(report, model), "provenance": provenance, "details": report}
    paths.noise_fit_report.parent.mkdir(parents=True, exist_ok=True)
    paths.noise_fit_report.write_text(json.dumps(_jsonable(out), indent=2))
    _print_table(report)
    verdict = "[green]all checks pass[/green]" if report["passed"] else "[red]some checks fail[/red]"
    console.print(f"{verdict}; model -> {paths.noise_model}, report -> {paths.noise_fit_report}")
    if strict and not report["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``noise`` command group to ``sem-denoise``."""
    app.add_typer(noise_app, name="noise")
