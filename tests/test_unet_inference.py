"""U-Net inference geometry: strip forward == plain forward, one pass == sub-tiles == whole image, model once per process."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sem_core.denoise.base import build_denoiser, denoise_image  # noqa: E402
from sem_core.denoise.tiled import denoise_tiled  # noqa: E402
from sem_core.models.strips import forward_in_strips, strip_rows  # noqa: E402
from sem_core.models.unet import UNet  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 cores shared: torch's own threads collapse under contention
    yield
    torch.set_num_threads(threads)


def _net(seed: int = 0, **kw) -> UNet:
    torch.manual_seed(seed)
    net = UNet(norm="batch", **kw).eval()
    with torch.no_grad():  # non-trivial running statistics, so batch norm is not the identity
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.parametrize("kw", [dict(base_channels=4, depth=2), dict(base_channels=4, depth=3, edge_input=True,
                                                                       residual=True), dict(base_channels=4, depth=1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_strip_forward_equals_the_plain_forward_on_odd_sizes(kw, channels_last):
    net = _net(**kw)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    for hw in [(61, 77), (64, 64), (130, 45), (290, 40)]:  # 290: several 16-row strips at 3 levels
        x = torch.rand(1, 1, *hw, generator=torch.Generator().manual_seed(sum(hw))).contiguous(memory_format=fmt)
        with torch.inference_mode():
            ref = net(x)
            got = forward_in_strips(net, x, strip_px=300)  # several strips at every level
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match="one"):
        forward_in_strips(net, torch.zeros(2, 1, 16, 16))


def test_strip_rows_are_even_and_at_least_sixteen():
    assert strip_rows(1000, strip_px=1 << 19) == 526
    assert strip_rows(10_000_000, strip_px=1 << 19) == 16
    assert all(strip_rows(w, strip_px=5000) % 2 == 0 for w in range(1, 300, 7))


@pytest.mark.parametrize("ensemble", ["none", "scan"])
def test_one_pass_sub_tiles_and_tiled_blocks_agree_with_the_whole_image(ensemble):
    net = _net(base_channels=4, depth=2)
    image = np.random.default_rng(5).random((150, 133)).astype(np.float32)
    one = build_denoiser("unet", model=net, device="cpu", ensemble=ensemble)  # default tile: one pass
    subs = build_denoiser("unet", model=net, device="cpu", ensemble=ensemble, tile_px=32, batch_size=3)
    assert one.halo == subs.halo == 24 and one.chunk_multiple == 4
    strips = build_denoiser("unet", model=net, device="cpu", ensemble=ensemble, cpu_plain_mb=0, cpu_strip_px=600)
    whole = denoise_image(image, denoiser=one)
    assert np.abs(denoise_image(image, denoiser=subs) - whole).max() <= 1e-4
    assert np.abs(denoise_image(image, denoiser=strips) - whole).max() <= 1e-4  # the CPU route of real blocks
    for d, chunk in ((one, 48), (subs, 64), (strips, 48)):  # ragged blocks: 150 = 3·48 + 6 (merged), 133 = 2·64 + 5
        assert np.abs(denoise_tiled(image, denoiser=d, chunk_px=chunk, scheduler="sync") - whole).max() <= 1e-4
    assert np.abs(whole - image).mean() > 0.01 and 0.0 <= whole.min() and whole.max() <= 1.0


def test_a_checkpoint_model_is_loaded_once_per_process_and_pickles_as_path_and_hash(tmp_path):
    from sem_core.checkpoint import export_release

    net = _net(base_channels=4, depth=2)
    ckpt = export_release(net, tmp_path / "m.safetensors", {"name": "m"})
    a = build_denoiser("unet", checkpoint=ckpt, device="cpu")
    b = build_denoiser("unet", checkpoint=ckpt, device="cpu")
    assert a.model is b.model  # one cached copy per process
    blob = pickle.dumps(a)
    assert len(blob) < 4096 < sum(p.numel() * 4 for p in net.parameters())  # no weights in the pickle
    clone = pickle.loads(blob)
    assert clone.model is a.model and clone.checkpoint_hash == a.checkpoint_hash
    image = np.random.default_rng(1).random((40, 44)).astype(np.float32)
    np.testing.assert_array_equal(denoise_image(image, denoiser=clone), denoise_image(image, denoiser=a))
    from sem_core.denoise import unet as unet_module

    ckpt.write_bytes(ckpt.read_bytes() + b" ")  # the file changed under a pickled denoiser ...
    unet_module._MODELS.clear()  # ... and a fresh worker process (nothing cached) must load it: refused
    with pytest.raises(ValueError, match="SHA-256"):
        pickle.loads(blob)



def test_the_unet_block_is_the_default_chunk_and_an_explicit_chunk_wins():
    from sem_core.denoise.tiled import choose_chunk

    unet = build_denoiser("unet", model=_net(base_channels=4, depth=2), device="cpu", block_px=4000, cpu_block_px=102)
    assert unet.block_px == 104  # the CPU's block, rounded up to the input multiple
    assert choose_chunk(None, denoiser=unet, default_px=1024) == 104
    assert choose_chunk(66, denoiser=unet, default_px=1024) == 64  # the user's, on the pooling grid
    assert choose_chunk(None, denoiser=build_denoiser("gaussian"), default_px=1024) == 1024


@pytest.mark.parametrize("n,core,ctx", [(152, 32, 24), (80, 32, 24), (64, 32, 24), (4096, 1024, 112), (4320, 1024, 112)])
def test_sub_tiles_keep_each_pixel_once_and_away_from_cut_edges(n, core, ctx):
    from sem_core.denoise.unet import _sub_tiles

    tiles = _sub_tiles(n, core=core, ctx=ctx)
    spans = {b - a for a, b, _, _ in tiles}
    assert spans == {min(core + 2 * ctx, n)}  # one shape: one batch, one compiled graph
    assert [k for _, _, k, _ in tiles][0] == 0 and tiles[-1][3] == n
    assert all(t[3] == u[2] for t, u in zip(tiles, tiles[1:]))  # kept ranges tile [0, n) without overlap
    for i, (a, b, lo, hi) in enumerate(tiles):
        assert a <= lo < hi <= b and a % core == 0 or i == len(tiles) - 1
        assert i == 0 or lo - a >= ctx  # a cut edge: at least ctx of context before the kept rows
        assert i == len(tiles) - 1 or b - hi >= ctx


def test_a_scan_in_one_block_runs_the_network_once_on_the_image_alone():
    """The context is paid only between blocks: one block = one pass over exactly the (padded) image."""
    net = _net(base_channels=4, depth=2)
    seen = []
    image = np.random.default_rng(2).random((96, 90)).astype(np.float32)
    d = build_denoiser("unet", model=net, device="cpu")
    predict = d._predict
    d._predict = lambda batch: (seen.append(tuple(batch.shape[-2:])), predict(batch))[1]
    assert d.boundary == "none" and d.max_parallel_blocks == 1
    whole = denoise_tiled(image, denoiser=d, chunk_px=96, scheduler="sync")
    assert seen == [(96, 92)]  # 90 -> the input multiple 4; no halo outside the image
    seen.clear()
    tiled = denoise_tiled(image, denoiser=d, chunk_px=48, scheduler="sync")
    assert sorted(seen) == sorted([(72, 72)] * 2 + [(72, 68)] * 2)  # interior halo only (24 px)
    assert np.abs(tiled - whole).max() <= 1e-4
