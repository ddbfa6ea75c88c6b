"""Chunked synthesis of large wafer scans (16384² and larger) as OME-Zarr, in bounded memory.

One wafer layout covers the whole scan; each level-0 chunk ``(ci, cj)`` is rendered on its window plus
a halo (the support of blur and the fast-axis filter), imaged with its own generator
``derive_rng(seed, "scan", ci, cj)``, cut back to the window and written. A chunk therefore depends
only on ``(layout, seed, ci, cj)``: rewriting it alone gives the same bytes, and the result does not
depend on the number of workers. Memory is a few chunks per worker.

Output (``<name>.ome.zarr``, see docs/DESIGN.md "Scans")::

    (root)          noisy multiscale image, levels 0..n_levels-1
    clean/          clean reference multiscale image
    labels/defects/ defect-type label image (codes as in the defect table)
    defects.parquet global defect table of the layout (image = 0)
    attrs["sem_denoise"]: provenance, simulator parameters, seed, complete
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sem_core.io.ome_zarr import (
    ATTRS_KEY,
    build_pyramid,
    create_label_image,
    create_multiscale,
    open_multiscale_group,
    write_level0_block,
)
from sem_core.provenance import hash_params, make_provenance
from sem_core.rng import derive_rng
from sem_core.schemas.defects import DEFECT_TYPES, DEFECTS_SCHEMA

__all__ = ["ScanChunk", "synthesize_scan", "render_scan_chunk", "chunk_grid", "DEFECT_LABEL_NAMES"]

DEFECT_LABEL_NAMES = {code: name for name, code in DEFECT_TYPES.items()}

ImagePair = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ScanChunk:
    """One synthesised level-0 chunk: ``noisy``/``clean`` (h, w) uint8 and ``mask`` (h, w) uint8."""

    ci: int
    cj: int
    noisy: np.ndarray
    clean: np.ndarray
    mask: np.ndarray


def chunk_grid(size: int, chunk: int) -> list[tuple[int, int]]:
    """Chunk indices ``(ci, cj)`` covering a ``size`` x ``size`` scan, row-major."""
    n = -(-size // chunk)
    return [(ci, cj) for ci in range(n) for cj in range(n)]


def render_scan_chunk(
    layout: Any,
    ci: int,
    cj: int,
    *,
    size: int,
    chunk: int,
    halo: int,
    seed: int,
    image_pair: ImagePair,
    pixel_size_nm: float,
) -> ScanChunk:
    """Render and image chunk ``(ci, cj)`` of a scan.

    Parameters
    ----------
    layout : WaferLayout
        Whole-scan layout; ``layout.render(rows: slice, cols: slice)`` returns a specimen with
        ``yield_map`` (float32 [0, 1]) and ``mask`` (uint8 defect codes) on that window.
    ci, cj : int
        Chunk row and column.
    size, chunk, halo : int
        Scan side, chunk side, halo width (pixels).
    seed : int
        Scan seed; the chunk's generator is ``derive_rng(seed, "scan", ci, cj)``.
    image_pair : callable
        ``image_pair(yield_map, *, rng, pixel_size_nm) -> (noisy, clean)`` uint8 (h, w) each.
    pixel_size_nm : float
        The layout's pixel size (for the imaging model's blur in nm).

    Returns
    -------
    ScanChunk
        Arrays of the chunk window (h, w) = clipped ``chunk`` x ``chunk``.
    """
    r0, c0 = ci * chunk, cj * chunk
    r1, c1 = min(r0 + chunk, size), min(c0 + chunk, size)
    if r0 >= size or c0 >= size:
        raise ValueError(f"chunk ({ci}, {cj}) lies outside a {size}² scan with {chunk}² chunks")
    wr0, wc0 = max(0, r0 - halo), max(0, c0 - halo)
    wr1, wc1 = min(size, r1 + halo), min(size, c1 + halo)
    spec = layout.render(slice(wr0, wr1), slice(wc0, wc1))
    noisy, clean = image_pair(np.asarray(spec.yield_map, dtype=np.float32), rng=derive_rng(seed, "scan", ci, cj),
                              pixel_size_nm=pixel_size_nm)
    cut = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
    return ScanChunk(
        ci=ci,
        cj=cj,
        noisy=np.ascontiguousarray(noisy[cut]),
        clean=np.ascontiguousarray(clean[cut]),
        mask=np.ascontiguousarray(np.asarray(spec.mask, dtype=np.uint8)[cut]),
    )


def synthesize_scan(
    path: str | Path,
    *,
    size: int,
    seed: int,
    chunk: int = 1024,
    halo: int = 32,
    pattern: str = "lines",
    pixel_size_nm: float = 4.0,
    n_levels: int = 4,
    workers: int = 1,
    layout_kwargs: Mapping[str, Any] | None = None,
    imaging_params: Mapping[str, Any] | None = None,
    noise_model: Any = None,
    make_layout: Callable[..., Any] | None = None,
    image_pair: ImagePair | None = None,
    params_for_provenance: Any = None,
    progress: bool = False,
) -> Path:
    """Synthesise a ``size`` x ``size`` wafer scan chunk by chunk into ``path`` (``.ome.zarr``).

    Parameters
    ----------
    path : str or Path
        Output folder; built in ``<path>.partial`` and renamed into place when complete.
    size, chunk, halo : int
        Scan side, level-0 chunk side, halo (pixels).
    seed : int
        Seed of the layout (``derive_rng(seed, "scan", "layout")``) and of every chunk's noise.
    pattern : str
        Layout family (``"lines"`` or ``"contacts"``).
    pixel_size_nm : float
        Level-0 pixel size, written as the NGFF scale.
    n_levels : int
        Pyramid levels.
    workers : int
        Processes rendering and writing chunks (each builds the layout once; the output does not
        depend on it). Memory: a few chunks per worker.
    layout_kwargs : mapping, optional
        Extra keyword arguments of ``make_wafer_layout``.
    imaging_params, noise_model : optional
        Imaging model: a fitted noise model (preferred) or forward-model parameters; see
        :func:`sem_core.synth.dataset.make_image_pair`.
    make_layout, image_pair : callable, optional
        Replace the layout factory / imaging function (tests, other specimens).
    params_for_provenance : optional
        The parameters to hash into the provenance record (default: this call's arguments).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if make_layout is None:
        from sem_core.synth.wafers import make_wafer_layout as make_layout
    if image_pair is None:
        from sem_core.synth.dataset import make_image_pair

        image_pair = make_image_pair(noise_model=noise_model, imaging_params=imaging_params)
    layout_args = dict(shape=(size, size), seed=int(derive_rng(seed, "scan", "layout").integers(2**31)),
                       pattern=pattern, pixel_size_nm=pixel_size_nm, **dict(layout_kwargs or {}))
    simulator = {
        "size": size, "chunk": chunk, "halo": halo, "pattern": pattern, "pixel_size_nm": pixel_size_nm,
        "seed": seed, "layout_kwargs": dict(layout_kwargs or {}), "imaging_params": dict(imaging_params or {}),
        "noise_model": _describe(noise_model),
    }
    attrs = {
        "provenance": make_provenance(
            params=params_for_provenance if params_for_provenance is not None else simulator,
            inputs_hash=hash_params(simulator), extra={"stage": "synth_scan"},
        ),
        "simulator": simulator,
        "complete": False,
    }
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shape, chunks = (size, size), (chunk, chunk)
    common = dict(shape=shape, chunks=chunks, n_levels=n_levels, pixel_size_nm=pixel_size_nm)
    noisy_g = create_multiscale(tmp, dtype="uint8", name="noisy", attrs=attrs, **common)
    clean_g = create_multiscale(tmp, dtype="uint8", name="clean", component="clean", **common)
    label_g = create_label_image(tmp, name="defects", label_names=DEFECT_LABEL_NAMES, **common)

    state = dict(make_layout=make_layout, layout_args=layout_args, folder=tmp, size=size, chunk=chunk,
                 halo=halo, seed=seed, image_pair=image_pair, pixel_size_nm=pixel_size_nm)
    grid = chunk_grid(size, chunk)
    try:
        with _progress(progress, len(grid), f"scan {size}²") as advance:
            if workers <= 1:
                local = _prepare_writer(state)
                for idx in grid:
                    _write_chunk(idx, local)
                    advance()
                layout = local["layout"]
            else:
                with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(state,)) as pool:
                    for _ in pool.map(_write_chunk, grid):
                        advance()
                layout = make_layout(**layout_args)
        build_pyramid(noisy_g, method="mean", workers=workers)
        build_pyramid(clean_g, method="mean", workers=workers)
        build_pyramid(label_g, method="max", workers=workers)
        defects = getattr(layout, "defects", None)
        if defects is not None:
            _write_scan_defects(tmp, defects)
        noisy_g.attrs[ATTRS_KEY] = {**attrs, "complete": True}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


