"""Candidates x seeds trained on the training block, chosen on the val block, reported on the test block."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import export_release, save_checkpoint
from ..evaluate.heldout import score_method
from ..models.predict import predict_image
from ..provenance import hash_array
from ..rng import derive_rng
from .card import make_release_card
from .recipe import train_candidate

__all__ = ["run_release", "simulate_copies"]


def simulate_copies(clean: np.ndarray, *, noise_model: Any, copies: int, seed: int) -> np.ndarray:
    """(copies, N, H, W) uint8: calibrated simulated noise on each clean image (``apply_noise_to_clean``)."""
    from ..synth.imaging import apply_noise_to_clean

    return np.stack([np.stack([apply_noise_to_clean(c, rng=derive_rng(seed, "release_sim", k, i), noise_model=noise_model)
                               for i, c in enumerate(clean)]) for k in range(copies)]).astype(np.uint8)


def run_release(
    noisy: np.ndarray,
    clean: np.ndarray,
    *,
    split: Mapping[str, Sequence[int]],
    image_ids: Sequence[str],
    split_mode: str,
    candidates: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int],
    common: Mapping[str, Any],
    out: str | Path,
    noise_model: Any = None,
    ensemble: str = "none",
    only: Sequence[str] | None = None,
    snapshot_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every candidate with every seed, score it, export the one with the best val PSNR.

    Parameters
    ----------
    noisy, clean : (N, H, W) uint8
        The whole store (aligned pairs); only ``split["train"]`` is trained on.
    split : {"train", "val", "test"} -> indices
    candidates : name -> overrides of :func:`~.recipe.train_candidate` (``pretrain_steps``, ``sim_copies``,
        ``brightness``, ``contrast``, ``noise_scale``, ...) and optionally its own ``seeds``
    seeds : seeds per candidate
    common : :func:`~.recipe.train_candidate` arguments shared by all candidates (``model_kwargs``, ``steps``, ...)
    out : the exported ``.safetensors`` (card beside it)
    noise_model : the calibrated noise model (needed by candidates with ``sim_copies``)
    ensemble : self-ensemble used when scoring
    only : names of ``candidates`` to train (default: all)
    snapshot_dir : optional folder; each run's weights are saved there every 500 steps as
        ``<candidate>_seed<k>.ckpt`` (``{"model", "step", "phase", "model_kwargs"}``), for long CPU runs

    Returns
    -------
    dict
        ``runs`` (candidate, seed, val and test metrics, training info), ``table`` (per candidate: mean and std
        over seeds of the test aligned PSNR/SSIM and raw PSNR), ``chosen`` and ``release`` (path).
    """
    tr, va, te = list(split["train"]), list(split["val"]), list(split["test"])
    tn, tc = noisy[tr], clean[tr]
    data_hash = hash_array(np.stack([tn, tc]))
    runs, best = [], None
    sims: dict[int, np.ndarray] = {}
    unknown = sorted(set(only or ()) - set(candidates))
    if unknown:
        raise ValueError(f"unknown release candidate(s) {unknown}; known: {sorted(candidates)}")
    candidates = {k: v for k, v in candidates.items() if only is None or k in only}
    for name, overrides in candidates.items():
        opts = dict(overrides)
        copies = int(opts.pop("sim_copies", 0))
        for seed in opts.pop("seeds", None) or seeds:
            sim = None
            if copies:
                if noise_model is None:
                    raise ValueError(f"candidate {name} needs simulated noise: pass noise_model")
                if copies not in sims:
                    sims[copies] = simulate_copies(tc, noise_model=noise_model, copies=copies, seed=0)
                sim = sims[copies]
            kwargs = {**dict(common), **opts}
            log(f"candidate {name} seed {seed}: {kwargs}")
            snap = None if snapshot_dir is None else _snapshot_writer(Path(snapshot_dir) / f"{name}_seed{seed}.ckpt",
                                                                      kwargs["model_kwargs"])
            model, info = train_candidate(tn, tc, sim_noisy=sim, seed=seed, **kwargs, snapshot=snap,
                                          progress=lambda p: log(f"  {p['phase']} {p['step']}/{p['steps']} "
                                                                 f"loss {p['loss']:.5f} {p['seconds']:.0f} s")
                                          if p["step"] % 250 == 0 or p["step"] == p["steps"] else None)
            fn = lambda im, m=model: predict_image(m, im, ensemble=ensemble)  # noqa: E731
            val = score_method(fn, [noisy[i] for i in va], [clean[i] for i in va])
            test = score_method(fn, [noisy[i] for i in te], [clean[i] for i in te])
            row = {"candidate": name, "seed": seed, "sim_copies": copies, "training": info, "val": val, "test": test}
            runs.append(row)
            log(f"  -> val {val['psnr_aligned']:.2f} dB, test {test['psnr_aligned']:.2f} dB "
                f"SSIM {test['ssim_aligned']:.3f} ({info['seconds']:.0f} s)")
            if best is None or val["psnr_aligned"] > best[0]["val"]["psnr_aligned"]:
                best = (row, model, kwargs)
    table = {}
    for name in candidates:
        rows = [r for r in runs if r["candidate"] == name]
        table[name] = {f"{k}_{stat}": float(getattr(np, stat)([r["test"][k] for r in rows]))
                       for k in ("psnr_aligned", "ssim_aligned", "psnr_raw") for stat in ("mean", "std")}
        table[name]["val_psnr_aligned_mean"] = float(np.mean([r["val"]["psnr_aligned"] for r in rows]))
    row, model, kwargs = best
    recipe = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}, "sim_copies": row["sim_copies"]}
    card = make_release_card(candidate=row["candidate"], seed=row["seed"], recipe=recipe, info=row["training"],
                             image_ids=image_ids, split=split, split_mode=split_mode, data_hash=data_hash,
                             metrics={"val": _scalars(row["val"]), "test": _scalars(row["test"]), "ensemble": ensemble},
                             name=Path(out).stem)
    export_release(model, out, card)
    return {"runs": runs, "table": table, "chosen": {"candidate": row["candidate"], "seed": row["seed"]},
            "release": str(out)}


def _snapshot_writer(path: Path, model_kwargs: Mapping[str, Any]) -> Callable[[Any, str, int], None]:
    def write(model: Any, phase: str, step: int) -> None:
        save_checkpoint(path, {"model": model.state_dict(), "phase": phase, "step": step,
                               "model_kwargs": dict(model_kwargs)})
    return write


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, float)}
