"""Patch sampler, the training loop (loss goes down, exact resume, early stopping), the CLI and gpu_check --dry-run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
import zarr
from scipy import ndimage

from sem_core.checkpoint import load_checkpoint
from sem_core.device import select_device
from sem_core.patches import PatchSampler, apply_dihedral, crop_validation_images
from sem_core.train import train_model

ROOT = Path(__file__).resolve().parents[1]


def make_store(path: Path, *, n: int = 6, size: int = 64, seed: int = 0, shifts=None) -> Path:
    """Tiny dataset Zarr: smooth clean images, clean + Gaussian noise, split 4/1/1."""
    rng = np.random.default_rng(seed)
    clean = np.stack([ndimage.gaussian_filter(rng.random((size, size)), 3) for _ in range(n)])
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    noisy = np.clip(clean + rng.normal(0, 0.15, clean.shape), 0, 1)
    group = zarr.open_group(str(path), mode="w")
    for name, arr in (("noisy", noisy), ("clean", clean), ("mask", np.zeros_like(clean))):
        group.create_array(name, data=(arr * 255).round().astype(np.uint8), chunks=(1, size, size))
    group.attrs["split"] = {"train": list(range(n - 2)), "val": [n - 2], "test": [n - 1]}
    group.attrs["dataset"] = "tin_balls"
    if shifts is not None:
        group.attrs["pair_shifts"] = shifts
    return path


TINY = dict(model_kwargs=dict(base_channels=8, depth=2), loss_kwargs=dict(name="charbonnier"), patch_size=32,
            batch_size=4, steps_per_epoch=4, lr=3e-3, device="cpu", progress=False)


def test_sampler_is_seeded_shaped_and_augments_pairs_identically():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (3, 40, 48), dtype=np.uint8)
    sampler = PatchSampler(img, img.copy(), patch_size=16)
    a = sampler.sample(8, rng=np.random.default_rng(5))
    b = sampler.sample(8, rng=np.random.default_rng(5))
    c = sampler.sample(8, rng=np.random.default_rng(6))
    assert a[0].shape == (8, 1, 16, 16) and a[0].dtype == np.float32
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and not np.array_equal(a[0], c[0])
    assert np.array_equal(a[0], a[1])  # same transform on both members
    assert 0 <= a[0].min() and a[0].max() <= 1


def test_all_eight_dihedral_transforms_are_distinct_and_sampled():
    base = np.arange(16.0).reshape(4, 4)
    variants = {apply_dihedral(base, k).tobytes() for k in range(8)}
    assert len(variants) == 8
    one = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    patches = PatchSampler(one, one, patch_size=16).sample(200, rng=np.random.default_rng(0))[0]
    assert len({p.tobytes() for p in patches}) == 8


def test_sampler_shifts_align_the_pairs():
    rng = np.random.default_rng(2)
    noisy = rng.integers(0, 256, (2, 50, 50), dtype=np.uint8)
    shifts = [(2, -3), (-1, 1)]
    clean = np.stack([np.roll(noisy[i], s, axis=(0, 1)) for i, s in enumerate(shifts)])  # clean[r+dy] = noisy[r]
    pn, pc = PatchSampler(noisy, clean, patch_size=20, shifts=shifts).sample(32, rng=rng)
    assert np.array_equal(pn, pc)
    pn, pc = PatchSampler(noisy, clean, patch_size=20).sample(32, rng=rng)
    assert not np.array_equal(pn, pc)


def test_validation_crop_is_centred_and_a_multiple():
    img = np.arange(50 * 70, dtype=np.uint16).reshape(1, 50, 70)
    n, c = crop_validation_images(img, img, size=64, multiple=8, max_value=1.0)
    assert n.shape == (1, 1, 48, 64)
    assert n[0, 0, 0, 0] == img[0, 1, 3]


def test_training_lowers_the_loss_and_writes_metrics_and_checkpoints(tmp_path):
    store = make_store(tmp_path / "d.zarr")
    res = train_model(dataset_path=store, out_dir=tmp_path / "run", experiment_name="t", steps=24, seed=1,
                      early_stopping_patience=None, **TINY)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "step", "train_loss", "val_loss", "val_psnr", "lr"]
    assert list(pd.read_csv(tmp_path / "run" / "timing.csv").columns) == ["epoch", "seconds"]
    assert list(metrics["epoch"]) == [1, 2, 3, 4, 5, 6] and metrics["step"].iloc[-1] == 24 == res.steps
    assert metrics["train_loss"].iloc[-1] < 0.7 * metrics["train_loss"].iloc[0]
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["epoch"] == 6 and summary["provenance"]["inputs_hash"]
    best = load_checkpoint(res.best_checkpoint)
    assert best["epoch"] == res.best_epoch and best["val_metrics"]["val_loss"] == pytest.approx(res.best_val_loss)
    assert best["config"]["model_kwargs"] == TINY["model_kwargs"] and len(best["data_hash"]) == 64


def test_resume_ends_at_bit_identical_weights(tmp_path):
    store = make_store(tmp_path / "d.zarr")
    common = dict(dataset_path=store, experiment_name="t", steps=12, seed=3, schedule="onecycle",
                  early_stopping_patience=None, **TINY)
    train_model(out_dir=tmp_path / "a", **common)
    part = train_model(out_dir=tmp_path / "b", stop_after_steps=6, **common)  # interrupted mid-epoch 2
    assert part.steps == 6 and load_checkpoint(tmp_path / "b" / "last.ckpt")["step"] == 6
    train_model(out_dir=tmp_path / "b", resume=True, **common)
    a, b = load_checkpoint(tmp_path / "a" / "last.ckpt"), load_checkpoint(tmp_path / "b" / "last.ckpt")
    assert a["step"] == b["step"] == 12
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    ma, mb = pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv")
    assert np.allclose(ma[["val_loss", "train_loss", "lr"]], mb[["val_loss", "train_loss", "lr"]], rtol=1e-6)
    with pytest.raises(ValueError, match="config differs in \\['lr'\\]"):
        train_model(out_dir=tmp_path / "b", resume=True, **dict(common, lr=1e-3))
    other = train_model(out_dir=tmp_path / "c", **dict(common, seed=4))
    assert not torch.equal(load_checkpoint(other.last_checkpoint)["model"]["head.weight"], a["model"]["head.weight"])


def test_early_stopping_and_aligned_pairs(tmp_path):
    store = make_store(tmp_path / "d.zarr", shifts=[[1, -1]] * 6)
    res = train_model(dataset_path=store, out_dir=tmp_path / "run", experiment_name="t", steps=40, seed=0,
                      early_stopping_patience=2, align_pairs=True,
                      **dict(TINY, lr=1e-12, model_kwargs=dict(base_channels=4, depth=2, norm="none")))
    assert res.stopped_early and res.epochs == 3 and res.best_epoch == 1 and res.steps == 12
    with pytest.raises(ValueError, match="nope.zarr"):
        train_model(dataset_path=tmp_path / "nope.zarr", out_dir=tmp_path / "r3", experiment_name="t", steps=4, **TINY)
    with pytest.raises(ValueError, match="pair_shifts"):
        train_model(dataset_path=make_store(tmp_path / "e.zarr"), out_dir=tmp_path / "r2", experiment_name="t",
                    steps=4, align_pairs=True, **TINY)


def test_validation_on_another_dataset_changes_only_the_validation(tmp_path):
    store = make_store(tmp_path / "sim.zarr")
    real = make_store(tmp_path / "real.zarr", seed=9, size=48)
    common = dict(dataset_path=store, experiment_name="t", steps=4, seed=2, early_stopping_patience=None, **TINY)
    own = train_model(out_dir=tmp_path / "own", **common)
    other = train_model(out_dir=tmp_path / "other", val_dataset_path=real, **common)
    a, b = load_checkpoint(own.last_checkpoint), load_checkpoint(other.last_checkpoint)
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())  # same training
    assert a["val_metrics"]["val_psnr"] != b["val_metrics"]["val_psnr"]  # other validation images
    assert b["config"]["val_dataset_path"] == str(real) and a["data_hash"] != b["data_hash"]


def test_init_from_starts_at_another_runs_weights_and_checks_the_architecture(tmp_path):
    store = make_store(tmp_path / "d.zarr")
    common = dict(dataset_path=store, experiment_name="t", seed=5, early_stopping_patience=None, **TINY)
    pre = train_model(out_dir=tmp_path / "pre", steps=8, **common)
    # zero steps of fine-tuning would be the pre-trained weights; one epoch starts from them, not from scratch
    ft = train_model(out_dir=tmp_path / "ft", steps=4, init_from=pre.best_checkpoint, **dict(common, lr=1e-12))
    scratch = train_model(out_dir=tmp_path / "scratch", steps=4, **dict(common, lr=1e-12))
    p, f, s = (load_checkpoint(r.last_checkpoint) for r in (pre, ft, scratch))
    src = load_checkpoint(pre.best_checkpoint)["model"]
    assert torch.allclose(f["model"]["head.weight"], src["head.weight"], atol=1e-6)
    assert not torch.allclose(s["model"]["head.weight"], src["head.weight"], atol=1e-3)
    assert f["config"]["init_from"] == str(pre.best_checkpoint) and len(f["config"]["init_hash"]) == 64
    with pytest.raises(ValueError, match="architecture differs"):
        train_model(out_dir=tmp_path / "bad", steps=4, init_from=pre.best_checkpoint,
                    **dict(common, model_kwargs=dict(base_channels=4, depth=2)))
    with pytest.raises(ValueError, match="does not exist"):
        train_model(out_dir=tmp_path / "bad2", steps=4, init_from=tmp_path / "missing.ckpt", **common)


def test_device_selection_on_cpu():
    setup = select_device("cpu")
    assert setup.autocast_dtype is None and not setup.channels_last and setup.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            select_device("cuda")
    with pytest.raises(ValueError):
        select_device("tpu")


def test_cli_trains_an_experiment_into_models_dir(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sem_cli.main import app

    store = make_store(tmp_path / "tb.zarr")
    params = {"seed": 7, "paths": {"tin_balls_zarr": str(store), "models_dir": str(tmp_path / "models")},
              "train": {"model": {"base_channels": 4, "depth": 2}, "patch_size": 32, "batch_size": 2, "steps": 4,
                        "steps_per_epoch": 2, "device": "cpu", "experiment": "full"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--params", "params.yaml", "--experiment", "residual", "--seed", "3"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "models" / "residual_tin_balls_s3"
    ckpt = load_checkpoint(run / "last.ckpt")
    assert ckpt["config"]["model_kwargs"]["residual"] and ckpt["config"]["loss_kwargs"]["name"] == "full"
    assert ckpt["config"]["seed"] == 3 and len(pd.read_csv(run / "metrics.csv")) == 2
    bad = CliRunner().invoke(app, ["train", "--params", "params.yaml", "--experiment", "nope"])
    assert bad.exit_code == 2
    sim = make_store(tmp_path / "sim.zarr", seed=5)
    params["train"]["experiments"] = {"full": {"loss": "full"}, "sim2real": {"loss": "full", "train_data": str(sim)}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["train", "--params", "params.yaml", "--experiment", "sim2real"])
    assert result.exit_code == 0, result.output
    cfg = load_checkpoint(tmp_path / "models" / "sim2real_tin_balls" / "last.ckpt")["config"]
    assert cfg["dataset_path"] == str(sim) and cfg["val_dataset_path"] == str(store) and cfg["seed"] == 7


def test_gpu_check_dry_run_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu.json"
    threads = torch.get_num_threads()
    try:
        status = gpu_check.main(["--dry-run", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    summary = json.loads(out.read_text())
    assert status == 0 and summary["errors"] == {}
    train = summary["train"]
    assert train["machinery_patches_per_s"] > 0 and train["bare_same_loss_patches_per_s"] > 0
    assert train["ratio_machinery_vs_bare_mse"] == pytest.approx(
        train["machinery_patches_per_s"] / train["bare_mse_patches_per_s"], rel=1e-12)
    assert np.isfinite(train["machinery_last_loss"]) and train["machinery_last_loss"] > 0
    assert {r["base_channels"] for r in summary["inference"]} == {32, 64}
    assert all(r["mpix_per_s"] > 0 and r["finite"] for r in summary["inference"] if not r.get("skipped"))
    end_to_end = summary["train_model"]
    assert end_to_end["resume_bit_identical"] and end_to_end["reloaded_output_finite"]  # CPU: exact resume


def test_train_config_resolves_experiments_and_rejects_mistakes():
    from pydantic import ValidationError

    from sem_core.config.train import TrainConfig

    cfg = TrainConfig()
    assert set(cfg.experiments) >= {"baseline", "charbonnier", "full", "residual", "deeper", "edge_input", "sim2real"}
    model, loss = cfg.resolve("deeper")
    assert model["depth"] == cfg.model.depth + 1 and loss["name"] == "full"
    assert cfg.resolve("edge_input")[0]["edge_input"] and not cfg.resolve("full")[0]["edge_input"]
    assert cfg.experiments["sim2real"].train_data is not None
    with pytest.raises(KeyError, match="unknown experiment"):
        cfg.resolve("nope")
    with pytest.raises(ValidationError, match="unknown keys"):
        TrainConfig(experiments={"charbonnier": {"model": {"widht": 3}}})
    with pytest.raises(ValidationError, match="not in train.experiments"):
        TrainConfig(experiment="missing")
