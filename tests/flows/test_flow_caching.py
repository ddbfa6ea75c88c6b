"""Content-addressed caching: unchanged inputs recompute nothing; changes recompute exactly what depends on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from prefect import flow, task

from tasks.caching import content_cache_key, hash_content

CALLS = "calls.log"


def _log(log: Path, name: str) -> None:
    with open(log, "a") as fh:
        fh.write(name + "\n")


@task(persist_result=True, cache_key_fn=content_cache_key(inputs=["src"], outputs=["out"], ignore=["log"]))
def scale_file(src: Path, out: Path, *, factor: float, log: Path) -> Path:
    _log(log, "scale")
    values = np.loadtxt(src, ndmin=1) * factor
    np.savetxt(out, values)
    return out


@task(persist_result=True, cache_key_fn=content_cache_key(inputs=["src"], outputs=["out"], ignore=["log"]))
def shift_file(src: Path, out: Path, *, offset: float, log: Path) -> Path:
    _log(log, "shift")
    np.savetxt(out, np.loadtxt(src, ndmin=1) + offset)
    return out


@flow
def toy_pipeline(src: Path, workdir: Path, factor: float = 2.0, offset: float = 1.0) -> Path:
    log = workdir / CALLS
    scaled = scale_file(src, workdir / "scaled.txt", factor=factor, log=log)
    return shift_file(scaled, workdir / "shifted.txt", offset=offset, log=log)


def _calls(workdir: Path) -> list[str]:
    path = workdir / CALLS
    calls = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return calls


@pytest.fixture
def toy(tmp_path, results_dir):
    src = tmp_path / "input.txt"
    np.savetxt(src, [1.0, 2.0, 3.0])
    return src, tmp_path


def test_second_run_recomputes_nothing_and_param_change_recomputes_downstream_only(toy):
    src, work = toy
    out = toy_pipeline(src, work)
    assert _calls(work) == ["scale", "shift"]
    np.testing.assert_allclose(np.loadtxt(out), [3.0, 5.0, 7.0])

    assert toy_pipeline(src, work) == out
    assert _calls(work) == []  # zero recomputation

    toy_pipeline(src, work, offset=10.0)  # downstream parameter: only that task
    assert _calls(work) == ["shift"]
    np.testing.assert_allclose(np.loadtxt(out), [12.0, 14.0, 16.0])

    toy_pipeline(src, work, factor=3.0, offset=10.0)  # upstream parameter: it and what follows
    assert _calls(work) == ["scale", "shift"]
    np.testing.assert_allclose(np.loadtxt(out), [13.0, 16.0, 19.0])


def test_rewritten_input_content_at_same_path_recomputes(toy):
    src, work = toy
    toy_pipeline(src, work)
    assert _calls(work) == ["scale", "shift"]
    np.savetxt(src, [5.0, 6.0, 7.0])  # same path, new content
    out = toy_pipeline(src, work)
    assert _calls(work) == ["scale", "shift"]
    np.testing.assert_allclose(np.loadtxt(out), [11.0, 13.0, 15.0])


def test_deleted_output_is_rebuilt_not_served_from_cache(toy):
    src, work = toy
    toy_pipeline(src, work)
    _calls(work)
    (work / "shifted.txt").unlink()
    out = toy_pipeline(src, work)
    assert _calls(work) == ["shift"]  # the upstream output still exists and its content is unchanged
    assert out.exists()


def test_zarr_store_is_hashed_by_content_not_path_or_metadata(tmp_path):
    path = tmp_path / "a.zarr"
    arr = zarr.create_array(store=str(path), shape=(4, 8), chunks=(2, 8), dtype="uint8")
    arr[:] = 1
    before = hash_content(zarr.open_array(str(path), mode="r"))
    assert hash_content(path) == before  # the path and the opened array agree
    arr[:] = 2  # same shape, dtype, chunks, path: only the chunk bytes change
    after = hash_content(zarr.open_array(str(path), mode="r"))
    assert after != before
    arr[:] = 1
    assert hash_content(path) == before


def test_cache_key_covers_the_library_code_a_task_calls(tmp_path, monkeypatch):
    from tasks import caching

    pkg = tmp_path / "fakelib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    caching._module_file_hash.cache_clear()
    first = caching.hash_modules(["fakelib"])
    (pkg / "__init__.py").write_text("X = 2\n")
    caching._module_file_hash.cache_clear()
    assert caching.hash_modules(["fakelib"]) != first
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"):
        caching.hash_modules(["no_such_module_xyz"])
