"""CUDA paths (skipped without CUDA; the ``gpu`` marker): bf16 + channels_last inference, a training run.

On CUDA the U-Net denoiser runs under bfloat16 autocast with ``channels_last`` tensors
(:func:`sem_core.device.select_device`); the CPU runs float32. These tests pin what that costs in
accuracy and that training runs end to end on the device.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch")

from sem_core.denoise.base import build_denoiser, denoise_image  # noqa: E402
from sem_core.metrics import compute_psnr  # noqa: E402
from sem_core.models.unet import UNet  # noqa: E402

pytestmark = pytest.mark.gpu

# Tolerance of bf16 autocast against float32: bf16 keeps 8 significant bits (unit roundoff
# u = 2**-9 ~ 2e-3). Each of the depth-2 U-Net's 11 convolutions rounds its inputs and its output
# to bf16 (accumulation is float32), so independent relative errors of ~u add up in quadrature to
# ~sqrt(2 * 11) * u ~ 1e-2 of the activation scale (~1 here: inputs and outputs on [0, 1]).
# Hence: RMS difference <= 1e-2 (PSNR >= 40 dB against the float32 output) and no pixel off by
# more than 8x that (outliers from a few large activations).
BF16_RMS = 1e-2
BF16_MAX = 8e-2


def _image(size: int = 192, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.random((size, size)), 3)
    clean = (clean - clean.min()) / np.ptp(clean)
    return np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)


def test_bf16_channels_last_inference_equals_float32_within_the_stated_tolerance():
    torch.manual_seed(0)
    net = UNet(base_channels=16, depth=2)
    cpu = build_denoiser("unet", model=copy.deepcopy(net), tile_px=64, batch_size=4, device="cpu")
    gpu = build_denoiser("unet", model=net, tile_px=64, batch_size=4, device="cuda")
    assert gpu.setup.autocast_dtype == torch.bfloat16 and gpu.setup.memory_format == torch.channels_last
    assert cpu.setup.autocast_dtype is None
    image = _image()
    ref = denoise_image(image, denoiser=cpu)
    out = denoise_image(image, denoiser=gpu)
    assert out.dtype == np.float32 and out.shape == image.shape and np.isfinite(out).all()
    diff = out.astype(np.float64) - ref
    assert np.sqrt(np.mean(diff**2)) <= BF16_RMS and np.abs(diff).max() <= BF16_MAX
    assert compute_psnr(out, ref, data_range=1.0) >= 40.0
    assert np.abs(ref - image).mean() > 1e-2  # the network does change the image (not a trivial agreement)


def test_a_training_run_on_cuda_steps_and_writes_a_checkpoint(tmp_path):
    from test_train import TINY, make_store

    from sem_core.checkpoint import load_checkpoint
    from sem_core.train import train_model

    store = make_store(tmp_path / "d.zarr")
    res = train_model(dataset_path=store, out_dir=tmp_path / "run", experiment_name="t", steps=24, seed=1,
                      early_stopping_patience=None, **{**TINY, "device": "cuda"})
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert res.steps == 24 and metrics["step"].iloc[-1] == 24
    assert np.isfinite(metrics[["train_loss", "val_loss", "val_psnr"]].to_numpy()).all()
    assert metrics["train_loss"].iloc[-1] < 0.9 * metrics["train_loss"].iloc[0]  # it learns on the device
    ckpt = load_checkpoint(res.best_checkpoint)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if torch.is_tensor(v))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epoch"] == 6
