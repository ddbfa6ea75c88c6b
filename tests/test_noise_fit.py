"""Calibration: FIR solve, split, recovery of known parameters, the real Tin-balls check and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import ndimage as ndi

from sem_core.synth.noise_fit import (
    compute_fir_acf,
    fit_noise_model,
    flatten_report,
    make_noise_stats_table,
    model_from_targets,
    solve_fir_taps,
    split_pair_indices,
)
from sem_core.synth.imaging import NoiseModel, apply_noise_to_clean


def _clean_images(n: int, *, shape=(128, 160), seed=0) -> list[np.ndarray]:
    """Tin-balls-like clean images: dark background, bright blurred disks, 8-bit grey levels as float."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    out = []
    for _ in range(n):
        img = np.full(shape, 25.0)
        for _ in range(6):
            r0, c0, rad = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(10, 30)
            img[(rr - r0) ** 2 + (cc - c0) ** 2 < rad**2] = rng.uniform(100, 190)
        out.append(np.rint(ndi.gaussian_filter(img, 1.0)))
    return out


TRUE = NoiseModel(gain_grey_per_se=4.0, se_per_pe=0.6, offset_grey=-3.0, read_noise_grey=0.0,
                  fir_taps=(0.6, 0.32, 0.08), signal_blur_px=1.0)


def test_solve_fir_taps_matches_target_acf_with_unit_dc_gain():
    taps = solve_fir_taps((0.47, 0.085))
    assert sum(taps) == pytest.approx(1.0)
    np.testing.assert_allclose(compute_fir_acf(taps, (1, 2)), [0.47, 0.085], atol=1e-6)
    assert taps[0] >= taps[-1]  # front-loaded (a causal low-pass), not its time reverse
    taps4 = solve_fir_taps((0.47, 0.085, 0.018), n_taps=4)
    np.testing.assert_allclose(compute_fir_acf(taps4, (1, 2, 3)), [0.47, 0.085, 0.018], atol=1e-5)
    np.testing.assert_allclose(compute_fir_acf((0.5, 0.5), (1, 2)), [0.5, 0.0])


def test_split_is_fixed_disjoint_and_complete():
    train, held = split_pair_indices(50, n_train=40)
    assert train == list(range(40)) and held == list(range(40, 50))
    a = split_pair_indices(50, n_train=40, mode="seeded", seed=3)
    assert a == split_pair_indices(50, n_train=40, mode="seeded", seed=3)
    assert a != split_pair_indices(50, n_train=40, mode="seeded", seed=4)
    assert sorted(a[0] + a[1]) == list(range(50)) and not set(a[0]) & set(a[1])
    with pytest.raises(ValueError):
        split_pair_indices(5, n_train=6)


def test_model_from_targets_inverts_the_variance_law():
    m = model_from_targets(slope=3.5, intercept=14.0, acf=(0.47, 0.085), se_per_pe=0.6)
    e = float(np.dot(m.fir_taps, m.fir_taps))
    assert e * m.gain_grey_per_se * (1 + m.se_per_pe) == pytest.approx(3.5)
    assert m.offset_grey == pytest.approx(-4.0) and m.read_noise_grey == 0.0
    r = model_from_targets(slope=3.5, intercept=14.0, acf=(0.47, 0.085), se_per_pe=0.6, intercept_from="read_noise")
    assert e * r.read_noise_grey**2 == pytest.approx(14.0) and r.offset_grey == 0.0
    g = model_from_targets(slope=3.5, intercept=14.0, acf=(0.47, 0.085), se_per_pe=0.6, se_model="gamma",
                           se_gamma_shape=2.0)
    assert e * g.gain_grey_per_se * (1 + 0.6 * 1.5) == pytest.approx(3.5)


def test_fit_recovers_known_parameters_from_synthetic_pairs():
    rng = np.random.default_rng(21)
    cleans = _clean_images(8)
    pairs = [(apply_noise_to_clean(c, rng=rng, noise_model=TRUE), c) for c in cleans]
    model, report = fit_noise_model(pairs, rng=np.random.default_rng(22), n_train=6, iterations=2,
                                    se_per_pe=0.6, check_repeats=2)
    assert model.gain_grey_per_se == pytest.approx(TRUE.gain_grey_per_se, rel=0.08)
    np.testing.assert_allclose(model.fir_taps, TRUE.fir_taps, atol=0.04)
    assert model.offset_grey == pytest.approx(TRUE.offset_grey, abs=2.0)
    assert model.signal_blur_px == pytest.approx(TRUE.signal_blur_px, abs=0.3)
    assert report["edge_blur"]["sim_per_step"][-1] == pytest.approx(report["edge_blur"]["real"], abs=0.1)
    assert report["train"]["slope"]["passed"] and report["train"]["acf_x1"]["passed"]
    assert report["held_out"]["slope"]["passed"] and report["held_out"]["acf_x1"]["passed"]
    assert report["split"] == {"mode": "first", "train": list(range(6)), "held_out": [6, 7]}
    flat = flatten_report(report, model)
    assert all(isinstance(v, float) for v in flat.values())
    assert flat["model_fir_tap0"] == pytest.approx(model.fir_taps[0])
    assert "train_real_slope" in flat and "held_out_acf_x1_pass" in flat
    table = make_noise_stats_table(report, [f"{i:03d}" for i in range(8)])
    assert table["split"].tolist() == ["train"] * 6 + ["held_out"] * 2
    assert table["acf_x1"].between(0.3, 0.6).all()
    with pytest.raises(ValueError, match="pair ids"):
        make_noise_stats_table(report, ["001"])


