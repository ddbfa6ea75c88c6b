"""``sem-denoise heldout``: score baselines and any model on the real held-out test block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "heldout_cmd"]


def heldout_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="NAME=PATH (.safetensors or .ckpt); repeatable.")] = None,
    ensemble: Annotated[str, typer.Option(help="Comma-separated self-ensembles per model: none, scan, dihedral.")] = "none,dihedral",
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Noisy, Gaussian, median.")] = True,
    bm3d: Annotated[bool, typer.Option("--bm3d/--no-bm3d", help="BM3D coloured and tuned (about 10 s/image).")] = True,
    split: Annotated[str, typer.Option(help="Split of the store to score (val for choosing, test to report).")] = "test",
    out: Annotated[Path | None, typer.Option("--out", help="JSON results.")] = None,
) -> None:
    """Score methods on the Tin-balls held-out block (aligned and raw; BM3D fitted on the training block)."""
    from sem_core.checkpoint import load_model
    from sem_core.evaluate.heldout import check_overlap, make_baseline_methods, score_methods
    from sem_core.io.zarr_store import DatasetError, open_dataset
    from sem_core.models.predict import predict_image

    cfg = read_params(params, profile)
    try:
        ds = open_dataset(cfg.paths.tin_balls_zarr)
    except DatasetError as exc:
        err_console.print(f"[red]error:[/red] {exc} (run `sem-denoise chunk` first)")
        raise typer.Exit(1) from exc
    if split not in ds.split:
        err_console.print(f"[red]error:[/red] unknown split {split!r}; the store has {sorted(ds.split)}")
        raise typer.Exit(2)
    ids = [str(i) for i in ds.attrs["image_ids"]]
    idx = ds.split[split]
    noisy = [ds.noisy[i] for i in idx]
    clean = [ds.clean[i] for i in idx]
    train = ds.split["train"]
    methods = {}
    if baselines or bm3d:
        base = make_baseline_methods([ds.noisy[i] for i in train] if bm3d else [],
                                     [ds.clean[i] for i in train] if bm3d else [], bm3d=bm3d)
        methods = {k: v for k, v in base.items() if baselines or k.startswith("bm3d")}
    overlaps = {}
    for spec in model or []:
        name, sep, path = spec.partition("=")
        if not sep:
            err_console.print(f"[red]error:[/red] --model {spec!r}: expected NAME=PATH")
            raise typer.Exit(2)
        try:
            net, card = load_model(path)
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        seen = check_overlap(card, [ids[i] for i in idx], image_ids=ids)
        if seen:
            overlaps[name] = seen
            err_console.print(f"[yellow]warning:[/yellow] {name} was trained/validated on held-out images {seen}")
        for ens in ensemble.split(","):
            label = name if ens == "none" else f"{name}_{ens}"
            methods[label] = lambda im, m=net, e=ens: predict_image(m, im, ensemble=e)

    def report(name: str, r: dict) -> None:
        console.print(f"{name:<24} aligned PSNR {r['psnr_aligned']:6.2f} ± {r['psnr_aligned_std']:.2f} dB  "
                      f"SSIM {r['ssim_aligned']:.3f} | raw PSNR {r['psnr_raw']:6.2f}  SSIM {r['ssim_raw']:.3f}  "
                      f"{r['seconds_per_image']:.2f} s/image")

    console.print(f"tin_balls {split} block: images {[ids[i] for i in idx]} (training block {ids[train[0]]}..{ids[train[-1]]})")
    results = score_methods(methods, noisy, clean, report=report)
    summary = {"dataset": str(cfg.paths.tin_balls_zarr), "split": split, "split_mode": cfg.datasets.tin_balls.split_mode,
               "indices": [int(i) for i in idx], "image_ids": [ids[i] for i in idx],
               "protocol": "aligned (shift from the noisy image, whole pixels, offset removed) and raw; 8 px border",
               "overlap": overlaps, "results": results}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"-> {out}")


def register(app: typer.Typer) -> None:
    """Add the ``heldout`` command to ``app``."""
    app.command("heldout")(heldout_cmd)
