"""Read one SEM image (FEI/Thermo TIFF, Zeiss TIFF, plain TIFF, PNG) as a grey (H, W) array plus metadata.

Data-bar removal, in this order of precedence:

1. FEI/Thermo files: keep the top ``Image/ResolutionY`` rows of the FEI metadata block.
2. Zeiss files: keep the top rows given by ``dp_image_store`` (``"W * H"``) when H is smaller than the file.
3. Otherwise the caller's ``crop_rows`` (number of rows cut off the *bottom*).
4. Otherwise :func:`detect_data_bar` (a bottom block of near-black/near-white rows); nothing detected: keep all.

Metadata wins over ``crop_rows`` because it is authoritative for its own file; ``crop_rows`` is for files
without such metadata. ``SemMetadata.crop_rows`` / ``crop_source`` record what was done.

Colour: ``channel="auto"`` takes G of an RGB(A) image. SEM software draws overlays (frames, markers, scale
bars) in saturated colours that differ between channels, while the grey signal is equal in R, G and B; on the
Tin-balls FEI files R, G, B differ only on the 1-px frame (drawn (0, 255, 0)), so G equals the grey image
everywhere inside it. ``"mean"`` averages the channels and rounds back to the native dtype.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from sem_core.provenance import hash_file

__all__ = ["SemImage", "SemMetadata", "SemReadError", "read_sem_image", "detect_data_bar", "CHANNELS"]

CHANNELS = ("auto", "R", "G", "B", "mean")
_NATIVE = (np.uint8, np.uint16, np.float32)


class SemReadError(ValueError):
    """A file cannot be read as one grey SEM image; the message names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class SemMetadata:
    """What is known about one image; fields are None when the file does not say."""

    source: str
    sha256: str
    vendor: str  # "fei" | "zeiss" | "plain" | "png"
    height: int  # after the data bar is removed
    width: int
    bit_depth: int  # bits per sample stored in the file (8, 16, 32)
    pixel_size_nm: float | None = None
    dwell_s: float | None = None
    beam_kv: float | None = None
    detector: str | None = None
    raw_height: int | None = None  # rows in the file, data bar included
    crop_rows: int = 0  # rows removed from the bottom
    crop_source: str = "none"  # "fei" | "zeiss" | "option" | "detected" | "none"
    channel: str = "grey"  # channel taken: "grey", "R", "G", "B" or "mean"


@dataclass(frozen=True)
class SemImage:
    """One grey SEM image: ``data`` (H, W) uint8/uint16/float32 and its :class:`SemMetadata`."""

    data: np.ndarray
    meta: SemMetadata


# Zeiss unit factors; units are compared lower-case with the micro sign written "u".
_UNIT_NM = {"pm": 1e-3, "nm": 1.0, "um": 1e3, "mm": 1e6, "m": 1e9}
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_UNIT_KV = {"kv": 1.0, "v": 1e-3}


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _section(meta: dict, *names: str) -> dict:
    for name in names:
        if isinstance(meta.get(name), dict):
            return meta[name]
    return {}


def _parse_fei(meta: dict) -> dict[str, Any]:
    scan = _section(meta, "Scan", "EScan")
    px = _num(scan.get("PixelWidth"))
    dwell = _num(scan.get("Dwelltime", scan.get("Dwell")))
    hv = _num(_section(meta, "Beam", "EBeam").get("HV"))
    det = _section(meta, "Detectors").get("Name") or _section(meta, "Detector").get("Name")
    rows = _num(_section(meta, "Image").get("ResolutionY"))
    return {
        "pixel_size_nm": px * 1e9 if px else None,
        "dwell_s": dwell,
        "beam_kv": hv / 1000.0 if hv else None,
        "detector": str(det) if det not in (None, "") else None,
        "image_rows": int(rows) if rows else None,
    }


