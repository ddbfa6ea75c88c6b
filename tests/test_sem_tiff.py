"""Reading SEM images: FEI/Zeiss metadata, data-bar removal, RGB -> grey, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from fixtures_ingest import add_data_bar, make_specimen, to_uint8, write_fei_tiff, write_png, write_zeiss_tiff

from sem_core.io.sem_tiff import SemReadError, detect_data_bar, read_sem_image
from sem_core.provenance import hash_file


@pytest.fixture
def grey8() -> np.ndarray:
    return to_uint8(make_specimen((96, 128), np.random.default_rng(1)))


def test_fei_tiff_metadata_crop_and_green_channel(tmp_path, grey8):
    path = write_fei_tiff(tmp_path / "a.tif", grey8, bar_rows=29, pixel_m=5.83e-9, dwell_s=3e-5, hv_v=5000,
                          detector="TLD")
    img = read_sem_image(path)
    m = img.meta
    assert img.data.shape == (96, 128) and img.data.dtype == np.uint8
    assert (m.vendor, m.crop_rows, m.crop_source, m.raw_height, m.channel) == ("fei", 29, "fei", 125, "G")
    assert m.pixel_size_nm == pytest.approx(5.83) and m.dwell_s == pytest.approx(3e-5)
    assert m.beam_kv == pytest.approx(5.0) and m.detector == "TLD" and m.bit_depth == 8
    assert (m.height, m.width) == (96, 128) and m.sha256 == hash_file(path) and m.source == str(path)
    np.testing.assert_array_equal(img.data[1:-1, 1:-1], grey8[1:-1, 1:-1])
    assert (img.data[0] == 255).all()  # the green frame is kept (registration cuts the border)


def test_fei_metadata_wins_over_crop_option(tmp_path, grey8):
    path = write_fei_tiff(tmp_path / "a.tif", grey8, bar_rows=29)
    img = read_sem_image(path, crop_rows=5)
    assert img.data.shape == (96, 128) and img.meta.crop_source == "fei"


@pytest.mark.parametrize(("channel", "frame_value"), [("auto", 255), ("G", 255), ("R", 0), ("B", 0), ("mean", 85)])
def test_rgb_channels_differ_only_on_the_coloured_overlay(tmp_path, grey8, channel, frame_value):
    img = read_sem_image(write_fei_tiff(tmp_path / "a.tif", grey8), channel=channel)
    np.testing.assert_array_equal(img.data[1:-1, 1:-1], grey8[1:-1, 1:-1])
    assert (img.data[0, :] == frame_value).all() and img.data.dtype == np.uint8


def test_zeiss_tiff_metadata_units_and_store_rows(tmp_path, grey8):
    path = write_zeiss_tiff(tmp_path / "z.tif", grey8, bar_rows=20, pixel="558.2 pm", dwell="3.2 µs", eht="3.00 kV")
    img = read_sem_image(path)
    m = img.meta
    assert (m.vendor, m.crop_rows, m.crop_source, m.detector) == ("zeiss", 20, "zeiss", "InLens")
    assert m.pixel_size_nm == pytest.approx(0.5582) and m.dwell_s == pytest.approx(3.2e-6)
    assert m.beam_kv == pytest.approx(3.0)
    np.testing.assert_array_equal(img.data, grey8)


def test_plain_16bit_tiff_kept_whole_and_exact(tmp_path):
    data = np.random.default_rng(2).integers(1000, 60000, (64, 80), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", data)
    img = read_sem_image(tmp_path / "p.tif")
    assert img.data.dtype == np.uint16 and img.meta.bit_depth == 16 and img.meta.vendor == "plain"
    assert img.meta.crop_source == "none" and img.meta.pixel_size_nm is None
    np.testing.assert_array_equal(img.data, data)


def test_plain_tiff_data_bar_detected_or_cropped_by_option(tmp_path, grey8):
    tifffile.imwrite(tmp_path / "p.tif", add_data_bar(grey8, 24))
    detected = read_sem_image(tmp_path / "p.tif")
    assert (detected.meta.crop_rows, detected.meta.crop_source) == (24, "detected")
    np.testing.assert_array_equal(detected.data, grey8)
    forced = read_sem_image(tmp_path / "p.tif", crop_rows=30)
    assert forced.data.shape == (96 + 24 - 30, 128) and forced.meta.crop_source == "option"


def test_png_8_and_16_bit(tmp_path, grey8):
    img8 = read_sem_image(write_png(tmp_path / "a.png", grey8))
    assert img8.meta.vendor == "png" and img8.meta.bit_depth == 8
    np.testing.assert_array_equal(img8.data, grey8)
    data16 = grey8.astype(np.uint16) * 257
    img16 = read_sem_image(write_png(tmp_path / "b.png", data16))
    assert img16.data.dtype == np.uint16 and img16.meta.bit_depth == 16
    np.testing.assert_array_equal(img16.data, data16)


def test_palette_png_becomes_grey_values_not_indices(tmp_path, grey8):
    from PIL import Image

    Image.fromarray(grey8).convert("P").save(tmp_path / "p.png")  # "L" -> "P" keeps the grey levels
    img = read_sem_image(tmp_path / "p.png")
    assert img.meta.channel == "G"
    np.testing.assert_array_equal(img.data, grey8)


def test_float32_tiff_ok_but_nan_and_inf_rejected(tmp_path):
    data = np.random.default_rng(3).random((40, 50)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", data)
    np.testing.assert_array_equal(read_sem_image(tmp_path / "f.tif").data, data)
    for name, bad in (("nan.tif", np.nan), ("inf.tif", np.inf)):
        broken = data.copy()
        broken[5, 7] = bad
        tifffile.imwrite(tmp_path / name, broken)
        with pytest.raises(SemReadError, match=name) as err:
            read_sem_image(tmp_path / name)
        assert "NaN/Inf" in str(err.value)


@pytest.mark.parametrize("kind", ["truncated_tif", "truncated_png", "text_as_tif", "missing"])
def test_unreadable_files_raise_naming_the_file_with_cause(tmp_path, grey8, kind):
    if kind == "truncated_tif":
        path = write_fei_tiff(tmp_path / "t.tif", grey8)
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "truncated_png":
        path = write_png(tmp_path / "t.png", grey8)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "text_as_tif":
        path = tmp_path / "t.tif"
        path.write_text("not an image")
    else:
        path = tmp_path / "nope.tif"
    with pytest.raises(SemReadError) as err:
        read_sem_image(path)
    assert str(path) in str(err.value) and err.value.path == str(path)
    assert err.value.__cause__ is not None


def test_stack_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 32, 32), np.uint8), photometric="minisblack")
    with pytest.raises(SemReadError, match=r"s\.tif.*stack"):
        read_sem_image(tmp_path / "s.tif")


def test_bad_options_rejected(tmp_path, grey8):
    path = write_png(tmp_path / "a.png", grey8)
    with pytest.raises(ValueError, match="channel"):
        read_sem_image(path, channel="red")
    with pytest.raises(ValueError, match="crop_rows"):
        read_sem_image(path, crop_rows=-1)
    with pytest.raises(SemReadError, match="leaves no image"):
        read_sem_image(path, crop_rows=96)


def test_detect_data_bar_leaves_dark_bright_and_tall_blocks_alone(grey8):
    assert detect_data_bar(grey8) == 0
    assert detect_data_bar(np.full((64, 64), 12, np.uint8)) == 0  # dark but not black: an image, not a bar
    assert detect_data_bar(add_data_bar(grey8, 3)) == 0  # shorter than min_rows
    assert detect_data_bar(add_data_bar(grey8, 60)) == 0  # taller than a third of the image
    assert detect_data_bar(add_data_bar(grey8, 10)) == 10
    assert detect_data_bar(add_data_bar(grey8.astype(np.float32) / 255, 10)) == 10


@pytest.mark.shared_data
def test_real_fei_file(tin_balls_dir):
    path = tin_balls_dir / "time" / "low" / "100ns_001.tif"
    img = read_sem_image(path)
    assert img.data.shape == (442, 512) and img.data.dtype == np.uint8
    assert img.meta.pixel_size_nm == pytest.approx(5.83, abs=0.01) and img.meta.beam_kv == pytest.approx(10)
    assert (img.meta.crop_rows, img.meta.detector, img.meta.dwell_s) == (29, "ETD", pytest.approx(1e-7))
    rgb = tifffile.imread(path)[:442]
    inner = rgb[1:-1, 1:-1]
    assert (inner[..., 0] == inner[..., 1]).all() and (inner[..., 2] == inner[..., 1]).all()
    # without metadata the detector finds the 29-row bar plus the frame's bottom row (pure 255 in G)
    assert detect_data_bar(tifffile.imread(path)[..., 1]) == 30
