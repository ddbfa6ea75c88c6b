"""Checkpoints load with weights_only=True; releases are fp16 safetensors + a JSON card, and round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from sem_core import checkpoint
from sem_core.checkpoint import export_release, load_checkpoint, load_model, save_checkpoint
from sem_core.models.unet import UNet

KWARGS = dict(in_channels=1, out_channels=1, base_channels=8, depth=2, norm="batch", residual=True, edge_input=True)


@pytest.fixture()
def model() -> UNet:
    torch.manual_seed(0)
    m = UNet(**KWARGS)
    m(torch.rand(4, 1, 32, 32))  # give BatchNorm non-trivial running statistics
    return m.eval()


def _ckpt_payload(model: UNet) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    model(torch.rand(2, 1, 32, 32)).mean().backward()
    opt.step()
    model.eval()
    rng = {"torch": torch.get_rng_state(), "sampler": "{}"}
    return dict(model=model.state_dict(), optimizer=opt.state_dict(), rng=rng,
                step=1, epoch=0, config={"model_kwargs": KWARGS}, data_hash="abc", val_metrics={"val_psnr": 30.0})


def test_checkpoint_round_trip_is_exact_and_weights_only(tmp_path, model):
    payload = _ckpt_payload(model)
    path = save_checkpoint(tmp_path / "run" / "last.ckpt", payload)
    assert not (tmp_path / "run" / "last.ckpt.tmp").exists()
    torch.load(path, weights_only=True)  # must not raise
    back = load_checkpoint(path)
    assert back["step"] == 1 and back["data_hash"] == "abc" and back["val_metrics"] == {"val_psnr": 30.0}
    for k, v in payload["model"].items():
        assert torch.equal(back["model"][k], v), k
    m2, card = load_model(path)
    x = torch.rand(1, 1, 40, 40)
    with torch.inference_mode():
        assert torch.equal(m2(x), model(x))
    assert not m2.training and card["architecture"] == KWARGS and card["step"] == 1


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "bad.ckpt"
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "where": Path("/x")}, bad)  # a non-allowlisted class
    with pytest.raises(ValueError, match="cannot load checkpoint"):
        load_checkpoint(bad)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a sem-denoise"):
        load_checkpoint(other)


def test_release_is_fp16_with_card_and_round_trips(tmp_path, model):
    path = export_release(model, tmp_path / "release" / "unet.safetensors",
                          {"experiment": "full", "training_data": "tin_balls", "metrics": {"psnr": 31.0}})
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["architecture"] == KWARGS and card["experiment"] == "full" and "date" in card
    assert path.stat().st_size <= checkpoint.MAX_RELEASE_BYTES
    with safe_open(str(path), framework="pt") as fh:
        dtypes = {fh.get_tensor(k).dtype for k in fh.keys()}
        assert json.loads(fh.metadata()["card"]) == card
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    loaded, card2 = load_model(path)
    assert card2 == card and not loaded.training
    x = torch.rand(1, 1, 48, 48)
    with torch.inference_mode():
        ref, out = model(x), loaded(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 1e-2  # fp16 weights
    path.with_suffix(".json").unlink()  # the card inside the safetensors metadata is the fallback
    assert load_model(path)[1] == card


def test_release_size_limit_and_mismatched_weights(tmp_path, model, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_RELEASE_BYTES", 1000)
    with pytest.raises(ValueError, match="MB"):
        export_release(model, tmp_path / "big.safetensors", {})
    monkeypatch.undo()
    path = export_release(model, tmp_path / "m.safetensors", {})
    card = json.loads(path.with_suffix(".json").read_text())
    card["architecture"]["depth"] = 3
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not match"):
        load_model(path)
