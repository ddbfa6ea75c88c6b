"""The imaging function of the synthetic datasets: the forward model, or its clean image plus calibrated noise."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

__all__ = ["ImagePair", "imaging_kwargs", "make_image_pair"]


ImagePair = Callable[..., tuple[np.ndarray, np.ndarray]]


def imaging_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``values`` (e.g. ``params.imaging.model_dump()``) are keywords of :func:`simulate_pair`.

    Raises
    ------
    ValueError
        Naming the keys that :func:`simulate_pair` does not take.
    """
    from sem_core.synth.imaging import simulate_pair

    accepted = set(inspect.signature(simulate_pair).parameters) - {"yield_map", "rng"}
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise ValueError(f"imaging parameters {unknown} are not keywords of simulate_pair")
    return dict(values)


def _pair_from_model(yield_map: np.ndarray, *, rng: np.random.Generator, params: dict[str, Any],
                     noise_model: Any, **overrides: Any) -> tuple[np.ndarray, np.ndarray]:
    from sem_core.synth.imaging import apply_noise_to_clean, simulate_pair

    rng_clean, rng_noise = rng.spawn(2)
    _, clean = simulate_pair(yield_map, rng=rng_clean, **{**params, **overrides})
    return apply_noise_to_clean(clean, rng=rng_noise, noise_model=noise_model), clean


def make_image_pair(*, noise_model: Any = None, imaging_params: Mapping[str, Any] | None = None) -> ImagePair:
    """The imaging function ``f(yield_map, *, rng, pixel_size_nm) -> (noisy, clean)`` for wafers and scans.

    Parameters
    ----------
    noise_model : NoiseModel or dict, optional
        Calibrated noise (``paths.noise_model``): the clean image comes from the forward model with
        ``imaging_params``, the noise from the fitted model (:func:`apply_noise_to_clean`).
    imaging_params : mapping, optional
        Keyword arguments of :func:`simulate_pair`; without a noise model its own noise is used.

    Returns
    -------
    callable
        Picklable (a ``functools.partial``), so it can be sent to worker processes.
    """
    params = dict(imaging_params or {})
    if noise_model is None:
        from sem_core.synth.imaging import simulate_pair

        return partial(simulate_pair, **params)
    if hasattr(noise_model, "to_dict"):
        noise_model = noise_model.to_dict()
    return partial(_pair_from_model, params=params, noise_model=dict(noise_model))
