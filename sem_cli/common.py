"""Options and helpers shared by every ``sem-denoise`` command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sem_core.config import Params, ParamsError, load_params

__all__ = ["ParamsOpt", "ProfileOpt", "console", "err_console", "read_params", "quiet_telemetry"]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error stays on one line

ParamsOpt = Annotated[Path, typer.Option("--params", help="Parameters file.", envvar="SEM_PARAMS")]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Profile overlay from params.yaml (default: the file's `profile`).")
]


def quiet_telemetry() -> None:
    """Turn off DVC and Prefect analytics (they try the network) unless the user set them."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def read_params(path: Path, profile: str | None) -> Params:
    """Load params.yaml once, turning a config error into a clean CLI error (exit 2)."""
    try:
        return load_params(path, profile=profile)
    except ParamsError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
