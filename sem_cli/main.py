"""The ``sem-denoise`` command-line tool: one command per pipeline stage.

Each command module defines ``register(app)``. The pipeline stages (``dvc repro`` and the
Prefect tasks alike) run these command functions through ``sem-denoise stages run`` /
:mod:`sem_pipeline.run`.
"""

from __future__ import annotations

import importlib

import typer

from .common import quiet_telemetry

quiet_telemetry()

app = typer.Typer(
    name="sem-denoise",
    help="Reproducible SEM denoising: ingest, simulate, chunk, train, denoise, evaluate, report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# One line per command module; each module's register(app) adds its commands.
_COMMAND_MODULES: list[str] = [
    "ingest",
    "chunk",
    "synth",
    "evaluate",
    "report",
    "train",
    "denoise",
    "noise",
    "batch",
    "pipeline",
    "stages",
    "service",
    "review",
    "heldout",
    "adapt",
    "release",
]

for _name in _COMMAND_MODULES:
    importlib.import_module(f"sem_cli.{_name}").register(app)


@app.command("version")
def version_cmd() -> None:
    """Print the code version recorded in every output's provenance."""
    from sem_core.provenance import code_version

    typer.echo(code_version())


if __name__ == "__main__":  # pragma: no cover
    app()
