"""Directional statistics of the simulated noise: left-right asymmetry and residual-gradient correlation.

Two real-pair statistics (:func:`sem_core.synth.noise_stats.measure_direction`) that the variance law and
the ACF leave free:

- ``asym_x1``, the third-order lag-1 asymmetry along x, set by the *phase* of the detector filter: a causal,
  front-loaded filter on skewed shot noise makes it large, a symmetric one makes it zero, and every filter with
  the same power spectrum has the same ACF. For white noise of any skew through taps ``h`` it is proportional to
  ``(Σ h[m+1] h[m]^2 - Σ h[m] h[m+1]^2) / Σ h^3`` (:func:`compute_fir_asymmetry`), the residual's skew being the
  constant of proportionality;
- ``grad_corr_x``, the correlation of the residual with the clean x-gradient, set by the signal's displacement
  along x (``signal_shift_px``) net of the filter's delay.

:func:`fit_direction` refits the filter with more taps (same ACF at lags 1..3, the asymmetry ratio as a further
target; the gain rescaled so the variance law is unchanged) and the signal shift, by Newton steps on simulated
statistics with a Jacobian from finite differences (then Broyden updates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from .imaging import NoiseModel

__all__ = ["compute_fir_asymmetry", "solve_fir_taps_with_asymmetry", "fit_direction"]


def compute_fir_asymmetry(taps: Sequence[float]) -> float:
    """``(Σ h[m+1] h[m]^2 - Σ h[m] h[m+1]^2) / Σ h^3``: the filter's share of the lag-1 asymmetry."""
    h = np.asarray(taps, dtype=np.float64)
    num = float(np.sum(h[1:] * h[:-1] ** 2) - np.sum(h[:-1] * h[1:] ** 2))
    den = float(np.sum(h**3))
    return num / den if den else 0.0


def solve_fir_taps_with_asymmetry(acf: Sequence[float], asymmetry: float, *, n_taps: int = 5,
                                  start: Sequence[float] | None = None) -> tuple[float, ...]:
    """Taps (sum 1) whose white-noise ACF at lags 1..len(acf) and :func:`compute_fir_asymmetry` match the targets."""
    from .noise_fit import compute_fir_acf

    target = np.asarray(acf, dtype=np.float64)
    lags = list(range(1, target.size + 1))

    def taps_of(p: np.ndarray) -> np.ndarray:
        return np.concatenate([p, [1.0 - p.sum()]])

    def resid(p: np.ndarray) -> np.ndarray:
        h = taps_of(p)
        return np.concatenate([compute_fir_acf(h, lags) - target, [compute_fir_asymmetry(h) - asymmetry]])

    if start is not None and len(start) == n_taps:
        p0 = np.asarray(start, np.float64)[:-1]
    else:
        base = np.array([0.65 * 0.5**k for k in range(n_taps)])
        p0 = (base / base.sum())[:-1]
    best = least_squares(resid, p0, method="trf", xtol=1e-12, ftol=1e-12)
    return tuple(float(v) for v in taps_of(best.x))


def fit_direction(
    model: NoiseModel,
    *,
    real: Mapping[str, float],
    simulate: Callable[[NoiseModel], Mapping[str, float]],
    n_taps: int = 5,
    steps: int = 3,
) -> tuple[NoiseModel, dict[str, Any]]:
    """Refit ``fir_taps`` (``n_taps``) and ``signal_shift_px`` so simulated ``asym_x1``/``grad_corr_x`` match ``real``.

    Parameters
    ----------
    model : NoiseModel
        The calibrated model (variance law, ACF, edge blur already fitted).
    real : mapping
        ``asym_x1`` and ``grad_corr_x`` of the real training pairs.
    simulate : callable
        ``simulate(model) -> {"asym_x1", "grad_corr_x", ...}`` on the training clean images (a fixed generator
        state per call keeps the Newton steps comparable).
    n_taps, steps
        Filter length; Newton/Broyden steps after the two finite-difference probes.

    Returns
    -------
    model : NoiseModel
        The model with the lowest scaled miss ``|Δasym| / 0.01 + |Δcorr| / 0.05`` among those tried.
    report : dict
        Every trial (asymmetry ratio, shift, simulated figures) and the chosen one.
    """
    from .noise_fit import compute_fir_acf

    acf = compute_fir_acf(model.fir_taps, (1, 2, 3))
    energy = float(np.dot(model.fir_taps, model.fir_taps))
    start_taps = list(model.fir_taps) + [0.0] * max(0, n_taps - len(model.fir_taps))

    def build(ratio: float, shift: float) -> NoiseModel:
        taps = solve_fir_taps_with_asymmetry(acf, ratio, n_taps=n_taps, start=start_taps[:n_taps])
        e = float(np.dot(taps, taps))
        return replace(model, fir_taps=taps, gain_grey_per_se=model.gain_grey_per_se * energy / e,
                       read_noise_grey=model.read_noise_grey * float(np.sqrt(energy / e)), signal_shift_px=shift)

    goal = np.array([real["asym_x1"], real["grad_corr_x"]])
    scale = np.array([0.01, 0.05])
    trials: list[dict[str, Any]] = []

    def evaluate(x: np.ndarray) -> np.ndarray:
        m = build(float(x[0]), float(x[1]))
        sim = simulate(m)
        f = np.array([sim["asym_x1"], sim["grad_corr_x"]])
        trials.append({"asymmetry_ratio": float(x[0]), "signal_shift_px": float(x[1]),
                       "fir_taps": list(m.fir_taps), "sim_asym_x1": float(f[0]), "sim_grad_corr_x": float(f[1]),
                       "miss": float(np.sum(np.abs(f - goal) / scale))})
        return f

    x0 = np.array([compute_fir_asymmetry(model.fir_taps), model.signal_shift_px])
    f0 = evaluate(x0)
    dx = np.array([-0.5 * x0[0] if x0[0] else 0.1, 0.25])
    jac = np.zeros((2, 2))
    for k in range(2):
        xk = x0.copy()
        xk[k] += dx[k]
        jac[:, k] = (evaluate(xk) - f0) / dx[k]
    x, f = x0, f0
    for _ in range(steps):
        try:
            step = np.linalg.solve(jac, goal - f)
        except np.linalg.LinAlgError:
            break
        step[1] = float(np.clip(step[1], -1.0, 1.0))
        x_new = x + step
        f_new = evaluate(x_new)
        dxs, dfs = x_new - x, f_new - f
        if np.dot(dxs, dxs) > 0:
            jac += np.outer(dfs - jac @ dxs, dxs) / np.dot(dxs, dxs)
        x, f = x_new, f_new
    best = min(trials, key=lambda t: t["miss"])
    chosen = build(best["asymmetry_ratio"], best["signal_shift_px"])
    return chosen, {"real": {k: float(real[k]) for k in ("asym_x1", "grad_corr_x")}, "trials": trials, "chosen": best}
