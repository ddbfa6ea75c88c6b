"""Pure data logic of the review client (no Qt): metric tables, run deltas, contrast ranges, defect shapes.

Everything here works on the review service's JSON shapes (``Run``, ``Image``, defects; see
docs/SERVICE_API.md), which :mod:`sem_review_napari.local` also produces from local files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "compute_deltas",
    "image_rows",
    "sort_rows",
    "filter_runs",
    "contrast_range",
    "defect_boxes",
    "summary_series",
    "multiscale_levels",
]

SUMMARY_KEYS = ("dataset", "method", "metric")


def compute_deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metric deltas ``b - a`` per (dataset, method, metric) present in both runs' summaries.

    Same shape as the service's ``/api/runs/compare`` ``deltas``; used offline and to check the service.
    """
    left = {tuple(r[k] for k in SUMMARY_KEYS): r["mean"] for r in a.get("summary", [])}
    out = []
    for r in b.get("summary", []):
        key = tuple(r[k] for k in SUMMARY_KEYS)
        if key in left:
            va, vb = left[key], r["mean"]
            delta = None if va is None or vb is None else float(vb) - float(va)
            out.append({**dict(zip(SUMMARY_KEYS, key)), "a": va, "b": vb, "delta": delta})
    return sorted(out, key=lambda d: (d["dataset"], d["method"], d["metric"]))


def filter_runs(runs: Iterable[Mapping[str, Any]], text: str = "", kind: str = "") -> list[Mapping[str, Any]]:
    """Runs whose id/kind/datasets/methods/code version contain every word of ``text`` (case-insensitive)."""
    words = text.lower().split()
    out = []
    for run in runs:
        if kind and run.get("kind") != kind:
            continue
        hay = " ".join([str(run.get("id", "")), str(run.get("kind", "")), str(run.get("code_version", "")),
                        *map(str, run.get("datasets", [])), *map(str, run.get("methods", []))]).lower()
        if all(w in hay for w in words):
            out.append(run)
    return out


def image_rows(images: Sequence[Mapping[str, Any]], metric: str) -> tuple[list[str], list[list[Any]]]:
    """The image table: columns ``dataset, name, kind, <method> ...`` with ``metric`` per method.

    Methods are those with layers or metrics (e.g. ``noisy_input``, scored but shown as the noisy panel).
    Returns (header, rows); a missing value is ``None``.
    """
    methods: list[str] = []
    for im in images:
        for m in [*im.get("methods", []), *(im.get("metrics") or {})]:
            if m not in methods:
                methods.append(m)
    header = ["dataset", "name", "kind", *methods]
    rows = []
    for im in images:
        vals = [(im.get("metrics") or {}).get(m, {}).get(metric) for m in methods]
        rows.append([im.get("dataset"), im.get("name"), im.get("kind"), *vals])
    return header, rows


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return (1, 0.0)
    return (0, v)


def sort_rows(rows: Sequence[Sequence[Any]], column: int, *, descending: bool = False) -> list[int]:
    """Row order sorting by ``column`` (missing values last either way). Returns indices into ``rows``."""
    present = [i for i, r in enumerate(rows) if _sort_key(r[column])[0] == 0]
    missing = [i for i in range(len(rows)) if i not in set(present)]
    present.sort(key=lambda i: rows[i][column], reverse=descending)
    return present + missing


def contrast_range(arrays: Sequence[Any], *, percentiles: tuple[float, float] = (0.5, 99.5),
                   max_pixels: int = 1 << 20) -> tuple[float, float]:
    """One contrast range for several panels: percentiles over (subsampled) pixels of all ``arrays``.

    ``arrays`` are 2-D array-likes (numpy or zarr); each is read at a stride so that at most about
    ``max_pixels`` pixels are read (use a coarse pyramid level for large scans).
    """
    samples = []
    for a in arrays:
        h, w = a.shape[-2:]
        step = max(1, int(math.ceil(math.sqrt(h * w / max_pixels))))
        samples.append(np.asarray(a[::step, ::step], dtype=np.float64).ravel())
    if not samples:
        return (0.0, 1.0)
    lo, hi = np.nanpercentile(np.concatenate(samples), percentiles)
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def defect_boxes(defects: Sequence[Mapping[str, Any]], image_id: str, method: str | None) -> dict[str, Any]:
    """Rectangles and labels of one image's defects for a napari Shapes layer.

    Returns ``{"data": [(4, 2) corner arrays], "type": [...], "retention": [...], "text": [...]}``;
    ``retention`` is the defect's contrast retention for ``method`` (NaN when unknown or no method).
    """
    data, types, ret, text = [], [], [], []
    for d in defects:
        if str(d.get("image_id")) != str(image_id):
            continue
        r0, c0, r1, c1 = (float(v) for v in d["bbox"])
        data.append(np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], dtype=np.float32))
        types.append(str(d.get("type", "defect")))
        value = (d.get("retention") or {}).get(method) if method else None
        ret.append(float("nan") if value is None else float(value))
        text.append(types[-1] if value is None else f"{types[-1]} {float(value):.2f}")
    return {"data": data, "type": types, "retention": ret, "text": text}


def summary_series(run: Mapping[str, Any], metric: str, dataset: str) -> dict[str, tuple[float, float, float]]:
    """``method -> (mean, ci_low, ci_high)`` of one metric and dataset from a run's summary (NaN if missing)."""
    out = {}
    for r in run.get("summary", []):
        if r["metric"] == metric and r["dataset"] == dataset:
            f = [float("nan") if r.get(k) is None else float(r[k]) for k in ("mean", "ci_low", "ci_high")]
            out[r["method"]] = (f[0], f[1], f[2])
    return out


def multiscale_levels(group: Any) -> list[Any]:
    """The level arrays (finest first) of an NGFF 0.4/0.5 multiscale zarr group."""
    attrs = dict(group.attrs)
    ms = (attrs.get("ome") or attrs).get("multiscales")
    if not ms:
        raise ValueError(f"{getattr(group, 'store', group)}: no NGFF multiscales metadata")
    return [group[d["path"]] for d in ms[0]["datasets"]]
