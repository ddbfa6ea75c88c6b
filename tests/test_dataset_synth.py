"""Dataset synthesis: wafers.zarr determinism, tin_balls.zarr from a manifest, ball masks."""

import numpy as np
import pandas as pd
import pytest

from sem_core.io.zarr_store import hash_dataset, open_dataset, partial_path
from sem_core.synth.dataset import chunk_tin_balls, make_ball_mask

SHA = "0" * 64


# ---------------------------------------------------------------- tin balls
def _disk_image(seed, shape=(48, 40)):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 30.0)
    for _ in range(3):
        r, c, rad = rng.integers(8, shape[0] - 8), rng.integers(8, shape[1] - 8), rng.integers(3, 7)
        img[(rr - r) ** 2 + (cc - c) ** 2 <= rad**2] = 175
    return img.astype(np.uint8)


def _manifest(n, shape=(48, 40)):
    return pd.DataFrame({
        "pair_id": [f"{i:03d}" for i in range(n)], "noisy_path": [f"n{i}.tif" for i in range(n)],
        "clean_path": [f"c{i}.tif" for i in range(n)], "noisy_sha256": SHA, "clean_sha256": SHA,
        "height": shape[0], "width": shape[1], "dtype": "uint8", "bit_depth": 8, "pixel_size_nm": 5.83,
        "dwell_noisy_s": 1e-7, "dwell_clean_s": 3e-5, "beam_kv": 10.0, "shift_dy": 0.0, "shift_dx": 0.0,
    })


def _fake_load(row, *, align):
    i = int(row["pair_id"])
    if i == 2:
        raise ValueError(f"{row['noisy_path']}: unreadable (test)")
    clean = _disk_image(i)
    noisy = np.clip(clean + np.random.default_rng(i).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


def test_make_ball_mask_finds_disks_and_drops_specks():
    img = _disk_image(1)
    img[2, 2] = 255  # a one-pixel speck
    mask = make_ball_mask(img, min_area_px=4)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert mask[2, 2] == 0
    np.testing.assert_array_equal(mask[3:], (img[3:] > 100).astype(np.uint8))
    assert make_ball_mask(np.full((8, 8), 7, np.uint8)).sum() == 0


def test_chunk_tin_balls_skips_bad_pair_and_records_everything(tmp_path):
    info = {"licence": "MIT", "licence_text": "MIT License ...", "citation": "doi:10.1088/1361-6501/ad7e41",
            "repository": "seoleuns/SEMdenoising"}
    path = chunk_tin_balls(_manifest(6), path=tmp_path / "tb.zarr", seed=11, dataset_info=info, load_pair=_fake_load)
    ds = open_dataset(path)
    assert len(ds) == 5 and ds.attrs["image_ids"] == ["000", "001", "003", "004", "005"]
    assert [s["pair_id"] for s in ds.attrs["skipped"]] == ["002"]
    assert sorted(sum(ds.split.values(), [])) == list(range(5))
    assert ds.attrs["dataset"] == "tin_balls" and ds.attrs["licence_text"].startswith("MIT")
    assert ds.attrs["pixel_size_nm"] == pytest.approx(5.83) and ds.attrs["bit_depth"] == 8
    assert ds.attrs["provenance"]["stage"] == "chunk"
    np.testing.assert_array_equal(ds.clean[2], _disk_image(3))
    np.testing.assert_array_equal(ds.mask[2], make_ball_mask(_disk_image(3)))
    assert ds.pattern is None and ds.defects is None


def test_chunk_tin_balls_failure_leaves_nothing(tmp_path):
    def broken(row, *, align):
        raise ValueError("all unreadable")

    with pytest.raises(ValueError, match="no pair"):
        chunk_tin_balls(_manifest(3), path=tmp_path / "x.zarr", seed=1, load_pair=broken)
    assert not (tmp_path / "x.zarr").exists() and not partial_path(tmp_path / "x.zarr").exists()


# ---------------------------------------------------------------- wafers
def _noiseless_pair(yield_map, *, rng, pixel_size_nm):
    clean = np.rint(np.clip(yield_map, 0, 1) * 200).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


@pytest.fixture
def wafers():
    return pytest.importorskip("sem_core.synth.wafers")


def test_wafer_dataset_deterministic_regenerable_worker_independent(tmp_path, wafers):
    from sem_core.synth.dataset import render_wafer_item, synthesize_wafer_dataset

    kw = dict(n_images=4, shape=(64, 64), seed=12, image_pair=_noiseless_pair)  # seed 12: 4 defects in 3 images
    a = synthesize_wafer_dataset(tmp_path / "a.zarr", **kw)
    b = synthesize_wafer_dataset(tmp_path / "b.zarr", **kw, workers=2)
    assert hash_dataset(a) == hash_dataset(b)
    ds = open_dataset(a)
    assert ds.split == open_dataset(b).split
    pd.testing.assert_frame_equal(ds.defects, open_dataset(b).defects)
    item = render_wafer_item(2, seed=12, shape=(64, 64), pattern="mixed", image_pair=_noiseless_pair)
    np.testing.assert_array_equal(item.noisy, ds.noisy[2])
    np.testing.assert_array_equal(item.mask, ds.mask[2])
    np.testing.assert_array_equal(item.pattern, ds.pattern[2])
    c = synthesize_wafer_dataset(tmp_path / "c.zarr", **{**kw, "seed": 10})
    assert hash_dataset(c) != hash_dataset(a)
    assert ds.attrs["simulator"]["seed"] == 12 and ds.attrs["complete"] is True
    assert len(ds.defects) >= 2 and set(ds.defects["image"]) <= set(range(4))  # the defect branch does run
    for _, d in ds.defects.iterrows():  # every defect's bbox holds its code in the mask
        box = ds.mask[int(d.image), d.bbox_r0 : d.bbox_r1, d.bbox_c0 : d.bbox_c1]
        assert (box == d.type_code).any()
    masks = np.asarray(ds.mask[:])
    labelled = {int(i) for i in np.nonzero(masks.reshape(len(masks), -1).max(axis=1))[0]}
    assert labelled == set(ds.defects["image"])  # and the masks mark defects exactly in those images


def test_wafer_dataset_with_real_imaging_and_noise_model(tmp_path, wafers):
    from sem_core.synth.dataset import synthesize_wafer_dataset
    from sem_core.synth.imaging import NoiseModel

    p = synthesize_wafer_dataset(tmp_path / "w.zarr", n_images=2, shape=(64, 64), seed=1,
                                 noise_model=NoiseModel(), imaging_params={"pixel_size_nm": 5.0})
    ds = open_dataset(p)
    assert ds.noisy.dtype == np.uint8 and ds.attrs["simulator"]["noise_model"]["gain_grey_per_se"] == 4.5
    assert np.abs(ds.noisy[:].astype(float) - ds.clean[:]).mean() > 1


def test_imaging_section_maps_onto_simulate_pair():
    from sem_core.config.imaging import ImagingConfig
    from sem_core.synth.dataset import imaging_kwargs

    assert imaging_kwargs(ImagingConfig().model_dump())["pixel_size_nm"] == ImagingConfig().pixel_size_nm
    with pytest.raises(ValueError, match="blur_px"):
        imaging_kwargs({"blur_px": 1.0})
