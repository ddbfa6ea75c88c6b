"""Throughput of a denoiser in MPix/s: one definition for the benchmarks and the report's table.

Wall times change run to run, so the pipeline's hashed outputs carry none: the report's MPix/s column
comes from a committed benchmark file (``paths.throughput``, written by ``bench/unet_ratio.py
--classical --write``: ``{"mpix_per_s": {method: value}, "setup": {...}}``), an input like any other.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["mpix_per_s", "time_call", "read_throughput", "write_throughput", "add_throughput_rows"]


def mpix_per_s(pixels: int, seconds: float) -> float:
    """Megapixels (10⁶ output pixels) per second of wall clock; ``seconds`` floored at 1 ns."""
    return pixels / 1e6 / max(float(seconds), 1e-9)


def time_call(fn: Callable[[], Any], *, repeats: int = 1) -> tuple[Any, float]:
    """Call ``fn`` ``repeats`` times; return its last result and the median wall-clock seconds of one call."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def write_throughput(path: str | Path, mpix: Mapping[str, float], *, setup: Mapping[str, Any]) -> Path:
    """Merge ``{method: MPix/s}`` into the benchmark file ``path`` (other methods kept), with ``setup``."""
    path = Path(path)
    old = read_throughput(path) if path.exists() else {}
    data = {"mpix_per_s": {**old, **{k: round(float(v), 4) for k, v in mpix.items()}}, "setup": dict(setup)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_throughput(path: str | Path) -> dict[str, float]:
    """``{method: MPix/s}`` of a benchmark file; ValueError naming the file if it is malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return {str(k): float(v) for k, v in data["mpix_per_s"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a throughput file ({{'mpix_per_s': {{method: value}}}}): {exc}") from exc


def add_throughput_rows(summary: Any, mpix: Mapping[str, float]) -> Any:
    """The metrics summary plus one ``mpix_per_s`` row per (dataset, method, experiment) with a measured method.

    Parameters
    ----------
    summary : pandas.DataFrame
        Rows of ``SUMMARY_SCHEMA`` (``dataset, method, experiment, metric, n, mean, std, ci_low, ci_high``).
    mpix : mapping
        MPix/s per method name (``unet`` for every U-Net experiment).

    Returns
    -------
    pandas.DataFrame with the new rows (``n`` = 1, no spread); existing ``mpix_per_s`` rows are replaced.
    """
    import pandas as pd

    base = summary[summary["metric"] != "mpix_per_s"]
    keys = base[["dataset", "method", "experiment"]].drop_duplicates()
    keys = keys[keys["method"].isin(list(mpix))]
    rows = keys.assign(metric="mpix_per_s", n=1, mean=[float(mpix[m]) for m in keys["method"]],
                       std=float("nan"), ci_low=float("nan"), ci_high=float("nan"))
    return pd.concat([base, rows], ignore_index=True)
