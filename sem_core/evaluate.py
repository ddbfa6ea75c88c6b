"""Evaluation: score denoisers on datasets into validated per-image tables, and sweep the dose.

Images are scored on the unit scale (``sem_core.denoise.to_unit_float``: integer images divided
by their dtype's maximum), with ``data_range`` = the span of the stored bit depth on that scale
(1.0 for 8-bit in uint8). A denoiser is any callable mapping an (H, W) float32 unit-scale image to
an (H, W) image; registered ``sem_core.denoise`` methods are applied with mirror padding by their
``halo`` (``denoise_image``).

Aggregation: :func:`summarize_metrics` (mean, std, 95 % CI per dataset x method x experiment) and
:func:`write_metrics` (Parquet + CSV tables, a flat DVC metrics JSON, provenance).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .denoise.base import denoise_image, to_unit_float
from .metrics import (
    compute_cnr,
    compute_edge_preservation,
    compute_fsim,
    compute_ms_ssim,
    compute_psnr,
    compute_residual_structure,
    compute_ssim,
    compute_uiqi,
    derive_cnr_masks,
    measure_defects,
    score_aligned,
    summarize_defects,
)
from .schemas.metrics import DEFECT_METRICS_SCHEMA, DOSE_SCHEMA, METRIC_COLUMNS, METRICS_SCHEMA, SUMMARY_SCHEMA

__all__ = [
    "DenoiseFn",
    "EvaluationResult",
    "identity_denoiser",
    "score_image",
    "evaluate_method",
    "evaluate_dataset",
    "sweep_dose",
    "summarize_metrics",
    "write_metrics",
    "metric_label",
    "read_metrics",
    "concat_defects",
]

log = logging.getLogger(__name__)

DenoiseFn = Callable[[np.ndarray], np.ndarray]


def identity_denoiser(image: np.ndarray) -> np.ndarray:
    """The 'noisy' baseline: returns its input (what doing nothing scores)."""
    return np.asarray(image, dtype=np.float32)


def _apply(denoiser: Any, image: np.ndarray) -> np.ndarray:
    if hasattr(denoiser, "halo") and hasattr(denoiser, "name"):
        return denoise_image(image, denoiser=denoiser)
    return np.asarray(denoiser(image), dtype=np.float32)


@dataclass
class EvaluationResult:
    """Per-image metric table, per-item errors and a few kept outputs (for report panels).

    Attributes
    ----------
    table : DataFrame validated by ``METRICS_SCHEMA``
    errors : list of dict ``{dataset, method, experiment, image_index, error}``
    outputs : dict ``(method, experiment, image_index) -> (H, W) float32`` unit-scale output
    defects : DataFrame validated by ``DEFECT_METRICS_SCHEMA`` (empty without defect tables)
    """

    table: pd.DataFrame
    errors: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict)
    defects: pd.DataFrame = field(default_factory=lambda: _empty(DEFECT_METRICS_SCHEMA))


def _empty(schema: Any) -> pd.DataFrame:
    return schema.validate(pd.DataFrame({c: pd.Series(dtype=object) for c in schema.columns}))


def score_image(
    output: np.ndarray,
    clean: np.ndarray,
    *,
    data_range: float,
    noisy: np.ndarray | None = None,
    align: bool = False,
    border_px: int = 8,
    mask: np.ndarray | None = None,
    boxes: pd.DataFrame | Sequence[Sequence[int]] | None = None,
    defect_margin_px: int = 4,
    cnr_erode_px: int = 3,
    uiqi_window: int = 8,
    return_defects: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """Every metric of one output against its clean reference.

    Parameters
    ----------
    output, clean : (H, W) float arrays
    data_range : float
    noisy : (H, W) array, optional
        The input; needed for ``residual_structure`` (NaN without it).
    align : bool
        Also score after alignment (:func:`sem_core.metrics.score_aligned`); else the aligned
        columns are NaN.
    boxes, mask
        Defect boxes (and label image) for the defect columns; none gives ``n_defects = 0``.

    Returns
    -------
    dict with every key of ``METRIC_COLUMNS``; with ``return_defects`` also the per-defect
    DataFrame of :func:`sem_core.metrics.measure_defects`.
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(clean, dtype=np.float64)
    nan = float("nan")
    fg, bg = derive_cnr_masks(ref, erode_px=cnr_erode_px)
    row: dict[str, float] = {
        "psnr": compute_psnr(out, ref, data_range=data_range),
        "ssim": compute_ssim(out, ref, data_range=data_range),
        "ms_ssim": compute_ms_ssim(out, ref, data_range=data_range) if min(out.shape) >= 11 else nan,
        "fsim": compute_fsim(out, ref, data_range=data_range),
        "uiqi": compute_uiqi(out, ref, window=uiqi_window),
        "epi": compute_edge_preservation(out, ref),
        "cnr": compute_cnr(out, foreground=fg, background=bg),
        "residual_structure": compute_residual_structure(noisy, out, ref) if noisy is not None else nan,
        "psnr_aligned": nan, "ssim_aligned": nan, "shift_dy": nan, "shift_dx": nan,
    }
    if align:
        aligned = score_aligned(out, ref, data_range=data_range, border_px=border_px)
        row.update({k: aligned[k] for k in ("psnr_aligned", "ssim_aligned", "shift_dy", "shift_dx")})
    has_boxes = boxes is not None and len(boxes) > 0
    defects = (
        measure_defects(out, ref, boxes=boxes, data_range=data_range, mask=mask, margin_px=defect_margin_px)
        if has_boxes else pd.DataFrame(columns=["contrast_retention", "psnr", "ssim"])
    )
    row.update(summarize_defects(defects))
    values = {k: row[k] for k in METRIC_COLUMNS}
    return (values, defects) if return_defects else values


