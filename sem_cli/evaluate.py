"""``sem-denoise evaluate``: score the denoisers on the test split of every dataset that exists.

Writes ``<paths.reports_dir>/metrics/``: per-image and summary tables (Parquet + CSV), the DVC
metrics file ``metrics.json``, ``provenance.json``, ``panels.npz`` (example images for the report)
and, when the wafer simulator is available and ``evaluate.doses`` is not empty, ``dose.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "evaluate_cmd"]


def _parse_models(models: list[str]) -> list[tuple[str | None, str, Path]]:
    """``[DATASET:]EXPERIMENT=PATH`` items -> ``(dataset or None for all, experiment, path)``."""
    out = []
    for item in models:
        name, sep, path = item.partition("=")
        dataset, colon, experiment = name.rpartition(":")
        if not sep or not experiment or not path or (colon and not dataset):
            err_console.print(f"[red]error:[/red] --model expects [DATASET:]EXPERIMENT=PATH, got {item!r}")
            raise typer.Exit(2)
        out.append((dataset or None, experiment, Path(path)))
    return out


def _sample(path: Path, split: str) -> Any:
    """Central crop of the first noisy image of ``split`` (unit float): what ``denoise`` would calibrate on."""
    import numpy as np

    from sem_core.denoise.base import to_unit_float
    from sem_core.denoise.prepare import crop_center
    from sem_core.io.zarr_store import open_dataset

    from .methods import SAMPLE_PX

    view = open_dataset(path)
    indices = sorted(int(i) for i in view.split.get(split, []))
    if not indices:
        return None
    return to_unit_float(crop_center(np.asarray(view.noisy[indices[0]]), size=SAMPLE_PX))


def _build_methods(cfg: Any, models: list[tuple[str | None, str, Path]], dataset: str,
                   sample: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Denoisers by label for one dataset (``noisy`` first, U-Nets as ``unet-<experiment>``) and each label's experiment.

    Classical methods are built exactly as ``sem-denoise denoise`` builds them (``denoise.<method>``
    and its calibration, on a central crop of the dataset's first evaluated image).
    """
    from sem_core.evaluate import identity_denoiser

    from .methods import configured_denoiser

    methods: dict[str, Any] = {"noisy": identity_denoiser}
    experiments = {"noisy": "classical"}
    for name in cfg.evaluate.methods:
        try:
            methods[name], _ = configured_denoiser(cfg.denoise, name, sample=sample)
        except (ValueError, ImportError) as exc:
            err_console.print(f"[red]error:[/red] evaluate.methods: {name}: {exc}")
            raise typer.Exit(2) from exc
        experiments[name] = "classical"
    for target, experiment, path in models:
        if target not in (None, dataset):
            continue
        if not path.is_file():
            err_console.print(f"[red]error:[/red] --model {experiment}: no checkpoint at {path}")
            raise typer.Exit(2)
        try:
            methods[f"unet-{experiment}"], _ = configured_denoiser(cfg.denoise, "unet", sample=sample,
                                                                    checkpoint=str(path))
        except (ValueError, ImportError, OSError, RuntimeError) as exc:
            err_console.print(f"[red]error:[/red] cannot load U-Net checkpoint {path}: {str(exc).splitlines()[0]}")
            raise typer.Exit(1) from exc
        experiments[f"unet-{experiment}"] = experiment
    return methods, experiments


