"""The comparison report: one static, self-contained HTML file (``reports/index.html``).

All images are PNGs embedded as ``data:image/png;base64`` URIs and the style sheet is inline, so
the file opens from the file system with no network (``dvc plots show`` output does not: it loads
its charting library from a CDN). Also :func:`summary_markdown` for Prefect markdown artifacts,
and :func:`save_panels` / :func:`load_panels` to carry example images from ``evaluate`` to ``report``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import metric_label
from .report_plots import BAR_METRICS, Panel, plot_dose_curves, plot_metric_bars, plot_panel, plot_training_curves
from .schemas.metrics import DEFECT_METRICS_SCHEMA, METRICS_SCHEMA, SUMMARY_SCHEMA

__all__ = ["Panel", "write_report", "summary_markdown", "format_benchmark", "format_defect_retention",
           "save_panels", "load_panels", "TABLE_METRICS"]

TABLE_METRICS = ("psnr", "psnr_aligned", "ssim", "ms_ssim", "fsim", "uiqi", "epi", "cnr", "residual_structure",
                 "defect_retention", "mpix_per_s")
"""Columns of the benchmark table (those with no finite value in any row are dropped)."""

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.l { text-align: left; } tr.unet td { background: #eef5ff; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.note { color: #666; font-size: 12px; }
"""


def _with_labels(summary: pd.DataFrame) -> pd.DataFrame:
    out = summary.copy()
    out["label"] = [metric_label(m, e) for m, e in zip(out["method"], out["experiment"], strict=True)]
    out["kind"] = np.where(out["experiment"] == "classical", "classical", "U-Net")
    return out


def format_benchmark(summary: pd.DataFrame, *, metrics: Sequence[str] = TABLE_METRICS, digits: int = 3) -> pd.DataFrame:
    """Wide benchmark table: one row per dataset x method label, cells ``mean ± CI half-width``.

    Classical methods come first, then U-Net experiments; metrics with no finite value are dropped.
    """
    s = _with_labels(SUMMARY_SCHEMA.validate(summary))
    s = s[s["metric"].isin(metrics)]
    keep = [m for m in metrics if s.loc[s["metric"] == m, "mean"].notna().any()]

    def cell(r: pd.Series) -> str:
        if not math.isfinite(r["mean"]):
            return "–"
        half = (r["ci_high"] - r["ci_low"]) / 2.0
        return f"{r['mean']:.{digits}g}" + (f" ± {half:.2g}" if math.isfinite(half) else "")

    s = s.assign(cell=s.apply(cell, axis=1))
    wide = s.pivot_table(index=["dataset", "kind", "label"], columns="metric", values="cell", aggfunc="first")
    n = s[s["metric"] == "psnr"].set_index(["dataset", "kind", "label"])["n"]
    wide = wide.reindex(columns=keep).fillna("–")
    wide.insert(0, "n", n.reindex(wide.index).fillna(0).astype(int))
    order = {"classical": 0, "U-Net": 1}
    wide = wide.reset_index()
    wide = wide.sort_values(["dataset", "kind", "label"], key=lambda c: c.map(order) if c.name == "kind" else c)
    return wide.reset_index(drop=True)


def format_defect_retention(defect_table: pd.DataFrame) -> pd.DataFrame:
    """Wide table of defect contrast retention: one row per dataset x method label, one column per
    defect type, cells ``median (n)`` over the defects with a defined retention."""
    d = DEFECT_METRICS_SCHEMA.validate(defect_table)
    d = d.assign(label=[metric_label(m, e) for m, e in zip(d["method"], d["experiment"], strict=True)])
    d = d[d["contrast_retention"].notna()]
    if d.empty:
        return pd.DataFrame(columns=["dataset", "label"])
    stats = d.groupby(["dataset", "label", "type"])["contrast_retention"].agg(["median", "count"])
    cells = stats.apply(lambda r: f"{r['median']:.2f} ({int(r['count'])})", axis=1).rename("cell")
    wide = cells.reset_index().pivot(index=["dataset", "label"], columns="type", values="cell").fillna("–")
    return wide.reset_index().rename_axis(columns=None)


