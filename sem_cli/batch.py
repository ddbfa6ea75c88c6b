"""``sem-denoise batch``: process the inbox once (the flow the scheduled deployment runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import ParamsOpt, ProfileOpt, console, err_console

__all__ = ["register", "batch_cmd"]


def batch_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    classical: Annotated[str | None, typer.Option("--classical", help="Classical method (default: denoise.method).")] = None,
    unet: Annotated[bool, typer.Option("--unet/--no-unet", help="Also denoise with the production U-Net (paths.release_model).")] = True,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="Inbox folder (default: paths.inbox_dir).")] = None,
    outputs: Annotated[Path | None, typer.Option("--outputs", help="Outputs folder (default: paths.outputs_dir).")] = None,
) -> None:
    """Denoise every new batch folder of the inbox; exit 1 if a batch failed (it is retried next run)."""
    from flows.batch import process_batches
    from tasks.ledger import read_ledger

    state = process_batches(params_path=str(params), profile=profile, classical=classical, use_unet=unet,
                            inbox_dir=str(inbox) if inbox else None, outputs_dir=str(outputs) if outputs else None,
                            return_state=True)
    from sem_core.config import load_params

    out_dir = outputs or load_params(params, profile=profile).paths.outputs_dir
    ledger = read_ledger(out_dir)["batches"] if Path(out_dir).exists() else {}
    table = Table(title=f"batches in {out_dir}")
    for col in ("batch", "status", "items", "failed items", "finished"):
        table.add_column(col)
    for name, entry in sorted(ledger.items()):
        table.add_row(name, entry.get("status", "?"), str(entry.get("n_items", "")), str(entry.get("n_failed", "")),
                      str(entry.get("finished", "")))
    console.print(table)
    if not state.is_completed():
        err_console.print(f"[red]error:[/red] {state.message}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to ``app``."""
    app.command("batch")(batch_cmd)
