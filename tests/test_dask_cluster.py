"""``sem-denoise denoise --scheduler tcp://…`` on a real process cluster (``dask scheduler`` + ``dask worker``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from sem_cli.main import app
from sem_core.dask_cluster import local_dask_cluster

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("dask.distributed")
    with local_dask_cluster(2, threads=1, env={"PYTHONPATH": str(ROOT)}) as addr:
        yield addr


def _levels(path: Path) -> list[np.ndarray]:
    g = zarr.open_group(path, mode="r")
    return [g[d["path"]][...] for d in g.attrs["ome"]["multiscales"][0]["datasets"]]


def _denoise(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / f"{name}.ome.zarr"
    res = runner.invoke(app, ["denoise", str(tmp_path / "scan.zarr"), str(out), *args])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.slow
def test_process_cluster_output_is_byte_identical_to_threads_and_loads_the_model_once_per_worker(tmp_path, cluster):
    torch = pytest.importorskip("torch")
    from dask.distributed import Client

    from sem_core.checkpoint import export_release
    from sem_core.models.unet import UNet

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (192, 160), dtype=np.uint8)
    zarr.create_array(tmp_path / "scan.zarr", shape=img.shape, dtype="uint8", chunks=(64, 64))[...] = img
    g_threads = _denoise(tmp_path, "g_threads", "-m", "gaussian", "--chunk", "64", "--scheduler", "threads")
    g_cluster = _denoise(tmp_path, "g_cluster", "-m", "gaussian", "--chunk", "64", "--scheduler", cluster)
    for a, b in zip(_levels(g_threads), _levels(g_cluster), strict=True):
        np.testing.assert_array_equal(a, b)

    torch.manual_seed(0)
    ckpt = export_release(UNet(base_channels=4, depth=2, norm="none"), tmp_path / "m.safetensors", {"name": "m"})
    unet = ["-m", "unet", "--model", str(ckpt), "--set", "device=cpu", "--chunk", "32"]  # 6 x 5 blocks
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: same reduction order
    try:
        u_threads = _denoise(tmp_path, "u_threads", *unet, "--scheduler", "threads")
    finally:
        torch.set_num_threads(threads)
    u_cluster = _denoise(tmp_path, "u_cluster", *unet, "--scheduler", cluster)
    for a, b in zip(_levels(u_threads), _levels(u_cluster), strict=True):
        np.testing.assert_array_equal(a, b)
    with Client(cluster) as client:
        cached = client.run(lambda: len(__import__("sem_core.denoise.unet", fromlist=["_MODELS"])._MODELS))
    assert len(cached) == 2 and set(cached.values()) == {1}  # each worker process: one model, whatever its blocks
