"""``sem-denoise denoise``: TIFF folder (with a corrupt file and a data bar), Zarr scans, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr
from typer.testing import CliRunner

from sem_cli.main import app
from sem_core.denoise.base import build_denoiser, denoise_image, from_unit_float, to_unit_float
from sem_core.io.ome_zarr import ATTRS_KEY, open_multiscale

runner = CliRunner()


@pytest.fixture()
def params_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(f"paths:\n  release_model: {tmp_path / 'no_model.safetensors'}\n")
    return p


def _noisy(rng, shape, dtype=np.uint8):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    top = np.iinfo(dtype).max
    clean = (0.3 + 0.4 * (((yy // 16) + (xx // 16)) % 2)) * top
    return np.clip(clean + rng.normal(0, 0.1 * top, shape), 0, top).round().astype(dtype)


def test_tiff_folder_with_a_corrupt_file_and_a_data_bar(tmp_path, params_file):
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    a = _noisy(rng, (96, 128))
    b = _noisy(rng, (80, 64))
    b[-10:] = 0
    b[-6:-3, 5:9] = 255  # data bar: black band with white "text"
    tifffile.imwrite(src / "a.tif", a)
    tifffile.imwrite(src / "b.tif", b)
    (src / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    out = tmp_path / "out"
    res = runner.invoke(app, ["denoise", str(src), str(out), "--method", "gaussian", "--set", "sigma_px=1.5",
                              "--chunk", "32", "--params", str(params_file)])  # several Dask blocks per file
    assert res.exit_code == 0, res.output
    assert "2 of 3 images denoised" in res.output and "broken.tif" in res.output
    report = json.loads((out / "denoise_report.json").read_text())
    assert [("error" in r) for r in report] == [False, False, True]

    out_a, out_b = tifffile.imread(out / "a.tif"), tifffile.imread(out / "b.tif")
    assert out_a.shape == a.shape and out_a.dtype == np.uint8
    expected = from_unit_float(denoise_image(to_unit_float(a), denoiser=build_denoiser("gaussian", sigma_px=1.5)),
                               np.uint8)
    np.testing.assert_array_equal(out_a, expected)
    assert out_b.shape == b.shape and out_b.dtype == np.uint8
    np.testing.assert_array_equal(out_b[-10:], b[-10:])  # data bar copied, not denoised
    assert np.abs(out_b[:-10].astype(int) - b[:-10]).mean() > 2  # the image part was denoised
    with tifffile.TiffFile(out / "a.tif") as tif:
        meta = json.loads(tif.pages.first.description)["sem_denoise"]
    assert meta["provenance"]["method"] == "gaussian" and meta["source"].endswith("a.tif")


def test_zarr_scan_to_ome_zarr_keeps_uint16_and_geometry(tmp_path, params_file):
    rng = np.random.default_rng(1)
    img = _noisy(rng, (160, 200), np.uint16)
    arr = zarr.create_array(tmp_path / "scan.zarr", shape=img.shape, dtype="uint16", chunks=(64, 64))
    arr[...] = img
    out = tmp_path / "den.ome.zarr"
    res = runner.invoke(app, ["denoise", str(tmp_path / "scan.zarr"), str(out), "-m", "median", "--chunk", "64",
                              "--scheduler", "threads", "--params", str(params_file)])
    assert res.exit_code == 0, res.output
    got = open_multiscale(out)[...]
    assert got.dtype == np.uint16 and got.shape == img.shape
    expected = from_unit_float(denoise_image(to_unit_float(img), denoiser=build_denoiser("median")), np.uint16)
    np.testing.assert_array_equal(got, expected)
    res2 = runner.invoke(app, ["denoise", str(tmp_path / "scan.zarr"), str(out), "-m", "median", "--chunk", "64",
                               "--params", str(params_file)])
    assert res2.exit_code == 0 and "0 blocks computed" in res2.output  # resumed: already complete


def test_calibrated_tv_on_a_zarr_scan_records_the_choice(tmp_path, params_file):
    rng = np.random.default_rng(2)
    img = _noisy(rng, (128, 128))
    zarr.create_array(tmp_path / "s.zarr", shape=img.shape, dtype="uint8", chunks=(64, 64))[...] = img
    res = runner.invoke(app, ["denoise", str(tmp_path / "s.zarr"), str(tmp_path / "o.ome.zarr"), "-m", "tv",
                              "--chunk", "64", "--set", "n_iter=10", "--params", str(params_file)])
    assert res.exit_code == 0, res.output
    assert "calibrated tv (j_invariant_x)" in res.output
    prov = zarr.open_group(tmp_path / "o.ome.zarr", mode="r").attrs[ATTRS_KEY]["provenance"]
    assert prov["calibration"]["mode"] == "j_invariant_x"
    assert prov["params"]["weight"] == prov["calibration"]["chosen"]["weight"]


def test_clear_errors_for_missing_model_unknown_method_and_zarr_to_folder(tmp_path, params_file):
    img = tmp_path / "x.tif"
    tifffile.imwrite(img, np.zeros((32, 32), np.uint8))
    res = runner.invoke(app, ["denoise", str(img), str(tmp_path / "o"), "-m", "unet", "--params", str(params_file)])
    flat = res.output.replace("\n", "")  # rich wraps long lines
    assert res.exit_code == 2 and "checkpoint" in flat and "no_model.safetensors" in flat
    res = runner.invoke(app, ["denoise", str(img), str(tmp_path / "o"), "-m", "magic", "--params", str(params_file)])
    assert res.exit_code == 2 and "unknown method 'magic'" in res.output.replace("\n", "")
    zarr.create_array(tmp_path / "s.zarr", shape=(64, 64), dtype="uint8", chunks=(64, 64))
    res = runner.invoke(app, ["denoise", str(tmp_path / "s.zarr"), str(tmp_path / "folder"), "-m", "gaussian",
                              "--params", str(params_file)])
    assert res.exit_code == 2 and "needs a .zarr" in res.output.replace("\n", "")


def test_unet_from_a_release_file_records_the_checkpoint_hash(tmp_path, params_file):
    torch = pytest.importorskip("torch")
    from sem_core.checkpoint import export_release
    from sem_core.models.unet import UNet
    from sem_core.provenance import hash_file

    torch.manual_seed(0)
    ckpt = export_release(UNet(base_channels=4, depth=2, norm="none"), tmp_path / "tiny.safetensors", {"note": "test"})
    rng = np.random.default_rng(3)
    img = _noisy(rng, (96, 96))
    zarr.create_array(tmp_path / "s.zarr", shape=img.shape, dtype="uint8", chunks=(48, 48))[...] = img
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = runner.invoke(app, ["denoise", str(tmp_path / "s.zarr"), str(tmp_path / "o.ome.zarr"), "-m", "unet",
                                  "--model", str(ckpt), "--chunk", "48", "--scheduler", "sync",
                                  "--set", "tile_px=48", "--set", "device=cpu", "--params", str(params_file)])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    prov = zarr.open_group(tmp_path / "o.ome.zarr", mode="r").attrs[ATTRS_KEY]["provenance"]
    assert prov["method"] == "unet" and prov["params"]["checkpoint_hash"] == hash_file(ckpt)
    out = open_multiscale(tmp_path / "o.ome.zarr")[...]
    assert out.shape == img.shape and out.dtype == np.uint8