def evaluate_method(
    noisy: Sequence[np.ndarray] | np.ndarray,
    clean: Sequence[np.ndarray] | np.ndarray,
    *,
    denoiser: DenoiseFn,
    method: str,
    dataset: str,
    indices: Sequence[int],
    data_range: float = 1.0,
    experiment: str = "classical",
    split: str = "test",
    image_ids: Sequence[str] | None = None,
    masks: Sequence[np.ndarray] | np.ndarray | None = None,
    defects: pd.DataFrame | None = None,
    align: bool = False,
    border_px: int = 8,
    defect_margin_px: int = 4,
    cnr_erode_px: int = 3,
    keep_outputs: int = 0,
    warmup: bool = True,
) -> EvaluationResult:
    """Denoise and score the images ``indices`` of a stack with one method.

    Parameters
    ----------
    noisy, clean : (N, H, W) arrays or zarr arrays (read one image at a time)
        Integer images are put on the unit scale; floats are used as they are.
    denoiser : callable or sem_core.denoise Denoiser
        Timed per image (``seconds``, ``mpix_per_s``).
    indices : sequence of int
        Which images (e.g. the test split).
    image_ids : sequence of str, optional
        Ids of *all* N images (``attrs["image_ids"]``); default ``"{index}"``.
    masks : (N, H, W), optional
        Defect label images (wafers).
    defects : DataFrame, optional
        Defect table with ``image`` and ``bbox_*`` columns.
    keep_outputs : int
        Keep the outputs of the first ``keep_outputs`` images for report panels.
    warmup : bool
        Run the denoiser once, untimed, on a 64 x 64 crop of the first image first, so that
        one-off set-up (model load, thread pools, JIT) does not count against the first image.

    Returns
    -------
    EvaluationResult
        One row per image that succeeded; a failing image is recorded in ``errors`` and skipped.
    """
    rows, errors, kept, defect_rows = [], [], {}, []
    if warmup and len(indices):
        try:
            _apply(denoiser, to_unit_float(np.asarray(noisy[int(indices[0])]))[:64, :64])
        except (ValueError, RuntimeError) as exc:  # the timed call below records the error
            log.debug("warm-up of %s failed: %s", method, exc)
    for pos, i in enumerate(indices):
        i = int(i)
        try:
            noisy_i = to_unit_float(np.asarray(noisy[i]))
            clean_i = to_unit_float(np.asarray(clean[i]))
            start = time.perf_counter()
            out = _apply(denoiser, noisy_i)
            seconds = max(time.perf_counter() - start, 1e-9)
            if out.shape != clean_i.shape:
                raise ValueError(f"{method} returned shape {out.shape} for an input of {clean_i.shape}")
            boxes = defects[defects["image"] == i] if defects is not None else None
            metrics, per_defect = score_image(
                out, clean_i, data_range=data_range, noisy=noisy_i, align=align, border_px=border_px,
                mask=np.asarray(masks[i]) if masks is not None else None, boxes=boxes,
                defect_margin_px=defect_margin_px, cnr_erode_px=cnr_erode_px, return_defects=True,
            )
        except (ValueError, RuntimeError, FloatingPointError, MemoryError) as exc:
            log.warning("evaluate %s/%s image %d failed: %s", dataset, method, i, exc)
            errors.append({"dataset": dataset, "method": method, "experiment": experiment,
                           "image_index": i, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if pos < keep_outputs:
            kept[(method, experiment, i)] = out
        ids = {"dataset": dataset, "split": split, "method": method, "experiment": experiment,
               "image_id": str(image_ids[i]) if image_ids is not None else str(i), "image_index": i}
        rows.append({**ids, **metrics, "seconds": seconds, "mpix_per_s": clean_i.size / 1e6 / seconds})
        if len(per_defect):
            types = boxes["type"].astype(str).to_numpy() if "type" in boxes else ["unknown"] * len(boxes)
            ids_col = boxes["defect_id"].to_numpy() if "defect_id" in boxes else per_defect["defect_id"]
            defect_rows.append(per_defect.assign(**ids, defect_id=ids_col, type=types))
    table = pd.DataFrame(rows, columns=list(METRICS_SCHEMA.columns))
    defect_table = (DEFECT_METRICS_SCHEMA.validate(pd.concat(defect_rows, ignore_index=True)[
        list(DEFECT_METRICS_SCHEMA.columns)]) if defect_rows else _empty(DEFECT_METRICS_SCHEMA))
    return EvaluationResult(table=METRICS_SCHEMA.validate(table), errors=errors, outputs=kept,
                            defects=defect_table)


def _dataset_data_range(attrs: Mapping[str, Any], dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer) and attrs.get("bit_depth"):
        return float(2 ** int(attrs["bit_depth"]) - 1) / float(np.iinfo(dtype).max)
    return 1.0


def evaluate_dataset(
    path: str | Path,
    *,
    methods: Mapping[str, DenoiseFn],
    experiments: Mapping[str, str] | None = None,
    method_names: Mapping[str, str] | None = None,
    split: str = "test",
    max_images: int | None = None,
    align: bool = False,
    border_px: int = 8,
    defect_margin_px: int = 4,
    cnr_erode_px: int = 3,
    keep_outputs: int = 0,
) -> EvaluationResult:
    """Evaluate every method on the ``split`` images of a dataset store (layout of docs/DESIGN.md).

    Parameters
    ----------
    path : path to ``<name>.zarr``
    methods : mapping label -> denoiser
    experiments : mapping label -> experiment name (default ``"classical"``)
    method_names : mapping label -> value of the ``method`` column (default: the label); e.g.
        label ``"unet-full"`` -> method ``"unet"``, experiment ``"full"``.
    max_images : int, optional
        Only the first ``max_images`` of the split (small profile).

    Returns
    -------
    EvaluationResult
        The concatenated table (validated), all errors and kept outputs, plus the noisy and clean
        images of the kept indices under ``("noisy_input", "", i)`` and ``("clean", "", i)``.
    """
    from .io.zarr_store import open_dataset

    view = open_dataset(path)
    dataset = str(view.attrs.get("dataset", Path(path).stem))
    splits = view.split
    if split not in splits:
        raise ValueError(f"dataset {path} has no split {split!r}; it has {sorted(splits)}")
    indices = sorted(int(i) for i in splits[split])[: max_images if max_images is not None else None]
    data_range = _dataset_data_range(view.attrs, view.noisy.dtype)
    defects = view.defects
    image_ids = view.attrs.get("image_ids")
    tables, errors, outputs, defect_tables = [], [], {}, []
    for label, denoiser in methods.items():
        res = evaluate_method(
            view.noisy, view.clean, denoiser=denoiser, method=(method_names or {}).get(label, label),
            dataset=dataset, indices=indices,
            data_range=data_range, experiment=(experiments or {}).get(label, "classical"), split=split,
            image_ids=image_ids, masks=view.mask if defects is not None else None, defects=defects,
            align=align, border_px=border_px, defect_margin_px=defect_margin_px, cnr_erode_px=cnr_erode_px,
            keep_outputs=keep_outputs,
        )
        tables.append(res.table)
        defect_tables.append(res.defects)
        errors += res.errors
        outputs.update(res.outputs)
    for i in indices[:keep_outputs]:
        outputs[("noisy_input", "", i)] = to_unit_float(np.asarray(view.noisy[i]))
        outputs[("clean", "", i)] = to_unit_float(np.asarray(view.clean[i]))
    table = pd.concat(tables, ignore_index=True) if tables else _empty(METRICS_SCHEMA)
    defect_table = concat_defects(defect_tables)
    return EvaluationResult(table=METRICS_SCHEMA.validate(table), errors=errors, outputs=outputs,
                            defects=defect_table)


def concat_defects(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-defect tables (skipping empty ones), validated by ``DEFECT_METRICS_SCHEMA``."""
    parts = [t for t in tables if len(t)]
    if not parts:
        return _empty(DEFECT_METRICS_SCHEMA)
    return DEFECT_METRICS_SCHEMA.validate(pd.concat(parts, ignore_index=True))


def sweep_dose(
    *,
    make_specimen: Callable[[np.random.Generator], Any],
    image_fn: Callable[..., tuple[np.ndarray, np.ndarray]],
    doses: Sequence[float],
    methods: Mapping[str, DenoiseFn],
    n_images: int,
    seed: int,
    data_range: float = 1.0,
    defect_margin_px: int = 4,
) -> pd.DataFrame:
    """Quality vs dose: image the same specimens at every dose and score every method.

    Parameters
    ----------
    make_specimen : callable ``(rng) -> yield_map | (yield_map, boxes) | (yield_map, boxes, mask)``
        A clean specimen, (H, W) float in [0, 1]; ``boxes`` (defect bboxes) and the optional
        defect label ``mask``, as for :func:`sem_core.metrics.measure_defects`, give the
        defect retention column.
    image_fn : callable ``(yield_map, *, dose, rng) -> (noisy, clean)``
        The imaging model at a dose (e.g. a wrapper of ``sem_core.synth.imaging.simulate_pair``
        that maps ``dose`` to ``beam_current_pa``).
    doses : sequence of float > 0
    methods : mapping label -> denoiser
    n_images : int
        Specimens per dose; specimen ``k`` is the same at every dose.
    seed : int
        Specimen ``k`` uses ``derive_rng(seed, "dose_specimen", k)``; its imaging at dose index
        ``d`` uses ``derive_rng(seed, "dose_imaging", d, k)``.

    Returns
    -------
    DataFrame validated by ``DOSE_SCHEMA``: dose, method, image_index, psnr, ssim,
    defect_retention (NaN without boxes), seconds.
    """
    from .rng import derive_rng

    rows = []
    for k in range(n_images):
        specimen = make_specimen(derive_rng(seed, "dose_specimen", k))
        if not isinstance(specimen, tuple):
            specimen = (specimen,)
        yield_map, boxes, mask = (*specimen, None, None)[:3]
        for d, dose in enumerate(doses):
            noisy, clean = image_fn(yield_map, dose=float(dose), rng=derive_rng(seed, "dose_imaging", d, k))
            noisy_u, clean_u = to_unit_float(noisy), to_unit_float(clean)
            for label, denoiser in methods.items():
                start = time.perf_counter()
                out = _apply(denoiser, noisy_u)
                seconds = time.perf_counter() - start
                retention = float("nan")
                if boxes is not None and len(boxes) > 0:
                    retention = summarize_defects(measure_defects(
                        out, clean_u, boxes=boxes, data_range=data_range, mask=mask, margin_px=defect_margin_px,
                    ))["defect_retention"]
                rows.append({
                    "dose": float(dose), "method": label, "image_index": k,
                    "psnr": compute_psnr(out, clean_u, data_range=data_range),
                    "ssim": compute_ssim(out, clean_u, data_range=data_range),
                    "defect_retention": retention, "seconds": seconds,
                })
    return DOSE_SCHEMA.validate(pd.DataFrame(rows, columns=list(DOSE_SCHEMA.columns)))


def metric_label(method: str, experiment: str) -> str:
    """Display/key label of a row: the method, or ``method-experiment`` for trained models."""
    return method if experiment in ("classical", "") else f"{method}-{experiment}"


def summarize_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and 95 % confidence interval per dataset x method x experiment x metric.

    Only finite values count (an identical-image PSNR of ``inf`` or a NaN metric is left out of
    ``n``). The interval is ``mean -/+ t(0.975, n-1) * std / sqrt(n)`` (sample std, ddof=1);
    std and interval are NaN for n < 2, everything but n is NaN for n = 0.

    Returns
    -------
    DataFrame validated by ``SUMMARY_SCHEMA`` (long format: one row per metric).
    """
    from scipy import stats

    table = METRICS_SCHEMA.validate(table)
    rows = []
    for (dataset, method, experiment), grp in table.groupby(["dataset", "method", "experiment"], sort=True):
        for metric in [*METRIC_COLUMNS, "seconds", "mpix_per_s"]:
            values = grp[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            n = int(values.size)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n > 1 else math.nan
            half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
            rows.append({"dataset": dataset, "method": method, "experiment": experiment, "metric": metric,
                         "n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half})
    return SUMMARY_SCHEMA.validate(pd.DataFrame(rows, columns=list(SUMMARY_SCHEMA.columns)))


def _json_number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def write_metrics(
    out_dir: str | Path,
    *,
    table: pd.DataFrame,
    summary: pd.DataFrame,
    provenance: Mapping[str, Any],
    dose_table: pd.DataFrame | None = None,
    defect_table: pd.DataFrame | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Path]:
    """Write the evaluation tables.

    Files in ``out_dir``: ``per_image.parquet``/``.csv``, ``summary.parquet``/``.csv``,
    ``dose.parquet``/``.csv`` and ``defect_metrics.parquet``/``.csv`` (if given and not empty),
    ``dose_psnr.csv``/``dose_retention.csv`` (mean per dose, one column per method: DVC plots),
    ``metrics.json`` (flat DVC metrics: the mean of every metric under
    ``"<dataset>/<label>/<metric>"``, label from :func:`metric_label`; non-finite means are
    ``null``), ``provenance.json`` (``provenance`` plus the per-item errors). The Parquet files
    also carry the provenance in their metadata (key ``sem_denoise``).

    Returns
    -------
    dict name -> path of every file written.
    """
    import pyarrow as pa_arrow
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = json.dumps(dict(provenance), sort_keys=True, default=str)
    written: dict[str, Path] = {}
    frames = {"per_image": METRICS_SCHEMA.validate(table), "summary": SUMMARY_SCHEMA.validate(summary)}
    if dose_table is not None:
        frames["dose"] = DOSE_SCHEMA.validate(dose_table)
    if defect_table is not None and len(defect_table):
        frames["defect_metrics"] = DEFECT_METRICS_SCHEMA.validate(defect_table)
    for name, frame in frames.items():
        arrow = pa_arrow.Table.from_pandas(frame, preserve_index=False)
        meta = dict(arrow.schema.metadata or {})
        meta[b"sem_denoise"] = prov.encode()
        pq.write_table(arrow.replace_schema_metadata(meta), out / f"{name}.parquet")
        frame.to_csv(out / f"{name}.csv", index=False)
        written[f"{name}.parquet"], written[f"{name}.csv"] = out / f"{name}.parquet", out / f"{name}.csv"
    if "dose" in frames:  # wide means per dose, one column per method, for DVC plots (one x, several y)
        for col, name in (("psnr", "dose_psnr"), ("defect_retention", "dose_retention")):
            wide = frames["dose"].pivot_table(index="dose", columns="method", values=col, aggfunc="mean",
                                              dropna=False)
            wide.rename_axis(columns=None).reset_index().to_csv(out / f"{name}.csv", index=False)
            written[f"{name}.csv"] = out / f"{name}.csv"
    flat = {
        f"{r.dataset}/{metric_label(r.method, r.experiment)}/{r.metric}": _json_number(r.mean)
        for r in frames["summary"].itertuples(index=False)
    }
    (out / "metrics.json").write_text(json.dumps(flat, indent=1, sort_keys=True) + "\n")
    record = {**json.loads(prov), "errors": [dict(e) for e in errors]}
    (out / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    written["metrics.json"], written["provenance.json"] = out / "metrics.json", out / "provenance.json"
    return written


def read_metrics(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read back what :func:`write_metrics` wrote: ``per_image``, ``summary`` and, if present, ``dose``
    and ``defect_metrics``."""
    out = Path(out_dir)
    frames: dict[str, pd.DataFrame] = {}
    schemas = {"per_image": METRICS_SCHEMA, "summary": SUMMARY_SCHEMA, "dose": DOSE_SCHEMA,
               "defect_metrics": DEFECT_METRICS_SCHEMA}
    for name, schema in schemas.items():
        file = out / f"{name}.parquet"
        if not file.exists():
            if name in ("dose", "defect_metrics"):
                continue
            raise FileNotFoundError(f"no {name} table at {file}: run `sem-denoise evaluate` first")
        try:
            frames[name] = schema.validate(pd.read_parquet(file))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read metrics table {file}: {exc}") from exc
    return frames
