"""Config section `denoise`: Classical and U-Net denoising over large scans (issue 4).

Intensities are on the unit scale (uint8 / 255), so ``h``, ``weight``, ``sigma`` ... are fractions
of the full range. The defaults are the small (2-core) profile's values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Section

__all__ = ["DenoiseConfig", "MethodCalibration"]

CalibrationMode = Literal["fixed", "j_invariant", "j_invariant_x", "clean_reference"]


class MethodCalibration(Section):
    """How one method's parameters are chosen."""

    mode: CalibrationMode = "fixed"
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Candidate values per parameter.")


class GaussianParams(Section):
    """Gaussian low-pass (pixels)."""

    sigma_px: float = Field(1.0, gt=0)
    truncate: float = Field(4.0, gt=0)


class MedianParams(Section):
    """Square median filter."""

    size_px: int = Field(3, ge=1)


class BilateralParams(Section):
    """Bilateral filter (unit intensity scale, pixels)."""

    sigma_color: float = Field(0.1, gt=0)
    sigma_spatial: float = Field(1.5, gt=0)


class NlmParams(Section):
    """Non-local means (scikit-image); halo = patch_distance + patch_size // 2."""

    h: float = Field(0.08, gt=0)
    patch_size: int = Field(5, ge=1)
    patch_distance: int = Field(6, ge=1)
    sigma: float = Field(0.0, ge=0)
    fast_mode: bool = True


class TvParams(Section):
    """Chambolle total variation."""

    weight: float = Field(0.1, gt=0)
    n_iter: int = Field(40, ge=1, description="Exact iteration count; the halo is n_iter - 1.")


class WaveletParams(Section):
    """Fixed-threshold DWT shrinkage (PyWavelets)."""

    threshold: float = Field(0.06, ge=0)
    wavelet: str = "db2"
    levels: int = Field(3, ge=1)
    mode: Literal["soft", "hard"] = "soft"


class Bm3dParams(Section):
    """BM3D (optional, non-commercial licence); 'coloured' estimates the noise ACF from the data."""

    sigma: float = Field(0.05, gt=0, description="White-noise σ (psd_mode 'white').")
    psd_mode: Literal["white", "coloured"] = "coloured"
    acf_max_lag: int = Field(3, ge=1, description="Lags of the estimated noise ACF (coloured).")
    search_window: int = Field(39, ge=3)
    cell_px: int = Field(
        512, ge=16, description="Side of the fixed cells bm3d runs on; tiles start on this grid (seam-free)."
    )
    vst_slope: float | None = Field(
        None, gt=0, description="Noise variance slope on the unit scale (grey slope / 255): enables the GAT."
    )
    vst_intercept: float = Field(0.0, description="Noise variance intercept on the unit scale (grey² / 255²).")


class UnetParams(Section):
    """U-Net inference (checkpoint: --model or paths.release_model)."""

    batch_size: int = Field(8, ge=1)
    tile_px: int = Field(4096, ge=32, description="Largest core side of one forward pass; larger tiles are cut "
                         "into sub-tiles of this core plus the network's context (batched).")
    block_px: int = Field(4096, ge=64, description="Block side of tiled U-Net denoising of scans on a GPU (the "
                          "default chunk for this method; context is paid once per block, memory grows with it).")
    cpu_block_px: int = Field(2048, ge=64, description="The same on CPU (a 4096² scan ran faster in 2048² blocks, "
                              "at 0.4x the memory of one 4096² block).")
    device: str = "auto"
    compile: bool = Field(False, description="torch.compile the network (CUDA scans; compiling takes tens of s).")
    ensemble: Literal["none", "scan", "dihedral"] = Field(
        "none", description="Self-ensemble: 'scan' averages the image and its up-down flip (keeps the fast-scan "
        "axis, 2 passes); 'dihedral' all 8 flips/rotations.")
    cpu_plain_mb: int = Field(64, ge=0, description="CPU: passes whose estimated peak memory fits in this many "
                              "MiB run as the plain forward; larger ones in row strips (same function, about half "
                              "the memory, and faster from about 512² up).")
    cpu_strip_px: int = Field(32768, ge=256, description="CPU: pixels per row strip (at least 16 rows); small "
                              "strips keep temporaries in cache and in malloc's reused heap.")


class DenoiseConfig(Section):
    """Per-method parameters, their calibration, and the tiling/scheduling of large scans."""

    method: str = "nlm"
    gaussian: GaussianParams = GaussianParams()
    median: MedianParams = MedianParams()
    bilateral: BilateralParams = BilateralParams()
    nlm: NlmParams = NlmParams()
    tv: TvParams = TvParams()
    wavelet: WaveletParams = WaveletParams()
    bm3d: Bm3dParams = Bm3dParams()
    unet: UnetParams = UnetParams()
    calibration: dict[str, MethodCalibration] = Field(
        default_factory=lambda: {
            "nlm": MethodCalibration(mode="j_invariant_x", grid={"h": [0.02, 0.04, 0.06, 0.08, 0.12, 0.16]}),
            "tv": MethodCalibration(mode="j_invariant_x", grid={"weight": [0.02, 0.04, 0.08, 0.16, 0.32]}),
        },
        description="Per-method calibration; methods not listed use their parameters as given ('fixed').",
    )
    calibration_corr_len_px: int = Field(2, ge=0, description="Noise correlation length along x (j_invariant_x).")
    calibration_run_px: int = Field(8, ge=2, description="Masked run length along x (j_invariant_x).")
    chunk_px: int = Field(1024, ge=64, description="Block side of tiled denoising (the CLI rounds it down to the method's chunk multiple).")
    scheduler: str | None = Field(None, description="None/'threads', 'processes', or a dask.distributed address.")
    num_workers: int | None = Field(None, ge=1)

    def method_params(self, name: str) -> dict[str, Any]:
        """The configured keyword parameters of method ``name`` (builder-ready, bm3d's acf_max_lag excluded)."""
        section = getattr(self, name, None)
        if section is None:
            return {}
        params = section.model_dump()
        if name == "bm3d":
            params.pop("acf_max_lag")
        return params
