"""Chunked scan synthesis: per-chunk determinism, worker independence, seams, OME-Zarr output."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import zarr
from scipy.ndimage import gaussian_filter

from sem_core.io.ome_zarr import ATTRS_KEY, open_multiscale
from sem_core.provenance import hash_array
from sem_core.schemas.defects import make_defects_table
from sem_core.synth.scan import chunk_grid, render_scan_chunk, synthesize_scan

SIGMA = 1.5


class StandInLayout:
    """Whole-scan layout computed from global coordinates (lines of period 12 px, one particle)."""

    def __init__(self, *, shape, seed, pattern, pixel_size_nm, **_):
        self.shape = shape
        rng = np.random.default_rng(seed)
        self.r, self.c = (int(v) for v in rng.integers(10, shape[0] - 20, size=2))
        self.defects = make_defects_table([dict(defect_id=0, type="particle", bbox_r0=self.r, bbox_c0=self.c,
                                                bbox_r1=self.r + 5, bbox_c1=self.c + 5, size_px=25)])

    def render(self, rows, cols):
        rr, cc = np.mgrid[rows, cols]
        lines = ((cc % 12) < 6).astype(np.float32)
        mask = ((rr >= self.r) & (rr < self.r + 5) & (cc >= self.c) & (cc < self.c + 5)).astype(np.uint8) * 4
        y = np.where(mask > 0, 0.9, 0.2 + 0.5 * lines).astype(np.float32)
        return SimpleNamespace(yield_map=y, mask=mask, pattern=lines.astype(np.uint8), defects=self.defects)


def stand_in_pair(yield_map, *, rng, pixel_size_nm=1.0):
    clean = np.clip(np.rint(gaussian_filter(yield_map.astype(np.float64), SIGMA) * 200), 0, 255)
    noisy = np.clip(clean + rng.normal(0, 10, size=clean.shape), 0, 255)
    return noisy.astype(np.uint8), clean.astype(np.uint8)


def _scan(path, **kw):
    args = dict(size=200, chunk=64, halo=8, seed=5, n_levels=3, pixel_size_nm=2.0,
                make_layout=StandInLayout, image_pair=stand_in_pair)
    args.update(kw)
    return synthesize_scan(path, **args)


def test_chunk_grid_covers_ragged_edge():
    assert chunk_grid(200, 64) == [(i, j) for i in range(4) for j in range(4)]
    assert chunk_grid(128, 64) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_each_chunk_regenerates_alone_and_workers_do_not_matter(tmp_path):
    p1 = _scan(tmp_path / "a.ome.zarr", workers=1)
    p2 = _scan(tmp_path / "b.ome.zarr", workers=2)
    for comp in ("", "clean", "labels/defects"):
        for lvl in range(3):
            a, b = open_multiscale(p1, lvl, component=comp)[:], open_multiscale(p2, lvl, component=comp)[:]
            assert hash_array(a) == hash_array(b), (comp, lvl)
    layout = StandInLayout(shape=(200, 200), seed=_layout_seed(5), pattern="lines", pixel_size_nm=2.0)
    noisy = open_multiscale(p1, 0)[:]
    for ci, cj in [(0, 0), (1, 2), (3, 3)]:
        ch = render_scan_chunk(layout, ci, cj, size=200, chunk=64, halo=8, seed=5, image_pair=stand_in_pair,
                               pixel_size_nm=2.0)
        np.testing.assert_array_equal(ch.noisy, noisy[ci * 64 : ci * 64 + 64, cj * 64 : cj * 64 + 64])
    assert ch.noisy.shape == (200 - 192, 200 - 192)  # ragged last chunk
    # another seed changes the noise of a chunk, not its clean image
    other = render_scan_chunk(layout, 3, 3, size=200, chunk=64, halo=8, seed=6, image_pair=stand_in_pair,
                              pixel_size_nm=2.0)
    assert not np.array_equal(other.noisy, ch.noisy) and np.array_equal(other.clean, ch.clean)


def _layout_seed(seed):
    from sem_core.rng import derive_rng

    return int(derive_rng(seed, "scan", "layout").integers(2**31))


def test_clean_has_no_seams_when_halo_covers_blur(tmp_path):
    path = _scan(tmp_path / "s.ome.zarr")
    layout = StandInLayout(shape=(200, 200), seed=_layout_seed(5), pattern="lines", pixel_size_nm=2.0)
    whole = layout.render(slice(0, 200), slice(0, 200))
    _, clean_whole = stand_in_pair(whole.yield_map, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(open_multiscale(path, 0, component="clean")[:], clean_whole)
    np.testing.assert_array_equal(open_multiscale(path, 0, component="labels/defects")[:], whole.mask)
    # without a halo the blur is cut at chunk borders: the test above can fail
    cut = _scan(tmp_path / "nohalo.ome.zarr", halo=0)
    assert not np.array_equal(open_multiscale(cut, 0, component="clean")[:], clean_whole)


def test_scan_layout_metadata_and_defects(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path = _scan(tmp_path / "m.ome.zarr")
    assert not (tmp_path / "m.ome.zarr.partial").exists()
    root = zarr.open_group(path, mode="r")
    meta = root.attrs[ATTRS_KEY]
    assert meta["complete"] is True and meta["simulator"]["seed"] == 5
    assert set(meta["provenance"]) >= {"params_hash", "inputs_hash", "code_version"}
    assert root["0"].chunks == (64, 64) and root["0"].shape == (200, 200)
    assert open_multiscale(path, 2).shape == (50, 50)
    # label pyramid keeps the 5x5 particle visible at level 2
    assert (open_multiscale(path, 2, component="labels/defects")[:] == 4).any()
    df = pd.read_parquet(path / "defects.parquet")
    assert len(df) == 1 and df["type"].iloc[0] == "particle" and df["image"].iloc[0] == 0
    nodes = list(Reader(parse_url(str(path)))())
    assert [tuple(a.shape) for a in nodes[0].data] == [(200, 200), (100, 100), (50, 50)]
    assert any(n.zarr.path.endswith("labels/defects") for n in nodes)


def test_real_wafer_scan_small(tmp_path):
    pytest.importorskip("sem_core.synth.wafers")
    path = synthesize_scan(tmp_path / "w.ome.zarr", size=256, chunk=128, halo=16, seed=3, n_levels=2,
                           pattern="lines", pixel_size_nm=5.0)
    noisy = open_multiscale(path, 0)[:]
    clean = open_multiscale(path, 0, component="clean")[:]
    assert noisy.shape == clean.shape == (256, 256) and noisy.dtype == np.uint8
    assert clean.std() > 5  # a pattern is there
    assert np.abs(noisy.astype(float) - clean).mean() > 1  # and noise on top of it


def test_failed_scan_leaves_no_store(tmp_path):
    calls = []

    def failing_pair(yield_map, *, rng, pixel_size_nm):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("detector on fire")
        return stand_in_pair(yield_map, rng=rng)

    with pytest.raises(RuntimeError, match="detector on fire"):
        _scan(tmp_path / "f.ome.zarr", image_pair=failing_pair)
    assert not (tmp_path / "f.ome.zarr").exists() and not (tmp_path / "f.ome.zarr.partial").exists()
