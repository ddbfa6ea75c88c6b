"""Sim-to-real pairs: simulated noise on the real train/val clean images (`synth tin-balls-sim`)."""

from dataclasses import replace

import numpy as np
import pytest
import yaml
from scipy import ndimage
from typer.testing import CliRunner

from sem_cli.main import app
from sem_core.io.zarr_store import hash_dataset, open_dataset, write_item, writing_dataset
from sem_core.synth.imaging import NoiseModel, write_noise_model
from sem_core.synth.sim_pairs import synthesize_sim_pairs

runner = CliRunner()
MODEL = NoiseModel(gain_grey_per_se=2.0, se_per_pe=0.6, offset_grey=0.0, read_noise_grey=0.0, fir_taps=(1.0,),
                   se_model="poisson", line_noise_sigma_grey=0.0, bit_depth=8, signal_blur_px=0.0)
SPLIT = {"train": [0, 2, 3, 5], "val": [1], "test": [4]}


def make_real(path, *, n=6, shape=(32, 48), seed=0):
    """Real-like store: smooth clean images in 40..220 with a distinct level per image, split 4/1/1."""
    rng = np.random.default_rng(seed)
    attrs = {"dataset": "tin_balls", "split": SPLIT, "image_ids": [f"{i:03d}" for i in range(1, n + 1)],
             "licence": "MIT", "citation": "S. Shin et al.", "bit_depth": 8}
    with writing_dataset(path, n=n, shape=shape, attrs=attrs) as group:
        for i in range(n):
            clean = 40 + 180 * ndimage.gaussian_filter(rng.random(shape), 3)
            clean = np.clip((clean - clean.mean()) * 4 + 60 + 25 * i, 0, 255).round().astype(np.uint8)
            noisy = np.clip(clean + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
            write_item(group, i, noisy=noisy, clean=clean, mask=(clean > 150).astype(np.uint8))
    return path


def test_same_seed_same_bytes_and_test_images_never_used(tmp_path):
    real = make_real(tmp_path / "real.zarr")
    a = synthesize_sim_pairs(real, tmp_path / "a.zarr", noise_model=MODEL, seed=3, copies=2)
    b = synthesize_sim_pairs(real, tmp_path / "b.zarr", noise_model=MODEL.to_dict(), seed=3, copies=2)
    c = synthesize_sim_pairs(real, tmp_path / "c.zarr", noise_model=MODEL, seed=4, copies=2)
    assert hash_dataset(a) == hash_dataset(b) != hash_dataset(c)
    ds, src = open_dataset(a), open_dataset(real)
    assert len(ds) == 10 and ds.split == {"train": list(range(8)), "val": [8, 9], "test": []}
    assert ds.attrs["source_index"] == [0, 0, 2, 2, 3, 3, 5, 5, 1, 1] and ds.attrs["copy_index"] == [0, 1] * 5
    assert ds.attrs["dataset"] == "tin_balls_sim" and ds.attrs["source_hash"] == hash_dataset(real)
    assert ds.attrs["licence"] == "MIT" and ds.attrs["citation"] == "S. Shin et al."
    assert ds.attrs["noise_model"] == MODEL.to_dict() and ds.attrs["seed"] == 3 and ds.attrs["provenance"]["params_hash"]
    clean, real_clean = ds.clean[:], src.clean[:]
    # the test image (index 4) has its own grey level: none of its pixels-for-pixels clean image is present
    assert not any(np.array_equal(img, real_clean[4]) for img in clean)
    for k, i in enumerate(ds.attrs["source_index"]):
        assert np.array_equal(clean[k], real_clean[i]) and np.array_equal(ds.mask[k], src.mask[i])
    noisy = ds.noisy[:]
    assert noisy.dtype == np.uint8 and not np.array_equal(noisy[0], noisy[1])  # copies get different noise
    assert not np.array_equal(noisy[0], src.noisy[0])


def test_noise_follows_the_models_variance_law(tmp_path):
    real = make_real(tmp_path / "real.zarr")
    flat = tmp_path / "flat.zarr"
    with writing_dataset(flat, n=2, shape=(64, 64), attrs={"dataset": "tin_balls", "split":
                         {"train": [0], "val": [1], "test": []}}) as group:
        for i, level in enumerate((60, 160)):
            img = np.full((64, 64), level, np.uint8)
            write_item(group, i, noisy=img, clean=img, mask=np.zeros_like(img))
    stds = {}
    for gain in (0.5, 2.0, 8.0):
        nm = replace(MODEL, gain_grey_per_se=gain)
        ds = open_dataset(synthesize_sim_pairs(flat, tmp_path / f"g{gain}.zarr", noise_model=nm, seed=0))
        diff = ds.noisy[:].astype(float) - ds.clean[:].astype(float)
        stds[gain] = diff.std(axis=(1, 2))
        expected = np.sqrt(gain * (1 + MODEL.se_per_pe) * np.array([60.0, 160.0]))  # variance law, FIR = (1,)
        assert np.allclose(stds[gain], expected, rtol=0.15), (gain, stds[gain], expected)
        assert np.abs(diff.mean(axis=(1, 2))).max() < 1.0
    assert stds[0.5][1] < stds[2.0][1] < stds[8.0][1]
    ds = open_dataset(synthesize_sim_pairs(real, tmp_path / "r.zarr", noise_model=MODEL, seed=0))
    assert 3 < np.abs(ds.noisy[:].astype(float) - ds.clean[:].astype(float)).mean() < 20


def test_bad_inputs_are_rejected(tmp_path):
    real = make_real(tmp_path / "real.zarr")
    with pytest.raises(ValueError, match="copies"):
        synthesize_sim_pairs(real, tmp_path / "x.zarr", noise_model=MODEL, seed=0, copies=0)
    with pytest.raises(ValueError, match="bit_depth 16"):
        synthesize_sim_pairs(real, tmp_path / "x.zarr", noise_model=replace(MODEL, bit_depth=16), seed=0)
    assert not (tmp_path / "x.zarr").exists()


def test_train_two_steps_on_sim_validating_on_real(tmp_path):
    from sem_core.train import train_model

    real = make_real(tmp_path / "real.zarr")
    sim = synthesize_sim_pairs(real, tmp_path / "sim.zarr", noise_model=MODEL, seed=0, copies=2)
    res = train_model(dataset_path=sim, val_dataset_path=real, out_dir=tmp_path / "run", experiment_name="sim2real",
                      model_kwargs=dict(base_channels=4, depth=1), loss_kwargs=dict(name="charbonnier"),
                      patch_size=16, batch_size=2, steps=2, steps_per_epoch=2, device="cpu", progress=False,
                      early_stopping_patience=None, seed=0)
    assert res.steps == 2 and np.isfinite(res.best_val_loss)


def _params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 5, "paths": {
        "tin_balls_zarr": str(tmp_path / "interim/tin_balls.zarr"),
        "noise_model": str(tmp_path / "interim/noise_model.json"),
        "tin_balls_sim_zarr": str(tmp_path / "interim/tin_balls_sim.zarr")}}))
    return path


def test_cli_writes_the_store_and_fails_cleanly_without_inputs(tmp_path):
    p = _params(tmp_path)
    res = runner.invoke(app, ["synth", "tin-balls-sim", "--params", str(p)])
    assert res.exit_code == 1 and "chunk" in res.output, res.output
    real = make_real(tmp_path / "interim/tin_balls.zarr")
    res = runner.invoke(app, ["synth", "tin-balls-sim", "--params", str(p)])
    assert res.exit_code == 1 and "noise model" in res.output, res.output
    write_noise_model(tmp_path / "interim/noise_model.json", MODEL, provenance={"params_hash": "x"})
    res = runner.invoke(app, ["synth", "tin-balls-sim", "--params", str(p), "--copies", "3"])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "interim/tin_balls_sim.zarr")
    assert len(ds) == 15 and ds.attrs["copies"] == 3 and ds.attrs["seed"] == 5
    direct = synthesize_sim_pairs(real, tmp_path / "d.zarr", noise_model=MODEL, seed=5, copies=3)
    assert hash_dataset(direct) == hash_dataset(ds.path)
