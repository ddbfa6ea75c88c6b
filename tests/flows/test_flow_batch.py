"""The batch-inbox flow: each new batch processed once, corrupt items reported, failed batches retried."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from flows.batch import process_batches
from sem_core.denoise.base import build_denoiser
from sem_core.io.ome_zarr import open_multiscale
from tasks.ledger import LEDGER_NAME, SUCCESS_MARKER


class BoxDenoiser:
    """Stand-in for the production U-Net: a 3x3 box filter (injected, no checkpoint needed)."""

    name = "unet"
    halo = 1

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        padded = np.pad(tile, 1, mode="symmetric")
        h, w = tile.shape
        return sum(padded[r : r + h, c : c + w] for r in range(3) for c in range(3)) / np.float32(9)


class CountingBuilder:
    def __init__(self):
        self.calls = 0

    def __call__(self, name: str, **kwargs):
        self.calls += 1
        return BoxDenoiser() if name == "unet" else build_denoiser(name, **kwargs)


METHODS = {"unet": {}, "gaussian": {"sigma_px": 1.0}}


def _write_tif(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clean = np.full((64, 80), 100.0)
    clean[16:48, 20:60] = 180.0
    tifffile.imwrite(path, np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8))


def _run(inbox: Path, outputs: Path, builder) -> object:
    return process_batches(params_path="params.yaml", methods=METHODS, inbox_dir=str(inbox), outputs_dir=str(outputs),
                           chunks=64, denoiser_builder=builder, return_state=True)


@pytest.fixture
def inbox(tmp_path):
    batch = tmp_path / "inbox" / "b1"
    batch.mkdir(parents=True)
    _write_tif(batch / "img_a.tif", 1)
    _write_tif(batch / "img_b.tif", 2)
    (batch / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    scan = zarr.create_array(store=str(batch / "scan.zarr"), shape=(128, 128), chunks=(64, 64), dtype="uint8")
    scan[:] = np.random.default_rng(3).integers(0, 255, (128, 128), dtype=np.uint8)
    (batch / "notes.txt").write_text("ignored")
    return tmp_path / "inbox"


def test_batch_processed_once_corrupt_item_reported_failed_batch_retried(inbox, tmp_path, results_dir):
    outputs = tmp_path / "outputs"
    builder = CountingBuilder()

    state = _run(inbox, outputs, builder)
    assert state.is_completed(), state
    ledger = json.loads((outputs / LEDGER_NAME).read_text())["batches"]
    entry = ledger["b1"]
    assert entry["status"] == "done" and entry["n_items"] == 4 and entry["n_failed"] == 1
    assert [e["item"] for e in entry["errors"]] == ["broken.tif"] and "broken.tif" in entry["errors"][0]["error"]
    out = outputs / "b1"
    assert json.loads((out / SUCCESS_MARKER).read_text())["content_hash"] == entry["content_hash"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert sorted(metrics["item"].unique()) == ["img_a.tif", "img_b.tif", "scan.zarr"]
    assert len(metrics) == 6  # 3 good items x 2 methods
    images = metrics[metrics["item"] != "scan.zarr"]
    assert (images["sigma_out"] < images["sigma_in"]).all()  # both methods really smoothed the noise
    denoised = open_multiscale(out / "img_a.unet.ome.zarr")[...]
    assert denoised.shape == (64, 80) and denoised.dtype == np.uint8
    assert open_multiscale(out / "scan.gaussian.ome.zarr").shape == (128, 128)
    assert not [p for p in outputs.iterdir() if p.name.startswith(".")]  # no staging left behind

    # Second run: nothing new, nothing rebuilt, outputs untouched.
    marker_mtime = (out / SUCCESS_MARKER).stat().st_mtime_ns
    builder.calls = 0
    state = _run(inbox, outputs, builder)
    assert state.is_completed() and state.result() == {} and builder.calls == 0
    assert (out / SUCCESS_MARKER).stat().st_mtime_ns == marker_mtime

    # A batch where nothing can be read fails: recorded, not published, and the run is Failed.
    bad = inbox / "b2"
    bad.mkdir()
    (bad / "x.tif").write_bytes(b"garbage")
    state = _run(inbox, outputs, builder)
    assert state.is_failed()
    ledger = json.loads((outputs / LEDGER_NAME).read_text())["batches"]
    assert ledger["b2"]["status"] == "failed" and ledger["b1"]["status"] == "done"
    assert not (outputs / "b2").exists()

    # Next run: the fixed batch is retried; a half-written output (no marker) is replaced, not trusted.
    (bad / "x.tif").unlink()
    _write_tif(bad / "x.tif", 4)
    half = inbox / "b3"
    half.mkdir()
    _write_tif(half / "y.tif", 5)
    (outputs / "b3").mkdir()
    (outputs / "b3" / "partial.ome.zarr").mkdir()
    state = _run(inbox, outputs, builder)
    assert state.is_completed(), state
    assert sorted(state.result()) == ["b2", "b3"]  # b1 is not touched again
    for name in ("b2", "b3"):
        assert (outputs / name / SUCCESS_MARKER).exists()
    assert not (outputs / "b3" / "partial.ome.zarr").exists()
    assert (outputs / "b1" / SUCCESS_MARKER).stat().st_mtime_ns == marker_mtime


def test_only_transient_io_errors_are_retried():
    from prefect.states import Failed

    from sem_core.io.sem_tiff import SemReadError
    from tasks.batch import _retry_transient

    assert _retry_transient(None, None, Failed(data=OSError("network file system hiccup")))
    assert not _retry_transient(None, None, Failed(data=SemReadError("x.tif", "not a readable image")))


def test_batch_adapts_the_unet_per_batch_and_records_the_adapted_model(inbox, tmp_path, results_dir):
    """adapt.per_batch: the U-Net is fine-tuned on the batch's own noisy images first (a few steps here), the batch
    is denoised with the adapted model, and its hash is in the batch provenance."""
    import yaml

    from sem_core.checkpoint import load_model  # noqa: F401  (the release file must load as a model)

    release = Path("models/release/unet_tin_balls.safetensors")
    data = yaml.safe_load(Path("params.yaml").read_text())
    data["adapt"].update(per_batch=True, steps=2, batch_size=2, patch_px=32, guard_images=1, guard_crop_px=32,
                         eval_every=1, max_images=2)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    for p in (inbox / "b1").iterdir():
        if p.name not in ("img_a.tif", "img_b.tif"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    outputs = tmp_path / "outputs"
    state = process_batches(params_path=str(params), methods={"unet": {"checkpoint": str(release)}},
                            inbox_dir=str(inbox), outputs_dir=str(outputs), chunks=64, return_state=True)
    assert state.is_completed(), state
    prov = json.loads((outputs / "b1" / "provenance.json").read_text())
    adapted = prov["adapted_unet"]
    assert adapted["from"] == str(release) and len(adapted["model_hash"]) >= 16 and adapted["n_images"] == 2
    (model,) = (outputs / "adapted_models").glob("*.safetensors")  # with its card beside it
    assert adapted["file_sha256"] and model.with_suffix(".json").is_file()
    assert isinstance(adapted["kept"], bool) and len(prov["params_hash"]) == 64
    assert open_multiscale(outputs / "b1" / "img_a.unet.ome.zarr").shape == (64, 80)


def test_scan_blocks_follow_each_methods_own_block_size(tmp_path):
    """As in `sem-denoise denoise`: a method's `block_px` (the U-Net's: its context paid once per block) sets the
    scan's block side unless the flow is given one; other methods use `denoise.chunk_px`."""
    from tasks.batch import denoise_item

    scan = zarr.create_array(store=str(tmp_path / "scan.zarr"), shape=(200, 160), chunks=(64, 64), dtype="uint8")
    scan[:] = np.random.default_rng(4).integers(0, 255, (200, 160), dtype=np.uint8)
    big = BoxDenoiser()
    big.block_px = 128
    staging = tmp_path / "staging"
    staging.mkdir()
    denoisers = {"unet": big, "gaussian": build_denoiser("gaussian", sigma_px=1.0)}
    denoise_item.fn(tmp_path / "scan.zarr", staging, denoisers=denoisers, default_chunk_px=48)
    assert open_multiscale(staging / "scan.unet.ome.zarr", 0).chunks == (128, 128)
    assert open_multiscale(staging / "scan.gaussian.ome.zarr", 0).chunks == (48, 48)
    denoise_item.fn(tmp_path / "scan.zarr", staging, denoisers=denoisers, chunks=80, default_chunk_px=48)
    assert open_multiscale(staging / "scan.unet.ome.zarr", 0).chunks == (80, 80)
