"""Config section `noise_fit`: Calibration of the imaging model against real pairs (sem-denoise noise fit)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section

__all__ = ["NoiseFitConfig"]


class NoiseFitConfig(Section):
    """Calibration of the imaging model against real pairs (sem-denoise noise fit)."""

    n_train: int = Field(40, ge=1, description="Pairs the model is fitted on; the rest are held out.")
    split: Literal["first", "seeded"] = Field("first", description="'first' n_train by index, or a seeded permutation.")
    iterations: int = Field(3, ge=0, description="Indirect-inference refinements by simulation.")
    se_per_pe: float = Field(0.6, gt=0, description="SEs per primary electron (fixed; not identifiable).")
    n_taps: int = Field(3, ge=2, le=4, description="FIR taps along x (fits ACF lags 1..n_taps-1).")
    se_model: Literal["poisson", "gamma"] = "poisson"
    se_gamma_shape: float = Field(4.0, gt=0)
    intercept_from: Literal["offset", "read_noise"] = "offset"
    check_repeats: int = Field(4, ge=1, description="Simulations per held-out clean image in the check.")
    border_px: int = Field(8, ge=0, description="Border cut (frame) for registration and statistics.")
    local_mean_px: int = Field(41, ge=3, description="Box width of the slow-offset removal.")
    grad_max: float = Field(3.0, gt=0, description="Flat mask: clean gradient below this (grey levels/px).")
    bin_width: float = Field(8.0, gt=0, description="Clean-intensity bin width of the variance law.")
    fit_edge_blur: bool = Field(True, description="Fit the extra signal blur of the noisy image from edge blur.")
    edge_pairs: int = Field(8, ge=1, description="Training pairs used for the edge-blur fit.")
    fit_direction: bool = Field(True, description="Refit filter phase and signal shift to the left-right statistics.")
    direction_taps: int = Field(5, ge=3, le=7, description="Filter taps of the directional refit.")
    direction_steps: int = Field(3, ge=0, le=8, description="Newton steps of the directional refit.")
    tol_slope_rel: float = Field(0.15, gt=0)
    tol_intercept_rel: float = Field(0.15, gt=0)
    tol_acf_x1_abs: float = Field(0.05, gt=0)
    tol_acf_y1_abs: float = Field(0.05, gt=0)
    tol_asym_x1_abs: float = Field(0.01, gt=0, description="Left-right asymmetry (bench/noise_asymmetry.py).")
    tol_grad_corr_x_abs: float = Field(0.05, gt=0, description="Residual vs clean x-gradient correlation.")
    max_pairs: int | None = Field(None, ge=2, description="Use only the first max_pairs pairs (tests, quick runs).")
