"""Pair discovery: list the image files of the noisy and clean folders and match them by key or order."""

from __future__ import annotations

import re
from pathlib import Path

from .records import IMAGE_SUFFIXES, BadItem, IngestError, PairListing

__all__ = ["find_pairs"]


def _natural_key(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def _list_images(folder: Path, bad: list[BadItem]) -> list[Path]:
    if not folder.is_dir():
        raise IngestError(f"image folder {folder} does not exist or is not a folder")
    files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: _natural_key(p.name))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    bad += [BadItem(str(p), f"unsupported file type {p.suffix!r} (expected {sorted(IMAGE_SUFFIXES)})")
            for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not images:
        raise IngestError(f"image folder {folder} is empty: no {sorted(IMAGE_SUFFIXES)} files "
                          f"({len(files)} other files)")
    return images


def _keyed(files: list[Path], regex: re.Pattern | None, bad: list[BadItem]) -> dict[str, Path]:
    by_key: dict[str, list[Path]] = {}
    for p in files:
        if regex is None:
            key = p.stem
        else:
            matches = list(regex.finditer(p.stem))
            if not matches:
                bad.append(BadItem(str(p), f"file stem does not match pair pattern {regex.pattern!r}"))
                continue
            last = matches[-1]
            key = last.group(1) if regex.groups else last.group(0)
        by_key.setdefault(key, []).append(p)
    out = {}
    for key, paths in by_key.items():
        if len(paths) > 1:
            bad += [BadItem(str(p), f"duplicate pair key {key!r} shared by {[q.name for q in paths]}") for p in paths]
        else:
            out[key] = paths[0]
    return out


def find_pairs(
    noisy_dir: str | Path, clean_dir: str | Path, *, pattern: str | None = r"(\d+)", mode: str = "pattern"
) -> PairListing:
    """Match noisy and clean image files.

    Parameters
    ----------
    noisy_dir, clean_dir : str or Path
        Folders of ``.tif``/``.tiff``/``.png`` files (hidden files are ignored, other files are bad items).
    pattern : str or None
        ``mode="pattern"``: a regex searched in each file stem; the key is group 1 (or the whole match) of its
        LAST match, so ``(\\d+)`` maps ``100ns_001`` and ``30us_001`` to ``"001"``. None: the stem is the key.
    mode : {"pattern", "sorted"}
        ``"sorted"``: pair files in natural-sorted order; the pair id is the noisy stem.

    Raises
    ------
    IngestError
        A folder is missing or has no image file, or ``mode``/``pattern`` is invalid.
    """
    bad: list[BadItem] = []
    noisy = _list_images(Path(noisy_dir), bad)
    clean = _list_images(Path(clean_dir), bad)
    if mode == "sorted":
        pairs = [(n.stem, n, c) for n, c in zip(noisy, clean)]
        bad += [BadItem(str(p), "no partner: the other folder has fewer files (sorted pairing)")
                for p in noisy[len(clean):] + clean[len(noisy):]]
        return PairListing(pairs, bad)
    if mode != "pattern":
        raise IngestError(f"pair mode must be 'pattern' or 'sorted', got {mode!r}")
    try:
        regex = None if pattern is None else re.compile(pattern)
    except re.error as exc:
        raise IngestError(f"pair pattern {pattern!r} is not a valid regex: {exc}") from exc
    by_noisy, by_clean = _keyed(noisy, regex, bad), _keyed(clean, regex, bad)
    keys = sorted(set(by_noisy) & set(by_clean), key=_natural_key)
    for mine, other, folder in ((by_noisy, by_clean, clean_dir), (by_clean, by_noisy, noisy_dir)):
        bad += [BadItem(str(p), f"no partner with key {k!r} in {folder}") for k, p in mine.items() if k not in other]
    return PairListing([(k, by_noisy[k], by_clean[k]) for k in keys], bad)
