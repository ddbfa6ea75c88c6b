"""The top-level ``pipeline`` flow, composed from the stage table (:mod:`sem_pipeline.stages`).

Every stage of the table becomes a cached stage task (:mod:`tasks.stages`), submitted once its
upstream stages (those writing its dependencies) have finished; independent stages run
concurrently on the task runner (Dask threads by default, ``SEM_DASK_ADDRESS`` for a cluster). A
task is keyed exactly as ``dvc.yaml`` keys the stage: data by content, the config sections it
reads, the source files of the modules its command imports. A second run with unchanged inputs
recomputes nothing; after ``dvc repro`` every task is found cached.

The default pipeline trains a U-Net for each evaluated dataset (Tin balls and Wafers), denoises
the wafer scan with the configured classical method and the Wafers U-Net, scores every method
on each dataset with that dataset's U-Net, and writes the HTML report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

import tasks  # noqa: F401  (Prefect defaults)
from sem_core.config import load_params
from sem_core.provenance import hash_params
from sem_pipeline.paths import pipeline_paths
from sem_pipeline.stages import build_stages, stage_graph
from tasks.artifacts import publish_images, publish_link, publish_markdown, publish_provenance, publish_table
from tasks.register import register_run
from tasks.runners import make_task_runner
from tasks.stages import stage_task, write_resolved_params

__all__ = ["pipeline", "run_stages"]


def run_stages(params: Any, params_file: Path, *, train: bool = True, real_data: bool = True) -> dict[str, dict]:
    """Submit every stage of the table in order, each waiting for its upstream stages; return their results."""
    stages = build_stages(params, train=train, real_data=real_data)
    graph = stage_graph(stages)
    futures: dict[str, Any] = {}
    for name in stages:
        futures[name] = stage_task(name).submit(name, params_file=str(params_file), train=train, real_data=real_data,
                                                wait_for=[futures[u] for u in graph[name]])
    return {name: f.result() for name, f in futures.items()}


def _publish(params: Any, results: dict[str, dict], record: dict[str, Any]) -> None:
    from sem_core.evaluate import read_metrics
    from sem_core.report import load_panels, summary_markdown
    from sem_core.report_plots import plot_panel

    p = pipeline_paths(params)
    try:
        summary = read_metrics(p.metrics_dir)["summary"]
    except (FileNotFoundError, ValueError) as exc:  # no readable summary table: say so instead of failing the run
        get_run_logger().warning("no metrics summary to publish: %s", exc)
    else:
        publish_table(summary, key="pipeline-metrics-summary", description="metrics summary per dataset and method")
        publish_markdown(summary_markdown(summary), key="pipeline-benchmark", description="benchmark table (as in the report)")
    publish_link(p.report, key="pipeline-report", text="HTML report")
    panels_file = p.metrics_dir / "panels.npz"
    try:  # the first two example panels as key images
        panels = load_panels(panels_file)[:2] if panels_file.is_file() else []
    except (OSError, ValueError) as exc:
        get_run_logger().warning("no example panels published: %s", exc)
        panels = []
    if panels:
        publish_images({f"{x.dataset} {x.image_id}": plot_panel(x) for x in panels}, key="pipeline-key-images",
                       out_dir=Path(params.paths.reports_dir) / "key_images")
    publish_provenance(record, key="pipeline-provenance", title="Pipeline run provenance")


@flow(name="pipeline", task_runner=make_task_runner())
def pipeline(params_path: str = "params.yaml", profile: str | None = None,
             overrides: dict[str, Any] | None = None, train: bool = True) -> dict[str, Any]:
    """Run every stage of the table on one typed config.

    Parameters
    ----------
    params_path, profile : str
        ``params.yaml`` and the profile overlay (default: the file's / ``$SEM_PROFILE``).
    overrides : dict, optional
        Nested values merged last, e.g. ``{"train": {"steps": 50}}``.
    train : bool
        Train (and use) the U-Nets; False runs the classical methods only.

    Returns
    -------
    dict
        ``stages`` (each stage's output hashes), ``report``, ``metrics`` and the run's ``params_hash``.
    """
    params = load_params(params_path, profile=profile, overrides=overrides)
    params_hash = hash_params(params)
    params_file = write_resolved_params(params, Path(".prefect") / "params" / f"params-{params_hash[:16]}.yaml")
    real_data = Path(params.paths.tin_balls_source).is_dir()
    if not real_data:
        get_run_logger().warning("no Tin-balls data at %s: ingest, noise fit, chunk and its training skipped",
                                 params.paths.tin_balls_source)
    results = run_stages(params, params_file, train=train, real_data=real_data)
    p = pipeline_paths(params)
    record = {"params_hash": params_hash, "profile": params.profile,
              "stages": {name: r["code_version"] for name, r in results.items()}}
    _publish(params, results, record)
    registered = register_run(params, kind="pipeline")  # no-op unless service.url is configured
    return {"stages": results, "report": str(p.report), "metrics": str(p.metrics_dir), "params_hash": params_hash,
            "registered": registered}
