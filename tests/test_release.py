"""sem-denoise release: augmentation, one candidate's training, candidates chosen on val and exported."""

import json

import numpy as np
import pytest
import torch

from sem_core.checkpoint import MAX_RELEASE_BYTES, load_model
from sem_core.config import ParamsError, load_params
from sem_core.release import augment_pairs, run_release, train_candidate


def test_augment_pairs_identity_and_properties():
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 1, 8, 8, generator=gen)
    noisy = clean + 0.1 * torch.randn(4, 1, 8, 8, generator=gen)
    n0, c0 = augment_pairs(noisy, clean, gen=torch.Generator().manual_seed(1))
    assert torch.equal(n0, noisy) and torch.equal(c0, clean)
    n1, c1 = augment_pairs(noisy, clean, gen=torch.Generator().manual_seed(1), noise_scale=(2.0, 2.0))
    assert torch.allclose(n1 - c1, 2 * (noisy - clean), atol=1e-6) and torch.equal(c1, clean)
    n2, c2 = augment_pairs(noisy, clean, gen=torch.Generator().manual_seed(1), contrast=0.5)
    assert torch.allclose(c2.mean(dim=(-2, -1)), clean.mean(dim=(-2, -1)), atol=1e-6)
    ratio = (n2 - c2).std(dim=(-2, -1)) / (noisy - clean).std(dim=(-2, -1))
    assert torch.all((ratio > 0.49) & (ratio < 1.51)) and not torch.allclose(ratio, torch.ones_like(ratio))


def _pairs(n=6, shape=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.stack([(110 + 70 * np.sin(xx / (4 + i)) * np.cos(yy / 6)) for i in range(n)]).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


COMMON = dict(model_kwargs={"base_channels": 4, "depth": 2}, steps=4, batch_size=2, patch_px=32, lr=1e-3)


def test_train_candidate_deterministic_with_pretraining():
    noisy, clean = _pairs(3)
    sim = noisy[None].repeat(2, axis=0)
    a, info = train_candidate(noisy, clean, sim_noisy=sim, pretrain_steps=3, seed=2, brightness=0.05, **COMMON)
    b, _ = train_candidate(noisy, clean, sim_noisy=sim, pretrain_steps=3, seed=2, brightness=0.05, **COMMON)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert info["pretrain_steps"] == 3 and np.isfinite(info["final_loss"])
    with pytest.raises(ValueError, match="sim_noisy"):
        train_candidate(noisy, clean, pretrain_steps=3, **COMMON)


def test_run_release_chooses_on_val_and_exports(tmp_path):
    noisy, clean = _pairs(6)
    split = {"train": [0, 1, 2, 3], "val": [4], "test": [5]}
    ids = [f"{i:03d}" for i in range(1, 7)]
    out = tmp_path / "rel" / "unet.safetensors"
    res = run_release(noisy, clean, split=split, image_ids=ids, split_mode="contiguous",
                      candidates={"a": {}, "b": {"contrast": 0.1, "seeds": (3,)}}, seeds=[0, 1], common=COMMON,
                      out=out, log=lambda s: None)
    assert [(r["candidate"], r["seed"]) for r in res["runs"]] == [("a", 0), ("a", 1), ("b", 3)]
    assert set(res["table"]) == {"a", "b"}
    best = max(res["runs"], key=lambda r: r["val"]["psnr_aligned"])
    assert res["chosen"] == {"candidate": best["candidate"], "seed": best["seed"]}
    assert out.stat().st_size < MAX_RELEASE_BYTES
    model, card = load_model(out)
    assert card["training_data"]["test_ids"] == ["006"] and card["training_data"]["train_ids"] == ids[:4]
    assert card["metrics"]["test"]["psnr_aligned"] == pytest.approx(best["test"]["psnr_aligned"])
    json.dumps(res, default=str)


def test_release_config_validation(tmp_path):
    cfg = load_params("params.yaml")
    assert cfg.release.out.suffix == ".safetensors" and cfg.release.candidates
    bad = tmp_path / "p.yaml"
    bad.write_text("release:\n  candidates:\n    x: {pretrain_steps: 10}\n")
    with pytest.raises(ParamsError, match="sim_copies"):
        load_params(bad)
    bad.write_text("release:\n  typo: 1\n")
    with pytest.raises(ParamsError, match="typo"):
        load_params(bad)
