"""CLI smoke tests: `sem-denoise chunk`, `synth wafers`, `synth scan` on tiny params files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from sem_cli.main import app
from sem_core.io.ome_zarr import open_multiscale
from sem_core.io.zarr_store import open_dataset

SRC = Path(__file__).resolve().parents[2] / "shared/data/tin_balls"
runner = CliRunner()


def _params(tmp_path, **sections):
    data = {
        "seed": 7,
        "paths": {
            "tin_balls_source": str(tmp_path / "src"),
            "tin_balls_manifest": str(tmp_path / "interim/manifest.parquet"),
            "tin_balls_ingest_report": str(tmp_path / "interim/ingest_report.json"),
            "noise_model": str(tmp_path / "interim/noise_model.json"),
            "tin_balls_zarr": str(tmp_path / "interim/tin_balls.zarr"),
            "wafers_zarr": str(tmp_path / "interim/wafers.zarr"),
            "scans_dir": str(tmp_path / "interim/scans"),
        },
        **sections,
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_chunk_without_manifest_fails_cleanly(tmp_path):
    res = runner.invoke(app, ["chunk", "--params", str(_params(tmp_path))])
    assert res.exit_code == 1, res.output
    assert "manifest" in res.output and "ingest" in res.output


def test_bad_dataset_params_exit_2(tmp_path):
    p = _params(tmp_path, datasets={"wafers": {"split": [0.5, 0.5, 0.5]}})
    res = runner.invoke(app, ["synth", "wafers", "--params", str(p)])
    assert res.exit_code == 2 and "split" in res.output


@pytest.mark.shared_data
def test_ingest_then_chunk_real_pairs(tmp_path):
    if not SRC.is_dir():
        pytest.skip("shared data missing")
    for sub, prefix in (("low", "100ns"), ("high", "30us")):
        (tmp_path / "src/time" / sub).mkdir(parents=True)
        for k in (4, 5, 6):
            shutil.copy(SRC / "time" / sub / f"{prefix}_{k:03d}.tif", tmp_path / "src/time" / sub)
    shutil.copy(SRC / "LICENSE", tmp_path / "src/LICENSE")
    p = _params(tmp_path)
    res = runner.invoke(app, ["ingest", "--params", str(p)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["chunk", "--params", str(p)])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "interim/tin_balls.zarr")
    assert len(ds) == 3 and ds.attrs["image_ids"] == ["004", "005", "006"]
    assert "Seoleun Shin" in ds.attrs["licence_text"] and "ad7e41" in ds.attrs["citation"]
    assert ds.attrs["aligned"] is True and sorted(sum(ds.split.values(), [])) == [0, 1, 2]
    assert ds.noisy.shape == (3, 442, 512) and ds.noisy.dtype == np.uint8 and ds.noisy.chunks == (1, 442, 512)
    assert 0.3 < float(np.asarray(ds.mask[:]).mean()) < 0.7  # README: balls cover about half of each image


def test_synth_wafers_and_scan(tmp_path):
    pytest.importorskip("sem_core.synth.wafers")
    p = _params(tmp_path, datasets={"wafers": {"n_images": 3, "shape": [64, 64]}},
                scan={"size": 256, "chunk": 128, "halo": 16, "n_levels": 2})
    res = runner.invoke(app, ["synth", "wafers", "--params", str(p), "--n", "2"])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "interim/wafers.zarr")
    assert len(ds) == 2 and ds.noisy.shape == (2, 64, 64) and ds.pattern is not None
    assert ds.defects is not None
    out = tmp_path / "s.ome.zarr"
    res = runner.invoke(app, ["synth", "scan", "--params", str(p), "--out", str(out), "--size", "256",
                              "--chunk", "128", "--seed", "3", "--pattern", "contacts"])
    assert res.exit_code == 0, res.output
    assert open_multiscale(out, 1).shape == (128, 128)
    assert open_multiscale(out, 0).chunks == (128, 128)
    assert np.asarray(open_multiscale(out, 0, component="clean")[:]).std() > 1


def test_synth_wafers_uses_the_fitted_noise_model_file(tmp_path):
    """The file `noise fit` writes ({"noise_model", "provenance"}) is what `synth wafers` reads."""
    pytest.importorskip("sem_core.synth.wafers")
    from sem_core.synth.imaging import NoiseModel, write_noise_model

    p = _params(tmp_path, datasets={"wafers": {"n_images": 2, "shape": [64, 64]}})
    nm_path = tmp_path / "interim/noise_model.json"
    nm_path.parent.mkdir(parents=True, exist_ok=True)
    quiet = NoiseModel(gain_grey_per_se=0.05, se_per_pe=0.6, offset_grey=0.0, read_noise_grey=0.0,
                       fir_taps=(1.0,), se_model="poisson", se_gamma_shape=4.0, line_noise_sigma_grey=0.0,
                       line_noise_alpha=1.0, bit_depth=8, signal_blur_px=0.0)
    write_noise_model(nm_path, quiet, provenance={"params_hash": "x"})
    res = runner.invoke(app, ["synth", "wafers", "--params", str(p)])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "interim/wafers.zarr")
    noisy, clean = ds.noisy[:].astype(float), ds.clean[:].astype(float)
    # a tiny gain means many electrons per grey level: noise std ~ sqrt(0.05 * 1.6 * I) < 4 grey levels
    assert np.abs(noisy - clean).mean() < 4.0
    noisy_default = noisy
    nm_path.unlink()
    res = runner.invoke(app, ["synth", "wafers", "--params", str(p)])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "interim/wafers.zarr")
    assert np.abs(ds.noisy[:].astype(float) - ds.clean[:].astype(float)).mean() > np.abs(noisy_default - clean).mean()
