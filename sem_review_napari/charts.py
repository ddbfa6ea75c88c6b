"""Per-method metric charts of a run (mean with its 95 % confidence interval), as in the HTML report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .model import summary_series

__all__ = ["draw_summary", "run_metrics"]


def run_metrics(run: Mapping[str, Any]) -> list[str]:
    """Metrics present in a run's summary, PSNR and SSIM first."""
    names = list(dict.fromkeys(r["metric"] for r in run.get("summary", [])))
    first = [m for m in ("psnr", "ssim", "defect_retention") if m in names]
    return first + [m for m in names if m not in first]


def draw_summary(fig: Any, run: Mapping[str, Any], metric: str) -> int:
    """Draw one horizontal bar chart per dataset of ``metric``'s mean per method with CI whiskers.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Cleared and redrawn.
    run : dict
        A contract ``Run`` (its ``summary`` rows).
    metric : str

    Returns
    -------
    int
        Number of bars drawn (0 when the run has no finite value of ``metric``).
    """
    fig.clear()
    datasets = list(dict.fromkeys(r["dataset"] for r in run.get("summary", []) if r["metric"] == metric))
    bars = 0
    if not datasets:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, f"no {metric} in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return 0
    for k, ds in enumerate(datasets):
        ax = fig.add_subplot(len(datasets), 1, k + 1)
        series = {m: v for m, v in summary_series(run, metric, ds).items() if math.isfinite(v[0])}
        names = list(series)
        means = [series[m][0] for m in names]
        err_lo = [max(0.0, series[m][0] - series[m][1]) if math.isfinite(series[m][1]) else 0.0 for m in names]
        err_hi = [max(0.0, series[m][2] - series[m][0]) if math.isfinite(series[m][2]) else 0.0 for m in names]
        ax.barh(range(len(names)), means, xerr=[err_lo, err_hi], color="#4c78a8", ecolor="black", capsize=3)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{ds}: {metric} (mean, 95 % CI)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        if means:
            lo = min(m - e for m, e in zip(means, err_lo))
            hi = max(m + e for m, e in zip(means, err_hi))
            pad = 0.05 * (hi - lo or 1.0)
            ax.set_xlim(lo - pad if metric.startswith("psnr") else min(0.0, lo - pad), hi + pad)
        bars += len(names)
    fig.tight_layout()
    return bars
