"""Dataset Zarr store: round trip, atomic write, content hash; and train/val/test splits."""

import numpy as np
import pandas as pd
import pytest
import zarr

from sem_core.io.zarr_store import (
    DatasetError,
    create_dataset,
    commit_dataset,
    hash_dataset,
    open_dataset,
    partial_path,
    write_item,
    writing_dataset,
)
from sem_core.provenance import make_provenance
from sem_core.rng import derive_rng
from sem_core.splits import make_split


# ---------------------------------------------------------------- splits
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 10, 48, 1000])
def test_split_disjoint_covering_and_nonempty(n):
    s = make_split(n, rng=derive_rng(1, "split"))
    allidx = s["train"] + s["val"] + s["test"]
    assert sorted(allidx) == list(range(n))
    assert len(set(allidx)) == n
    if n >= 1:
        assert len(s["train"]) >= 1
    if n >= 3:
        assert len(s["val"]) >= 1 and len(s["test"]) >= 1
    if n == 1000:
        assert (len(s["train"]), len(s["val"]), len(s["test"])) == (800, 100, 100)


def test_split_deterministic_and_seed_dependent():
    a = make_split(50, rng=derive_rng(7, "split"))
    b = make_split(50, rng=derive_rng(7, "split"))
    c = make_split(50, rng=derive_rng(8, "split"))
    assert a == b
    assert a != c


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        make_split(10, rng=derive_rng(0), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        make_split(-1, rng=derive_rng(0))


# ---------------------------------------------------------------- store
def _items(n, shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    hi = np.iinfo(dtype).max
    return [
        dict(
            noisy=rng.integers(0, hi, size=shape, dtype=dtype),
            clean=rng.integers(0, hi, size=shape, dtype=dtype),
            mask=rng.integers(0, 7, size=shape, dtype=np.uint8),
            pattern=rng.integers(0, 2, size=shape, dtype=np.uint8),
        )
        for _ in range(n)
    ]


def _write(path, items, *, dtype=np.uint8, chunks=None, attrs=None, with_pattern=True):
    n, shape = len(items), items[0]["noisy"].shape
    with writing_dataset(path, n=n, shape=shape, dtype=dtype, chunks=chunks, attrs=attrs or {},
                         with_pattern=with_pattern) as g:
        for i, it in enumerate(items):
            write_item(g, i, **(it if with_pattern else {k: v for k, v in it.items() if k != "pattern"}))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_arrays_attrs_split_provenance(tmp_path, dtype):
    items = _items(5, (64, 48), dtype=dtype)
    split = make_split(5, rng=derive_rng(3, "split"))
    prov = make_provenance(params={"a": 1}, inputs_hash="abc")
    path = tmp_path / "d.zarr"
    _write(path, items, dtype=dtype, attrs={"dataset": "wafers", "split": split, "provenance": prov,
                                             "image_ids": [f"w{i}" for i in range(5)]})
    ds = open_dataset(path)
    assert len(ds) == 5
    assert ds.noisy.dtype == dtype and ds.mask.dtype == np.uint8 and ds.pattern.dtype == np.uint8
    assert ds.noisy.shape == (5, 64, 48) and ds.noisy.chunks == (1, 64, 48)
    for i, it in enumerate(items):
        for name in ("noisy", "clean", "mask", "pattern"):
            np.testing.assert_array_equal(getattr(ds, name)[i], it[name])
    assert ds.split == split
    assert ds.attrs["provenance"] == prov and ds.attrs["complete"] is True
    assert ds.attrs["image_ids"][4] == "w4"
    assert ds.defects is None
    assert not partial_path(path).exists()
    # plain zarr readers see the documented layout
    g = zarr.open_group(path, mode="r")
    assert g["clean"].metadata.zarr_format == 3
    assert g.attrs["split"]["train"] == split["train"]


def test_configurable_chunks_and_no_pattern(tmp_path):
    items = _items(4, (32, 32))
    _write(tmp_path / "c.zarr", items, chunks=(2, 16, 32), with_pattern=False)
    ds = open_dataset(tmp_path / "c.zarr")
    assert ds.noisy.chunks == (2, 16, 32) and ds.pattern is None


def test_write_item_validates(tmp_path):
    g = create_dataset(tmp_path / "v.zarr", n=2, shape=(16, 16), with_pattern=False)
    ok = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        write_item(g, 0, noisy=np.zeros((8, 16), np.uint8), clean=ok, mask=ok)
    with pytest.raises(ValueError, match="dtype"):
        write_item(g, 0, noisy=ok.astype(np.uint16), clean=ok, mask=ok)
    with pytest.raises(ValueError, match="pattern"):
        write_item(g, 0, noisy=ok, clean=ok, mask=ok, pattern=ok)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        create_dataset(tmp_path / "f.zarr", n=2, shape=(16, 16), dtype="float32")


def test_failure_mid_write_leaves_no_complete_store(tmp_path):
    path = tmp_path / "crash.zarr"
    items = _items(3, (16, 16))
    with pytest.raises(RuntimeError, match="boom"):
        with writing_dataset(path, n=3, shape=(16, 16), with_pattern=True) as g:
            write_item(g, 0, **items[0])
            raise RuntimeError("boom")
    assert not path.exists() and not partial_path(path).exists()
    # a killed writer (no cleanup at all) leaves only the partial sibling, which open_dataset refuses
    g = create_dataset(path, n=3, shape=(16, 16), with_pattern=True)
    write_item(g, 0, **items[0])
    assert partial_path(path).exists() and not path.exists()
    with pytest.raises(DatasetError, match="partial"):
        open_dataset(path)
    with pytest.raises(DatasetError, match="incomplete"):
        open_dataset(partial_path(path))
    commit_dataset(g, path=path)
    assert open_dataset(path).attrs["complete"] is True


def test_failed_rewrite_keeps_previous_complete_store(tmp_path):
    path = tmp_path / "keep.zarr"
    old = _items(2, (16, 16), seed=1)
    _write(path, old)
    h_old = hash_dataset(path)
    with pytest.raises(KeyboardInterrupt):
        with writing_dataset(path, n=2, shape=(16, 16), with_pattern=True) as g:
            write_item(g, 0, **_items(1, (16, 16), seed=2)[0])
            raise KeyboardInterrupt
    assert hash_dataset(path) == h_old
    _write(path, _items(2, (16, 16), seed=2))  # a successful rewrite replaces it
    assert hash_dataset(path) != h_old


def test_hash_dataset_depends_on_content_only(tmp_path):
    items = _items(3, (32, 32))
    _write(tmp_path / "a.zarr", items, attrs={"x": 1})
    _write(tmp_path / "b.zarr", items, chunks=(3, 16, 16), attrs={"x": 2})
    assert hash_dataset(tmp_path / "a.zarr") == hash_dataset(tmp_path / "b.zarr")
    items[2]["mask"][5, 5] ^= 1
    _write(tmp_path / "c.zarr", items)
    assert hash_dataset(tmp_path / "c.zarr") != hash_dataset(tmp_path / "a.zarr")


def test_open_missing_store_names_path(tmp_path):
    with pytest.raises(DatasetError, match="nope.zarr"):
        open_dataset(tmp_path / "nope.zarr")


def test_defects_round_trip_and_validation(tmp_path):
    import pandera.errors

    from sem_core.io.zarr_store import read_defects, write_defects
    from sem_core.schemas.defects import make_defects_table

    path = tmp_path / "d.zarr"
    _write(path, _items(2, (16, 16)))
    table = make_defects_table([
        dict(image=0, defect_id=0, type="bridge", bbox_r0=1, bbox_c0=2, bbox_r1=4, bbox_c1=6, size_px=9),
        dict(image=1, defect_id=0, type="particle", bbox_r0=0, bbox_c0=0, bbox_r1=3, bbox_c1=3, size_px=7),
    ])
    write_defects(path, table)
    pd.testing.assert_frame_equal(read_defects(path), table)
    got = open_dataset(path).defects
    assert list(got["type_code"]) == [1, 4] and list(got["image"]) == [0, 1]
    bad = table.assign(type_code=np.uint8(3))  # codes must match the type names
    with pytest.raises(pandera.errors.SchemaError):
        write_defects(path, bad)
