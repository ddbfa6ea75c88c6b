"""sem-denoise adapt: x-run blind-spot masking, the SURE guard, the fine-tuning loop, inputs and outputs."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from sem_core.adapt import adapt_checkpoint, adapt_model, estimate_sure_mse, make_blind_spot_batch, read_adapt_images
from sem_core.adapt.run import hash_state_dict
from sem_core.adapt.sure import make_noise_probe
from sem_core.checkpoint import export_release, load_model
from sem_core.models.unet import UNet


def test_blind_spot_mask_hides_correlated_neighbours():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 32, 48, generator=gen)
    masked, score = make_blind_spot_batch(x, gen=torch.Generator().manual_seed(1), run_px=8, corr_len_px=2)
    assert score.any() and score.float().mean() == pytest.approx(1 / 16, abs=0.02)
    # perturbing a scored pixel and its x-neighbours within corr_len leaves every masked value unchanged there
    b, _, r, c = [int(v) for v in score.nonzero()[0]]
    y = x.clone()
    y[b, 0, r, c - 2:c + 3] += 1.0
    masked2, score2 = make_blind_spot_batch(y, gen=torch.Generator().manual_seed(1), run_px=8, corr_len_px=2)
    assert torch.equal(score, score2)
    assert torch.equal(masked[b, 0, r, c - 2:c + 3], masked2[b, 0, r, c - 2:c + 3])
    # masked values are the mean of the rows above and below
    assert masked[b, 0, r, c] == pytest.approx(float(0.5 * (x[b, 0, r - 1, c] + x[b, 0, r + 1, c])), abs=1e-6)
    with pytest.raises(ValueError, match="run_px"):
        make_blind_spot_batch(x, gen=gen, run_px=4, corr_len_px=2)


def _scene(shape=(96, 96), seed=0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (0.45 + 0.25 * np.sin(xx / (6 + seed)) * np.cos(yy / 9)).astype(np.float32)


def test_sure_tracks_true_mse_and_ranks_denoisers():
    rng = np.random.default_rng(3)
    clean = [_scene(seed=s) for s in range(4)]
    noisy, probes = [], []
    for c in clean:
        n, _ = make_noise_probe(c, rng=rng, slope=3.5, intercept=16.0, fir_taps=(0.586, 0.343, 0.071))
        noisy.append(c + n)
        probes.append(make_noise_probe(c + n, rng=rng, slope=3.5, intercept=16.0, fir_taps=(0.586, 0.343, 0.071)))

    def blur(sigma):
        return lambda t: torch.from_numpy(ndimage.gaussian_filter(t[0, 0].numpy(), sigma))[None, None]

    for sigma in (0.7, 1.5, 4.0):
        true = np.mean([np.mean((ndimage.gaussian_filter(n, sigma) - c)[8:-8, 8:-8] ** 2) for n, c in zip(noisy, clean)])
        est = estimate_sure_mse(blur(sigma), noisy, probes)
        assert est == pytest.approx(true, rel=0.35, abs=2e-5), sigma
    ests = [estimate_sure_mse(blur(s), noisy, probes) for s in (0.7, 1.5, 4.0)]
    trues = [np.mean([np.mean((ndimage.gaussian_filter(n, s) - c)[8:-8, 8:-8] ** 2) for n, c in zip(noisy, clean)])
             for s in (0.7, 1.5, 4.0)]
    assert int(np.argmin(ests)) == int(np.argmin(trues))


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return UNet(base_channels=4, depth=2, norm="batch").eval()


def _noisy_images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(_scene((64, 80), s) + rng.normal(0, 0.05, (64, 80)), 0, 1).astype(np.float32) for s in range(n)]


KW = dict(steps=6, batch_size=2, patch_px=32, guard_images=2, guard_crop_px=48, eval_every=3)


def test_adapt_model_is_deterministic_and_guarded():
    model, images = _tiny_model(), _noisy_images()
    start = hash_state_dict(model)
    a = adapt_model(model, images, seed=5, **KW)
    b = adapt_model(model, images, seed=5, **KW)
    assert a.model_hash == b.model_hash and a.kept == b.kept
    assert hash_state_dict(model) == start  # the input model is not modified
    assert [h["step"] for h in a.history] == [0, 3, 6]
    never = adapt_model(model, images, seed=5, min_gain_grey2=1e9, **KW)
    assert not never.kept and never.model_hash == start and never.estimated_gain_grey2 == 0.0
    with pytest.raises(ValueError, match="smaller than patch_px"):
        adapt_model(model, [np.zeros((16, 16), np.float32)], patch_px=32)


def test_adapt_checkpoint_outputs_load_for_denoise(tmp_path):
    src = export_release(_tiny_model(), tmp_path / "start.safetensors", {"name": "start"})
    images = _noisy_images()
    for name in ("adapted.safetensors", "adapted.ckpt"):
        report = adapt_checkpoint(src, images, tmp_path / name, seed=1, **KW)
        model, card = load_model(tmp_path / name)
        assert model.config == _tiny_model().config
        assert len(report["model_hash"]) == 64 and report["source_sha256"] and report["n_images"] == 3
    assert card["step"] == report["best_step"]


def test_read_adapt_images_folder_and_zarr(tmp_path):
    from PIL import Image

    from sem_core.io.zarr_store import writing_dataset, write_item

    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(2):
        Image.fromarray((np.arange(40 * 50).reshape(40, 50) % 251).astype(np.uint8)).save(folder / f"im{i}.png")
    images, names = read_adapt_images(folder)
    assert names == ["im0.png", "im1.png"] and images[0].dtype == np.float32 and images[0].max() <= 1
    with writing_dataset(tmp_path / "d.zarr", n=2, shape=(16, 16), attrs={"dataset": "x", "split": {}}) as g:
        for i in range(2):
            write_item(g, i, noisy=np.full((16, 16), 51 * (i + 1), np.uint8), clean=np.zeros((16, 16), np.uint8),
                       mask=np.zeros((16, 16), np.uint8))
    images, names = read_adapt_images(tmp_path / "d.zarr")
    assert len(images) == 2 and images[1][0, 0] == pytest.approx(102 / 255)
    with pytest.raises(ValueError, match="does not exist"):
        read_adapt_images(tmp_path / "missing")


def test_forward_kernel_recovers_a_known_smear():
    from sem_core.adapt.forward import apply_forward_kernel, estimate_forward_kernel

    rng = np.random.default_rng(0)
    k_true = np.zeros((5, 5), np.float32)
    k_true[2, 1:4] = [0.2, 0.5, 0.3]  # a smear along x, off centre
    outs = [ndimage.gaussian_filter(rng.random((48, 64)), 1.0).astype(np.float32) for _ in range(3)]
    imgs = [apply_forward_kernel(torch.from_numpy(o)[None, None], torch.from_numpy(k_true), 0.04)[0, 0].numpy()
            + rng.normal(0, 1e-3, o.shape).astype(np.float32) for o in outs]
    k, c = estimate_forward_kernel(outs, imgs, size_px=5)
    assert np.abs(k - k_true).max() < 0.02
    assert c == pytest.approx(0.04, abs=0.01)  # the level shift between the domains, kept apart from the kernel
    assert apply_forward_kernel(torch.ones(1, 1, 8, 8), None, 0.5).sum() == 64
    with pytest.raises(ValueError, match="odd"):
        estimate_forward_kernel(outs, imgs, size_px=4)


def test_cli_adapt_writes_a_model_denoise_accepts(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from sem_cli.main import app

    src = export_release(_tiny_model(), tmp_path / "start.safetensors", {"name": "start"})
    folder = tmp_path / "batch"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        im = np.clip(_scene((112, 128), i) + rng.normal(0, 0.05, (112, 128)), 0, 1)
        Image.fromarray((im * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    out = tmp_path / "adapted.safetensors"
    res = CliRunner().invoke(app, ["adapt", str(folder), "--out", str(out), "--from", str(src), "--steps", "2"])
    assert res.exit_code == 0, res.output
    assert "model hash" in res.output and out.is_file()
    _, card = load_model(out)
    assert card["adapted_from"] == str(src) and card["adapt"]["n_images"] == 2
    bad = CliRunner().invoke(app, ["adapt", str(tmp_path / "nope"), "--out", str(out), "--from", str(src)])
    assert bad.exit_code == 1 and "does not exist" in " ".join(bad.output.split())
