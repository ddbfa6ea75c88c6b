"""Builders of small synthetic SEM files (FEI-like, Zeiss-like, plain TIFF, PNG) for the ingest tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

FEI_TAG = 34682  # FEI_HELIOS: INI-style text parsed by tifffile into TiffFile.fei_metadata
ZEISS_TAG = 34118  # CZ_SEM: "KEY\r\nName = value unit" lines parsed into TiffFile.sem_metadata


def make_specimen(shape: tuple[int, int], rng: np.random.Generator, *, sigma: float = 2.5) -> np.ndarray:
    """(H, W) float64 texture in [0, 1]: smoothed noise plus a few bright discs (registrable everywhere)."""
    tex = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    tex = (tex - tex.min()) / (np.ptp(tex) + 1e-12)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for _ in range(6):
        r0, c0, rad = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(4, 10)
        tex = np.where((rr - r0) ** 2 + (cc - c0) ** 2 < rad**2, 0.5 + 0.5 * tex, 0.6 * tex)
    return tex


def to_uint8(image: np.ndarray, lo: int = 20, hi: int = 220) -> np.ndarray:
    """Map [0, 1] floats to uint8 levels in [lo, hi] (no saturation, so no false data bar)."""
    return np.rint(lo + (hi - lo) * np.clip(image, 0, 1)).astype(np.uint8)


def add_data_bar(grey: np.ndarray, rows: int) -> np.ndarray:
    """Append a data bar of ``rows`` rows: a white separator, black band, white 'text' blocks."""
    hi = np.iinfo(grey.dtype).max if np.issubdtype(grey.dtype, np.integer) else 1.0
    bar = np.zeros((rows, grey.shape[1]), grey.dtype)
    bar[0] = hi
    bar[3 : rows - 2, 10:40] = hi
    bar[4 : rows - 3, 60:62] = hi
    return np.vstack([grey, bar])


def fei_text(*, image_rows: int, width: int, pixel_m: float = 5.83e-9, dwell_s: float = 1e-7,
             hv_v: float = 10000, detector: str = "ETD") -> str:
    return (
        "[User]\r\nDate=08/09/2021\r\n[Beam]\r\nHV={hv}\r\nSpot=3\r\n[Scan]\r\nDwelltime={dw}\r\n"
        "PixelWidth={px}\r\nPixelHeight={px}\r\n[Image]\r\nResolutionX={w}\r\nResolutionY={h}\r\n"
        "[Detectors]\r\nNumber=1\r\nName={det}\r\nMode=SE\r\n[PrivateFei]\r\nDatabarHeight=29\r\n"
    ).format(hv=hv_v, dw=dwell_s, px=pixel_m, w=width, h=image_rows, det=detector)


def write_fei_tiff(path: Path, grey: np.ndarray, *, bar_rows: int = 29, frame: bool = True, **meta) -> Path:
    """FEI-like 8-bit RGB TIFF: ``grey`` (H, W) with a 1-px (0, 255, 0) frame, a data bar, FEI metadata."""
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if frame:
        for sl in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
            rgb[sl] = (0, 255, 0)
    full = np.concatenate([rgb, np.repeat(add_data_bar(grey[:1] * 0, bar_rows)[1:, :, None], 3, axis=2)])
    text = fei_text(image_rows=grey.shape[0], width=grey.shape[1], **meta)
    tifffile.imwrite(path, full, photometric="rgb", extratags=[(FEI_TAG, "s", 0, text, True)])
    return path


def write_zeiss_tiff(path: Path, grey: np.ndarray, *, bar_rows: int = 20, pixel: str = "5.83 nm",
                     dwell: str = "100 ns", eht: str = "10.00 kV", detector: str = "InLens") -> Path:
    """Zeiss-like grey TIFF with a data bar and a CZ_SEM tag (``DP_IMAGE_STORE`` gives the image rows)."""
    h, w = grey.shape
    text = "\r\n".join([
        "0", "AP_IMAGE_PIXEL_SIZE", f"Image Pixel Size = {pixel}", "AP_DWELL_TIME", f"Dwell Time = {dwell}",
        "AP_ACTUALKV", f"EHT = {eht}", "DP_DETECTOR_CHANNEL", f"Signal A = {detector}",
        "DP_IMAGE_STORE", f"Store resolution = {w} * {h}", "",
    ])
    raw = text.encode("latin-1")  # SmartSEM writes 8-bit text ("µ" as 0xB5); tifffile's "s" needs ASCII str
    tifffile.imwrite(path, add_data_bar(grey, bar_rows), extratags=[(ZEISS_TAG, "s", 0, raw, True)])
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    """Grey 8- or 16-bit PNG (Pillow), or RGB when ``image`` is (H, W, 3)."""
    Image.fromarray(image).save(path)
    return path


def make_balls(shape: tuple[int, int], rng: np.random.Generator, *, n: int = 60, blur: float = 1.5) -> np.ndarray:
    """(H, W) float64 Tin-balls-like specimen: bright discs (0.8) on a dark background (0.15), blurred."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 0.15)
    for _ in range(n):
        r0, c0, rad = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 10)
        img[(rr - r0) ** 2 + (cc - c0) ** 2 < rad**2] = 0.8
    return ndimage.gaussian_filter(img, blur)


def shifted_pair(shape: tuple[int, int], shift: tuple[float, float], rng: np.random.Generator,
                 pad: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(reference, moving) noise-free balls with ``moving[r, c] = reference[r + dy, c + dx]`` (exact Fourier shift).

    So ``apply_shift(moving, (dy, dx))[r, c] = moving[r - dy, c - dx] = reference[r, c]``: the true answer of
    ``estimate_shift(reference, moving)`` is ``shift``.
    """
    big = make_balls((shape[0] + 2 * pad, shape[1] + 2 * pad), rng)
    moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(big), (-shift[0], -shift[1]))).real
    crop = np.s_[pad : pad + shape[0], pad : pad + shape[1]]
    return big[crop], moved[crop]


def draw_frame(image: np.ndarray, value: float) -> np.ndarray:
    """Copy of ``image`` with its 1-px border set to ``value`` (the microscope's overlay frame)."""
    out = image.copy()
    out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = value
    return out