def test_fit_is_deterministic():
    rng = np.random.default_rng(23)
    pairs = [(apply_noise_to_clean(c, rng=rng, noise_model=TRUE), c) for c in _clean_images(3, shape=(96, 96))]
    kw = dict(n_train=2, iterations=1, check_repeats=1, edge_pairs=1)
    a = fit_noise_model(pairs, rng=np.random.default_rng(5), **kw)
    b = fit_noise_model(pairs, rng=np.random.default_rng(5), **kw)
    assert a[0] == b[0]
    assert json.dumps(a[1]["held_out"]) == json.dumps(b[1]["held_out"])  # NaN-safe comparison
    c = fit_noise_model(pairs, rng=np.random.default_rng(6), **kw)
    assert json.dumps(c[1]["held_out"]) != json.dumps(a[1]["held_out"])


def _real_pairs(tin_balls_dir, n):
    from sem_core.synth.real_pairs import find_time_pairs, load_aligned_pairs

    items = [(pid, nz, cl, None) for pid, nz, cl in find_time_pairs(tin_balls_dir)[:n]]
    pairs, errors = load_aligned_pairs(items)
    assert errors == []
    return pairs


@pytest.mark.shared_data
def test_real_check_fast_on_five_pairs(tin_balls_dir):
    pairs = _real_pairs(tin_balls_dir, 5)
    # the known misregistration: about (-2, +0.6) px on average, never (0, 0) from the frame
    assert all(abs(p.shift[0]) + abs(p.shift[1]) > 0.2 for p in pairs)
    model, report = fit_noise_model([(p.noisy, p.clean) for p in pairs], rng=np.random.default_rng(0),
                                    n_train=4, iterations=2, check_repeats=2, edge_pairs=2)
    for part in ("train", "held_out"):
        lines = report[part]
        assert lines["slope"]["passed"] and lines["acf_x1"]["passed"] and lines["acf_y1"]["passed"], (part, lines)
    # The intercept of one image's variance law is too noisy to check (it varies by +-10 grey levels between
    # images); the pooled training intercept is, and the full test checks the held-out one on 10 images.
    assert report["train"]["intercept"]["passed"], report["train"]["intercept"]
    assert 3.0 < report["train"]["slope"]["real"] < 4.2
    assert 0.40 < report["train"]["acf_x1"]["real"] < 0.52
    # the short-dwell image is blurrier than the long-dwell one: the fit adds signal blur to match
    assert report["edge_blur"]["real"] > report["edge_blur"]["sim_per_step"][0] + 0.1
    assert report["edge_blur"]["sim_per_step"][-1] == pytest.approx(report["edge_blur"]["real"], abs=0.1)
    assert 0.3 < model.signal_blur_px < 1.5


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_check_full_passes_all_tolerances(tin_balls_dir):
    pairs = _real_pairs(tin_balls_dir, 50)
    _, report = fit_noise_model([(p.noisy, p.clean) for p in pairs], rng=np.random.default_rng(20261126),
                                n_train=40, iterations=3)
    assert report["passed"], {k: report[k] for k in ("train", "held_out")}


@pytest.mark.shared_data
def test_cli_noise_fit_writes_model_and_flat_report(tin_balls_dir, tmp_path):
    import typer
    from typer.testing import CliRunner

    from sem_cli.noise import register
    from sem_core.synth.imaging import read_noise_model

    params = {
        "seed": 7,
        "paths": {"tin_balls_source": str(tin_balls_dir), "tin_balls_manifest": str(tmp_path / "none.parquet"),
                  "noise_model": str(tmp_path / "nm.json"), "noise_fit_report": str(tmp_path / "r" / "fit.json")},
        "noise_fit": {"max_pairs": 3, "n_train": 2, "iterations": 1, "check_repeats": 1, "edge_pairs": 1},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `noise` a sub-command group
        pass

    result = CliRunner().invoke(app, ["noise", "fit", "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 0, result.output
    model = read_noise_model(tmp_path / "nm.json")
    report = json.loads((tmp_path / "r" / "fit.json").read_text())
    assert report["model_gain_grey_per_se"] == model.gain_grey_per_se  # the flat report is the written model
    # the fitted model reproduces what it was fitted to (training pairs): variance slope and fast-axis
    # correlation (measured: 0.4 % and 0.004 apart; the held-out split is what the pass flags judge)
    assert report["train_sim_slope"] == pytest.approx(report["train_real_slope"], rel=0.05)
    assert report["train_sim_acf_x1"] == pytest.approx(report["train_real_acf_x1"], abs=0.02)
    assert report["train_real_acf_x1"] > 0.3  # the real noise is correlated along x (not a degenerate fit)
    flags = {k: v for k, v in report.items() if k.endswith("_pass")}
    assert len(flags) >= 6 and report["passed"] == float(all(v == 1.0 for v in flags.values()))
    assert report["provenance"]["stage"] == "noise_fit" and len(report["provenance"]["inputs_hash"]) == 64
    assert [p["pair_id"] for p in report["details"]["pairs"]] == ["001", "002", "003"]
    assert [r["split"] for r in report["details"]["real_per_pair"]] == ["train", "train", "held_out"]
    assert json.loads((tmp_path / "nm.json").read_text())["provenance"]["params_hash"]
