"""Tiled Zarr -> OME-Zarr denoising: resume after interruption, provenance, schedulers, guards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

from sem_core.denoise.base import build_denoiser, denoise_image, from_unit_float, to_unit_float
from sem_core.denoise.classical import GaussianDenoiser
from sem_core.io.ome_zarr import ATTRS_KEY, create_multiscale, open_multiscale, write_level0_block
from sem_core.denoise_zarr import denoise_zarr, hash_zarr_array

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def scan(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (200, 264), dtype=np.uint8)
    arr = zarr.create_array(tmp_path / "scan.zarr", shape=img.shape, dtype="uint8", chunks=(64, 64))
    arr[...] = img
    return tmp_path / "scan.zarr"


@dataclass(frozen=True)
class Counting(GaussianDenoiser):
    """Gaussian that counts its calls and can fail after ``fail_after`` calls (an interrupted run)."""

    fail_after: int = -1
    calls: list = None  # shared, mutable call log

    def describe(self) -> dict:
        return {"sigma_px": self.sigma_px, "truncate": self.truncate}  # same run_key as a plain gaussian

    def __call__(self, tile):
        with _LOCK:
            self.calls.append(tile.shape)
            if 0 <= self.fail_after < len(self.calls):
                raise RuntimeError("simulated crash")
        return super().__call__(tile)


_LOCK = threading.Lock()


def _levels(path: Path) -> list[np.ndarray]:
    g = zarr.open_group(path, mode="r")
    return [g[d["path"]][...] for d in g.attrs["ome"]["multiscales"][0]["datasets"]]


def test_interrupted_run_resumes_skipping_done_blocks_and_ends_bit_identical(tmp_path, scan):
    ref = denoise_zarr(scan, tmp_path / "ref.ome.zarr", denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64,
                       n_levels=2, progress=False)
    assert ref.blocks_total == 4 * 5 and ref.blocks_computed == 20

    calls: list = []
    crashing = Counting(sigma_px=2.0, fail_after=7, calls=calls)
    with pytest.raises(RuntimeError, match="simulated crash"):
        denoise_zarr(scan, tmp_path / "out.ome.zarr", denoiser=crashing, chunks=64, n_levels=2, progress=False,
                     scheduler="sync")
    progress = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")["_progress"][...]
    n_done = int(progress.sum())
    assert 0 < n_done <= 7  # blocks written before the crash are marked (at most the 7 computed)
    ref0 = zarr.open_group(tmp_path / "ref.ome.zarr", mode="r")["0"][...]
    part0 = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")["0"][...]
    for i, j in zip(*np.nonzero(progress)):  # every marked block already holds its final data
        np.testing.assert_array_equal(part0[i * 64 : i * 64 + 64, j * 64 : j * 64 + 64],
                                      ref0[i * 64 : i * 64 + 64, j * 64 : j * 64 + 64])

    calls.clear()
    rerun = denoise_zarr(scan, tmp_path / "out.ome.zarr", denoiser=Counting(sigma_px=2.0, calls=calls), chunks=64,
                         n_levels=2, progress=False)
    assert (rerun.blocks_skipped, rerun.blocks_computed) == (n_done, 20 - n_done)
    assert len(calls) == 20 - n_done  # done blocks were not recomputed
    for a, b in zip(_levels(tmp_path / "ref.ome.zarr"), _levels(tmp_path / "out.ome.zarr")):
        assert a.dtype == b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    g = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")
    assert "_progress" not in g and g.attrs[ATTRS_KEY]["complete"] is True

    calls.clear()
    again = denoise_zarr(scan, tmp_path / "out.ome.zarr", denoiser=Counting(sigma_px=2.0, calls=calls), chunks=64,
                         progress=False)
    assert again.blocks_computed == 0 and calls == []


def test_changed_parameters_or_no_resume_recompute_everything(tmp_path, scan):
    out = tmp_path / "out.ome.zarr"
    denoise_zarr(scan, out, denoiser=GaussianDenoiser(sigma_px=1.0), chunks=64, progress=False)
    assert denoise_zarr(scan, out, denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, progress=False).blocks_computed == 20
    assert denoise_zarr(scan, out, denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, progress=False,
                        resume=False).blocks_computed == 20


def test_output_matches_whole_image_in_uint8_and_records_provenance(tmp_path, scan):
    d = GaussianDenoiser(sigma_px=1.5)
    out = tmp_path / "out.ome.zarr"
    denoise_zarr(scan, out, denoiser=d, chunks=64, progress=False, scheduler="threads", num_workers=2)
    img = zarr.open_array(scan, mode="r")[...]
    expected = from_unit_float(denoise_image(to_unit_float(img), denoiser=d), np.uint8)
    np.testing.assert_array_equal(open_multiscale(out)[...], expected)
    prov = zarr.open_group(out, mode="r").attrs[ATTRS_KEY]["provenance"]
    assert prov["method"] == "gaussian" and prov["params"]["sigma_px"] == 1.5
    assert prov["input_hash"] == hash_zarr_array(zarr.open_array(scan, mode="r"))
    assert prov["input_store"].endswith("scan.zarr")
    assert {"code_version", "params_hash"} <= set(prov) and "created" not in prov
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(out)))())
    assert nodes and nodes[0].data[0].shape == img.shape  # readable by ome-zarr-py (napari's reader)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_from_unit_float_in_bands_equals_the_float64_formula(dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.2, 1.2, (37, 53)).astype(np.float32)
    top = np.iinfo(dtype).max
    x[0, :6] = [0.5 / top, 1.5 / top, (top - 0.5) / top, 0.0, 1.0, np.nextafter(np.float32(0.5 / top), 1)]
    ref = np.clip(np.rint(x.astype(np.float64) * top), 0, top).astype(dtype)  # the definition, whole array
    for band in (1, 7, 53, 10_000):  # bands cut rows, match rows, or cover everything
        got = from_unit_float(x, dtype, band_px=band)
        assert got.dtype == dtype and got.shape == x.shape and np.array_equal(got, ref)
    assert np.array_equal(from_unit_float(x[::2, ::3], dtype, band_px=5), ref[::2, ::3])  # a strided view
    assert from_unit_float(x, np.float32) is x


def test_ome_zarr_input_level0_and_pixel_size_are_used(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.random((192, 192)).astype(np.float32)
    g = create_multiscale(tmp_path / "in.ome.zarr", shape=img.shape, dtype="float32", chunks=(64, 64), n_levels=2,
                          pixel_size_nm=2.5)
    write_level0_block(g, img, row=0, col=0)
    d = build_denoiser("median", size_px=3)
    denoise_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr", denoiser=d, chunks=64, progress=False)
    out = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")
    ds = out.attrs["ome"]["multiscales"][0]["datasets"]
    assert len(ds) == 2 and ds[0]["coordinateTransformations"][0]["scale"] == [2.5, 2.5]
    np.testing.assert_allclose(out["0"][...], denoise_image(img, denoiser=d), atol=1e-6)


def test_guards_name_the_problem(tmp_path, scan):
    with pytest.raises(ValueError, match="smaller than the halo"):
        denoise_zarr(scan, tmp_path / "o.ome.zarr", denoiser=GaussianDenoiser(sigma_px=4.0), chunks=96,
                     progress=False)  # 200 = 2·96 + 8 < halo 16
    with pytest.raises(ValueError, match="multiple of 8"):
        denoise_zarr(scan, tmp_path / "o.ome.zarr", denoiser=build_denoiser("wavelet", levels=3), chunks=100,
                     progress=False)
    with pytest.raises(FileNotFoundError, match="missing.zarr"):
        denoise_zarr(tmp_path / "missing.zarr", tmp_path / "o.ome.zarr", denoiser=GaussianDenoiser(), chunks=64)


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from dataclasses import dataclass
    from sem_core.denoise.classical import GaussianDenoiser
    from sem_core.denoise_zarr import denoise_zarr

    @dataclass(frozen=True)
    class Slow(GaussianDenoiser):
        def __call__(self, tile):
            time.sleep(0.15)
            return super().__call__(tile)

    denoise_zarr(sys.argv[1], sys.argv[2], denoiser=Slow(sigma_px=2.0), chunks=64, progress=False, scheduler="sync")
    """
)


