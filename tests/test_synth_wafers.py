"""Wafer layouts: exact tiling, pixel-exact defect masks, defect tables, sampling, compactness."""

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage as ndi

from sem_core.schemas.defects import DEFECT_TYPES, DEFECTS_SCHEMA
from sem_core.synth.specimen import measure_outline_distance
from sem_core.synth.wafers import make_wafer_layout, render_wafer, sample_wafer_kwargs

CASES = {
    "lines0": dict(pattern="lines", orientation_deg=0.0),
    "lines90": dict(pattern="lines", orientation_deg=90.0, pitch_nm=100.0, cd_nm=48.0),
    "lines37": dict(pattern="lines", orientation_deg=37.0, ler_sigma_nm=2.5),
    "contacts": dict(pattern="contacts", pitch_nm=88.0, pitch_y_nm=100.0, cd_nm=44.0),
}
SHAPE = (128, 144)


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    layout = make_wafer_layout(shape=SHAPE, seed=17, defect_density_per_um2=80.0, **CASES[request.param])
    return request.param, layout, layout.render(slice(None), slice(None))


def test_tiling_reproduces_the_full_render_exactly(case):
    name, layout, full = case
    row_cuts, col_cuts = [0, 37, 38, 101, SHAPE[0]], [0, 64, SHAPE[1]]
    out = {k: np.full(SHAPE, 255, dtype=np.uint8) for k in ("mask", "pattern")}
    y = np.full(SHAPE, -1.0, dtype=np.float32)
    sizes: dict[int, int] = {}
    for r0, r1 in zip(row_cuts[:-1], row_cuts[1:]):
        for c0, c1 in zip(col_cuts[:-1], col_cuts[1:]):
            win = layout.render(slice(r0, r1), slice(c0, c1))
            y[r0:r1, c0:c1] = win.yield_map
            out["mask"][r0:r1, c0:c1] = win.mask
            out["pattern"][r0:r1, c0:c1] = win.pattern
            DEFECTS_SCHEMA.validate(win.defects)
            for row in win.defects.itertuples():
                sizes[row.defect_id] = sizes.get(row.defect_id, 0) + row.size_px
                assert 0 <= row.bbox_r0 < row.bbox_r1 <= r1 - r0 and 0 <= row.bbox_c0 < row.bbox_c1 <= c1 - c0
    assert np.array_equal(y, full.yield_map)
    assert np.array_equal(out["mask"], full.mask) and np.array_equal(out["pattern"], full.pattern)
    table = layout.defects
    # the cuts go through defects, and window tables add up to the global sizes
    crossing = [(r.bbox_r0 < c < r.bbox_r1) for r in table.itertuples() for c in row_cuts[1:-1]]
    crossing += [(r.bbox_c0 < c < r.bbox_c1) for r in table.itertuples() for c in col_cuts[1:-1]]
    assert any(crossing), f"{name}: no defect crosses a tile boundary"
    assert sizes == dict(zip(table.defect_id, table.size_px))


def test_defect_masks_are_pixel_exact(case):
    name, layout, full = case
    base, _, _ = layout.render_material(0, SHAPE[0], 0, SHAPE[1], with_defects=False)
    base = base.astype(np.uint8)
    changed = full.pattern != base
    particle = full.mask == DEFECT_TYPES["particle"]
    assert np.array_equal(changed & ~particle, (full.mask > 0) & ~particle)  # mask = changed pixels
    assert np.all(full.pattern[particle] == 1)
    for code, before, after in [(1, 0, 1), (2, 1, 0), (3, 1, 0), (5, 0, 1), (6, 1, 0)]:
        sel = full.mask == code
        assert np.all(base[sel] == before) and np.all(full.pattern[sel] == after)
    kinds = set(layout.defects["type"])
    expected = {"bridge", "break", "pinch", "particle"} if name.startswith("lines") else {"missing_contact", "merged_contact", "particle"}
    assert kinds <= expected and len(kinds) >= 3


def test_bridge_pixels_lie_between_two_lines():
    layout = make_wafer_layout(shape=(96, 160), seed=5, pattern="lines", defect_density_per_um2=60.0,
                               defect_weights={"bridge": 1.0})
    spec = layout.render(slice(None), slice(None))
    base, _, _ = layout.render_material(0, 96, 0, 160, with_defects=False)
    rows, cols = np.nonzero(spec.mask == 1)
    assert len(rows) > 50
    for r, c in zip(rows, cols):
        line = base[r]
        assert line[:c].any() and line[c + 1 :].any() and not line[c]
        left, right = c - np.nonzero(line[:c])[0][-1], np.nonzero(line[c + 1 :])[0][0] + 1
        assert left + right <= layout.pitch_px + 2  # inside one space: both neighbours within a pitch


def test_global_table_is_tight_and_matches_the_mask(case):
    _, layout, full = case
    table = DEFECTS_SCHEMA.validate(layout.defects)
    assert len(table) > 3 and table["defect_id"].is_unique
    for row in table.itertuples():
        sub = full.mask[row.bbox_r0 : row.bbox_r1, row.bbox_c0 : row.bbox_c1] == row.type_code
        assert sub.sum() == row.size_px
        assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
    assert len(full.defects) == len(table)  # full window: same rows, same coordinates
    assert np.array_equal(full.defects.sort_values("defect_id").to_numpy(), table.sort_values("defect_id").to_numpy())


