"""The top-level ``pipeline`` flow: noise synthesis -> train -> denoise scans -> evaluate -> report.

Each stage group is a subflow of cached stage tasks (:mod:`tasks.stages`); every task is keyed on
the content of its inputs, the config sections it reads and its code, so a second run with
unchanged inputs recomputes nothing and a changed training parameter recomputes training and
what follows only. Independent stages run concurrently: the denoising of each scan by each
method on the Dask task runner (threads by default, ``SEM_DASK_ADDRESS`` for a cluster), the
Tin-balls and wafer branches of noise synthesis on Prefect's thread pool.

Not in this flow yet (no stage command existed when it was wired): the release export of the
model (``paths.release_model``); the U-Net stages use the training run's ``best.ckpt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

import tasks  # noqa: F401  (Prefect defaults)
from sem_core.config import load_params
from sem_core.provenance import hash_params, make_provenance
from tasks.artifacts import publish_images, publish_link, publish_markdown, publish_provenance, publish_table
from tasks.register import register_run
from tasks.runners import make_task_runner
from tasks.stages import stage_config, stage_task, write_resolved_params

__all__ = ["pipeline", "noise_synthesis", "training", "denoise_scans", "evaluation"]


def _run(stage: str, params: Any, params_file: Path, *, inputs: list[Path], outputs: list[Path],
         optional: list[Path] = (), call: dict[str, Any] | None = None, wait_for: list | None = None,
         method: str | None = None):
    """Submit the cached task of ``stage``.

    ``inputs`` must exist when the task starts (upstream outputs included); ``optional`` inputs
    (e.g. a noise model that no stage of this flow writes) are keyed only if they exist now.
    """
    keyed = [str(p) for p in inputs] + [str(p) for p in optional if Path(p).exists()]
    return stage_task(stage).submit(
        stage, params_file=str(params_file), config=stage_config(params, stage, method=method),
        inputs=keyed, outputs=[str(p) for p in outputs],
        call=call or {}, wait_for=wait_for or [],
    )


def _scan_path(params: Any) -> Path:
    return Path(params.paths.scans_dir) / f"{params.scan.name}.ome.zarr"


@flow(name="noise-synthesis")
def noise_synthesis(params: Any, params_file: Path) -> dict[str, str]:
    """Ingest the real Tin-balls pairs, fit the noise model, chunk them; synthesise the wafer dataset and scan.

    Without the Tin-balls data (``paths.tin_balls_source``) ingest, noise fit and chunk are skipped
    and the simulator uses an existing ``paths.noise_model`` or its own imaging parameters.
    """
    logger = get_run_logger()
    p = params.paths
    futures, fit = {}, []
    if Path(p.tin_balls_source).is_dir():
        ingest = _run("ingest", params, params_file, inputs=[Path(p.tin_balls_source)],
                      outputs=[Path(p.tin_balls_manifest), Path(p.tin_balls_ingest_report)])
        fit = [_run("noise_fit", params, params_file, inputs=[Path(p.tin_balls_manifest), Path(p.tin_balls_source)],
                    outputs=[Path(p.noise_model), Path(p.noise_fit_report)], wait_for=[ingest])]
        futures["tin_balls"] = _run("chunk", params, params_file,
                                    inputs=[Path(p.tin_balls_manifest), Path(p.tin_balls_source)],
                                    outputs=[Path(p.tin_balls_zarr)], wait_for=[ingest])
    else:
        logger.warning("no Tin-balls data at %s: ingest, noise fit and chunk skipped", p.tin_balls_source)
    model = {"inputs": [Path(p.noise_model)]} if fit else {"inputs": [], "optional": [Path(p.noise_model)]}
    futures["wafers"] = _run("synth_wafers", params, params_file, outputs=[Path(p.wafers_zarr)], wait_for=fit, **model)
    futures["scan"] = _run("synth_scan", params, params_file, outputs=[_scan_path(params)], wait_for=fit, **model)
    results = {name: f.result() for name, f in futures.items()}
    return {name: next(iter(r["outputs"])) for name, r in results.items()}


@flow(name="training")
def training(params: Any, params_file: Path) -> str:
    """Train the configured U-Net experiment; returns the path of its ``best.ckpt``."""
    from sem_cli.train import resolve_run_dir

    tc, p = params.train, params.paths
    dataset = tc.experiments[tc.experiment].train_data or (p.tin_balls_zarr if tc.dataset == "tin_balls"
                                                           else p.wafers_zarr)
    run_dir = resolve_run_dir(Path(p.models_dir), tc.experiment, tc.dataset, None)
    _run("train", params, params_file, inputs=[Path(dataset)], outputs=[run_dir / "best.ckpt"]).result()
    return str(run_dir / "best.ckpt")


@flow(name="denoise-scans", task_runner=make_task_runner())
def denoise_scans(params: Any, params_file: Path, scans: list[str], checkpoint: str | None) -> dict[str, str]:
    """Denoise every scan with the classical method and the U-Net, all (scan, method) pairs in parallel."""
    methods = [params.denoise.method] + (["unet"] if checkpoint else [])
    futures = {}
    for scan in map(Path, scans):
        stem = scan.name.removesuffix(".ome.zarr").removesuffix(".zarr")
        for method in methods:
            out = Path(params.paths.processed_dir) / f"{stem}.{method}.ome.zarr"
            model = checkpoint if method == "unet" else None
            futures[f"{stem}.{method}"] = _run(
                "denoise", params, params_file, inputs=[scan] + ([Path(model)] if model else []), outputs=[out],
                call={"input": scan, "output": out, "method": method, "model": Path(model) if model else None},
                method=method)
    return {name: next(iter(f.result()["outputs"])) for name, f in futures.items()}


@flow(name="evaluation")
def evaluation(params: Any, params_file: Path, datasets: list[str], checkpoint: str | None) -> dict[str, str]:
    """Score every method (and the trained U-Net) on the test splits; write the HTML report."""
    p, tc = params.paths, params.train
    metrics_dir = Path(p.reports_dir) / "metrics"
    models = [f"{tc.experiment}={checkpoint}"] if checkpoint else None
    ev = _run("evaluate", params, params_file, inputs=[Path(d) for d in datasets] + ([Path(checkpoint)] if checkpoint else []),
              outputs=[metrics_dir], call={"model": models})
    curves = [Path(checkpoint).parent / "metrics.csv"] if checkpoint else []
    curves = [c for c in curves if c.exists()]  # written by the training subflow, which has finished
    rep = _run("report", params, params_file, inputs=[metrics_dir, *curves], outputs=[Path(p.reports_dir) / "index.html"],
               call={"curves": curves or None}, wait_for=[ev])
    rep.result()
    return {"metrics": str(metrics_dir), "report": str(Path(p.reports_dir) / "index.html")}


def _publish_key_images(metrics_dir: Path, out_dir: Path, *, most: int = 2) -> None:
    """The first ``most`` example panels of the evaluation (noisy | methods | clean | differences) as key images."""
    from sem_core.report import load_panels
    from sem_core.report_plots import plot_panel

    panels_file = metrics_dir / "panels.npz"
    if not panels_file.is_file():
        get_run_logger().warning("no example panels at %s: no key images published", panels_file)
        return
    panels = load_panels(panels_file)[:most]
    publish_images({f"{p.dataset} {p.image_id}": plot_panel(p) for p in panels}, key="pipeline-key-images",
                   out_dir=out_dir)


def _publish(params: Any, result: dict[str, Any], provenance: dict[str, Any]) -> None:
    from sem_core.evaluate import read_metrics
    from sem_core.report import summary_markdown

    try:
        summary = read_metrics(result["evaluation"]["metrics"])["summary"]
    except FileNotFoundError as exc:  # evaluate wrote no summary table: say so instead of failing the run
        get_run_logger().warning("no metrics summary to publish: %s", exc)
    else:
        publish_table(summary, key="pipeline-metrics-summary", description="metrics summary per dataset and method")
        publish_markdown(summary_markdown(summary), key="pipeline-benchmark", description="benchmark table (as in the report)")
    publish_link(result["evaluation"]["report"], key="pipeline-report", text="HTML report")
    _publish_key_images(Path(result["evaluation"]["metrics"]), Path(params.paths.reports_dir) / "key_images")
    publish_provenance(provenance, key="pipeline-provenance", title="Pipeline run provenance")


@flow(name="pipeline")
def pipeline(params_path: str = "params.yaml", profile: str | None = None,
             overrides: dict[str, Any] | None = None, train: bool = True) -> dict[str, Any]:
    """Run the whole pipeline on one typed config.

    Parameters
    ----------
    params_path, profile : str
        ``params.yaml`` and the profile overlay (default: the file's / ``$SEM_PROFILE``).
    overrides : dict, optional
        Nested values merged last, e.g. ``{"train": {"steps": 50}}``.
    train : bool
        Train (and use) the U-Net; False runs the classical methods only.

    Returns
    -------
    dict
        Output paths per stage group and the run's provenance.
    """
    params = load_params(params_path, profile=profile, overrides=overrides)
    params_hash = hash_params(params)
    params_file = write_resolved_params(params, Path(".prefect") / "params" / f"params-{params_hash[:16]}.yaml")
    data = noise_synthesis(params, params_file)
    checkpoint = training(params, params_file) if train else None
    scans = denoise_scans(params, params_file, [data["scan"]], checkpoint)
    datasets = [data[k] for k in ("tin_balls", "wafers") if k in data]
    evaluated = evaluation(params, params_file, datasets, checkpoint)
    provenance = make_provenance(params=params, inputs_hash=hash_params(data),
                                 extra={"flow": "pipeline", "profile": params.profile, "checkpoint": checkpoint})
    result = {"data": data, "checkpoint": checkpoint, "denoised": scans, "evaluation": evaluated,
              "provenance": provenance}
    _publish(params, result, provenance)
    result["registered"] = register_run(params, kind="pipeline")  # no-op unless service.url is configured
    return result