def _panels(result: Any, dataset: str, image_ids: list[str] | None, defects: Any) -> list[Any]:
    from sem_core.evaluate import metric_label
    from sem_core.report import Panel

    panels = []
    for (label, _, i), noisy in result.outputs.items():
        if label != "noisy_input":
            continue
        outs = {metric_label(lb, exp): arr for (lb, exp, j), arr in result.outputs.items()
                if j == i and lb not in ("noisy_input", "clean", "noisy")}
        boxes = []
        if defects is not None:
            sel = defects[defects["image"] == i]
            boxes = [tuple(int(v) for v in r) for r in sel[["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]].to_numpy()]
        panels.append(Panel(dataset=dataset, image_id=str(image_ids[i]) if image_ids else str(i), noisy=noisy,
                            clean=result.outputs[("clean", "", i)], outputs=outs, boxes=boxes))
    return panels


def _dose_sweep(cfg: Any, methods: dict[str, Any]) -> Any:
    """Quality vs dose on simulated 128 px line wafers (dose = beam current in pA), or None without the simulator."""
    try:
        from sem_core.synth.dataset import imaging_kwargs
        from sem_core.synth.imaging import simulate_pair
        from sem_core.synth.wafers import render_wafer, sample_wafer_kwargs
    except ImportError as exc:
        console.print(f"quality vs dose skipped: wafer simulator not available ({exc})")
        return None
    from sem_core.evaluate import sweep_dose

    shape = (128, 128)
    imaging = imaging_kwargs(cfg.imaging.model_dump())
    # Like an operator's brightness/contrast: the detector gain scales with 1/current so that the
    # mean grey level does not change with dose and PSNR on the fixed 8-bit range stays comparable.
    ref_current = float(imaging.pop("beam_current_pa", 100.0))
    ref_gain = float(imaging.pop("gain_grey_per_se", 4.5))

    def make_specimen(rng: Any) -> Any:
        spec = render_wafer(shape=shape, rng=rng, **sample_wafer_kwargs(rng, contacts_fraction=0.0))
        return spec.yield_map, spec.defects, spec.mask

    def image_fn(yield_map: Any, *, dose: float, rng: Any) -> Any:
        return simulate_pair(yield_map, rng=rng, beam_current_pa=dose,
                             gain_grey_per_se=ref_gain * ref_current / dose, **imaging)

    return sweep_dose(make_specimen=make_specimen, image_fn=image_fn, doses=cfg.evaluate.doses, methods=methods,
                      n_images=cfg.evaluate.dose_images, seed=cfg.seed,
                      defect_margin_px=cfg.evaluate.defect_margin_px)


def evaluate_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="U-Net checkpoint as [DATASET:]EXPERIMENT=PATH: scored on DATASET only, or on every dataset "
                        "without it (repeatable).")] = None,
    max_images: Annotated[int | None, typer.Option(
        "--max-images", min=1, help="Override evaluate.max_images.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: <reports_dir>/metrics).")] = None,
    dose: Annotated[bool, typer.Option("--dose/--no-dose", help="Run the quality-vs-dose sweep.")] = True,
) -> None:
    """Score every method on the test split of tin_balls / wafers and write the metric tables."""
    import pandas as pd

    from sem_core.evaluate import concat_defects, evaluate_dataset, summarize_metrics, write_metrics
    from sem_core.io.zarr_store import DatasetError, hash_dataset, open_dataset
    from sem_core.provenance import make_provenance
    from sem_core.report import save_panels
    from sem_core.schemas.metrics import METRICS_SCHEMA
    from sem_pipeline.paths import DATASETS, pipeline_paths

    cfg = read_params(params, profile)
    ev = cfg.evaluate
    models = _parse_models(model or [])
    paths = pipeline_paths(cfg)
    tables, defect_tables, errors, panels, hashes = [], [], [], [], {}
    dose_methods = None
    for name in ev.datasets:
        path = paths.dataset_zarr(name) if name in DATASETS else None
        if path is None or not path.exists():
            console.print(f"{name}: no dataset at {path}: skipped")
            continue
        try:
            view = open_dataset(path)
            methods, experiments = _build_methods(cfg, models, name, _sample(path, ev.split))
            result = evaluate_dataset(
                path, methods=methods, experiments=experiments, split=ev.split,
                method_names={lb: "unet" for lb, exp in experiments.items() if exp != "classical"},
                max_images=max_images or ev.max_images, align=name in ev.align_datasets, border_px=ev.border_px,
                defect_margin_px=ev.defect_margin_px, cnr_erode_px=ev.cnr_erode_px,
                keep_outputs=ev.panels_per_dataset,
            )
        except (DatasetError, ValueError) as exc:
            err_console.print(f"[red]error:[/red] {name}: {exc}")
            raise typer.Exit(1) from exc
        if name == "wafers" or dose_methods is None:  # the dose sweep images are simulated wafers
            dose_methods = methods
        hashes[name] = hash_dataset(path)
        tables.append(result.table)
        defect_tables.append(result.defects)
        errors += result.errors
        panels += _panels(result, name, view.attrs.get("image_ids"), view.defects)
        console.print(f"{name}: {len(result.table)} rows, {len(result.errors)} errors")
    if not tables:
        err_console.print("[red]error:[/red] no dataset to evaluate (run chunk / synth wafers first)")
        raise typer.Exit(1)
    table = METRICS_SCHEMA.validate(pd.concat(tables, ignore_index=True))
    summary = summarize_metrics(table)
    dose_table = _dose_sweep(cfg, dose_methods) if dose and ev.doses else None
    provenance = make_provenance(
        params={"seed": cfg.seed, "evaluate": ev, "denoise": cfg.denoise,
                "models": [f"{d or '*'}:{e}={p.as_posix()}" for d, e, p in models]},
        inputs_hash=_inputs_hash(hashes, models),
        extra={"stage": "evaluate", "datasets": hashes},
    )
    target = out or paths.metrics_dir
    written = write_metrics(target, table=table, summary=summary, provenance=provenance, dose_table=dose_table,
                            defect_table=concat_defects(defect_tables), errors=errors)
    save_panels(target / "panels.npz", panels)
    for e in errors:
        err_console.print(
            f"[yellow]failed:[/yellow] {e['dataset']}/{e['method']} image {e['image_index']}: {e['error']}")
    console.print(f"wrote {len(written) + 1} files to {target}")


def _inputs_hash(dataset_hashes: dict[str, str], models: list[tuple[str | None, str, Path]]) -> str:
    """Inputs hash: the datasets' content hashes and the checkpoints' file hashes."""
    from sem_core.provenance import hash_file, hash_params

    return hash_params({"datasets": dataset_hashes,
                        "models": {f"{d or '*'}:{e}": hash_file(p) for d, e, p in models}})


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    app.command("evaluate")(evaluate_cmd)
