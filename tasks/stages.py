"""Pipeline stages as cached Prefect tasks.

Each stage task runs *one* stage command — the same function the ``sem-denoise`` CLI and the
DVC stage run (``sem_cli.<module>.<command>``), which unpacks the typed config into keyword
arguments of one ``sem_core`` call and writes the stage's outputs. Sharing that function keeps
Prefect, DVC and the CLI from drifting apart. The task then returns the content hashes of the
stage's outputs.

Cache key (see :mod:`tasks.caching`): the content of the stage's input paths, the values of the
config sections the stage reads (not the whole params file: a changed training parameter must
not invalidate the simulator), the stage's ``sem_core``/``sem_cli`` code, and this module's
source. Missing outputs drop the cached record, so a deleted output is rebuilt.

The resolved config (profile and overrides applied) is written once per flow run to a YAML file
that the commands read with ``profile="default"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import typer
import yaml
from prefect import Task, task

from sem_core.provenance import hash_params

from .caching import content_cache_key, hash_content

__all__ = ["StageSpec", "STAGES", "write_resolved_params", "stage_task", "stage_config"]


@dataclass(frozen=True)
class StageSpec:
    """How a stage is run and keyed.

    Attributes
    ----------
    command : str
        ``"module:function"`` of the stage command (called with ``params=``, ``profile=`` and extra kwargs).
    sections : tuple of str
        Top-level config sections the stage reads (``seed`` and ``paths`` are always included).
    code : tuple of str
        Modules/packages whose source is part of the cache key.
    params_kw : str
        Name of the command's params-file argument.
    """

    command: str
    sections: tuple[str, ...]
    code: tuple[str, ...] = field(default_factory=tuple)
    params_kw: str = "params"


STAGES: dict[str, StageSpec] = {
    "ingest": StageSpec("sem_cli.ingest:ingest_cmd", ("ingest",),
                        ("sem_cli.ingest", "sem_core.ingest", "sem_core.io.sem_tiff", "sem_core.registration")),
    "noise_fit": StageSpec("sem_cli.noise:fit_cmd", ("noise_fit",),
                           ("sem_cli.noise", "sem_core.synth.calibrate", "sem_core.synth.imaging",
                            "sem_core.synth.noise_stats", "sem_core.synth.real_pairs"), params_kw="params_path"),
    "chunk": StageSpec("sem_cli.chunk:chunk_cmd", ("ingest", "datasets"),
                       ("sem_cli.chunk", "sem_core.synth.dataset", "sem_core.io.zarr_store")),
    "synth_wafers": StageSpec("sem_cli.synth:wafers_cmd", ("datasets", "imaging", "specimen"),
                              ("sem_cli.synth", "sem_core.synth", "sem_core.io.zarr_store")),
    "synth_scan": StageSpec("sem_cli.synth:scan_cmd", ("scan", "imaging", "specimen"),
                            ("sem_cli.synth", "sem_core.synth", "sem_core.io.ome_zarr")),
    "train": StageSpec("sem_cli.train:train_cmd", ("train",),
                       ("sem_cli.train", "sem_core.train", "sem_core.models", "sem_core.losses", "sem_core.checkpoint",
                        "sem_core.patches")),
    "denoise": StageSpec("sem_cli.denoise:denoise_cmd", ("denoise",),
                         ("sem_cli.denoise", "sem_core.denoise", "sem_core.parallel", "sem_core.io.ome_zarr")),
    "evaluate": StageSpec("sem_cli.evaluate:evaluate_cmd", ("evaluate", "imaging", "specimen"),
                          ("sem_cli.evaluate", "sem_core.evaluate", "sem_core.metrics", "sem_core.denoise")),
    "report": StageSpec("sem_cli.report:report_cmd", (),
                        ("sem_cli.report", "sem_core.report", "sem_core.report_plots")),
}


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


def stage_config(params: Any, stage: str, *, method: str | None = None) -> dict[str, Any]:
    """The config values stage ``stage`` reads: ``seed``, ``paths`` and its sections (JSON-ready), plus its command.

    With ``method`` (the ``denoise`` stage), the ``denoise`` section keeps only that method's
    parameters and calibration besides the shared keys, so tuning one method does not
    invalidate the others' outputs.
    """
    spec = STAGES[stage]
    dumped = params.model_dump(mode="json")
    config = {key: dumped[key] for key in ("seed", "paths", *spec.sections)}
    config["command"] = spec.command
    if method is not None and "denoise" in config:
        section = config["denoise"]
        kept = {k: v for k, v in section.items() if not isinstance(v, dict) or k == method}
        kept["calibration"] = {method: section.get("calibration", {}).get(method)}
        config["denoise"] = kept
    return config


def _resolve_command(command: str) -> Any:
    module, _, name = command.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"stage command {command!r} is not available: {exc}") from exc


def _run_stage(stage: str, *, params_file: str, config: Mapping[str, Any], inputs: list[str], outputs: list[str],
               call: Mapping[str, Any]) -> dict[str, Any]:
    """Run the stage command, then hash its outputs. ``config`` and ``inputs`` only feed the cache key."""
    spec = STAGES[stage]
    command = _resolve_command(spec.command)
    try:
        command(**{spec.params_kw: Path(params_file)}, profile="default", **dict(call))
    except (typer.Exit, click.exceptions.Exit) as exc:
        if getattr(exc, "exit_code", 1):
            raise RuntimeError(f"stage {stage} failed (exit code {exc.exit_code}); see its log above") from exc
    missing = [o for o in outputs if not Path(o).exists()]
    if missing:
        raise FileNotFoundError(f"stage {stage} finished but did not write {missing}")
    return {"stage": stage, "outputs": {o: hash_content(o) for o in outputs}, "config_hash": hash_params(config)}


_BASE = task(_run_stage, name="stage", persist_result=True)


def stage_task(stage: str) -> Task:
    """The cached Prefect task of ``stage`` (named ``stage-<name>`` in the UI)."""
    spec = STAGES[stage]
    key_fn = content_cache_key(inputs=["inputs"], outputs=["outputs"], ignore=["params_file"], code=spec.code)
    return _BASE.with_options(name=f"stage-{stage}", cache_key_fn=key_fn, task_run_name=f"{stage}")
