"""The real imaging chain (wafer layout + simulate_pair) in chunked scans: determinism and seams.

tests/test_scan.py checks the chunking machinery with a stand-in chain; here the production
chain runs: same seed with other worker counts gives identical bytes; the clean image and the
defect labels do not depend on the chunking (the halo covers the chain's blur), and without a
halo they do (so the equality is not vacuous). The noise is drawn per chunk, so the noisy image
depends on the chunk size by design; its correlation structure should still not show the seams.
"""

from __future__ import annotations

import numpy as np
import pytest

from sem_core.io.ome_zarr import open_multiscale

pytest.importorskip("sem_core.synth.wafers")

SIZE, SEED, PIXEL_NM = 192, 3, 5.0
COMPONENTS = ("", "clean", "labels/defects")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from sem_core.synth.scan import synthesize_scan

    root = tmp_path_factory.mktemp("real_scans")
    runs = {"c96_w1": dict(chunk=96, workers=1, halo=16), "c96_w2": dict(chunk=96, workers=2, halo=16),
            "c64_w1": dict(chunk=64, workers=1, halo=16), "c64_nohalo": dict(chunk=64, workers=1, halo=0)}
    out = {}
    for name, kw in runs.items():
        path = synthesize_scan(root / f"{name}.ome.zarr", size=SIZE, seed=SEED, n_levels=2, pattern="lines",
                               pixel_size_nm=PIXEL_NM, **kw)
        out[name] = {c: [open_multiscale(path, lvl, component=c)[:] for lvl in range(2)] for c in COMPONENTS}
    return out


def test_same_seed_other_worker_count_gives_identical_bytes(scans):
    for comp in COMPONENTS:
        for a, b in zip(scans["c96_w1"][comp], scans["c96_w2"][comp], strict=True):
            assert a.tobytes() == b.tobytes(), comp


def test_clean_and_labels_do_not_depend_on_the_chunking_and_need_the_halo(scans):
    for comp in ("clean", "labels/defects"):
        for a, b in zip(scans["c96_w1"][comp], scans["c64_w1"][comp], strict=True):
            assert a.tobytes() == b.tobytes(), comp
    clean, cut = scans["c96_w1"]["clean"][0].astype(int), scans["c64_nohalo"]["clean"][0].astype(int)
    seams = np.zeros(clean.shape, bool)
    for s in range(64, SIZE, 64):
        seams[:, s - 2 : s + 2] = seams[s - 2 : s + 2, :] = True
    diff = np.abs(clean - cut)
    assert diff[seams].max() > 10  # without a halo the blur is cut at the chunk borders ...
    assert (diff[~seams] == 0).mean() > 0.9  # ... and mostly there
    # the noisy image is a real, noisy scan of the same layout (not a copy of the clean one)
    noisy = scans["c64_w1"][""][0].astype(float)
    assert np.abs(noisy - clean).mean() > 1 and np.corrcoef(noisy.ravel(), clean.ravel())[0, 1] > 0.5


def _lag1_corr(res: np.ndarray, axis: int) -> np.ndarray:
    """Correlation of each line of residuals with the next one along ``axis`` (per pair of lines)."""
    a = np.moveaxis(res, axis, 0)
    a = a - a.mean(axis=1, keepdims=True)
    num = (a[:-1] * a[1:]).mean(axis=1)
    return num / np.sqrt(a[:-1].var(axis=1) * a[1:].var(axis=1))


@pytest.mark.xfail(strict=True, reason="scan noise is drawn independently per chunk: its fast-axis (x) correlation "
                   "stops at chunk borders (~0 across a seam, ~0.5 inside); sem_core/synth owner to fix")
def test_noise_correlation_does_not_show_the_chunk_seams(scans):
    res = scans["c64_w1"][""][0].astype(float) - scans["c64_w1"]["clean"][0].astype(float)
    corr = _lag1_corr(res, axis=1)  # pairs of columns (c, c + 1)
    seam = np.arange(64, SIZE, 64) - 1
    inside = np.setdiff1d(np.arange(SIZE - 1), seam)
    assert corr[inside].mean() > 0.2  # the chain's noise is correlated along x
    assert corr[seam].mean() > corr[inside].mean() - 4 * corr[inside].std() / np.sqrt(len(seam))
