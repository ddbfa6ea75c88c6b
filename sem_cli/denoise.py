"""``sem-denoise denoise``: denoise SEM images, folders of them, or large Zarr / OME-Zarr scans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "denoise_cmd", "is_zarr_path"]


def is_zarr_path(path: Path) -> bool:
    """A Zarr store: suffix ``.zarr`` (``.ome.zarr`` included) or a folder holding Zarr metadata."""
    return path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zarray").is_file()


def _parse_sets(items: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def denoise_cmd(
    input: Annotated[Path, typer.Argument(help="SEM TIFF/PNG, a folder of them, a Zarr array or an OME-Zarr scan.")],
    output: Annotated[Path, typer.Argument(help="Folder of TIFFs, or a .zarr / .ome.zarr store (chosen by suffix).")],
    method: Annotated[str | None, typer.Option("--method", "-m", help="gaussian, median, bilateral, nlm, tv, wavelet, bm3d, unet (default: denoise.method).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="U-Net checkpoint (default: paths.release_model).")] = None,
    sets: Annotated[list[str], typer.Option("--set", help="Method parameter override KEY=VALUE (repeatable).")] = [],  # noqa: B006
    calibration: Annotated[str | None, typer.Option("--calibration", help="fixed, j_invariant, j_invariant_x or clean_reference (default: from params).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="threads, processes, sync, or a dask.distributed address tcp://HOST:PORT.")] = None,
    chunk: Annotated[int | None, typer.Option("--chunk", help="Block side of tiled denoising (default: denoise.chunk_px).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local scheduler workers.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip blocks finished by an interrupted run.")] = True,
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
) -> None:
    """Denoise INPUT into OUTPUT with one method; geometry and dtype range are kept."""
    from sem_core.denoise.base import describe_denoiser, list_denoisers, to_unit_float
    from sem_core.denoise.prepare import crop_center, prepare_denoiser
    from sem_core.provenance import make_provenance

    cfg = read_params(params, profile)
    dcfg = cfg.denoise
    name = method or dcfg.method
    if name not in list_denoisers():
        raise _fail(f"unknown method {name!r}; known: {list_denoisers()}")
    mparams = {**dcfg.method_params(name), **_parse_sets(sets)}
    if name == "unet":
        ckpt = model or cfg.paths.release_model
        if not Path(ckpt).is_file():
            raise _fail(f"U-Net checkpoint {ckpt} not found: train and release a model first, or pass --model")
        mparams["checkpoint"] = str(ckpt)
    cal = dcfg.calibration.get(name)
    mode = calibration or (cal.mode if cal else "fixed")
    grid = cal.grid if cal else {}
    if mode != "fixed" and not grid:
        raise _fail(f"calibration {mode!r} for {name!r} needs a grid under denoise.calibration.{name}.grid")
    if not input.exists():
        raise _fail(f"input {input} does not exist")

    zarr_in = is_zarr_path(input)
    sample = clean_sample = None
    try:
        if zarr_in:
            from sem_core.parallel import open_source_array

            arr, _ = open_source_array(input)
            sample = to_unit_float(np.asarray(crop_center_lazy(arr, 256)))
            if mode == "clean_reference":
                from sem_core.io.ome_zarr import open_multiscale

                clean_sample = to_unit_float(np.asarray(crop_center_lazy(open_multiscale(input, component="clean"), 256)))
        else:
            from sem_core.denoise.files import list_image_files
            from sem_core.io.sem_tiff import SemReadError, read_sem_image

            files = list_image_files(input)
            for f in files:
                try:
                    sample = to_unit_float(crop_center(read_sem_image(f).data, size=256))
                    break
                except SemReadError:
                    continue
        denoiser, info = prepare_denoiser(
            name, params=mparams, sample=sample, clean_sample=clean_sample, calibration_mode=mode, grid=grid,
            corr_len_px=dcfg.calibration_corr_len_px, run_px=dcfg.calibration_run_px,
            acf_max_lag=dcfg.bm3d.acf_max_lag,
        )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise _fail(str(exc)) from exc
    if info["calibration"]:
        console.print(f"calibrated {name} ({mode}): {info['calibration']['chosen']}")
    desc = describe_denoiser(denoiser)
    extra = {"calibration": info["calibration"], "noise_acf": info["noise_acf"]}

    if zarr_in:
        if not is_zarr_path(output):
            raise _fail(f"a Zarr input needs a .zarr / .ome.zarr output, got {output}")
        from sem_core.denoise.tiled import choose_chunk
        from sem_core.parallel import denoise_zarr

        size = choose_chunk(chunk, denoiser=denoiser, default_px=dcfg.chunk_px)
        try:
            run = denoise_zarr(input, output, denoiser=denoiser, chunks=size, scheduler=scheduler or dcfg.scheduler,
                               num_workers=workers or dcfg.num_workers, resume=resume, progress=True,
                               provenance_extra=extra)
        except (ValueError, FileNotFoundError) as exc:
            raise _fail(str(exc)) from exc
        console.print(f"{name}: {run.blocks_computed} blocks computed, {run.blocks_skipped} skipped "
                      f"({run.blocks_total} total, chunk {size}) in {run.seconds:.1f} s -> {output}")
        return

    from sem_core.denoise.files import denoise_files
    from sem_core.provenance import hash_tree

    attrs = {"provenance": make_provenance(params=desc, inputs_hash=hash_tree(files),
                                           extra={"stage": "denoise", **desc, **extra})}
    if is_zarr_path(output):
        results = _files_to_zarr(files, output, denoiser=denoiser, attrs=attrs, chunk_px=chunk or dcfg.chunk_px,
                                 num_workers=workers or dcfg.num_workers)
    else:
        results = denoise_files(files, output, denoiser=denoiser, attrs=attrs, chunk_px=chunk or dcfg.chunk_px,
                                num_workers=workers or dcfg.num_workers)
        output.mkdir(parents=True, exist_ok=True)
        (output / "denoise_report.json").write_text(json.dumps(results, indent=2) + "\n")
    bad = [r for r in results if "error" in r]
    for r in bad:
        err_console.print(f"[yellow]skipped:[/yellow] {r['error']}")
    console.print(f"{name}: {len(results) - len(bad)} of {len(results)} images denoised -> {output}")
    if results and len(bad) == len(results):
        raise typer.Exit(1)


def crop_center_lazy(arr, size: int):
    """Central ``size²`` crop of a (lazy) 2-D array without reading the rest."""
    h, w = arr.shape
    r0, c0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return arr[r0 : r0 + size, c0 : c0 + size]


def _files_to_zarr(files: list[Path], output: Path, *, denoiser, attrs: dict, chunk_px: int,
                   num_workers: int | None) -> list[dict]:
    """Each image as a multiscale image ``<stem>`` in one OME-Zarr store; bad files reported."""
    from sem_core.denoise.base import from_unit_float, to_unit_float
    from sem_core.denoise.tiled import denoise_tiled
    from sem_core.io.ome_zarr import build_pyramid, create_multiscale, write_level0_block
    from sem_core.io.sem_tiff import SemReadError, read_sem_image

    results = []
    for f in files:
        try:
            img = read_sem_image(f)
        except SemReadError as exc:
            results.append({"input": str(f), "error": str(exc)})
            continue
        den = denoise_tiled(to_unit_float(img.data), denoiser=denoiser, chunk_px=chunk_px, num_workers=num_workers)
        out = from_unit_float(den, img.data.dtype)
        levels = max(1, min(4, int(np.log2(max(1, min(out.shape) / 128))) + 1)) if min(out.shape) >= 128 else 1
        group = create_multiscale(output, shape=out.shape, dtype=out.dtype, chunks=(1024, 1024), n_levels=levels,
                                  pixel_size_nm=img.meta.pixel_size_nm or 1.0, name=f.stem,
                                  attrs={**attrs, "source": str(f), "source_sha256": img.meta.sha256},
                                  component=f.stem)
        write_level0_block(group, out, row=0, col=0)
        build_pyramid(group)
        results.append({"input": str(f), "output": f"{output}/{f.stem}", "shape": list(out.shape)})
    return results


def register(app: typer.Typer) -> None:
    """Add the ``denoise`` command to ``app``."""
    app.command("denoise")(denoise_cmd)
