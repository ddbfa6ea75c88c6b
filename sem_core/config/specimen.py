"""Config section `specimen`: clean specimen generators, Tin-balls-like and wafer-like (issue 2, section 3).

Field defaults are the default profile. Callers unpack these fields into keyword arguments of
:func:`sem_core.synth.tin_balls.render_tin_balls`, :func:`sem_core.synth.wafers.sample_wafer_kwargs`
and :func:`sem_core.synth.wafers.make_wafer_layout`; the library never sees these models.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section

__all__ = ["SpecimenConfig", "TinBallsSpecimenConfig", "WaferSpecimenConfig"]


class TinBallsSpecimenConfig(Section):
    """Tin spheres on carbon (``render_tin_balls``); defaults match the real pairs at 5.83 nm/px."""

    pixel_size_nm: float = Field(5.83, gt=0, le=100, description="Pixel size of the real Tin-balls images.")
    height_px: int = Field(442, ge=32, le=8192, description="Image rows (real images: 442 after the data bar).")
    width_px: int = Field(512, ge=32, le=8192, description="Image columns.")
    median_diameter_px: float = Field(22.0, ge=3, le=500, description="Median ball diameter.")
    sigma_ln: float = Field(0.9, ge=0, le=2, description="Log-normal spread of the diameters.")
    coverage: float = Field(0.5, gt=0, le=0.9, description="Projected area fraction covered by balls.")
    max_overlap: float = Field(0.15, ge=0, le=0.9, description="Allowed overlap: centre distance >= (r1+r2)(1-x).")
    edge_gain: float = Field(0.12, ge=0, le=1, description="SE edge brightening amplitude a in c + a exp(-d/decay).")
    edge_decay_px: float = Field(3.0, gt=0, le=50, description="Decay length of the edge brightening.")
    tilt_deg: float = Field(60.0, gt=0, lt=90, description="Surface tilt where the secant shading saturates.")
    secant_exponent: float = Field(0.5, ge=0, le=2, description="Shading (sec theta) ** exponent.")
    background_level: float = Field(30 / 255, ge=0, le=1, description="Mean carbon yield.")
    ball_level: float = Field(0.575, ge=0, le=1, description="Ball yield at normal incidence (top).")
    background_roughness: float = Field(0.25, ge=0, le=2, description="Relative std of the carbon variation.")
    background_scale_px: float = Field(20.0, gt=0, le=1000, description="Length scale of the carbon variation.")

    def render_kwargs(self) -> dict:
        """Keyword arguments of ``render_tin_balls`` (``shape`` included, ``rng`` left to the caller)."""
        out = self.model_dump(exclude={"pixel_size_nm", "height_px", "width_px"})
        return {"shape": (self.height_px, self.width_px), **out}


class WaferSpecimenConfig(Section):
    """Wafer-like specimens: sampling ranges per image (``sample_wafer_kwargs``) and yield levels.

    Image shape, count and the lines/contacts choice of a dataset live in ``datasets.wafers``.
    """

    pixel_size_nm_min: float = Field(2.0, gt=0, le=50)
    pixel_size_nm_max: float = Field(6.0, gt=0, le=50)
    pitch_nm_min: float = Field(60.0, gt=0, le=5000)
    pitch_nm_max: float = Field(200.0, gt=0, le=5000)
    pitch_px_min: float = Field(10.0, ge=4, le=500, description="Smallest pitch in pixels after sampling.")
    pitch_px_max: float = Field(48.0, ge=4, le=500)
    duty_min: float = Field(0.35, gt=0, lt=1, description="CD / pitch, lower bound.")
    duty_max: float = Field(0.6, gt=0, lt=1)
    contacts_fraction: float = Field(0.35, ge=0, le=1, description="Share of contact-hole images.")
    axis_aligned_fraction: float = Field(0.8, ge=0, le=1, description="Share of lines at exactly 0 or 90 degrees.")
    ler_sigma_nm_min: float = Field(0.5, ge=0, le=20)
    ler_sigma_nm_max: float = Field(2.5, ge=0, le=20)
    ler_xi_nm_min: float = Field(10.0, gt=0, le=1000)
    ler_xi_nm_max: float = Field(40.0, gt=0, le=1000)
    ler_hurst_min: float = Field(0.3, ge=0, le=1)
    ler_hurst_max: float = Field(0.9, ge=0, le=1)
    hole_roughness_nm: float = Field(1.0, ge=0, le=20)
    hole_jitter_nm: float = Field(0.5, ge=0, le=20)
    defect_density_per_um2: float = Field(4.0, ge=0, le=1000, description="Mean defects per square micrometre.")
    top_level: float = Field(0.42, ge=0, le=1, description="Yield of flat raised material.")
    trench_level: float = Field(0.12, ge=0, le=1, description="Yield of trench / hole bottoms.")
    particle_level: float = Field(0.62, ge=0, le=1, description="Yield of particle tops.")
    edge_gain: float = Field(0.4, ge=0, le=1, description="SE edge brightening on raised material.")
    edge_decay_nm: float = Field(6.0, gt=0, le=200, description="Decay length of the edge brightening.")
    trench_shadow: float = Field(0.4, ge=0, le=1, description="Relative darkening of trench bottoms at walls.")

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> WaferSpecimenConfig:
        for name in ("pixel_size_nm", "pitch_nm", "pitch_px", "duty", "ler_sigma_nm", "ler_xi_nm", "ler_hurst"):
            lo, hi = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if lo > hi:
                raise ValueError(f"specimen.wafers.{name}_min ({lo}) must not exceed {name}_max ({hi})")
        return self

    def sampling_kwargs(self) -> dict:
        """Keyword arguments of ``sample_wafer_kwargs`` (ranges as tuples)."""
        pair = lambda n: (getattr(self, f"{n}_min"), getattr(self, f"{n}_max"))  # noqa: E731
        return {
            "pixel_size_nm_range": pair("pixel_size_nm"), "pitch_nm_range": pair("pitch_nm"),
            "pitch_px_range": pair("pitch_px"), "duty_range": pair("duty"),
            "contacts_fraction": self.contacts_fraction, "axis_aligned_fraction": self.axis_aligned_fraction,
            "ler_sigma_nm_range": pair("ler_sigma_nm"), "ler_xi_nm_range": pair("ler_xi_nm"),
            "ler_hurst_range": pair("ler_hurst"), "defect_density_per_um2": self.defect_density_per_um2,
        }

    def level_kwargs(self) -> dict:
        """Keyword arguments of ``make_wafer_layout`` that are fixed across images (levels, hole roughness)."""
        return {k: getattr(self, k) for k in (
            "hole_roughness_nm", "hole_jitter_nm", "top_level", "trench_level", "particle_level",
            "edge_gain", "edge_decay_nm", "trench_shadow",
        )}


class SpecimenConfig(Section):
    """Clean specimen generators: Tin-balls-like and wafer-like (issue 2, section 3)."""

    tin_balls: TinBallsSpecimenConfig = TinBallsSpecimenConfig()
    wafers: WaferSpecimenConfig = WaferSpecimenConfig()
