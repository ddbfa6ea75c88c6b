"""The metric files: write the evaluation tables (Parquet, CSV, DVC metrics and plots JSON/CSV) and read them back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..schemas.metrics import DEFECT_METRICS_SCHEMA, DOSE_SCHEMA, METRICS_SCHEMA, SUMMARY_SCHEMA
from .summary import metric_label

__all__ = ["TIMING_COLUMNS", "TIMING_FILE", "write_metrics", "read_metrics"]

TIMING_COLUMNS = ("seconds", "mpix_per_s")
"""Wall-time columns: they change run to run, so they go to :data:`TIMING_FILE`, not into the hashed tables."""
TIMING_FILE = "timing.csv"


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
    also carry the provenance in their metadata (key ``sem_denoise``). The wall-time columns
    (:data:`TIMING_COLUMNS`) go to ``timing.csv`` only, so the other files are byte-identical
    for the same inputs, parameters and code.

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
    table = METRICS_SCHEMA.validate(table)
    timed = [c for c in TIMING_COLUMNS if c in table.columns]
    if timed:
        keys = ["dataset", "split", "method", "experiment", "image_index"]
        table[keys + timed].to_csv(out / TIMING_FILE, index=False)
        written[TIMING_FILE] = out / TIMING_FILE
    summary = summary[~summary["metric"].isin(TIMING_COLUMNS)]
    frames = {"per_image": table.drop(columns=timed), "summary": SUMMARY_SCHEMA.validate(summary)}
    if dose_table is not None:
        frames["dose"] = DOSE_SCHEMA.validate(dose_table.drop(columns=[c for c in TIMING_COLUMNS
                                                                         if c in dose_table.columns]))
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