def _zeiss_value(meta: dict, key: str, units: dict[str, float]) -> float | None:
    entry = meta.get(key)
    if not isinstance(entry, tuple) or len(entry) < 2:
        return None
    value, unit = entry[1], (entry[2] if len(entry) > 2 else "")
    if isinstance(value, str):  # "100 ns" not split by tifffile
        match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*(\S*)\s*", value)
        if not match:
            return None
        value, unit = match.group(1), match.group(2)
    number = _num(value)
    factor = units.get(str(unit).strip().replace("µ", "u").replace("μ", "u").lower())
    return None if number is None or factor is None else number * factor


def _parse_zeiss(meta: dict) -> dict[str, Any]:
    store = meta.get("dp_image_store")
    rows = None
    if isinstance(store, tuple) and len(store) > 1:
        match = re.fullmatch(r"\s*(\d+)\s*\*\s*(\d+)\s*", str(store[1]))
        rows = int(match.group(2)) if match else None
    det = meta.get("dp_detector_channel") or meta.get("dp_detector_type")
    return {
        "pixel_size_nm": _zeiss_value(meta, "ap_image_pixel_size", _UNIT_NM)
        or _zeiss_value(meta, "ap_pixel_size", _UNIT_NM),
        "dwell_s": _zeiss_value(meta, "ap_dwell_time", _UNIT_S) or _zeiss_value(meta, "dp_dwell_time", _UNIT_S),
        "beam_kv": _zeiss_value(meta, "ap_actualkv", _UNIT_KV) or _zeiss_value(meta, "ap_manualkv", _UNIT_KV),
        "detector": str(det[1]) if isinstance(det, tuple) and len(det) > 1 else None,
        "image_rows": rows,
    }


def detect_data_bar(image: np.ndarray, *, extreme_frac: float = 0.9, min_rows: int = 4,
                    max_frac: float = 1 / 3) -> int:
    """Rows of a data bar at the bottom of ``image`` (0 when none is found).

    A data bar row is one where at least ``extreme_frac`` of the pixels lie within 2 % of the dtype's range
    (or, for float images, of the image's range) from black or white: text on a flat black/white band. The
    bar is the longest run of such rows ending at the last row; it counts only when it has at least
    ``min_rows`` rows and at most ``max_frac`` of the image height, so a dark or bright image stays whole.

    Parameters
    ----------
    image : np.ndarray
        (H, W) grey image, any real dtype.
    """
    img = np.asarray(image)
    if img.ndim != 2 or img.shape[0] < 2:
        return 0
    if np.issubdtype(img.dtype, np.integer):
        lo, hi = float(np.iinfo(img.dtype).min), float(np.iinfo(img.dtype).max)
    else:
        lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    if hi <= lo:
        return 0
    tol = 0.02 * (hi - lo)
    x = img.astype(np.float64)
    extreme = ((x <= lo + tol) | (x >= hi - tol)).mean(axis=1) >= extreme_frac
    run = 0
    for flag in extreme[::-1]:
        if not flag:
            break
        run += 1
    if run < min_rows or run > max_frac * img.shape[0]:
        return 0
    return run


