"""Pipeline stages as cached Prefect tasks, composed from the stage table (:mod:`sem_pipeline.stages`).

A stage task runs :func:`sem_pipeline.run.execute_stage`, the same runner ``dvc repro`` runs
(``sem-denoise stages run <name>``), and returns the content hashes of the stage's outputs.

Its cache key is :func:`sem_pipeline.keys.stage_key`: the stage's data dependencies by content,
the config sections it reads, the source files of the modules its command imports and its
definition in the table. ``sem-denoise stages run`` stores its result under the same key
(:func:`record_stage_result`), so after ``dvc repro`` the Prefect pipeline finds every stage cached.
A missing output drops the cached record, so a deleted output is rebuilt.

The resolved config (profile and overrides applied) is written once per flow run to a YAML file
that the commands read with ``profile="default"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Task, task

from sem_pipeline.keys import stage_key
from sem_pipeline.run import execute_stage
from sem_pipeline.stages import Stage, build_stages

from .caching import _drop_stale_record
from .settings import RESULTS_BLOCK, results_storage, results_url

__all__ = ["write_resolved_params", "load_stage", "stage_task", "with_results_storage", "record_stage_result"]


def write_resolved_params(params: Any, path: Path) -> Path:
    """Write the validated config (profile and overrides already applied) as a plain YAML file.

    ``profile`` is reset to ``default`` and ``profiles`` emptied, so reading it back with
    ``profile="default"`` gives exactly ``params``.
    """
    data = params.model_dump(mode="json")
    data.update(profile="default", profiles={})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_stage(name: str, params_file: str, *, train: bool, real_data: bool) -> tuple[Stage, dict[str, Any]]:
    """The stage ``name`` of the table built from the resolved params file, and the config dump."""
    from sem_core.config import load_params

    params = load_params(params_file, profile="default")
    return build_stages(params, train=train, real_data=real_data)[name], params.model_dump(mode="json")


def _stage_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    stage, config = load_stage(parameters["name"], parameters["params_file"], train=parameters["train"],
                               real_data=parameters["real_data"])
    key = stage_key(stage, config)
    if any(not Path(p).exists() for p in stage.all_outputs):
        _drop_stale_record(context, key)
    return key


def _run_stage(name: str, *, params_file: str, train: bool = True, real_data: bool = True) -> dict[str, Any]:
    """Run stage ``name`` (see :func:`sem_pipeline.run.execute_stage`)."""
    stage, config = load_stage(name, params_file, train=train, real_data=real_data)
    return execute_stage(stage, params_file=params_file, profile="default", key=stage_key(stage, config),
                         route="prefect")


_BASE = task(_run_stage, name="stage", persist_result=True, cache_key_fn=_stage_cache_key)


def stage_task(name: str) -> Task:
    """The cached Prefect task of stage ``name`` (named ``stage-<name>`` in the UI), its result in
    :func:`~tasks.settings.results_storage` (local, or the shared S3 bucket)."""
    return with_results_storage(_BASE.with_options(name=f"stage-{name}", task_run_name=name))


def with_results_storage(task_: Task) -> Task:
    """``task_`` persisting its result in the shared S3 store when ``SEM_PREFECT_RESULTS=s3://…``, else as is
    (Prefect's local ``PREFECT_LOCAL_STORAGE_PATH``). The block is saved on the Prefect server (Prefect keeps a
    task's result storage server-side); it holds the endpoint only, no credentials."""
    if results_url() is None:
        return task_
    storage = results_storage()
    storage.save(RESULTS_BLOCK, overwrite=True)
    return task_.with_options(result_storage=storage)


def record_stage_result(key: str, result: dict[str, Any]) -> None:
    """Store ``result`` as the cached result of the stage task whose cache key is ``key``.

    Called by ``sem-denoise stages run`` (the ``dvc repro`` route) so that the Prefect pipeline
    then finds the stage cached instead of running it again.
    """
    from prefect.results import ResultStore

    ResultStore(result_storage=results_storage()).write(result, key=key)