def test_kill_minus_9_mid_scan_then_rerun_is_bit_identical(tmp_path, scan):
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    out = tmp_path / "out.ome.zarr"
    proc = subprocess.Popen([sys.executable, str(script), str(scan), str(out)], cwd=ROOT)
    deadline = time.time() + 60
    marks = 0
    while time.time() < deadline and marks < 5:
        time.sleep(0.1)
        if (out / "_progress").exists():
            marks = sum(1 for p in (out / "_progress").rglob("*") if p.is_file() and p.name != "zarr.json")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= marks < 20
    rerun = denoise_zarr(scan, out, denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, progress=False)
    assert rerun.blocks_skipped >= 5
    denoise_zarr(scan, tmp_path / "ref.ome.zarr", denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, progress=False)
    for a, b in zip(_levels(tmp_path / "ref.ome.zarr"), _levels(out)):
        np.testing.assert_array_equal(a, b)


def test_distributed_scheduler_address_gives_the_same_output(tmp_path, scan):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cl:
        denoise_zarr(scan, tmp_path / "a.ome.zarr", denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64,
                     scheduler=cl.scheduler_address, progress=False)
    denoise_zarr(scan, tmp_path / "b.ome.zarr", denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, progress=False)
    np.testing.assert_array_equal(open_multiscale(tmp_path / "a.ome.zarr")[...],
                                  open_multiscale(tmp_path / "b.ome.zarr")[...])