_WORKER: dict[str, Any] = {}
"""State of a chunk-writer process: the layout (built once per process) and the open groups."""


def _prepare_writer(state: dict[str, Any]) -> dict[str, Any]:
    out = dict(state)
    out["layout"] = state["make_layout"](**state["layout_args"])
    out["groups"] = [
        open_multiscale_group(state["folder"], component=c, mode="r+") for c in ("", "clean", "labels/defects")
    ]
    return out


def _init_worker(state: dict[str, Any]) -> None:
    _WORKER.clear()
    _WORKER.update(_prepare_writer(state))


def _write_chunk(idx: tuple[int, int], w: dict[str, Any] | None = None) -> None:
    w = _WORKER if w is None else w
    ch = render_scan_chunk(w["layout"], *idx, size=w["size"], chunk=w["chunk"], halo=w["halo"], seed=w["seed"],
                           image_pair=w["image_pair"], pixel_size_nm=w["pixel_size_nm"])
    r, c = idx[0] * w["chunk"], idx[1] * w["chunk"]
    for group, block in zip(w["groups"], (ch.noisy, ch.clean, ch.mask)):
        write_level0_block(group, block, row=r, col=c)


def _write_scan_defects(folder: Path, defects: Any) -> None:
    df = DEFECTS_SCHEMA.validate(defects.assign(image=0))
    df.to_parquet(folder / "defects.parquet", index=False)


def _describe(noise_model: Any) -> Any:
    if noise_model is None:
        return None
    if hasattr(noise_model, "model_dump"):
        return noise_model.model_dump(mode="json")
    if hasattr(noise_model, "to_dict"):
        return noise_model.to_dict()
    return str(noise_model)


class _progress:
    """Tiny context manager around rich.progress (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self._p = Progress(transient=True)
        self._p.__enter__()
        task = self._p.add_task(self.label, total=self.total)
        return lambda: self._p.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._p.__exit__(*exc)