def summary_markdown(summary: pd.DataFrame, *, metrics: Sequence[str] = TABLE_METRICS) -> str:
    """The benchmark table as GitHub markdown (for a Prefect markdown artifact)."""
    wide = format_benchmark(summary, metrics=metrics)
    cols = list(wide.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in wide.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table_html(wide: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in wide.columns)
    body = []
    for row in wide.itertuples(index=False):
        cls = ' class="unet"' if getattr(row, "kind", "") == "U-Net" else ""
        cells = "".join(
            f'<td{" class=l" if c in ("dataset", "kind", "label") else ""}>{html.escape(str(v))}</td>'
            for c, v in zip(wide.columns, row, strict=True)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report(
    out_dir: str | Path,
    *,
    metrics_table: pd.DataFrame,
    summary: pd.DataFrame,
    dose_table: pd.DataFrame | None = None,
    panels: Sequence[Panel] = (),
    training_curves: pd.DataFrame | None = None,
    defect_table: pd.DataFrame | None = None,
    title: str = "sem-denoise: method comparison",
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/index.html`` (self-contained) and return its path.

    Sections: benchmark table (classical vs U-Net: quality metrics and MPix/s), defect contrast
    retention per defect type (if ``defect_table`` has rows), the bar chart of PSNR/SSIM/FSIM/CNR/UIQI
    per dataset, quality vs dose (if ``dose_table``), training curves (if given), side-by-side panels
    with difference maps and defect zooms, and the provenance.
    """
    table = METRICS_SCHEMA.validate(metrics_table)
    labelled = _with_labels(SUMMARY_SCHEMA.validate(summary))
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(table)} scored images; means ± 95 % CI half-width (Student t). '
             "PSNR in dB on the stored bit depth; aligned scores remove the pair's shift and brightness "
             "offset (border excluded); residual structure: fraction of the clean gradient energy removed "
             "(lower is better); defect retention: defect contrast after ÷ clean (1 = kept).</p>",
             "<h2>Benchmark</h2>", _table_html(format_benchmark(summary))]
    if defect_table is not None and len(defect_table):
        parts += ["<h2>Defect preservation by type</h2>",
                  '<p class="note">Median contrast retention (defect vs surrounding pattern, output ÷ clean; '
                  "1 = kept, 0 = erased) and the number of defects.</p>",
                  _table_html(format_defect_retention(defect_table))]
    parts.append("<h2>Quality metrics per method</h2>")
    for dataset in sorted(labelled["dataset"].unique()):
        labels = sorted(labelled.loc[labelled["dataset"] == dataset, "label"].unique(),
                        key=lambda lb: (lb != "noisy", lb))
        parts.append(_img(plot_metric_bars(labelled, labels=labels, dataset=dataset, metrics=BAR_METRICS),
                          f"bar chart {dataset}"))
    if dose_table is not None and not dose_table.empty:
        parts += ["<h2>Quality vs dose</h2>",
                  '<p class="note">Mean over the simulated specimens of each dose (the same specimens at every '
                  "dose); <code>sem-denoise evaluate</code> sweeps the beam current (pA) at a fixed dwell.</p>",
                  _img(plot_dose_curves(dose_table), "quality vs dose")]
    if training_curves is not None and not training_curves.empty:
        parts += ["<h2>Training curves</h2>", _img(plot_training_curves(training_curves), "training curves")]
    if panels:
        parts.append("<h2>Examples</h2><p class=note>Top: noisy, every method, clean (one grey scale). "
                     "Middle: output − clean (blue darker, red brighter). "
                     "Below: zooms on defects (yellow boxes).</p>")
        for panel in panels:
            parts.append(f"<h3>{html.escape(panel.dataset)} / {html.escape(panel.image_id)}</h3>")
            parts.append(_img(plot_panel(panel), f"panel {panel.dataset} {panel.image_id}"))
    if provenance:
        parts.append("<h2>Provenance</h2><pre>" + html.escape(json.dumps(dict(provenance), indent=1, default=str))
                     + "</pre>")
    doc = ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
           + "\n".join(parts) + "\n</body></html>\n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path


def save_panels(path: str | Path, panels: Sequence[Panel]) -> Path:
    """Store panels in one ``.npz`` (float32 arrays, JSON index; no pickles)."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for k, p in enumerate(panels):
        arrays[f"p{k}_noisy"] = np.asarray(p.noisy, np.float32)
        arrays[f"p{k}_clean"] = np.asarray(p.clean, np.float32)
        labels = list(p.outputs)
        for j, label in enumerate(labels):
            arrays[f"p{k}_out{j}"] = np.asarray(p.outputs[label], np.float32)
        index.append({"dataset": p.dataset, "image_id": p.image_id, "labels": labels,
                      "boxes": [list(map(int, b)) for b in p.boxes]})
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load_panels(path: str | Path) -> list[Panel]:
    """Read panels written by :func:`save_panels`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            index = json.loads(data["index"].tobytes().decode())
            return [
                Panel(dataset=e["dataset"], image_id=e["image_id"], noisy=data[f"p{k}_noisy"],
                      clean=data[f"p{k}_clean"],
                      outputs={lb: data[f"p{k}_out{j}"] for j, lb in enumerate(e["labels"])},
                      boxes=[tuple(b) for b in e["boxes"]])
                for k, e in enumerate(index)
            ]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"cannot read report panels from {path}: {exc}") from exc