class SimulatedCrash(Exception):
    """Raised by the patched store instead of its N-th write: the process 'dies' there."""


def _crash_store_at(monkeypatch, crash_at: int | None, log: list) -> None:
    """Make the N-th write/delete of any local Zarr store raise (None: only record ``(op, key)``)."""
    from zarr.storage import LocalStore

    def wrap(op: str, real):
        async def patched(self, key, *args, **kwargs):
            if crash_at is not None and len(log) == crash_at:
                raise SimulatedCrash(f"died before {op} {key}")
            log.append((op, key))
            return await real(self, key, *args, **kwargs)

        return patched

    for op in ("set", "delete", "delete_dir"):
        monkeypatch.setattr(LocalStore, op, wrap(op, getattr(LocalStore, op)))


def test_a_crash_before_any_single_store_write_resumes_to_the_bit_identical_output(tmp_path, monkeypatch):
    """Kill the run before each of its writes in turn (data chunks, markers, metadata, pyramid), then rerun.

    Every prefix of the write sequence must resume to the uninterrupted output. This is what catches
    a 'block done' marker written before the block's data: dying between the two leaves a marked block
    without data, which the rerun skips.
    """
    img = np.random.default_rng(0).integers(0, 256, (128, 128), dtype=np.uint8)
    src = zarr.create_array(tmp_path / "scan.zarr", shape=img.shape, dtype="uint8", chunks=(64, 64))
    src[...] = img
    kwargs = dict(denoiser=GaussianDenoiser(sigma_px=2.0), chunks=64, n_levels=2, progress=False, scheduler="sync")
    writes: list = []
    with monkeypatch.context() as m:
        _crash_store_at(m, None, writes)
        denoise_zarr(tmp_path / "scan.zarr", tmp_path / "ref.ome.zarr", **kwargs)
    ref = _levels(tmp_path / "ref.ome.zarr")
    data_keys = [k for op, k in writes if op == "set" and k.startswith("0/c/")]
    assert len(data_keys) == 4 and len(writes) > 2 * len(data_keys)  # 4 blocks, plus markers and metadata
    for n in range(len(writes)):
        out = tmp_path / f"out{n}.ome.zarr"
        with monkeypatch.context() as m:
            _crash_store_at(m, n, [])
            with pytest.raises(SimulatedCrash):
                denoise_zarr(tmp_path / "scan.zarr", out, **kwargs)
        denoise_zarr(tmp_path / "scan.zarr", out, **kwargs)
        for a, b in zip(ref, _levels(out), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"run killed before write {n} ({writes[n]}) did not resume")