def test_yield_levels_and_bright_edges(case):
    _, layout, full = case
    y = full.yield_map
    assert y.dtype == np.float32 and 0.0 <= y.min() and y.max() <= 1.0
    clean = full.mask == 0
    d2 = measure_outline_distance(full.pattern, reach=8)
    top_edge = y[clean & (full.pattern == 1) & (d2 == 0)].mean()
    top_inner = y[clean & (full.pattern == 1) & (d2 >= 4)].mean()
    trench = y[clean & (full.pattern == 0)].mean()
    assert top_edge > top_inner + 0.15 and top_inner > trench + 0.15


def test_top_is_flat_away_from_edges():
    layout = make_wafer_layout(shape=(64, 96), seed=1, pitch_nm=200.0, cd_nm=110.0, defect_density_per_um2=0.0)
    spec = layout.render(slice(None), slice(None))
    far = (spec.pattern == 1) & (measure_outline_distance(spec.pattern, reach=layout.reach) == layout.reach**2)
    far[: layout.reach], far[-layout.reach :], far[:, : layout.reach], far[:, -layout.reach :] = False, False, False, False
    assert far.sum() > 100
    assert np.all(spec.yield_map[far] == np.float32(0.42))  # the top level, exactly


def test_determinism_and_seeds():
    a = render_wafer(shape=(64, 80), rng=np.random.default_rng(3), defect_density_per_um2=50.0)
    b = render_wafer(shape=(64, 80), rng=np.random.default_rng(3), defect_density_per_um2=50.0)
    c = render_wafer(shape=(64, 80), rng=np.random.default_rng(4), defect_density_per_um2=50.0)
    assert np.array_equal(a.yield_map, b.yield_map) and a.defects.equals(b.defects)
    assert not np.array_equal(a.yield_map, c.yield_map)


@pytest.mark.parametrize("angle, axis", [(0.0, 0), (90.0, 1)])
def test_axis_aligned_gratings_are_exact(angle, axis):
    spec = render_wafer(shape=(60, 80), rng=np.random.default_rng(1), orientation_deg=angle, ler_sigma_nm=0.0,
                        pitch_nm=80.0, cd_nm=40.0, pixel_size_nm=4.0, defect_density_per_um2=0.0)
    p = spec.pattern
    assert np.all(p == np.take(p, [0], axis=axis))  # constant along the lines
    profile = np.take(p, 0, axis=axis)
    assert profile.sum() == profile.size // 2  # 10 px lines every 20 px
    assert np.array_equal(profile[20:], profile[:-20])


def test_sampled_kwargs_stay_in_range_and_build():
    rng = np.random.default_rng(9)
    draws = [sample_wafer_kwargs(rng) for _ in range(300)]
    pitch_px = np.array([d["pitch_nm"] / d["pixel_size_nm"] for d in draws])
    assert pitch_px.min() >= 10.0 - 1e-9 and pitch_px.max() <= 48.0 + 1e-9
    assert all(2.0 <= d["pixel_size_nm"] <= 6.0 and 60.0 <= d["pitch_nm"] <= 200.0 for d in draws)
    lines = [d for d in draws if d["pattern"] == "lines"]
    assert 0.5 < len(lines) / len(draws) < 0.8
    aligned = np.mean([d["orientation_deg"] in (0.0, 90.0) for d in draws])
    assert 0.7 < aligned < 0.9
    for d in draws[:6]:
        spec = render_wafer(shape=(64, 64), rng=rng, **d)
        assert spec.yield_map.shape == (64, 64)


def test_big_layout_is_compact():
    tracemalloc.start()
    layout = make_wafer_layout(shape=(16384, 16384), seed=2, pattern="lines", pitch_nm=60.0, cd_nm=30.0,
                               defect_density_per_um2=0.3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 30 * 2**20
    assert len(layout.defect_list) > 500
    spec = layout.render(slice(16300, 16384), slice(0, 100))
    assert spec.yield_map.shape == (84, 100)


def test_outline_distance_equals_clipped_edt():
    labels = (ndi.gaussian_filter(np.random.default_rng(0).standard_normal((90, 110)), 3) > 0).astype(np.int8)
    outline = np.zeros(labels.shape, dtype=bool)
    outline[1:] |= labels[1:] != labels[:-1]
    outline[:-1] |= labels[1:] != labels[:-1]
    outline[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    outline[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    oracle = np.minimum(np.rint(ndi.distance_transform_edt(~outline) ** 2), 49)
    assert np.array_equal(measure_outline_distance(labels, reach=7), oracle)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="pattern"):
        make_wafer_layout(shape=(32, 32), seed=0, pattern="dots")
    with pytest.raises(ValueError, match="cd_nm=90"):
        make_wafer_layout(shape=(32, 32), seed=0, pitch_nm=80.0, cd_nm=90.0)
    with pytest.raises(ValueError, match="unknown defect types"):
        make_wafer_layout(shape=(32, 32), seed=0, defect_weights={"crack": 1.0})
    layout = make_wafer_layout(shape=(32, 32), seed=0)
    with pytest.raises(ValueError, match="unit-step"):
        layout.render(slice(0, 32, 2), slice(None))
