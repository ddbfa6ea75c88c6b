"""Evaluation: score denoisers on datasets into validated per-image tables, and sweep the dose.

Images are scored on the unit scale (``sem_core.denoise.to_unit_float``: integer images divided
by their dtype's maximum), with ``data_range`` = the span of the stored bit depth on that scale
(1.0 for 8-bit in uint8). A denoiser is any callable mapping an (H, W) float32 unit-scale image to
an (H, W) image; registered ``sem_core.denoise`` methods are applied with mirror padding by their
``halo`` (``denoise_image``).

Aggregation: :func:`summarize_metrics` (mean, std, 95 % CI per dataset x method x experiment) and
:func:`write_metrics` (Parquet + CSV tables, a flat DVC metrics JSON, provenance).

Modules: :mod:`.scoring` (one output's metrics), :mod:`.run` (the per-image loop over a stack or a
dataset store), :mod:`.dose` (dose sweep), :mod:`.summary` (statistics and labels), :mod:`.files`
(writing and reading the metric tables).
"""

from __future__ import annotations

from .dose import sweep_dose
from .files import read_metrics, write_metrics
from .run import EvaluationResult, concat_defects, evaluate_dataset, evaluate_method
from .scoring import DenoiseFn, identity_denoiser, score_image
from .summary import metric_label, summarize_metrics

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
