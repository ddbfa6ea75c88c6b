"""Choosing a method's parameters without clean data (J-invariance) or with clean references.

Modes (``mode=``):

- ``"fixed"``: no calibration, the configured parameters are used;
- ``"j_invariant"``: scikit-image's :func:`~skimage.restoration.calibrate_denoiser` (each masked
  pixel replaced by an interpolation of its 4 neighbours). It assumes pixel-independent noise:
  with noise correlated along the fast axis x the neighbours at x±1 leak the masked pixel's noise
  back, the self-supervised loss rewards copying the input, and it picks too little smoothing;
- ``"j_invariant_x"``: masks *runs* of ``run_px`` pixels along x on every ``row_stride``-th row,
  replaces them by the mean of the pixels above and below (other rows: independent noise), and
  scores only run pixels at least ``corr_len_px`` from the run's ends. The denoised value at a
  scored pixel then depends on no noise correlated with it (noise correlated along x only, within
  ``corr_len_px``), so the loss is the true MSE plus a constant;
- ``"clean_reference"``: the MSE against a clean image of the same scene.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .base import build_denoiser, denoise_image

__all__ = ["CalibrationMode", "make_x_run_masks", "compute_x_invariant_loss", "calibrate_parameters"]

CalibrationMode = Literal["fixed", "j_invariant", "j_invariant_x", "clean_reference"]


def make_x_run_masks(
    shape: tuple[int, int], *, run_px: int = 8, corr_len_px: int = 2, row_stride: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``2·row_stride`` (masked, scored) pairs of the x-run masking.

    Pass ``(a, b)`` masks rows ``r ≡ a (mod row_stride)`` over the column runs
    ``[k·2·run_px + b·run_px, … + run_px)``; scored pixels are the run pixels at least
    ``corr_len_px`` from both run ends. Returns (H, W) bool arrays.
    """
    if run_px <= 2 * corr_len_px:
        raise ValueError(f"run_px ({run_px}) must exceed 2·corr_len_px ({2 * corr_len_px})")
    if row_stride < 2:
        raise ValueError(f"row_stride must be >= 2 (the rows above/below fill the mask), got {row_stride}")
    h, w = shape
    cols = np.arange(w)
    pos = cols % (2 * run_px)
    out = []
    for a in range(row_stride):
        rows = (np.arange(h) % row_stride) == a
        for b in range(2):
            in_run = (pos >= b * run_px) & (pos < (b + 1) * run_px)
            offset = pos - b * run_px
            core = in_run & (offset >= corr_len_px) & (offset < run_px - corr_len_px)
            out.append((rows[:, None] & in_run[None, :], rows[:, None] & core[None, :]))
    return out


def _fill_from_rows(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    padded = np.pad(image, ((1, 1), (0, 0)), mode="reflect")
    vertical = 0.5 * (padded[:-2] + padded[2:])
    return np.where(mask, vertical, image)


def compute_x_invariant_loss(
    image: np.ndarray,
    denoise_fn: Callable[[np.ndarray], np.ndarray],
    *,
    run_px: int = 8,
    corr_len_px: int = 2,
    row_stride: int = 4,
) -> float:
    """Self-supervised loss of ``denoise_fn`` on ``image`` (H, W) float under the x-run masking.

    Equals the MSE against the truth plus the noise variance when the noise is correlated along
    x only, within ``corr_len_px``. Returns the mean squared difference on scored pixels.
    """
    image = np.asarray(image, dtype=np.float32)
    total, count = 0.0, 0
    for mask, score in make_x_run_masks(image.shape, run_px=run_px, corr_len_px=corr_len_px, row_stride=row_stride):
        out = np.asarray(denoise_fn(_fill_from_rows(image, mask)), dtype=np.float64)
        diff = out[score] - image[score]
        total += float(np.sum(diff * diff))
        count += int(score.sum())
    return total / count


def _grid(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(params)
    return [dict(zip(keys, values)) for values in itertools.product(*(params[k] for k in keys))]


def calibrate_parameters(
    image: np.ndarray,
    *,
    method: str,
    grid: Mapping[str, Sequence[Any]],
    mode: CalibrationMode = "j_invariant_x",
    fixed: Mapping[str, Any] | None = None,
    clean: np.ndarray | None = None,
    run_px: int = 8,
    corr_len_px: int = 2,
    row_stride: int = 4,
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]:
    """Pick the parameters of ``method`` from ``grid`` that minimise the calibration loss.

    Parameters
    ----------
    image : np.ndarray
        (H, W) float noisy image on the unit scale.
    method : str
        Registry name (see :func:`sem_core.denoise.base.build_denoiser`).
    grid : mapping of str to sequence
        Candidate values per parameter (the product is searched).
    mode : {"j_invariant", "j_invariant_x", "clean_reference"}
        See the module docstring.
    fixed : mapping, optional
        Parameters held fixed.
    clean : np.ndarray, optional
        (H, W) clean reference, required for ``"clean_reference"``.

    Returns
    -------
    (dict, list of (dict, float))
        The best parameters (``fixed`` included) and every candidate's loss.
    """
    image = np.asarray(image, dtype=np.float32)
    fixed = dict(fixed or {})

    def run(img: np.ndarray, **p: Any) -> np.ndarray:
        return denoise_image(img, denoiser=build_denoiser(method, **fixed, **p))

    candidates = _grid(grid)
    if mode == "j_invariant":
        from skimage.restoration import calibrate_denoiser

        _, (tried, losses) = calibrate_denoiser(image, run, {k: list(v) for k, v in grid.items()}, extra_output=True)
        table = [(dict(p), float(v)) for p, v in zip(tried, losses)]
    elif mode == "j_invariant_x":
        table = [
            (p, compute_x_invariant_loss(image, lambda x, p=p: run(x, **p), run_px=run_px, corr_len_px=corr_len_px,
                                         row_stride=row_stride))
            for p in candidates
        ]
    elif mode == "clean_reference":
        if clean is None:
            raise ValueError("calibration mode 'clean_reference' needs a clean image")
        ref = np.asarray(clean, dtype=np.float64)
        table = [(p, float(np.mean((run(image, **p) - ref) ** 2))) for p in candidates]
    else:
        raise ValueError(f"unknown calibration mode {mode!r}; use j_invariant, j_invariant_x or clean_reference")
    best = min(table, key=lambda t: t[1])[0]
    return {**fixed, **best}, table
