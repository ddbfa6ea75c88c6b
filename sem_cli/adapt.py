"""``sem-denoise adapt``: fine-tune a U-Net on a new batch's noisy images (no clean images needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "adapt_cmd"]


def adapt_cmd(
    input: Annotated[Path, typer.Argument(help="Folder of SEM TIFF/PNG, one file, or a Zarr/OME-Zarr store.")],
    out: Annotated[Path, typer.Option("--out", help="Adapted model: .safetensors (fp16 release + card) or .ckpt.")],
    from_: Annotated[Path | None, typer.Option("--from", help="Starting model (default: paths.release_model).")] = None,
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    steps: Annotated[int | None, typer.Option(help="Override adapt.steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed (default: params seed).")] = None,
    channel: Annotated[str, typer.Option(help="RGB to grey: auto, R, G, B, mean (as ingest).")] = "auto",
) -> None:
    """x-run Noise2Self fine-tuning; the adapted weights are kept only if the SURE guard estimates a gain."""
    import torch

    from sem_core.adapt import adapt_checkpoint, read_adapt_images

    cfg = read_params(params, profile)
    ad = cfg.adapt
    source = from_ or cfg.paths.release_model
    if not Path(source).is_file():
        err_console.print(f"[red]error:[/red] starting model {source} not found (pass --from)")
        raise typer.Exit(1)
    if out.suffix not in (".safetensors", ".ckpt"):
        err_console.print(f"[red]error:[/red] --out {out}: use a .safetensors or .ckpt name")
        raise typer.Exit(2)
    try:
        images, names = read_adapt_images(input, channel=channel, max_images=ad.max_images)
    except (ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"adapt: {len(images)} images from {input} ({images[0].shape[0]}x{images[0].shape[1]} first), "
                  f"start {source}, {steps or ad.steps} steps on {torch.get_num_threads()} threads")

    def progress(info: dict) -> None:
        if info["step"] % 10 == 0 or "sure_gain_grey2" in info:
            extra = (f"  guard: SURE MSE {-info['sure_gain_grey2']:+.2f} grey²" if "sure_gain_grey2" in info
                     else "")
            console.print(f"  step {info['step']:>4}/{info['steps']}  loss {info['loss']:.6f}  "
                          f"{info['seconds']:.0f} s{extra}", highlight=False)

    kwargs = ad.library_kwargs()
    if steps is not None:
        kwargs["steps"] = steps
    try:
        report = adapt_checkpoint(source, images, out, seed=cfg.seed if seed is None else seed,
                                  input_names=names, input_path=str(input), progress=progress, **kwargs)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    verdict = ("kept the adapted weights" if report["kept"] else
               f"kept the starting weights (estimated gain below {kwargs['min_gain_grey2']:g} grey²)")
    console.print(f"{verdict}: SURE MSE {-report['estimated_gain_grey2']:+.2f} grey² (step {report['best_step']}), "
                  f"{report['seconds']:.0f} s -> {out}  model hash {report['model_hash'][:16]}")


def register(app: typer.Typer) -> None:
    """Add the ``adapt`` command to ``app``."""
    app.command("adapt")(adapt_cmd)
