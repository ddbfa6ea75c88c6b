"""The noise fit: fit the SEM noise model to real (noisy, clean) pairs and check it.

1. Measure the real statistics with :func:`measure_noise_stats` (the one estimator).
2. Closed-form start: FIR taps from the fast-axis autocorrelation (lags 1-2, unit DC gain); gain
   from ``slope = sum(h^2) gain (1 + se_per_pe)`` (``se_per_pe`` given: the variance alone cannot
   separate it from the gain); read noise (or, for a negative intercept, a detector offset) from
   ``intercept = sum(h^2) (read^2 - gain (1 + se_per_pe) offset)``.
3. Indirect inference: apply the model to the real CLEAN images, measure with the same estimator,
   correct the targets (slope multiplicatively; intercept and correlations additively, as they may
   be near zero), repeat. The estimator's own biases then cancel.
4. Check on the training and the held-out pairs: real vs simulated statistics with pass/fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from .imaging import NoiseModel, apply_noise_to_clean
from .noise_stats import NoiseStats, aggregate_noise_stats, measure_noise_stats

__all__ = [
    "DEFAULT_TOLERANCES",
    "compute_fir_acf",
    "solve_fir_taps",
    "split_pair_indices",
    "model_from_targets",
    "simulate_noise_stats",
    "compare_noise_stats",
    "fit_noise_model",
    "flatten_report",
    "make_noise_stats_table",
]

DEFAULT_TOLERANCES: dict[str, tuple[str, float]] = {
    "slope": ("rel", 0.15),
    "intercept": ("rel", 0.15),
    "acf_x1": ("abs", 0.05),
    "acf_y1": ("abs", 0.05),
}
"""Per statistic: ("rel", r) passes when ``|sim - real| <= r |real|``, ("abs", a) when ``|sim - real| <= a``."""

_REPORTED = ("slope", "intercept", "acf_x1", "acf_x2", "acf_x3", "acf_y1", "skew", "clip_high", "clip_low",
             "asym_x1", "grad_corr_x")


def compute_fir_acf(taps: Sequence[float], lags: Sequence[int] = (1, 2, 3)) -> np.ndarray:
    """Autocorrelation of white noise filtered by ``taps`` at ``lags``: ``sum_k h_k h_{k+l} / sum h^2``."""
    h = np.asarray(taps, dtype=np.float64)
    e = float(h @ h)
    return np.array([float(h[: h.size - lag] @ h[lag:]) / e if lag < h.size else 0.0 for lag in lags])


def solve_fir_taps(acf: Sequence[float], *, n_taps: int = 3) -> tuple[float, ...]:
    """Causal FIR taps (sum 1, the first the largest) whose white-noise autocorrelation at lags
    1..len(acf) best matches ``acf`` (least squares)."""
    target = np.asarray(acf, dtype=np.float64)
    lags = list(range(1, target.size + 1))
    if n_taps < 2:
        raise ValueError(f"n_taps must be >= 2, got {n_taps}")

    def taps_of(p: np.ndarray) -> np.ndarray:
        return np.concatenate([p, [1.0 - p.sum()]])

    def resid(p: np.ndarray) -> np.ndarray:
        return compute_fir_acf(taps_of(p), lags) - target

    p0 = np.array([0.65 * 0.5**k for k in range(n_taps - 1)])
    best = least_squares(resid, p0, method="lm", xtol=1e-12, ftol=1e-12)
    h = taps_of(best.x)
    if abs(h[-1]) > abs(h[0]):  # the time-reversed filter has the same ACF: keep the front-loaded one
        h = h[::-1].copy()
    return tuple(float(v) for v in h)


def split_pair_indices(n: int, *, n_train: int, mode: str = "first", seed: int = 0) -> tuple[list[int], list[int]]:
    """Fixed split of ``n`` pairs: ``"first"`` = the first ``n_train`` by index; ``"seeded"`` = a
    permutation from ``seed``. Returns sorted (train, held_out)."""
    if not 0 < n_train <= n:
        raise ValueError(f"n_train must be in 1..{n}, got {n_train}")
    if mode == "first":
        order = np.arange(n)
    elif mode == "seeded":
        order = np.random.default_rng(seed).permutation(n)
    else:
        raise ValueError(f"unknown split mode {mode!r}: use 'first' or 'seeded'")
    return sorted(int(i) for i in order[:n_train]), sorted(int(i) for i in order[n_train:])


def model_from_targets(*, slope: float, intercept: float, acf: Sequence[float], se_per_pe: float,
                       n_taps: int = 3, bit_depth: int = 8, se_model: str = "poisson",
                       se_gamma_shape: float = 4.0, intercept_from: str = "offset") -> NoiseModel:
    """NoiseModel whose analytic variance law and ACF equal the targets (see the module docstring).

    A positive intercept is explained by Gaussian read noise (``intercept_from="read_noise"``) or by
    a black level below zero (``"offset"``: ``offset = -intercept / slope``, no read noise; on the
    Tin-balls pairs both fit the variance law, the offset gives fewer zero-clipped dark pixels). A
    negative intercept is always an offset.
    """
    if intercept_from not in ("offset", "read_noise"):
        raise ValueError(f"intercept_from must be 'offset' or 'read_noise', got {intercept_from!r}")
    taps = solve_fir_taps(acf, n_taps=n_taps)
    e = float(np.dot(taps, taps))
    slope = max(float(slope), 1e-6)
    # Variance of SEs per expected SE: 1 + m (Poisson yield per PE), 1 + m (1 + 1/k) (Poisson-Gamma).
    dispersion = 1.0 + se_per_pe * (1.0 + (1.0 / se_gamma_shape if se_model == "gamma" else 0.0))
    gain = slope / (e * dispersion)
    if intercept >= 0 and intercept_from == "read_noise":
        read, offset = float(np.sqrt(intercept / e)), 0.0
    else:
        read, offset = 0.0, float(-intercept / slope)
    return NoiseModel(gain_grey_per_se=gain, se_per_pe=se_per_pe, offset_grey=offset, read_noise_grey=read,
                      fir_taps=taps, se_model=se_model, se_gamma_shape=se_gamma_shape, bit_depth=bit_depth)


def simulate_noise_stats(model: NoiseModel, cleans: Sequence[np.ndarray], *, rng: np.random.Generator,
                         estimator: Mapping[str, Any]) -> list[NoiseStats]:
    """Apply ``model`` to each clean image and measure each simulated pair with the estimator."""
    return [measure_noise_stats(apply_noise_to_clean(c, rng=rng, noise_model=model), c, **estimator) for c in cleans]


def compare_noise_stats(real: NoiseStats, sim: NoiseStats, *,
                        tolerances: Mapping[str, tuple[str, float]] = DEFAULT_TOLERANCES) -> dict[str, dict[str, Any]]:
    """Per statistic: real, sim, difference, and (for those with a tolerance) tolerance and pass."""
    r, s = real.summary(), sim.summary()
    out: dict[str, dict[str, Any]] = {}
    for key in _REPORTED:
        line: dict[str, Any] = {"real": r[key], "sim": s[key], "diff": s[key] - r[key]}
        if key in tolerances:
            kind, tol = tolerances[key]
            bound = tol * abs(r[key]) if kind == "rel" else tol
            line.update(tolerance=f"{kind} {tol}", passed=bool(abs(s[key] - r[key]) <= bound))
        out[key] = line
    return out


def _aggregate(stats: Sequence[NoiseStats], est: Mapping[str, Any]) -> NoiseStats:
    keys = ("bin_width", "max_value", "max_bin_clip", "min_fit_intensity")
    return aggregate_noise_stats(stats, **{k: est[k] for k in keys if k in est})


def _fit_signal_blur(model: NoiseModel, pairs: Sequence[tuple[np.ndarray, np.ndarray]], *,
                     rng: np.random.Generator, est: Mapping[str, Any], steps: int = 2) -> tuple[NoiseModel, dict]:
    """Set ``signal_blur_px`` so that simulated edges are as blurred (relative to clean) as real ones.

    Gaussian blurs add in quadrature: ``blur^2 += real^2 - sim^2`` per step.
    """
    est_e = {**est, "edge_blur": True}
    real = float(np.nanmean([measure_noise_stats(nz, cl, **est_e).edge_sigma for nz, cl in pairs]))
    blur, sims = 0.0, []
    for _ in range(steps + 1):
        trial = replace(model, signal_blur_px=blur)
        sim = float(np.nanmean([measure_noise_stats(apply_noise_to_clean(cl, rng=rng, noise_model=trial), cl,
                                                    **est_e).edge_sigma for _, cl in pairs]))
        sims.append(sim)
        if len(sims) == steps + 1 or not (np.isfinite(real) and np.isfinite(sim)):
            break
        blur = float(np.sqrt(max(blur**2 + real**2 - sim**2, 0.0)))
    return replace(model, signal_blur_px=blur), {"real": real, "sim_per_step": sims, "signal_blur_px": blur,
                                                  "n_pairs": len(pairs)}


def fit_noise_model(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    rng: np.random.Generator,
    n_train: int = 40,
    split: str = "first",
    split_seed: int = 0,
    iterations: int = 4,
    se_per_pe: float = 0.6,
    n_taps: int = 3,
    bit_depth: int = 8,
    se_model: str = "poisson",
    se_gamma_shape: float = 4.0,
    intercept_from: str = "offset",
    check_repeats: int = 4,
    fit_edge_blur: bool = True,
    edge_pairs: int = 8,
    fit_direction: bool = False,
    direction_taps: int = 5,
    direction_steps: int = 3,
    estimator: Mapping[str, Any] | None = None,
    tolerances: Mapping[str, tuple[str, float]] = DEFAULT_TOLERANCES,
) -> tuple[NoiseModel, dict[str, Any]]:
    """Fit a :class:`NoiseModel` to aligned real pairs and check it on training and held-out pairs.

    Parameters
    ----------
    pairs : sequence of (noisy, clean), each ndarray (H, W)
        Aligned pairs in grey levels (clean already shifted onto noisy).
    rng : np.random.Generator
        Drives every simulation (same seed => same model and report).
    n_train, split, split_seed
        Fixed split, see :func:`split_pair_indices`; ``n_train`` is capped at ``len(pairs)``.
    iterations : int
        Indirect-inference refinements after the closed-form start.
    se_per_pe : float
        Mean SEs per primary (not identifiable from the variance law; kept fixed).
    check_repeats : int
        Simulations per held-out clean image in the check (pooled, to shrink Monte-Carlo noise; the
        training check reuses the last iteration, one simulation per image).
    fit_edge_blur, edge_pairs
        Fit ``signal_blur_px`` so that the edge blur (clean -> noisy Gaussian sigma) of simulated pairs
        matches the real one on the first ``edge_pairs`` training pairs (two refinements).
    fit_direction, direction_taps, direction_steps
        Then refit the filter (``direction_taps`` taps, same ACF) and ``signal_shift_px`` so the simulated
        left-right asymmetry and residual-gradient correlation match the training pairs
        (:func:`sem_core.synth.calibrate_direction.fit_direction`, ``direction_steps`` Newton steps).
    estimator : mapping, optional
        Keyword arguments for :func:`measure_noise_stats` (the same for real and simulated data).

    Returns
    -------
    model : NoiseModel
    report : dict
        ``split`` (indices), ``iterations`` (model and simulated summary per step), ``train`` and
        ``held_out`` (per-statistic real/sim/pass from :func:`compare_noise_stats`), ``passed``.
    """
    est = {"max_value": float(2**bit_depth - 1), **dict(estimator or {})}
    n = len(pairs)
    train, held = split_pair_indices(n, n_train=min(n_train, n), mode=split, seed=split_seed)
    real = [measure_noise_stats(nz, cl, **est) for nz, cl in pairs]
    real_train = _aggregate([real[i] for i in train], est)
    n_lags = min(n_taps - 1, 3)
    real_acf = np.array(real_train.acf_x[:n_lags])
    cleans_train = [pairs[i][1] for i in train]
    target = {"slope": real_train.slope, "intercept": real_train.intercept, "acf": real_acf.copy()}

    def make_model() -> NoiseModel:
        return model_from_targets(slope=target["slope"], intercept=target["intercept"], acf=target["acf"],
                                  se_per_pe=se_per_pe, n_taps=n_taps, bit_depth=bit_depth, se_model=se_model,
                                  se_gamma_shape=se_gamma_shape, intercept_from=intercept_from)

    history: list[dict[str, Any]] = []
    model = make_model()
    for step in range(iterations + 1):
        sim = _aggregate(simulate_noise_stats(model, cleans_train, rng=rng, estimator=est), est)
        history.append({"step": step, "model": model.to_dict(), "sim": sim.summary()})
        if step == iterations:
            break
        target["slope"] *= real_train.slope / sim.slope
        target["intercept"] += real_train.intercept - sim.intercept
        target["acf"] = np.clip(target["acf"] + real_acf - np.array(sim.acf_x[:n_lags]), -0.49, 0.49)
        model = make_model()
    report: dict[str, Any] = {"split": {"mode": split, "train": train, "held_out": held}, "iterations": history,
                              "real_per_pair": [s.summary() for s in real]}
    if fit_edge_blur:
        model, report["edge_blur"] = _fit_signal_blur(model, [pairs[i] for i in train[:edge_pairs]], rng=rng, est=est)
        sim = _aggregate(simulate_noise_stats(model, cleans_train, rng=rng, estimator=est), est)
    if fit_direction:
        from .calibrate_direction import fit_direction as _fit_direction

        seed = int(rng.integers(2**62))
        model, report["direction"] = _fit_direction(
            model, real=real_train.summary(), n_taps=direction_taps, steps=direction_steps,
            simulate=lambda m: _aggregate(simulate_noise_stats(m, cleans_train, rng=np.random.default_rng(seed),
                                                               estimator=est), est).summary())
        sim = _aggregate(simulate_noise_stats(model, cleans_train, rng=rng, estimator=est), est)
    # ``sim`` is the final model on the training cleans: the training check.
    report["train"] = compare_noise_stats(real_train, sim, tolerances=tolerances)
    if held:
        cleans_held = [pairs[i][1] for i in held for _ in range(max(1, check_repeats))]
        sim_held = _aggregate(simulate_noise_stats(model, cleans_held, rng=rng, estimator=est), est)
        report["held_out"] = compare_noise_stats(_aggregate([real[i] for i in held], est), sim_held,
                                                 tolerances=tolerances)
    passed = all(line.get("passed", True) for part in ("train", "held_out") for line in report.get(part, {}).values())
    report["passed"] = bool(passed)
    return model, report


def flatten_report(report: Mapping[str, Any], model: NoiseModel) -> dict[str, float]:
    """Flat numeric figures (``train_real_slope``, ``held_out_slope_pass`` = 1/0, ``model_gain_grey_per_se`` ...)
    for ``dvc metrics show``."""
    flat: dict[str, float] = {"passed": float(report["passed"])}
    for part in ("train", "held_out"):
        for key, line in report.get(part, {}).items():
            for side in ("real", "sim"):
                if np.isfinite(line[side]):
                    flat[f"{part}_{side}_{key}"] = float(line[side])
            if "passed" in line:
                flat[f"{part}_{key}_pass"] = float(line["passed"])
    for key, value in model.to_dict().items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"model_{key}"] = float(value)
    edge = report.get("edge_blur")
    if edge and np.isfinite(edge["real"]) and np.isfinite(edge["sim_per_step"][-1]):
        flat["edge_sigma_real"] = float(edge["real"])
        flat["edge_sigma_sim"] = float(edge["sim_per_step"][-1])
    for k, tap in enumerate(model.fir_taps):
        flat[f"model_fir_tap{k}"] = float(tap)
    return flat


def make_noise_stats_table(report: Mapping[str, Any], pair_ids: Sequence[str]):
    """Per-pair real statistics of a :func:`fit_noise_model` report as a DataFrame validated by
    ``NOISE_STATS_SCHEMA`` (one row per pair, in the order of ``pair_ids``)."""
    import pandas as pd

    from sem_core.schemas.noise_stats import NOISE_STATS_COLUMNS, NOISE_STATS_SCHEMA

    rows = report["real_per_pair"]
    if len(rows) != len(pair_ids):
        raise ValueError(f"{len(rows)} per-pair statistics but {len(pair_ids)} pair ids")
    held = set(report["split"]["held_out"])
    df = pd.DataFrame([{"pair_id": str(pid), "split": "held_out" if i in held else "train", **row}
                       for i, (pid, row) in enumerate(zip(pair_ids, rows))])
    return NOISE_STATS_SCHEMA.validate(df[NOISE_STATS_COLUMNS])
