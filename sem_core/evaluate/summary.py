"""Summary statistics of the per-image table: mean, std and 95 % confidence interval; row labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..schemas.metrics import METRIC_COLUMNS, METRICS_SCHEMA, SUMMARY_SCHEMA

__all__ = ["metric_label", "summarize_metrics"]


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
