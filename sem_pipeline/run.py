"""Run one stage: the command ``dvc repro`` runs (``sem-denoise stages run NAME``) and the Prefect task body.

The stage's ``sem-denoise`` command function is called with the params file, the profile and the
stage's arguments, inside :func:`sem_core.provenance.use_code_version` (so its outputs record the
hash of the code it runs). Afterwards every declared output must exist; their content hashes are
returned. What changes from run to run (start time, duration, host, the git state, the route) goes
into the run record ``<folder of the first output>/<stage>.run.json``, never into an output.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import platform
import contextlib
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from sem_core.provenance import use_code_version

from .keys import code_digests, code_version_of, hash_path
from .paths import run_record
from .stages import Stage
from .trace import REPO_ROOT

__all__ = ["StageError", "execute_stage", "resolve_command"]


_EXCLUSIVE = threading.Lock()  # one `exclusive` stage at a time per process (see Stage.exclusive)


class StageError(RuntimeError):
    """A stage command failed or did not write its outputs."""


def resolve_command(command: str) -> Any:
    """The function named by ``"module:function"``."""
    module, _, name = command.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"stage command {command!r} is not available: {exc}") from exc


def _git_state() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def execute_stage(stage: Stage, *, params_file: str | Path, profile: str | None, key: str | None = None,
                  route: str = "cli") -> dict[str, Any]:
    """Run ``stage`` and return ``{"stage", "outputs": {path: content hash}, "code_version"}``.

    Parameters
    ----------
    stage : Stage
    params_file : path
        The params file the command reads.
    profile : str, optional
        The profile the command applies (``None``: the file's).
    key : str, optional
        The stage's cache key, recorded in the run record.
    route : str
        ``"dvc"``, ``"prefect"`` or ``"cli"`` (run record only).

    Raises
    ------
    StageError
        The command exited non-zero or an output is missing (named).
    """
    import click

    command = resolve_command(stage.command)
    version = code_version_of(code_digests(stage.code))
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    with _EXCLUSIVE if stage.exclusive else contextlib.nullcontext(), use_code_version(version):
        try:
            command(**{stage.params_kw: Path(params_file)}, profile=profile, **dict(stage.call))
        except click.exceptions.Exit as exc:
            if exc.exit_code:
                raise StageError(f"stage {stage.name} failed (exit code {exc.exit_code}); see its log above") from exc
    missing = [str(o) for o in stage.all_outputs if not Path(o).exists()]
    if missing:
        raise StageError(f"stage {stage.name} finished but did not write {missing}")
    outputs = {Path(o).as_posix(): hash_path(o) for o in stage.all_outputs}
    record = {"stage": stage.name, "key": key, "route": route, "started": started.isoformat(timespec="seconds"),
              "seconds": round(time.perf_counter() - t0, 3), "host": platform.node(), "git": _git_state(),
              "code_version": version, "outputs": outputs}
    path = run_record(stage.all_outputs[0], stage.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return {"stage": stage.name, "outputs": outputs, "code_version": version}
