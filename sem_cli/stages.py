"""``sem-denoise stages``: the pipeline's stage table: list it, generate ``dvc.yaml``, run one stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "stages_app", "run_stage_cmd", "dvc_yaml_cmd"]

stages_app = typer.Typer(help="The pipeline's stage table (the source of dvc.yaml and of the Prefect flow).",
                         no_args_is_help=True)


@stages_app.command("list")
def list_cmd(params: ParamsOpt = Path("params.yaml"), profile: ProfileOpt = None) -> None:
    """Print every stage with its config sections, data dependencies and outputs."""
    from sem_pipeline.stages import build_stages

    for stage in build_stages(read_params(params, profile)).values():
        console.print(f"[bold]{stage.name}[/bold]: {stage.desc}")
        console.print(f"  params: {', '.join(stage.sections) or '-'}")
        console.print(f"  deps:   {', '.join(p.as_posix() for p in stage.deps) or '-'} (+{len(stage.code)} code files)")
        console.print(f"  outs:   {', '.join(p.as_posix() for p in stage.all_outputs)}")


@stages_app.command("dvc-yaml")
def dvc_yaml_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    write: Annotated[bool, typer.Option("--write", help="Write dvc.yaml instead of printing it.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when dvc.yaml differs from the table.")] = False,
    out: Annotated[Path, typer.Option("--out", help="The dvc.yaml file.")] = Path("dvc.yaml"),
) -> None:
    """Generate dvc.yaml from the stage table (print, --write or --check)."""
    from sem_pipeline.dvc_yaml import render_dvc_yaml

    text = render_dvc_yaml(read_params(params, profile))
    if check:
        current = out.read_text() if out.is_file() else ""
        if current != text:
            err_console.print(f"[red]error:[/red] {out} is stale: run `sem-denoise stages dvc-yaml --write`")
            raise typer.Exit(1)
        console.print(f"{out} is up to date")
    elif write:
        out.write_text(text)
        console.print(f"wrote {out}")
    else:
        typer.echo(text, nl=False)


@stages_app.command("run")
def run_stage_cmd(
    name: Annotated[str, typer.Argument(help="Stage name (see `sem-denoise stages list`).")],
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    record: Annotated[bool, typer.Option(
        "--record/--no-record", help="Also store the result as the Prefect task's cached result.")] = True,
    definition: Annotated[str | None, typer.Option(
        "--definition", help="Expected definition hash (dvc.yaml passes it; a mismatch means dvc.yaml is stale).")] = None,
) -> None:
    """Run one stage as `dvc repro` does; its result is also recorded in the Prefect cache (so `make run` reuses it)."""
    from sem_pipeline.keys import stage_key
    from sem_pipeline.run import StageError, execute_stage
    from sem_pipeline.stages import build_stages

    cfg = read_params(params, profile)
    stages = build_stages(cfg)
    if name not in stages:
        err_console.print(f"[red]error:[/red] unknown stage {name!r}; stages: {', '.join(stages)}")
        raise typer.Exit(2)
    stage = stages[name]
    if definition is not None and definition != stage.definition_hash:
        err_console.print(f"[red]error:[/red] stage {name} changed in the table since dvc.yaml was generated "
                          "(run `sem-denoise stages dvc-yaml --write`)")
        raise typer.Exit(2)
    try:
        key = stage_key(stage, cfg.model_dump(mode="json"))
        result = execute_stage(stage, params_file=params, profile=profile, key=key, route="dvc")
    except (StageError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if record:
        from tasks.stages import record_stage_result

        record_stage_result(key, result)


def register(app: typer.Typer) -> None:
    """Add the ``stages`` command group to ``app``."""
    app.add_typer(stages_app, name="stages")
