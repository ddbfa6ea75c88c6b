"""The evaluation loop: denoise and score the images of a stack or of a dataset store into per-image tables.

Images are scored on the unit scale (``sem_core.denoise.to_unit_float``: integer images divided by
their dtype's maximum), with ``data_range`` = the span of the stored bit depth on that scale (1.0
for 8-bit in uint8).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..denoise.base import to_unit_float
from ..denoise.throughput import mpix_per_s
from ..schemas.metrics import DEFECT_METRICS_SCHEMA, METRICS_SCHEMA
from .scoring import DenoiseFn, _apply, score_image

__all__ = ["EvaluationResult", "evaluate_method", "evaluate_dataset", "concat_defects"]

log = logging.getLogger(__name__)


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
        rows.append({**ids, **metrics, "seconds": seconds, "mpix_per_s": mpix_per_s(clean_i.size, seconds)})
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
    from ..io.zarr_store import open_dataset

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
