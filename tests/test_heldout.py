"""Contiguous acquisition-order splits and the held-out-block scoring."""

import numpy as np
import pytest

from sem_core.config import load_params
from sem_core.evaluate.heldout import check_overlap, make_baseline_methods, score_method
from sem_core.splits import make_split


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 50, 1000])
def test_contiguous_split_is_ordered_blocks(n):
    s = make_split(n, mode="contiguous")
    tr, va, te = s["train"], s["val"], s["test"]
    assert sorted(tr + va + te) == list(range(n))
    # blocks in acquisition order: every train index < every val index < every test index
    assert all(a < b for a, b in zip(tr + va + te, (tr + va + te)[1:]))
    assert tr[0] == 0
    if n >= 3:
        assert va and te and te[-1] == n - 1
    if n == 50:
        assert (tr[-1], va, te) == (39, [40, 41, 42, 43, 44], [45, 46, 47, 48, 49])


def test_contiguous_split_gap_separates_blocks():
    s = make_split(50, mode="contiguous", gap=2)
    assert s["val"][0] - s["train"][-1] == 3 and s["test"][0] - s["val"][-1] == 3
    assert len(s["train"]) + len(s["val"]) + len(s["test"]) == 46
    with pytest.raises(ValueError, match="gap"):
        make_split(4, mode="contiguous", gap=2)


def test_split_mode_errors():
    with pytest.raises(ValueError, match="rng"):
        make_split(10)
    with pytest.raises(ValueError, match="mode"):
        make_split(10, mode="blocks")


def test_params_default_is_contiguous():
    cfg = load_params("params.yaml")
    assert cfg.datasets.tin_balls.split_mode == "contiguous"


def _pairs(n=3, shape=(64, 80), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = [(120 + 60 * np.sin(xx / (5 + i)) * np.cos(yy / 7)).astype(np.uint8) for i in range(n)]
    noisy = [np.clip(c + rng.normal(0, 12, shape), 0, 255).astype(np.uint8) for c in clean]
    return noisy, clean


def test_score_method_oracle_and_ranking():
    noisy, clean = _pairs()
    perfect = score_method(lambda im, it=iter(clean): next(it).astype(np.float32), noisy, clean)
    assert perfect["psnr_aligned"] == pytest.approx(perfect["psnr_raw"]) and perfect["psnr_raw"] > 90
    methods = make_baseline_methods([], [], bm3d=False)
    rows = {k: score_method(fn, noisy, clean) for k, fn in methods.items()}
    assert rows["gaussian_1.5"]["psnr_aligned"] > rows["noisy"]["psnr_aligned"] + 3
    # noisy scored raw: 12 grey levels of noise (clipping aside) -> about 26.5 dB
    assert 25.5 < rows["noisy"]["psnr_raw"] < 27.5


def test_check_overlap_maps_indices_to_ids():
    ids = [f"{i:03d}" for i in range(1, 11)]
    card = {"training_data": {"train_indices": [0, 1, 8], "val_indices": [9]}}
    assert check_overlap(card, ["009", "010"], image_ids=ids) == ["009", "010"]
    assert check_overlap({"training_data": {"train_indices": [0]}}, ["010"], image_ids=ids) == []
    assert check_overlap({}, ["010"], image_ids=ids) == []
