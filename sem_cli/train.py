"""``sem-denoise train``: train one named experiment of the U-Net ladder on a dataset Zarr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "train_cmd"]


def train_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", help="Name in train.experiments.")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="tin_balls | wafers (default: train.dataset).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: the project seed; adds _s<seed>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <run dir>/last.ckpt.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: models/<exp>_<dataset>[_s<seed>]).")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads (default: torch's).")] = None,
) -> None:
    """Train a U-Net experiment; writes last.ckpt, best.ckpt, metrics.csv and metrics.json."""
    import torch

    from sem_core.train import train_model
    from sem_pipeline.paths import pipeline_paths

    cfg = read_params(params, profile)
    tc = cfg.train
    name = experiment or tc.experiment
    ds_name = dataset or tc.dataset
    if ds_name not in ("tin_balls", "wafers"):
        err_console.print(f"[red]error:[/red] --dataset must be tin_balls or wafers, got {ds_name!r}")
        raise typer.Exit(2)
    try:
        model_kwargs, loss_kwargs = tc.resolve(name)
    except KeyError as exc:
        err_console.print(f"[red]error:[/red] {exc.args[0]}")
        raise typer.Exit(2) from exc
    exp = tc.experiments[name]
    paths = pipeline_paths(cfg)
    real_path = paths.dataset_zarr(ds_name)
    data_path = exp.train_data or real_path
    run_dir = out or paths.run_dir(ds_name, experiment=name, seed=seed)
    run_seed = cfg.seed if seed is None else seed
    init_from = exp.init_from.format(seed=run_seed) if exp.init_from else None
    previous_threads = torch.get_num_threads()
    if threads:  # CPU float sums depend on the thread count: the pipeline fixes it (byte-identical checkpoints)
        torch.set_num_threads(threads)
    console.print(f"train {name} on {data_path} (validate on {real_path}) -> {run_dir}\n  model {model_kwargs}\n"
                  f"  loss {loss_kwargs}")
    try:
        result = train_model(
            dataset_path=data_path, out_dir=run_dir, experiment_name=name, model_kwargs=model_kwargs,
            loss_kwargs=loss_kwargs, patch_size=tc.patch_size, batch_size=tc.batch_size, steps=tc.steps,
            steps_per_epoch=tc.steps_per_epoch, lr=tc.lr, weight_decay=tc.weight_decay, schedule=tc.schedule,
            grad_clip=tc.grad_clip, early_stopping_patience=tc.early_stopping_patience, val_crop=tc.val_crop,
            augment=tc.augment_for(name), defect_fraction=tc.defect_fraction, ema_decay=tc.ema_decay,
            align_pairs=tc.align_pairs, val_dataset_path=real_path if exp.train_data else None,
            seed=run_seed, init_from=init_from,
            device=tc.device, compile_model=tc.compile, resume=resume, progress=True,
        )
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        torch.set_num_threads(previous_threads)
    console.print(
        f"done: {result.steps} steps, {result.epochs} epochs in {result.seconds:.1f} s; best val loss "
        f"{result.best_val_loss:.4f} (epoch {result.best_epoch}){' [stopped early]' if result.stopped_early else ''}"
        f" -> {result.out_dir}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_cmd)
