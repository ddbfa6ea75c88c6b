"""``sem-denoise pipeline``: run the whole Prefect pipeline flow (ephemeral Prefect, local Dask)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from .common import ParamsOpt, ProfileOpt, console, err_console

__all__ = ["register", "pipeline_cmd", "parse_overrides"]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=0.01", "denoise.method=tv"]`` -> ``{"train": {"lr": 0.01}, "denoise": {"method": "tv"}}``.

    Values are parsed as YAML (numbers, booleans, lists).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE with a dotted KEY, got {item!r}")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def pipeline_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    sets: Annotated[list[str], typer.Option("--set", help="Config override KEY=VALUE, e.g. train.steps=50 (repeatable).")] = [],  # noqa: B006
    train: Annotated[bool, typer.Option("--train/--no-train", help="Train and use the U-Net.")] = True,
) -> None:
    """Every stage of the stage table (the same as `dvc repro`), each cached by content."""
    from flows.pipeline import pipeline

    state = pipeline(params_path=str(params), profile=profile, overrides=parse_overrides(sets) or None, train=train,
                     return_state=True)
    if not state.is_completed():
        err_console.print(f"[red]error:[/red] pipeline failed: {state.message}")
        raise typer.Exit(1)
    result = state.result()
    console.print(f"report: {Path(result['report']).resolve()}")
    for name, stage in result["stages"].items():
        console.print(f"{name}: {', '.join(stage['outputs'])}")


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` command to ``app``."""
    app.command("pipeline")(pipeline_cmd)
