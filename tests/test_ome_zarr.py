"""OME-Zarr multiscale: block-by-block writes, pyramid levels, NGFF metadata readable by ome-zarr-py."""

import numpy as np
import pytest
import zarr

from sem_core.io.ome_zarr import (
    ATTRS_KEY,
    build_pyramid,
    create_label_image,
    create_multiscale,
    level_shapes,
    open_multiscale,
    write_level0_block,
)


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _write_blocks(group, img, chunk):
    for r in range(0, img.shape[0], chunk):
        for c in range(0, img.shape[1], chunk):
            write_level0_block(group, img[r : r + chunk, c : c + chunk], row=r, col=c)


def test_blockwise_write_equals_in_memory_and_pyramid_is_block_mean(tmp_path):
    img = _image((192, 256))
    path = tmp_path / "a.ome.zarr"
    g = create_multiscale(path, shape=img.shape, dtype="uint8", chunks=(64, 64), n_levels=3,
                          pixel_size_nm=2.5, name="noisy", attrs={"provenance": {"x": 1}})
    _write_blocks(g, img, 64)
    build_pyramid(g, method="mean", workers=2)
    np.testing.assert_array_equal(open_multiscale(path, 0)[:], img)
    expected = img.astype(np.float32)
    for k in (1, 2):
        h, w = expected.shape[0] // 2, expected.shape[1] // 2
        expected = expected[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
        lvl = open_multiscale(path, k)[:]
        assert lvl.shape == level_shapes(img.shape, 3)[k] == (h, w)
        assert lvl.dtype == np.uint8
        # each level is derived from the rounded level below, so allow one grey level of rounding drift
        assert np.abs(lvl.astype(np.float32) - expected).max() <= 1.0
        expected = lvl.astype(np.float32)
    assert open_multiscale(path, 1)[:].mean() == pytest.approx(img.mean(), abs=0.6)
    root = zarr.open_group(path, mode="r")
    ms = root.attrs["ome"]["multiscales"][0]
    assert root.attrs["ome"]["version"] == "0.5"
    assert [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]] == [[2.5, 2.5], [5.0, 5.0], [10.0, 10.0]]
    assert [a["name"] for a in ms["axes"]] == ["y", "x"] and ms["axes"][0]["unit"] == "nanometer"
    assert root.attrs[ATTRS_KEY] == {"provenance": {"x": 1}}
    assert root["0"].chunks == (64, 64)


def test_pyramid_from_pieces_smaller_than_a_chunk_is_the_same(tmp_path, monkeypatch):
    """Downsampling reads source pieces of at most 2·_PIECE px (bounded memory); any piece size gives the same levels."""
    import sem_core.io.ome_zarr as oz

    img = _image((190, 250), seed=5)  # odd level shapes, ragged last chunks
    levels = {}
    for piece in (1024, 16):
        monkeypatch.setattr(oz, "_PIECE", piece)
        g = create_multiscale(tmp_path / f"p{piece}.ome.zarr", shape=img.shape, dtype="uint8", chunks=(64, 64),
                              n_levels=3, name="noisy")
        _write_blocks(g, img, 64)
        build_pyramid(g, method="mean", workers=2)
        levels[piece] = [open_multiscale(tmp_path / f"p{piece}.ome.zarr", k)[:] for k in (1, 2)]
    for a, b in zip(levels[1024], levels[16], strict=True):
        np.testing.assert_array_equal(a, b)


def test_max_pyramid_keeps_single_pixel_label():
    import tempfile
    lab = np.zeros((64, 64), np.uint8)
    lab[33, 17] = 4
    with tempfile.TemporaryDirectory() as d:
        g = create_label_image(d + "/s.ome.zarr", name="defects", shape=lab.shape, chunks=(32, 32), n_levels=3,
                               label_names={4: "particle"})
        write_level0_block(g, lab, row=0, col=0)
        build_pyramid(g, method="max")
        assert open_multiscale(d + "/s.ome.zarr", 2, component="labels/defects")[:].max() == 4
        assert open_multiscale(d + "/s.ome.zarr", 2, component="labels/defects")[8, 4] == 4


def test_ome_zarr_reader_opens_image_and_labels(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    img = _image((128, 128), seed=3)
    path = tmp_path / "scan.ome.zarr"
    g = create_multiscale(path, shape=img.shape, dtype="uint8", chunks=(64, 64), n_levels=2, name="noisy")
    _write_blocks(g, img, 64)
    build_pyramid(g)
    c = create_multiscale(path, shape=img.shape, dtype="uint8", chunks=(64, 64), n_levels=2, name="clean",
                          component="clean")
    write_level0_block(c, 255 - img, row=0, col=0)
    build_pyramid(c)
    lab = create_label_image(path, name="defects", shape=img.shape, chunks=(64, 64), n_levels=2,
                             label_names={1: "bridge"})
    write_level0_block(lab, (img > 250).astype(np.uint8), row=0, col=0)
    build_pyramid(lab, method="max")

    nodes = list(Reader(parse_url(str(path)))())
    image = nodes[0]
    assert any(isinstance(s, Multiscales) for s in image.specs)
    assert [tuple(a.shape) for a in image.data] == [(128, 128), (64, 64)]
    np.testing.assert_array_equal(np.asarray(image.data[0]), img)
    assert zarr.open_group(path / "labels", mode="r").attrs["ome"] == {"version": "0.5", "labels": ["defects"]}
    label_nodes = [n for n in nodes if any(isinstance(s, Label) for s in n.specs)]
    assert len(label_nodes) == 1
    np.testing.assert_array_equal(np.asarray(label_nodes[0].data[0]), (img > 250).astype(np.uint8))
    # the clean sibling is itself a valid multiscale image
    clean_nodes = list(Reader(parse_url(str(path / "clean")))())
    np.testing.assert_array_equal(np.asarray(clean_nodes[0].data[0]), 255 - img)


def test_errors_name_the_problem(tmp_path):
    g = create_multiscale(tmp_path / "e.ome.zarr", shape=(32, 32), dtype="uint8", chunks=(16, 16), n_levels=1)
    with pytest.raises(ValueError, match="exceeds"):
        write_level0_block(g, np.zeros((16, 16), np.uint8), row=24, col=0)
    with pytest.raises(TypeError, match="float"):
        write_level0_block(g, np.zeros((16, 16), np.float32), row=0, col=0)
    with pytest.raises(ValueError, match="level 3"):
        open_multiscale(tmp_path / "e.ome.zarr", 3)
    with pytest.raises(FileNotFoundError, match="clean"):
        open_multiscale(tmp_path / "e.ome.zarr", 0, component="clean")
