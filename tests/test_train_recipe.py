"""Training recipe options: scan-preserving augmentation, defect oversampling, weight EMA (with exact resume)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sem_core.checkpoint import load_checkpoint, load_model
from sem_core.config.train import TrainConfig
from sem_core.io.zarr_store import write_defects
from sem_core.patches import PatchSampler
from sem_core.train import load_training_data, make_ema_update, train_model
from test_train import TINY, make_store


def ramp_stack(n: int = 2, h: int = 40, w: int = 40) -> np.ndarray:
    """(n, h, w) uint8 where grey rises left to right and, more slowly, top to bottom."""
    r, c = np.mgrid[0:h, 0:w]
    return np.repeat((3 * c + r)[None].astype(np.uint8), n, axis=0)


def orientations(patches: np.ndarray) -> set[str]:
    """Which way grey rises in each patch: 'right'/'left'/'down'/'up' (the steeper direction)."""
    out = set()
    for p in patches[:, 0]:
        dc, dr = np.mean(np.diff(p, axis=1)), np.mean(np.diff(p, axis=0))
        out.add(("right" if dc > 0 else "left") if abs(dc) > abs(dr) else ("down" if dr > 0 else "up"))
    return out


def test_scan_augmentation_keeps_the_fast_scan_direction():
    img = ramp_stack()
    scan = PatchSampler(img, img, patch_size=16, augment="scan").sample(64, rng=np.random.default_rng(0))[0]
    assert orientations(scan) == {"right"}  # never mirrored left-right nor transposed
    rows_rise = {bool(np.mean(np.diff(p, axis=0)) > 0) for p in scan[:, 0]}
    assert rows_rise == {True, False}  # ... but flipped up-down
    full = PatchSampler(img, img, patch_size=16, augment="dihedral").sample(64, rng=np.random.default_rng(0))[0]
    assert orientations(full) == {"right", "left", "down", "up"}
    none = PatchSampler(img, img, patch_size=16, augment=False).sample(16, rng=np.random.default_rng(0))[0]
    assert all(np.mean(np.diff(p, axis=0)) > 0 for p in none[:, 0])
    # True is the dihedral mode with the very same random stream as before the modes existed
    a = PatchSampler(img, img, patch_size=16, augment=True).sample(8, rng=np.random.default_rng(3))[0]
    assert np.array_equal(a, PatchSampler(img, img, patch_size=16).sample(8, rng=np.random.default_rng(3))[0])
    with pytest.raises(ValueError, match="augment"):
        PatchSampler(img, img, patch_size=16, augment="rotate")


def test_defect_oversampling_puts_the_requested_share_of_patches_on_defects():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (3, 128, 128), dtype=np.uint8)
    boxes = np.array([[1, 100, 20, 106, 26]])  # one small defect near the bottom-left of image 1
    sampler = PatchSampler(img, img, patch_size=32, augment="none", focus_boxes=boxes, focus_fraction=0.5)
    patches = sampler.sample(400, rng=np.random.default_rng(7))[0][:, 0]
    target = img[1, 100:106, 20:26].astype(np.float32) / 255

    def holds_box(p: np.ndarray) -> bool:
        return any(np.array_equal(p[r : r + 6, c : c + 6], target) for r in range(27) for c in range(27))

    share = np.mean([holds_box(p) for p in patches])
    assert 0.42 < share < 0.6  # 50 % placed on it (+ the rare uniform patch that covers it by chance)
    # without oversampling the same boxes change nothing: identical stream to a sampler without boxes
    plain = PatchSampler(img, img, patch_size=32, focus_boxes=boxes).sample(16, rng=np.random.default_rng(1))
    assert np.array_equal(plain[0], PatchSampler(img, img, patch_size=32).sample(16, rng=np.random.default_rng(1))[0])
    with pytest.raises(ValueError, match="focus box"):
        PatchSampler(img, img, patch_size=32, focus_fraction=0.3)
    with pytest.raises(ValueError, match="outside"):
        PatchSampler(img, img, patch_size=32, focus_boxes=np.array([[3, 0, 0, 4, 4]]), focus_fraction=0.3)


def add_defects(store, rows):
    cols = ["image", "defect_id", "type", "type_code", "bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1", "size_px"]
    write_defects(store, pd.DataFrame(rows, columns=cols))
    return store


def test_training_data_maps_defects_to_training_positions_and_refuses_oversampling_without_them(tmp_path):
    store = make_store(tmp_path / "w.zarr")  # split train 0..3, val 4, test 5
    add_defects(store, [[1, 0, "particle", 4, 10, 12, 16, 18, 20], [4, 0, "bridge", 1, 2, 2, 6, 9, 9],
                        [3, 1, "break", 2, 30, 30, 33, 40, 12]])
    boxes = load_training_data(store).defect_boxes_train
    assert boxes.tolist() == [[1, 10, 12, 16, 18], [3, 30, 30, 33, 40]]  # the val image's defect is not used
    assert load_training_data(make_store(tmp_path / "t.zarr")).defect_boxes_train is None
    with pytest.raises(ValueError, match="defects.parquet"):
        train_model(dataset_path=tmp_path / "t.zarr", out_dir=tmp_path / "r", experiment_name="t", steps=2,
                    defect_fraction=0.5, **TINY)


def test_ema_weights_are_validated_checkpointed_and_resume_exactly(tmp_path):
    store = add_defects(make_store(tmp_path / "d.zarr"), [[0, 0, "particle", 4, 20, 20, 28, 28, 40]])
    common = dict(dataset_path=store, experiment_name="t", steps=12, seed=5, early_stopping_patience=None,
                  ema_decay=0.9, defect_fraction=0.5, augment="scan", **TINY)
    train_model(out_dir=tmp_path / "a", **common)
    train_model(out_dir=tmp_path / "b", stop_after_steps=6, **common)
    train_model(out_dir=tmp_path / "b", resume=True, **common)
    a, b = load_checkpoint(tmp_path / "a" / "last.ckpt"), load_checkpoint(tmp_path / "b" / "last.ckpt")
    for part in ("model", "raw_model"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    assert int(a["ema"]["n_averaged"]) == 12 and a["config"]["augment"] == "scan"
    # the inference weights are the average, not the last step's
    assert not torch.equal(a["model"]["head.weight"], a["raw_model"]["head.weight"])
    model, _ = load_model(tmp_path / "a" / "best.ckpt")
    best = load_checkpoint(tmp_path / "a" / "best.ckpt")
    assert all(torch.equal(v, best["model"][k]) for k, v in model.state_dict().items())
    # a resumed run with another decay is refused like any other config change
    with pytest.raises(ValueError, match="ema_decay"):
        train_model(out_dir=tmp_path / "b", resume=True, **dict(common, ema_decay=0.5))


def test_config_maps_augment_booleans_and_bounds_the_recipe():
    assert TrainConfig(augment=True).augment == "dihedral" and TrainConfig(augment=False).augment == "none"
    assert TrainConfig(augment="scan", defect_fraction=0.5, ema_decay=0.999).ema_decay == 0.999
    for bad in (dict(defect_fraction=1.0), dict(ema_decay=1.0), dict(augment="rot")):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_ema_update_warms_up_then_holds_the_decay_and_copies_counters():
    update = make_ema_update(0.9)
    avg, count = torch.zeros(2), torch.tensor(0)
    update([avg, count], [torch.ones(2), torch.tensor(7)], torch.tensor(1))  # 2nd update: decay 2/11
    assert torch.allclose(avg, torch.full((2,), 9 / 11)) and int(count) == 7
    avg.zero_()
    update([avg, count], [torch.ones(2), torch.tensor(8)], torch.tensor(500))  # capped at 0.9
    assert torch.allclose(avg, torch.full((2,), 0.1)) and int(count) == 8


def test_an_experiment_can_override_the_augmentation():
    cfg = TrainConfig()
    assert cfg.augment_for("scan_aug") == "scan" and cfg.augment_for("full") == "dihedral"
    assert TrainConfig(augment="none").augment_for("scan_aug") == "scan"
