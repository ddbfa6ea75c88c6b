"""One source of method parameters: the configured (and calibrated) denoiser that ``denoise`` and ``evaluate`` use.

``sem-denoise denoise`` and ``sem-denoise evaluate`` both build a method with
:func:`configured_denoiser`: the parameters of ``denoise.<method>``, the calibration mode and grid
of ``denoise.calibration.<method>`` run on a central 256² crop of the data being denoised, and
for BM3D the noise PSD estimated on that crop. So the report scores each method with exactly
the settings a user gets from ``denoise``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["SAMPLE_PX", "configured_denoiser"]

SAMPLE_PX = 256
"""Side of the central crop that calibration and PSD estimation use."""


def configured_denoiser(
    dcfg: Any,
    method: str,
    *,
    sample: np.ndarray | None,
    clean_sample: np.ndarray | None = None,
    overrides: Mapping[str, Any] | None = None,
    calibration: str | None = None,
    checkpoint: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build ``method`` from the ``denoise`` config section, calibrated on ``sample``.

    Parameters
    ----------
    dcfg : sem_core.config.denoise.DenoiseConfig
        The ``denoise`` section.
    method : str
        Registry name (``nlm``, ``unet``, ...).
    sample, clean_sample : np.ndarray, optional
        (H, W) float32 unit-scale central crop of the data (and its clean reference, if any).
    overrides : mapping, optional
        Parameter values replacing the configured ones (``denoise --set``).
    calibration : str, optional
        Calibration mode replacing ``denoise.calibration.<method>.mode``.
    checkpoint : str, optional
        U-Net checkpoint (``unet`` only).

    Returns
    -------
    (Denoiser, dict)
        As :func:`sem_core.denoise.prepare.prepare_denoiser`.

    Raises
    ------
    ValueError
        Calibration requested without a grid, or invalid parameters.
    """
    from sem_core.denoise.prepare import prepare_denoiser

    params = {**dcfg.method_params(method), **dict(overrides or {})}
    if method == "unet":
        params["checkpoint"] = str(checkpoint)
    cal = dcfg.calibration.get(method)
    mode = calibration or (cal.mode if cal else "fixed")
    grid = cal.grid if cal else {}
    if mode != "fixed" and not grid:
        raise ValueError(f"calibration {mode!r} for {method!r} needs a grid under denoise.calibration.{method}.grid")
    return prepare_denoiser(
        method, params=params, sample=sample, clean_sample=clean_sample, calibration_mode=mode, grid=grid,
        corr_len_px=dcfg.calibration_corr_len_px, run_px=dcfg.calibration_run_px, acf_max_lag=dcfg.bm3d.acf_max_lag,
    )
