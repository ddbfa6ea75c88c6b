"""The SEM forward model: specimen yield map -> (noisy, clean) grey images.

Order of the steps (each a function in :mod:`imaging_steps` / :mod:`scan_distortion`, each
switchable): beam blur -> scan distortion -> primary-beam shot noise -> secondary-electron
emission -> detector gain, offset and read noise -> causal FIR low-pass along x (detector
bandwidth) -> line (1/f) noise and charging streaks -> contrast/brightness, clipping and
quantisation.

:class:`NoiseModel` holds the calibrated part of the model (detector and emission statistics) and
:func:`apply_noise_to_clean` puts that noise onto an already clean grey image (sim-to-real).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .imaging_steps import (
    add_charging_streaks,
    add_line_noise,
    apply_detector,
    blur_beam,
    compute_primary_dose,
    filter_fast_axis,
    quantise,
    sample_primary_electrons,
    sample_secondary_electrons,
)
from .scan_distortion import distort_scan, make_scan_displacement

__all__ = ["NoiseModel", "simulate_pair", "apply_noise_to_clean", "write_noise_model", "read_noise_model"]


@dataclass(frozen=True)
class NoiseModel:
    """Calibrated noise of an SEM image, in grey levels of the output image.

    A clean grey level ``I`` means ``lambda = max(I - offset_grey, 0) / gain_grey_per_se``
    expected SEs; they come from Poisson(lambda / se_per_pe) primaries each emitting SEs with mean
    ``se_per_pe`` (``se_model`` as in :func:`sample_secondary_electrons`); then gain, offset,
    Gaussian read noise, the causal FIR ``fir_taps`` along x, line noise and quantisation.
    Noise variance before quantisation: ``sum(h^2) * (gain (1 + se_per_pe) (I - offset) + read_noise^2)``.
    ``signal_blur_px`` (Gaussian sigma) blurs the clean signal first: the short-dwell image is less
    sharp than the long-dwell one (fitted from the edge blur; it leaves flat-region noise unchanged).
    ``signal_shift_px`` moves the signal along x (cubic spline) before the detector: the short- and
    long-dwell frames of a real pair sit a fraction of a pixel apart after integer alignment, which the
    residual's correlation with the clean x-gradient shows (fitted with the filter's left-right
    asymmetry in :func:`sem_core.synth.calibrate_direction.fit_direction`).
    """

    gain_grey_per_se: float = 4.5
    se_per_pe: float = 0.6
    offset_grey: float = 0.0
    read_noise_grey: float = 2.0
    fir_taps: tuple[float, ...] = (0.62, 0.31, 0.07)
    se_model: str = "poisson"
    se_gamma_shape: float = 4.0
    line_noise_sigma_grey: float = 0.0
    line_noise_alpha: float = 1.0
    bit_depth: int = 8
    signal_blur_px: float = 0.0
    signal_shift_px: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["fir_taps"] = [float(t) for t in self.fir_taps]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseModel:
        """Inverse of :meth:`to_dict`; unknown keys are an error (naming them)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown NoiseModel keys {sorted(unknown)}; known: {sorted(known)}")
        d = dict(data)
        if "fir_taps" in d:
            d["fir_taps"] = tuple(float(t) for t in d["fir_taps"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NoiseModel:
        return cls.from_dict(json.loads(text))


def write_noise_model(path: str | Path, model: NoiseModel, *, provenance: Mapping[str, Any]) -> None:
    """Write ``{"noise_model": model.to_dict(), "provenance": provenance}`` as JSON (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"noise_model": model.to_dict(), "provenance": dict(provenance)}, indent=2, sort_keys=True))


def read_noise_model(path: str | Path) -> NoiseModel:
    """Read a file written by :func:`write_noise_model` (or a bare ``NoiseModel.to_dict()`` JSON)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return NoiseModel.from_dict(data.get("noise_model", data))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot read a noise model from {path}: {exc}") from exc


def apply_noise_to_clean(clean: np.ndarray, *, rng: np.random.Generator, noise_model: NoiseModel | Mapping[str, Any]) -> np.ndarray:
    """Put calibrated SEM noise onto a clean grey image.

    Parameters
    ----------
    clean : ndarray (H, W), uint8/uint16/float
        Noise-free grey image (e.g. a real long-dwell image, aligned).
    rng : np.random.Generator
    noise_model : NoiseModel or its dict

    Returns
    -------
    ndarray (H, W), uint8 or uint16 (``noise_model.bit_depth``)
        Blurring by ``signal_blur_px``, shifting by ``signal_shift_px`` along x, inverting the gain to SE counts, sampling primaries and SEs, re-applying gain, offset and
        read noise, filtering along x (signal and noise, as the detector does), line noise,
        clipping and quantising.
    """
    nm = noise_model if isinstance(noise_model, NoiseModel) else NoiseModel.from_dict(noise_model)
    grey = np.asarray(clean, dtype=np.float64)
    if nm.signal_blur_px > 0:
        grey = ndi.gaussian_filter(grey, nm.signal_blur_px, mode="reflect")
    if nm.signal_shift_px:
        grey = ndi.shift(grey, (0.0, nm.signal_shift_px), order=3, mode="nearest")
    lam = np.maximum(grey - nm.offset_grey, 0.0) / nm.gain_grey_per_se
    pe = sample_primary_electrons(lam / nm.se_per_pe, rng=rng)
    se = sample_secondary_electrons(pe, nm.se_per_pe, rng=rng, model=nm.se_model, gamma_shape=nm.se_gamma_shape)
    out = apply_detector(se, rng=rng, gain=nm.gain_grey_per_se, offset=nm.offset_grey, read_noise=nm.read_noise_grey)
    out = filter_fast_axis(out, taps=nm.fir_taps)
    out = add_line_noise(out, rng=rng, sigma=nm.line_noise_sigma_grey, alpha=nm.line_noise_alpha)
    return quantise(out, bit_depth=nm.bit_depth)


def simulate_pair(
    yield_map: np.ndarray,
    *,
    rng: np.random.Generator,
    pixel_size_nm: float = 5.83,
    blur_enabled: bool = True,
    blur_sigma_nm: float = 6.0,
    astigmatism_ratio: float = 1.0,
    astigmatism_angle_deg: float = 0.0,
    distortion_enabled: bool = True,
    distort_clean: bool = False,
    dwell_s: float = 1e-7,
    flyback_s: float = 1e-5,
    vibration_amplitude_nm: Sequence[float] = (2.0,),
    vibration_frequency_hz: Sequence[float] = (50.0,),
    vibration_angle_deg: Sequence[float] = (0.0,),
    drift_nm_per_s: Sequence[float] = (0.0, 0.0),
    random_walk_nm_per_sqrt_s: float = 0.0,
    shot_noise_enabled: bool = True,
    beam_current_pa: float = 100.0,
    se_noise_enabled: bool = True,
    se_yield_max: float = 1.0,
    se_model: str = "poisson",
    se_gamma_shape: float = 4.0,
    gain_grey_per_se: float = 4.5,
    offset_grey: float = 5.0,
    read_noise_grey: float = 2.0,
    filter_enabled: bool = True,
    fir_taps: Sequence[float] = (0.62, 0.31, 0.07),
    line_noise_sigma_grey: float = 0.0,
    line_noise_alpha: float = 1.0,
    streak_rate_per_line: float = 0.0,
    streak_amplitude_grey: float = 20.0,
    streak_decay_px: float = 30.0,
    contrast: float = 1.0,
    brightness_grey: float = 0.0,
    bit_depth: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Image a specimen: a noisy frame and its clean reference.

    Parameters
    ----------
    yield_map : ndarray (H, W), float in [0, 1]
        Relative SE yield of the specimen; the mean SE count per pixel is
        ``dose * se_yield_max * yield`` with ``dose = beam_current * dwell / e``.
    rng : np.random.Generator
        The only source of randomness (vibration phases, random walk, every noise draw).
    **params
        Physical parameters, as in ``params.yaml: imaging`` (see :class:`ImagingConfig`).

    Returns
    -------
    noisy, clean : ndarray (H, W), uint8 or uint16
        ``clean`` is the noise-free expectation (what an infinitely long dwell would give) through
        the same blur, FIR filter, gain/offset, contrast and quantisation, but without noise,
        line noise or streaks. Scan distortion is applied to ``clean`` only when
        ``distort_clean`` (default False: clean keeps the ideal geometry, like a slow reference scan
        registered to the noisy one).
    """
    y = np.clip(np.asarray(yield_map, dtype=np.float64), 0.0, None)
    if y.ndim != 2:
        raise ValueError(f"yield_map must be 2-D (H, W), got shape {y.shape}")
    if blur_enabled:
        y = blur_beam(y, sigma_nm=blur_sigma_nm, pixel_size_nm=pixel_size_nm,
                      astigmatism_ratio=astigmatism_ratio, astigmatism_angle_deg=astigmatism_angle_deg)
    y_clean = y
    if distortion_enabled:
        disp = make_scan_displacement(
            y.shape, rng=rng, pixel_size_nm=pixel_size_nm, dwell_s=dwell_s, flyback_s=flyback_s,
            vibration_amplitude_nm=vibration_amplitude_nm, vibration_frequency_hz=vibration_frequency_hz,
            vibration_angle_deg=vibration_angle_deg, drift_nm_per_s=tuple(drift_nm_per_s),
            random_walk_nm_per_sqrt_s=random_walk_nm_per_sqrt_s,
        )
        y = distort_scan(y, displacement=disp)
        if distort_clean:
            y_clean = y
    dose = compute_primary_dose(beam_current_pa=beam_current_pa, dwell_s=dwell_s)
    se_per_pe = se_yield_max * y
    if shot_noise_enabled:
        pe = sample_primary_electrons(dose, rng=rng, shape=y.shape)
    else:
        pe = np.full(y.shape, dose)
    if se_noise_enabled:
        se = sample_secondary_electrons(pe, se_per_pe, rng=rng, model=se_model, gamma_shape=se_gamma_shape)
    else:
        se = pe * se_per_pe
    noisy = apply_detector(se, rng=rng, gain=gain_grey_per_se, offset=offset_grey, read_noise=read_noise_grey)
    clean = gain_grey_per_se * dose * se_yield_max * y_clean + offset_grey
    if filter_enabled:
        noisy = filter_fast_axis(noisy, taps=fir_taps)
        clean = filter_fast_axis(clean, taps=fir_taps)
    noisy = add_line_noise(noisy, rng=rng, sigma=line_noise_sigma_grey, alpha=line_noise_alpha)
    noisy = add_charging_streaks(noisy, rng=rng, rate_per_line=streak_rate_per_line,
                                 amplitude=streak_amplitude_grey, decay_px=streak_decay_px)
    return (quantise(noisy, bit_depth=bit_depth, contrast=contrast, brightness=brightness_grey),
            quantise(clean, bit_depth=bit_depth, contrast=contrast, brightness=brightness_grey))
