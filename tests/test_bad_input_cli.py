"""Bad input as a new user would try it: one line naming the file, non-zero exit, no library noise before it."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from sem_cli.main import app

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(app, ["denoise", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result, lines


def test_empty_input_folder_is_an_error_naming_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result, lines = _run(str(tmp_path / "empty"), str(tmp_path / "out"))
    assert result.exit_code == 1
    assert lines == [f"error: no SEM images (.tif, .tiff, .png) in {tmp_path / 'empty'}"]


@pytest.mark.parametrize("dtype", [bool, "U4", object])
def test_non_numeric_or_boolean_array_is_refused_naming_the_store(tmp_path, dtype):
    src = tmp_path / "mask.zarr"
    arr = zarr.open_array(src, mode="w", shape=(64, 64), dtype=dtype if dtype is not object else str, fill_value=None)
    arr[:] = np.ones((64, 64), dtype=bool) if dtype is bool else np.full((64, 64), "a")
    result, lines = _run(str(src), str(tmp_path / "out.zarr"))
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}: array dtype ")
    assert "not an integer or floating-point image" in lines[0]
    assert not (tmp_path / "out.zarr").exists()


def test_corrupt_safetensors_model_is_one_line_naming_the_file(tmp_path):
    import tifffile

    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a.tif", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"not a safetensors file" * 4)
    result, lines = _run(str(tmp_path / "in"), str(tmp_path / "out"), "--method", "unet", "--model", str(model))
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load release model {model}: ")


def test_unreadable_tiff_gives_our_line_without_tifffile_warnings_first(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 60)  # a TIFF header with no pages
    result, lines = _run(str(tmp_path / "in"), str(tmp_path / "out"))
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith(f"error: no readable SEM image in {tmp_path / 'in'}: {bad}")
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]


def test_an_unreachable_dask_scheduler_is_one_line_naming_it(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    import dask

    src = tmp_path / "scan.zarr"
    zarr.create_array(src, shape=(64, 64), dtype="uint8", chunks=(32, 32))[...] = 7
    monkeypatch.setenv("SEM_DENOISE_SCHEDULER", "tcp://127.0.0.1:9")  # discard port: nobody answers
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result, lines = _run(str(src), str(tmp_path / "out.ome.zarr"), "-m", "gaussian", "--chunk", "32")
    assert result.exit_code == 2
    assert lines[-1].startswith(f"error: denoising {src} on the Dask scheduler tcp://127.0.0.1:9 failed: ")
    assert not any("Traceback" in line for line in lines)
