"""Schema of the per-pair noise-statistics table (``sem-denoise noise fit`` report, ``details.real_per_pair``).

One row per real pair, measured by :func:`sem_core.synth.noise_stats.measure_noise_stats` (grey levels of the
8- or 16-bit images). ``edge_sigma`` is null unless the edge-blur fit was asked for.
"""

from __future__ import annotations

import pandera.pandas as pa

__all__ = ["NOISE_STATS_SCHEMA", "NOISE_STATS_COLUMNS"]

_CORR = pa.Check.in_range(-1.0, 1.0)
_FRACTION = pa.Check.in_range(0.0, 1.0)

NOISE_STATS_SCHEMA = pa.DataFrameSchema(
    {
        "pair_id": pa.Column(str, unique=True),
        "split": pa.Column(str, pa.Check.isin(["train", "held_out"])),
        "slope": pa.Column(float, nullable=True, coerce=True, description="Noise variance per grey level."),
        "intercept": pa.Column(float, nullable=True, coerce=True, description="Noise variance at I = 0."),
        "acf_x1": pa.Column(float, _CORR, nullable=True, coerce=True, description="Fast-axis (x) lag 1."),
        "acf_x2": pa.Column(float, _CORR, nullable=True, coerce=True),
        "acf_x3": pa.Column(float, _CORR, nullable=True, coerce=True),
        "acf_y1": pa.Column(float, _CORR, nullable=True, coerce=True, description="Slow-axis (y) lag 1."),
        "skew": pa.Column(float, nullable=True, coerce=True),
        "clip_high": pa.Column(float, _FRACTION, coerce=True),
        "clip_low": pa.Column(float, _FRACTION, coerce=True),
        "edge_sigma": pa.Column(float, pa.Check.ge(0.0), nullable=True, coerce=True),
        "asym_x1": pa.Column(float, nullable=True, coerce=True, description="Lag-1 third-order asymmetry along x."),
        "grad_corr_x": pa.Column(float, _CORR, nullable=True, coerce=True,
                                 description="Residual vs clean x-gradient correlation."),
    },
    strict=True,
    ordered=True,
    name="noise_stats_per_pair",
)

NOISE_STATS_COLUMNS: list[str] = list(NOISE_STATS_SCHEMA.columns)
