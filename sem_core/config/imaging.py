"""Config section `imaging`: The SEM forward model: blur, distortion, shot/SE/detector noise, fast-axis filter, quantisation.

Field names equal the keyword arguments of :func:`sem_core.synth.imaging.simulate_pair`, so a caller passes
``**params.imaging.model_dump()``. Defaults: a Tin-balls-like FEI Quanta scan (5.83 nm pixels, 100 ns dwell),
detector figures near those fitted by ``sem-denoise noise fit``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section

__all__ = ["ImagingConfig"]


class ImagingConfig(Section):
    """The SEM forward model: blur, distortion, shot/SE/detector noise, fast-axis filter, quantisation."""

    pixel_size_nm: float = Field(5.83, gt=0, description="Pixel size (nm).")
    blur_enabled: bool = True
    blur_sigma_nm: float = Field(6.0, ge=0, description="Gaussian beam sigma along the principal axis (nm).")
    astigmatism_ratio: float = Field(1.0, gt=0, description="sigma across / sigma along the principal axis.")
    astigmatism_angle_deg: float = Field(0.0, description="Principal-axis angle (0 = along x).")
    distortion_enabled: bool = True
    distort_clean: bool = Field(False, description="Apply the scan distortion to the clean image too.")
    dwell_s: float = Field(1e-7, gt=0, description="Pixel dwell time (s).")
    flyback_s: float = Field(1e-5, ge=0, description="Line flyback time (s).")
    vibration_amplitude_nm: tuple[float, ...] = (2.0,)
    vibration_frequency_hz: tuple[float, ...] = (50.0,)
    vibration_angle_deg: tuple[float, ...] = (0.0,)
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0)
    random_walk_nm_per_sqrt_s: float = Field(0.0, ge=0)
    shot_noise_enabled: bool = True
    beam_current_pa: float = Field(100.0, gt=0, description="Probe current (pA).")
    se_noise_enabled: bool = True
    se_yield_max: float = Field(1.0, gt=0, description="SEs per primary at relative yield 1 (delta_max).")
    se_model: Literal["poisson", "gamma"] = "poisson"
    se_gamma_shape: float = Field(4.0, gt=0, description="Gamma shape k of the per-primary yield (se_model=gamma).")
    gain_grey_per_se: float = Field(4.5, gt=0, description="Detector gain (grey levels per SE).")
    offset_grey: float = Field(5.0, description="Detector offset (grey levels).")
    read_noise_grey: float = Field(2.0, ge=0, description="Gaussian read noise sd (grey levels).")
    filter_enabled: bool = True
    fir_taps: tuple[float, ...] = Field((0.586, 0.343, 0.071), min_length=1,
                                        description="Causal FIR along x (detector bandwidth), unit DC gain.")
    line_noise_sigma_grey: float = Field(0.0, ge=0)
    line_noise_alpha: float = Field(1.0, ge=0, description="Exponent of the 1/f^alpha line-offset spectrum.")
    streak_rate_per_line: float = Field(0.0, ge=0, le=1)
    streak_amplitude_grey: float = 20.0
    streak_decay_px: float = Field(30.0, gt=0)
    contrast: float = Field(1.0, gt=0)
    brightness_grey: float = 0.0
    bit_depth: Literal[8, 16] = 8

    @model_validator(mode="after")
    def _check_vibrations(self) -> "ImagingConfig":
        if len(self.vibration_amplitude_nm) != len(self.vibration_frequency_hz):
            raise ValueError("vibration_amplitude_nm and vibration_frequency_hz must have the same length")
        return self
