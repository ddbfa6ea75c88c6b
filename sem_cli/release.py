"""``sem-denoise release``: train the release candidates, choose on val, export the fp16 release + card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "release_cmd"]


def release_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    candidate: Annotated[Optional[list[str]], typer.Option(help="Train only this candidate (repeatable).")] = None,
    snapshots: Annotated[Optional[Path], typer.Option(help="Save each run's weights here every 500 steps.")] = None,
) -> None:
    """Train `release.candidates` x `release.seeds` on the Tin-balls training block; export the best on val."""
    import numpy as np

    from sem_core.io.zarr_store import DatasetError, open_dataset
    from sem_core.release import run_release

    cfg = read_params(params, profile)
    rel = cfg.release
    try:
        ds = open_dataset(cfg.paths.tin_balls_zarr)
    except DatasetError as exc:
        err_console.print(f"[red]error:[/red] {exc} (run `sem-denoise chunk` first)")
        raise typer.Exit(1) from exc
    noise_model = None
    if any(c.sim_copies for c in rel.candidates.values()):
        from sem_core.synth.imaging import read_noise_model

        try:
            noise_model = read_noise_model(cfg.paths.noise_model)
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc} (run `sem-denoise noise fit` first)")
            raise typer.Exit(1) from exc
    noisy, clean = np.asarray(ds.noisy[:]), np.asarray(ds.clean[:])
    split = {k: list(v) for k, v in ds.split.items()}
    try:
        result = run_release(
            noisy, clean, split=split, image_ids=[str(i) for i in ds.attrs["image_ids"]],
            split_mode=str(cfg.datasets.tin_balls.split_mode), candidates={k: c.overrides() for k, c in rel.candidates.items()},
            seeds=list(rel.seeds), common=rel.common_kwargs(), out=rel.out, noise_model=noise_model,
            ensemble=rel.ensemble, only=candidate, snapshot_dir=snapshots, log=lambda s: console.print(s, highlight=False))
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for name, row in result["table"].items():
        console.print(f"{name:<20} test aligned PSNR {row['psnr_aligned_mean']:.2f} ± {row['psnr_aligned_std']:.2f} dB "
                      f"SSIM {row['ssim_aligned_mean']:.3f}  (val {row['val_psnr_aligned_mean']:.2f} dB)", highlight=False)
    rel.report.parent.mkdir(parents=True, exist_ok=True)
    rel.report.write_text(json.dumps({"split_mode": cfg.datasets.tin_balls.split_mode, "seeds": list(rel.seeds),
                                      "common": rel.common_kwargs(), **result}, indent=2, default=str) + "\n")
    console.print(f"chosen {result['chosen']} -> {result['release']}; report {rel.report}")


def register(app: typer.Typer) -> None:
    """Add the ``release`` command to ``app``."""
    app.command("release")(release_cmd)
