"""Tin-balls-like specimen: determinism, ranges, statistics of the real images, edge brightening."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from sem_core.schemas.defects import DEFECTS_SCHEMA
from sem_core.synth.specimen import Specimen, measure_outline_distance
from sem_core.synth.tin_balls import place_tin_balls, render_tin_balls

SHAPE = (442, 512)
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def specimens():
    return {s: render_tin_balls(shape=SHAPE, rng=np.random.default_rng(s)) for s in SEEDS}


def test_same_seed_identical_other_seed_different():
    a = render_tin_balls(shape=(128, 160), rng=np.random.default_rng(7))
    b = render_tin_balls(shape=(128, 160), rng=np.random.default_rng(7))
    c = render_tin_balls(shape=(128, 160), rng=np.random.default_rng(8))
    assert np.array_equal(a.yield_map, b.yield_map) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_types_ranges_and_mask(specimens):
    for spec in specimens.values():
        assert isinstance(spec, Specimen)
        assert spec.yield_map.shape == SHAPE and spec.yield_map.dtype == np.float32
        assert 0.0 <= spec.yield_map.min() and spec.yield_map.max() <= 1.0
        assert set(np.unique(spec.mask)) == {0, 1} and np.array_equal(spec.mask, spec.pattern)
        assert len(spec.defects) == 0
        DEFECTS_SCHEMA.validate(spec.defects)


def test_statistics_match_the_real_images(specimens):
    covers, counts, diameters = [], [], []
    for s, spec in specimens.items():
        covers.append(spec.mask.mean())
        counts.append(ndi.label(spec.mask)[1])
        diameters.append(2 * place_tin_balls(shape=SHAPE, rng=np.random.default_rng(s))[:, 2])
    d = np.concatenate(diameters)
    assert all(0.48 <= c <= 0.56 for c in covers)  # target 0.5, the last ball may overshoot a little
    assert 18.0 <= np.median(d) <= 26.0  # real: median ≈ 22 px
    assert 0.6 <= np.log(d).std() <= 1.1  # real: σ_ln ≈ 0.9
    assert 50 <= np.mean(counts) <= 90  # real: 64–75 separate balls per image


def test_placement_limits_overlap():
    balls = place_tin_balls(shape=SHAPE, rng=np.random.default_rng(5), max_overlap=0.15)
    r, c, rad = balls.T
    dist = np.hypot(r[:, None] - r[None], c[:, None] - c[None])
    need = (rad[:, None] + rad[None]) * 0.85
    off = ~np.eye(len(balls), dtype=bool)
    assert np.all(dist[off] >= need[off] - 1e-9)


def test_levels_and_edge_brightening(specimens):
    for spec in specimens.values():
        on = spec.mask.astype(bool)
        assert np.median(spec.yield_map[~on]) == pytest.approx(30 / 255, abs=0.01)
        assert np.median(spec.yield_map[on]) == pytest.approx(175 / 255, abs=8 / 255)
        d2 = measure_outline_distance(spec.mask, reach=12)
        rim = spec.yield_map[on & (d2 <= 1)].mean()
        inner = spec.yield_map[on & (d2 >= 100)].mean()
        assert rim > inner + 0.1


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="tilt_deg"):
        render_tin_balls(shape=(64, 64), rng=np.random.default_rng(0), tilt_deg=90)
    with pytest.raises(ValueError, match="coverage"):
        render_tin_balls(shape=(64, 64), rng=np.random.default_rng(0), coverage=0.99)


def test_config_defaults_are_the_function_defaults():
    import inspect

    from sem_core.config.specimen import SpecimenConfig
    from sem_core.synth.wafers import make_wafer_layout, sample_wafer_kwargs

    cfg = SpecimenConfig()
    sig = inspect.signature(render_tin_balls).parameters
    kwargs = cfg.tin_balls.render_kwargs()
    assert kwargs.pop("shape") == sig["shape"].default
    assert kwargs == {k: sig[k].default for k in kwargs}
    sig = inspect.signature(sample_wafer_kwargs).parameters
    assert cfg.wafers.sampling_kwargs() == {k: sig[k].default for k in cfg.wafers.sampling_kwargs()}
    sig = inspect.signature(make_wafer_layout).parameters
    assert cfg.wafers.level_kwargs() == {k: sig[k].default for k in cfg.wafers.level_kwargs()}
    render_tin_balls(rng=np.random.default_rng(0), **cfg.tin_balls.render_kwargs())
