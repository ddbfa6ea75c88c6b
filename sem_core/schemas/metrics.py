"""Schemas of the evaluation tables: per-image metrics, their summary, and quality vs dose.

- ``METRICS_SCHEMA``: one row per (dataset, split, method, experiment, image). Metrics that do not
  apply (aligned scores on synthetic data, defect metrics on Tin balls) are NaN; PSNR and SSIM never are.
  PSNR may be ``inf`` (output identical to the reference).
- ``SUMMARY_SCHEMA``: long format, one row per (dataset, method, experiment, metric): n, mean, std,
  and the 95 % confidence interval of the mean (Student t); NaN/inf values are left out of n.
- ``DEFECT_METRICS_SCHEMA``: one row per (dataset, split, method, experiment, image, defect): the
  contrast of the defect against its surrounding pattern in the clean and the output image, their ratio
  (retention), and PSNR/SSIM in the dilated defect box.
- ``DOSE_SCHEMA``: one row per (dose, method, image) of a quality-vs-dose sweep.
"""

from __future__ import annotations

import pandera.pandas as pa

__all__ = [
    "METRICS_SCHEMA",
    "SUMMARY_SCHEMA",
    "DOSE_SCHEMA",
    "DEFECT_METRICS_SCHEMA",
    "METRIC_COLUMNS",
    "ID_COLUMNS",
]

ID_COLUMNS = ["dataset", "split", "method", "experiment", "image_id", "image_index"]

METRIC_COLUMNS = [
    "psnr", "ssim", "ms_ssim", "fsim", "uiqi", "epi", "cnr", "residual_structure",
    "psnr_aligned", "ssim_aligned", "shift_dy", "shift_dx",
    "n_defects", "defect_retention", "defect_retention_min", "defect_psnr", "defect_ssim",
]
"""Every metric column of the per-image table (summaries are computed over these)."""

_UNIT = pa.Check.in_range(-1.0, 1.0)
_NAME = pa.Check.str_length(min_value=1)


def _opt(*checks: pa.Check) -> pa.Column:
    return pa.Column(float, list(checks), nullable=True)


METRICS_SCHEMA = pa.DataFrameSchema(
    {
        "dataset": pa.Column(str, _NAME),
        "split": pa.Column(str, _NAME),
        "method": pa.Column(str, _NAME),
        "experiment": pa.Column(str, _NAME, description="U-Net experiment name, 'classical' otherwise."),
        "image_id": pa.Column(str, _NAME),
        "image_index": pa.Column("int64", pa.Check.ge(0)),
        "psnr": pa.Column(float, pa.Check(lambda s: s > -1e9, name="not_minus_inf"), nullable=False),
        "ssim": pa.Column(float, _UNIT, nullable=False),
        "ms_ssim": _opt(pa.Check.in_range(0.0, 1.0)),
        "fsim": _opt(pa.Check.in_range(0.0, 1.0)),
        "uiqi": _opt(_UNIT),
        "epi": _opt(_UNIT),
        "cnr": _opt(pa.Check.ge(0.0)),
        "residual_structure": _opt(),
        "psnr_aligned": _opt(),
        "ssim_aligned": _opt(_UNIT),
        "shift_dy": _opt(),
        "shift_dx": _opt(),
        "n_defects": pa.Column("int64", pa.Check.ge(0)),
        "defect_retention": _opt(),
        "defect_retention_min": _opt(),
        "defect_psnr": _opt(),
        "defect_ssim": _opt(_UNIT),
        # timing: in memory and in timing.csv, never in the content-hashed metric files (they vary run to run)
        "seconds": pa.Column(float, pa.Check.ge(0.0), nullable=False, required=False, description="Denoising wall time."),
        "mpix_per_s": pa.Column(float, pa.Check.gt(0.0), nullable=False, required=False),
    },
    unique=["dataset", "split", "method", "experiment", "image_index"],
    strict=True,
    coerce=True,
    name="per_image_metrics",
)

SUMMARY_SCHEMA = pa.DataFrameSchema(
    {
        "dataset": pa.Column(str, _NAME),
        "method": pa.Column(str, _NAME),
        "experiment": pa.Column(str, _NAME),
        "metric": pa.Column(str, pa.Check.isin([*METRIC_COLUMNS, "seconds", "mpix_per_s"])),
        "n": pa.Column("int64", pa.Check.ge(0)),
        "mean": pa.Column(float, nullable=True),
        "std": pa.Column(float, pa.Check.ge(0.0), nullable=True),
        "ci_low": pa.Column(float, nullable=True),
        "ci_high": pa.Column(float, nullable=True),
    },
    checks=[pa.Check(lambda df: ~(df["ci_low"] > df["ci_high"]), name="ci_ordered")],
    unique=["dataset", "method", "experiment", "metric"],
    strict=True,
    coerce=True,
    name="metrics_summary",
)

DEFECT_METRICS_SCHEMA = pa.DataFrameSchema(
    {
        "dataset": pa.Column(str, _NAME),
        "split": pa.Column(str, _NAME),
        "method": pa.Column(str, _NAME),
        "experiment": pa.Column(str, _NAME),
        "image_id": pa.Column(str, _NAME),
        "image_index": pa.Column("int64", pa.Check.ge(0)),
        "defect_id": pa.Column("int64", pa.Check.ge(0)),
        "type": pa.Column(str, _NAME, description="Defect type name, 'unknown' if the table has none."),
        "contrast_clean": _opt(),
        "contrast_output": _opt(),
        "contrast_retention": _opt(),
        "psnr": pa.Column(float, pa.Check(lambda s: s > -1e9, name="not_minus_inf"), nullable=False),
        "ssim": pa.Column(float, _UNIT, nullable=False),
    },
    unique=["dataset", "split", "method", "experiment", "image_index", "defect_id"],
    strict=True,
    coerce=True,
    name="defect_metrics",
)

DOSE_SCHEMA = pa.DataFrameSchema(
    {
        "dose": pa.Column(float, pa.Check.gt(0.0)),
        "method": pa.Column(str, _NAME),
        "image_index": pa.Column("int64", pa.Check.ge(0)),
        "psnr": pa.Column(float, nullable=False),
        "ssim": pa.Column(float, _UNIT, nullable=False),
        "defect_retention": _opt(),
        "seconds": pa.Column(float, pa.Check.ge(0.0), required=False),
    },
    unique=["dose", "method", "image_index"],
    strict=True,
    coerce=True,
    name="quality_vs_dose",
)
