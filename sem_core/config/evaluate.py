"""Config section `evaluate`: Metrics, aggregation and the report (issue 5).

Defaults are the small (2-core) profile: a few test images per dataset, the fast classical
methods. ``profiles.full`` lifts ``max_images`` and adds the slow methods.
"""

from __future__ import annotations


from pydantic import Field

from .base import Section

__all__ = ["EvaluateConfig"]


class EvaluateConfig(Section):
    """Metrics, aggregation and the report (issue 5)."""

    methods: list[str] = Field(
        default_factory=lambda: ["gaussian", "median", "bilateral", "nlm", "tv", "wavelet"],
        description="Registered sem_core.denoise methods to evaluate ('noisy', the identity, is always added), each "
                    "with the parameters and calibration of its `denoise` section (one source of method parameters).",
    )
    split: str = Field("test", description="Split of each dataset to score.")
    max_images: int | None = Field(4, ge=1, description="First N images of the split; null = all.")
    datasets: list[str] = Field(
        default_factory=lambda: ["tin_balls", "wafers"], description="Datasets scored when their Zarr exists."
    )
    align_datasets: list[str] = Field(
        default_factory=lambda: ["tin_balls"], description="Real, misregistered pairs: also scored aligned."
    )
    border_px: int = Field(8, ge=0, description="Border excluded from aligned scores.")
    defect_margin_px: int = Field(4, ge=0, description="Defect boxes are dilated by this for defect metrics.")
    cnr_erode_px: int = Field(3, ge=0, description="CNR regions are eroded this far away from edges.")
    panels_per_dataset: int = Field(2, ge=0, description="Example images shown side by side in the report.")
    doses: list[float] = Field(
        default_factory=lambda: [5.0, 20.0, 80.0, 320.0],
        description="Beam currents (pA) of the quality-vs-dose sweep (empty: no sweep).",
    )
    dose_images: int = Field(2, ge=1, description="Specimens per dose in the sweep.")
