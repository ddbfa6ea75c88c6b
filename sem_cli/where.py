"""Print where the pipeline's outputs are (the last line of `make run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from sem_core.config import load_params


def list_outputs(params_path: Path, profile: str | None = None) -> list[tuple[str, Path, bool]]:
    """Return ``(stage, path, exists)`` for each output of the pipeline's stages (the stage table's names)."""
    from sem_pipeline.stages import build_stages

    stages = build_stages(load_params(params_path, profile=profile))
    shown = ("summary.csv", "metrics.json")  # of the evaluation's many tables
    items = [(s.name, p) for s in stages.values() for p in (*s.outs, *s.metrics)
             if s.name != "evaluate" or p.name in shown]
    return [(label, p, p.exists()) for label, p in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    console = Console(soft_wrap=True)
    console.print("[bold]sem-denoise outputs[/bold]")
    for label, path, exists in list_outputs(args.params, args.profile):
        status = "[green]ready[/green]" if exists else "[yellow]not built[/yellow]"
        console.print(f"  {label:<30} {path.resolve()}  {status}")


if __name__ == "__main__":
    main()
