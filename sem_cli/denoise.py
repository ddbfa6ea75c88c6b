"""``sem-denoise denoise``: denoise SEM images, folders of them, or large Zarr / OME-Zarr scans."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register", "denoise_cmd", "is_zarr_path", "check_image_dtype"]


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


def _one_line(exc: BaseException) -> str:
    """An exception as one line (the first line of its message; its cause stays chained)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_image_dtype(dtype: Any, source: Path) -> None:
    """Refuse anything but integer or floating-point images (booleans, strings, objects), naming ``source``."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise TypeError(f"{source}: array dtype {dtype} is not an integer or floating-point image")


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
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="threads, processes, sync, or a dask.distributed address tcp://HOST:PORT (default: denoise.scheduler, else $SEM_DENOISE_SCHEDULER, else threads).")] = None,
    chunk: Annotated[int | None, typer.Option("--chunk", help="Block side of tiled denoising (default: denoise.chunk_px).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local scheduler workers.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip blocks finished by an interrupted run.")] = True,
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
) -> None:
    """Denoise INPUT into OUTPUT with one method; geometry and dtype range are kept."""
    from sem_core.denoise.base import describe_denoiser, list_denoisers, to_unit_float
    from sem_core.denoise.prepare import crop_center
    from sem_core.provenance import make_provenance

    from .methods import SAMPLE_PX, configured_denoiser

    cfg = read_params(params, profile)
    dcfg = cfg.denoise
    name = method or dcfg.method
    if name not in list_denoisers():
        raise _fail(f"unknown method {name!r}; known: {list_denoisers()}")
    ckpt = None
    if name == "unet":
        ckpt = model or cfg.paths.release_model
        if not Path(ckpt).is_file():
            raise _fail(f"U-Net checkpoint {ckpt} not found: train and release a model first, or pass --model")
    if not input.exists():
        raise _fail(f"input {input} does not exist")

    zarr_in = is_zarr_path(input)
    sample = clean_sample = None
    try:
        if zarr_in:
            from sem_core.denoise_zarr import open_source_array

            arr, _ = open_source_array(input)
            check_image_dtype(arr.dtype, input)
            sample = to_unit_float(np.asarray(crop_center_lazy(arr, SAMPLE_PX)))
            if (calibration or getattr(dcfg.calibration.get(name), "mode", "fixed")) == "clean_reference":
                from sem_core.io.ome_zarr import open_multiscale

                clean_sample = to_unit_float(np.asarray(crop_center_lazy(open_multiscale(input, component="clean"), SAMPLE_PX)))
        else:
            from sem_core.denoise.files import list_image_files
            from sem_core.io.sem_tiff import SemReadError, read_sem_image

            files = list_image_files(input)
            if not files:
                raise _fail(f"no SEM images (.tif, .tiff, .png) in {input}", code=1)
            first_error = None
            for f in files:
                try:
                    sample = to_unit_float(crop_center(read_sem_image(f).data, size=SAMPLE_PX))
                    break
                except SemReadError as exc:
                    first_error = first_error or exc
            if sample is None:
                raise _fail(f"no readable SEM image in {input}: {_one_line(first_error)}", code=1)
        denoiser, info = configured_denoiser(dcfg, name, sample=sample, clean_sample=clean_sample,
                                             overrides=_parse_sets(sets), calibration=calibration, checkpoint=ckpt)
    except (ValueError, TypeError, FileNotFoundError, ImportError, OSError) as exc:
        raise _fail(_one_line(exc), code=1) from exc
    mode = info["calibration"]["mode"] if info["calibration"] else "fixed"
    if info["calibration"]:
        console.print(f"calibrated {name} ({mode}): {info['calibration']['chosen']}")
    desc = describe_denoiser(denoiser)
    extra = {"calibration": info["calibration"], "noise_acf": info["noise_acf"]}

    if zarr_in:
        if not is_zarr_path(output):
            raise _fail(f"a Zarr input needs a .zarr / .ome.zarr output, got {output}")
        from sem_core.denoise.tiled import choose_chunk
        from sem_core.denoise_zarr import denoise_zarr, is_cluster_address

        size = choose_chunk(chunk, denoiser=denoiser, default_px=dcfg.chunk_px)
        sched = scheduler or dcfg.scheduler or os.environ.get("SEM_DENOISE_SCHEDULER") or None
        try:
            run = denoise_zarr(input, output, denoiser=denoiser, chunks=size, scheduler=sched,
                               num_workers=workers or dcfg.num_workers, resume=resume, progress=True,
                               provenance_extra=extra)
        except (ValueError, FileNotFoundError) as exc:
            raise _fail(str(exc)) from exc
        except OSError as exc:  # e.g. a Dask scheduler address nobody answers at
            where = f" on the Dask scheduler {sched}" if is_cluster_address(sched) else ""
            raise _fail(f"denoising {input}{where} failed: {exc}") from exc
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
    from sem_core.io.ome_zarr import write_image
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
        write_image(output, out, pixel_size_nm=img.meta.pixel_size_nm or 1.0, name=f.stem, component=f.stem,
                    attrs={**attrs, "source": str(f), "source_sha256": img.meta.sha256})
        results.append({"input": str(f), "output": f"{output}/{f.stem}", "shape": list(out.shape)})
    return results


def register(app: typer.Typer) -> None:
    """Add the ``denoise`` command to ``app``."""
    app.command("denoise")(denoise_cmd)
