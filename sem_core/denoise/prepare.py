"""Turning configured parameters into a ready denoiser: noise PSD estimation and calibration.

Both use a *sample* of the data to be denoised (e.g. a central crop of a scan or the first image
of a folder), so parameters come either from params.yaml as given ("fixed") or from the data
itself without clean references (J-invariance), or from a clean reference when one exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import Denoiser, build_denoiser
from .bm3d_coloured import estimate_noise_acf, estimate_noise_residual
from .calibration import calibrate_parameters

__all__ = ["crop_center", "prepare_denoiser"]


def crop_center(image: np.ndarray, *, size: int = 256) -> np.ndarray:
    """The central ``size × size`` crop (or the whole image when smaller), (h, w) same dtype."""
    h, w = image.shape
    r0, c0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[r0 : r0 + size, c0 : c0 + size]


def prepare_denoiser(
    method: str,
    *,
    params: Mapping[str, Any],
    sample: np.ndarray | None = None,
    clean_sample: np.ndarray | None = None,
    calibration_mode: str = "fixed",
    grid: Mapping[str, Sequence[Any]] | None = None,
    corr_len_px: int = 2,
    run_px: int = 8,
    acf_max_lag: int = 3,
) -> tuple[Denoiser, dict[str, Any]]:
    """Build ``method`` with ``params``, estimating a coloured PSD and/or calibrating on ``sample``.

    Parameters
    ----------
    method : str
        Registry name.
    params : mapping
        Configured keyword parameters of the method.
    sample, clean_sample : np.ndarray, optional
        (H, W) float unit-scale noisy sample and, if available, its clean reference.
    calibration_mode : {"fixed", "j_invariant", "j_invariant_x", "clean_reference"}
        How to choose the parameters in ``grid`` (see :mod:`sem_core.denoise.calibration`).
    grid : mapping, optional
        Candidate values per parameter.

    Returns
    -------
    (Denoiser, dict)
        The denoiser and a record ``{"params", "calibration": {...} | None, "noise_acf": ... | None}``.
    """
    params = dict(params)
    info: dict[str, Any] = {"calibration": None, "noise_acf": None}
    if method == "bm3d" and params.get("psd_mode") == "coloured" and params.get("noise_acf") is None:
        if sample is None:
            raise ValueError("bm3d psd_mode='coloured' needs a sample of the data to estimate the noise PSD")
        residual = estimate_noise_residual(sample, clean=clean_sample)
        acf = estimate_noise_acf(residual, max_lag=acf_max_lag)
        params["noise_acf"] = acf.tolist()
        info["noise_acf"] = params["noise_acf"]
    if calibration_mode != "fixed" and grid:
        if sample is None:
            raise ValueError(f"calibration mode {calibration_mode!r} for {method!r} needs a sample image")
        fixed = {k: v for k, v in params.items() if k not in grid}
        best, table = calibrate_parameters(
            sample, method=method, grid=grid, mode=calibration_mode, fixed=fixed, clean=clean_sample,
            corr_len_px=corr_len_px, run_px=run_px,
        )
        params.update(best)
        info["calibration"] = {
            "mode": calibration_mode, "chosen": {k: best[k] for k in grid},
            "losses": [[dict(p), loss] for p, loss in table],
        }
    info["params"] = {k: v for k, v in params.items() if k != "noise_acf"}
    return build_denoiser(method, **params), info
