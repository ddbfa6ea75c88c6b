"""Dose sweep: image the same specimens at every dose and score every method (quality vs dose)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..denoise.base import to_unit_float
from ..metrics import compute_psnr, compute_ssim, measure_defects, summarize_defects
from ..schemas.metrics import DOSE_SCHEMA
from .scoring import DenoiseFn, _apply

__all__ = ["sweep_dose"]


def sweep_dose(
    *,
    make_specimen: Callable[[np.random.Generator], Any],
    image_fn: Callable[..., tuple[np.ndarray, np.ndarray]],
    doses: Sequence[float],
    methods: Mapping[str, DenoiseFn],
    n_images: int,
    seed: int,
    data_range: float = 1.0,
    defect_margin_px: int = 4,
) -> pd.DataFrame:
    """Quality vs dose: image the same specimens at every dose and score every method.

    Parameters
    ----------
    make_specimen : callable ``(rng) -> yield_map | (yield_map, boxes) | (yield_map, boxes, mask)``
        A clean specimen, (H, W) float in [0, 1]; ``boxes`` (defect bboxes) and the optional
        defect label ``mask``, as for :func:`sem_core.metrics.measure_defects`, give the
        defect retention column.
    image_fn : callable ``(yield_map, *, dose, rng) -> (noisy, clean)``
        The imaging model at a dose (e.g. a wrapper of ``sem_core.synth.imaging.simulate_pair``
        that maps ``dose`` to ``beam_current_pa``).
    doses : sequence of float > 0
    methods : mapping label -> denoiser
    n_images : int
        Specimens per dose; specimen ``k`` is the same at every dose.
    seed : int
        Specimen ``k`` uses ``derive_rng(seed, "dose_specimen", k)``; its imaging at dose index
        ``d`` uses ``derive_rng(seed, "dose_imaging", d, k)``.

    Returns
    -------
    DataFrame validated by ``DOSE_SCHEMA``: dose, method, image_index, psnr, ssim,
    defect_retention (NaN without boxes), seconds.
    """
    from ..rng import derive_rng

    rows = []
    for k in range(n_images):
        specimen = make_specimen(derive_rng(seed, "dose_specimen", k))
        if not isinstance(specimen, tuple):
            specimen = (specimen,)
        yield_map, boxes, mask = (*specimen, None, None)[:3]
        for d, dose in enumerate(doses):
            noisy, clean = image_fn(yield_map, dose=float(dose), rng=derive_rng(seed, "dose_imaging", d, k))
            noisy_u, clean_u = to_unit_float(noisy), to_unit_float(clean)
            for label, denoiser in methods.items():
                start = time.perf_counter()
                out = _apply(denoiser, noisy_u)
                seconds = time.perf_counter() - start
                retention = float("nan")
                if boxes is not None and len(boxes) > 0:
                    retention = summarize_defects(measure_defects(
                        out, clean_u, boxes=boxes, data_range=data_range, mask=mask, margin_px=defect_margin_px,
                    ))["defect_retention"]
                rows.append({
                    "dose": float(dose), "method": label, "image_index": k,
                    "psnr": compute_psnr(out, clean_u, data_range=data_range),
                    "ssim": compute_ssim(out, clean_u, data_range=data_range),
                    "defect_retention": retention, "seconds": seconds,
                })
    return DOSE_SCHEMA.validate(pd.DataFrame(rows, columns=list(DOSE_SCHEMA.columns)))
