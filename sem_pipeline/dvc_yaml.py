"""``dvc.yaml`` generated from the stage table (``sem-denoise stages dvc-yaml --write``).

Each stage runs ``sem-denoise stages run <name>`` (the same runner as the Prefect tasks) and
lists exactly what the stage's cache key holds: its data dependencies and the source files of
the modules its command imports (``deps``), the config keys it reads (``params``, plus
``profile``: switching the profile reruns everything) and its outputs. Paths are written out
for the file's active profile; regenerate after changing ``paths`` or the profile. A test fails
when the committed file is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .stages import Stage, build_stages

__all__ = ["HEADER", "dvc_stage", "render_dvc_yaml"]

HEADER = (
    "# GENERATED from the stage table (sem_pipeline/stages.py) by `sem-denoise stages dvc-yaml --write`: do not edit.\n"
    "# Every stage runs `sem-denoise stages run <name>`, the runner the Prefect pipeline (`make run`) uses too;\n"
    "# `desc` is the equivalent plain command. deps = data + the source files the stage's command imports;\n"
    "# --definition is a hash of the stage's command, arguments and outputs in the table (a change reruns it).\n"
)


def _posix(p: Path) -> str:
    return Path(p).as_posix()


def dvc_stage(stage: Stage) -> dict[str, Any]:
    """The ``dvc.yaml`` entry of one stage."""
    entry: dict[str, Any] = {"desc": stage.desc,
                             "cmd": f"sem-denoise stages run {stage.name} --definition {stage.definition_hash}"}
    entry["deps"] = [_posix(p) for p in stage.deps] + [_posix(p) for p in stage.code]
    entry["params"] = ["profile", *stage.sections]
    outs: list[Any] = [_posix(p) for p in stage.outs]
    outs += [{_posix(p): {"cache": False}} for p in stage.outs_git]
    entry["outs"] = outs
    if stage.metrics:
        entry["metrics"] = [{_posix(p): {"cache": False}} for p in stage.metrics]
    if stage.plots:
        entry["plots"] = [{_posix(p): {"cache": False, "x": x, "y": y}} for p, x, y in stage.plots]
    return entry


def render_dvc_yaml(params: Any) -> str:
    """The text of ``dvc.yaml`` for a validated config."""
    stages = build_stages(params)
    doc: dict[str, Any] = {"stages": {name: dvc_stage(s) for name, s in stages.items()}}
    dose = [p for p in stages["evaluate"].outs_git if p.name == "dose_psnr.csv"]
    if dose:
        doc["plots"] = [{"dose_psnr": {"template": "linear", "x": "dose",
                                       "y": {_posix(dose[0]): ["noisy", *params.evaluate.methods]}}}]
    return HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)