def _read_raw(path: Path) -> tuple[np.ndarray, str, dict[str, Any], bool]:
    """Return (array, vendor, parsed metadata, is_rgb)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA", "1", "LA"):  # palette / bilevel / grey+alpha: to plain grey or RGB
                im = im.convert("RGB" if im.mode.startswith("P") else "L")
            arr = np.asarray(im)
            rgb = im.mode in ("RGB", "RGBA")
            if im.mode == "I" and arr.min(initial=0) >= 0 and arr.max(initial=0) < 65536:
                arr = arr.astype(np.uint16)  # Pillow widens some 16-bit PNGs to int32
        return arr, "png", {}, rgb
    with tifffile.TiffFile(path) as tif:
        arr = tif.asarray()
        page = tif.pages.first
        rgb = page.photometric == tifffile.PHOTOMETRIC.RGB
        if tif.is_fei:
            return arr, "fei", _parse_fei(tif.fei_metadata or {}), rgb
        if tif.is_sem:
            return arr, "zeiss", _parse_zeiss(tif.sem_metadata or {}), rgb
        return arr, "plain", {}, rgb


def _select_channel(arr: np.ndarray, is_rgb: bool, channel: str) -> tuple[np.ndarray, str]:
    if arr.ndim == 2:
        return arr, "grey"
    if not (is_rgb and arr.ndim == 3 and arr.shape[-1] in (3, 4)):
        raise ValueError(f"expected one 2-D image, got an array of shape {arr.shape} (a stack or multi-sample image)")
    if channel == "mean":
        mean = arr[..., :3].astype(np.float64).mean(axis=-1)
        if np.issubdtype(arr.dtype, np.integer):
            mean = np.rint(mean)
        return mean.astype(arr.dtype), "mean"
    name = "G" if channel == "auto" else channel
    return np.ascontiguousarray(arr[..., "RGB".index(name)]), name


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's logger while reading a file (its failures become a SemReadError naming the file)."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_sem_image(path: str | Path, *, crop_rows: int | None = None, channel: str = "auto") -> SemImage:
    """Read one SEM image file as a grey image without its data bar.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff`` (FEI/Thermo, Zeiss or plain) or ``.png`` file.
    crop_rows : int, optional
        Rows to cut off the bottom when the file has no data-bar metadata (see the module docstring).
    channel : {"auto", "R", "G", "B", "mean"}
        How an RGB image becomes grey; ignored for grey images.

    Returns
    -------
    SemImage
        ``data`` (H, W) in the file's dtype (uint8, uint16 or float32; float64 is cast to float32).

    Raises
    ------
    SemReadError
        Missing, truncated or non-image file, a 3-D stack, an unsupported dtype, NaN/Inf values, or a crop
        that leaves no rows; the message names the file and the cause is chained.
    """
    path = Path(path)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if crop_rows is not None and crop_rows < 0:
        raise ValueError(f"crop_rows must be >= 0, got {crop_rows}")
    try:
        sha = hash_file(path)
        with _quiet_tifffile():  # its own warnings would precede (and duplicate) our one-line error
            arr, vendor, meta, is_rgb = _read_raw(path)
    except SemReadError:
        raise
    except Exception as exc:  # tifffile/Pillow raise many types for truncated or foreign files
        raise SemReadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    try:
        grey, used = _select_channel(arr, is_rgb, channel)
    except ValueError as exc:
        raise SemReadError(path, str(exc)) from exc
    if grey.dtype == np.float64:
        grey = grey.astype(np.float32)
    if grey.dtype not in _NATIVE:
        raise SemReadError(path, f"unsupported dtype {grey.dtype} (expected uint8, uint16 or float32)")
    if grey.dtype == np.float32 and not np.isfinite(grey).all():
        raise SemReadError(path, f"{int((~np.isfinite(grey)).sum())} NaN/Inf pixel values")
    raw_h = grey.shape[0]
    image_rows, source = meta.get("image_rows"), "none"
    if image_rows is not None and 0 < image_rows <= raw_h:
        cut, source = raw_h - image_rows, vendor
    elif crop_rows is not None:
        cut, source = crop_rows, "option"
    else:
        cut = detect_data_bar(grey)
        source = "detected" if cut else "none"
    if cut >= raw_h:
        raise SemReadError(path, f"cropping {cut} rows ({source}) leaves no image of {raw_h} rows")
    data = np.ascontiguousarray(grey[: raw_h - cut])
    bit_depth = int(np.dtype(arr.dtype).itemsize * 8)
    info = SemMetadata(
        source=str(path), sha256=sha, vendor=vendor, height=int(data.shape[0]), width=int(data.shape[1]),
        bit_depth=bit_depth, pixel_size_nm=meta.get("pixel_size_nm"), dwell_s=meta.get("dwell_s"),
        beam_kv=meta.get("beam_kv"), detector=meta.get("detector"), raw_height=int(raw_h),
        crop_rows=int(cut), crop_source=source, channel=used,
    )
    return SemImage(data=data, meta=info)
