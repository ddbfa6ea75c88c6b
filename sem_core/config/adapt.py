"""Config section `adapt`: self-supervised fine-tuning on a new batch's noisy images (``sem-denoise adapt``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .base import Section

__all__ = ["AdaptConfig"]


class AdaptConfig(Section):
    """x-run Noise2Self fine-tuning with a SURE guard (:func:`sem_core.adapt.adapt_model`)."""

    per_batch: bool = Field(False, description="Batch flow: adapt the U-Net to each batch before denoising.")
    steps: int = Field(1000, ge=1, description="Fine-tuning steps.")
    batch_size: int = Field(8, ge=1, description="Patches per step.")
    patch_px: int = Field(96, ge=16, description="Patch side (multiple of the U-Net's 2**depth).")
    lr: float = Field(1e-4, gt=0, le=1e-2, description="Adam learning rate (cosine decay).")
    run_px: int = Field(8, ge=3, description="Masked run length along the fast axis x.")
    corr_len_px: int = Field(2, ge=0, description="Noise correlation length along x; run ends are not scored.")
    row_stride: int = Field(4, ge=2, description="One masked row in this many.")
    noise_slope_grey: float = Field(3.48, gt=0, description="Guard noise law: variance slope (8-bit grey levels).")
    noise_intercept_grey2: float = Field(16.0, ge=0, description="Guard noise law: variance intercept (grey²).")
    noise_fir_taps: tuple[float, ...] = Field((0.586, 0.343, 0.071), min_length=1,
                                              description="Guard noise correlation along x (detector FIR).")
    guard_images: int = Field(4, ge=1, description="Images whose centre crops the SURE guard scores.")
    guard_crop_px: int = Field(256, ge=32, description="Guard crop side.")
    eval_every: int = Field(50, ge=1, description="Steps between guard evaluations (the best is kept).")
    min_gain_grey2: float = Field(5.0, description="Keep adapted weights only if SURE's estimated MSE reduction "
                                  "(8-bit grey levels²) reaches this (sem_core/adapt/run.py says why 5).")
    forward_kernel_px: int = Field(5, ge=0, le=15, description="Forward kernel side (0: plain Noise2Self).")
    max_images: int | None = Field(None, ge=1, description="Use at most this many images of the input.")

    @model_validator(mode="after")
    def _check_runs(self) -> "AdaptConfig":
        if self.forward_kernel_px and self.forward_kernel_px % 2 == 0:
            raise ValueError(f"adapt.forward_kernel_px must be odd or 0, got {self.forward_kernel_px}")
        if self.run_px <= 2 * self.corr_len_px:
            raise ValueError(f"adapt.run_px ({self.run_px}) must exceed 2·corr_len_px ({2 * self.corr_len_px})")
        return self

    def library_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`sem_core.adapt.adapt_model` (everything but the flow switches)."""
        return self.model_dump(exclude={"per_batch", "max_images"})
