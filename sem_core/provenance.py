"""Provenance: content hashes, parameter hashes and the code version.

Every output of a stage carries ``{"params_hash", "inputs_hash", "code_version",
"created"}`` in its metadata (Zarr attributes, JSON reports, Parquet metadata).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "hash_array",
    "hash_bytes",
    "hash_file",
    "hash_tree",
    "hash_params",
    "code_version",
    "make_provenance",
]

_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def hash_array(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes.

    Two arrays hash equal iff they have the same dtype, shape and values.
    """
    arr = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def hash_tree(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the relative names and contents of files (folders are walked).

    The result does not depend on the order of ``paths`` or on the folder's
    absolute location.
    """
    entries: list[tuple[str, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                entries.append((f"{p.name}/{f.relative_to(p).as_posix()}", hash_file(f)))
        elif p.is_file():
            entries.append((p.name, hash_file(p)))
        else:
            raise FileNotFoundError(f"cannot hash {p}: no such file or folder")
    h = hashlib.sha256()
    for name, digest in sorted(entries):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return obj.as_posix()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def hash_params(params: Any) -> str:
    """SHA-256 of a canonical JSON dump of ``params`` (pydantic model, mapping or list)."""
    text = json.dumps(_to_jsonable(params), sort_keys=True, separators=(",", ":"))
    return hash_bytes(text.encode())


@lru_cache(maxsize=1)
def code_version() -> str:
    """The code version: ``git describe --always --dirty`` of this checkout, else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )
        described = out.stdout.strip()
        if described:
            return described
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (e.g. an installed wheel): fall back to the package version
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sem-denoise {version('sem-denoise')}"
    except PackageNotFoundError:
        return "unknown"


def make_provenance(*, params: Any, inputs_hash: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance record for an output.

    Parameters
    ----------
    params : pydantic model or mapping
        The parameters the stage read (only those).
    inputs_hash : str
        Content hash of the stage's inputs.
    extra : mapping, optional
        Further JSON-serialisable fields (e.g. ``{"stage": "synth_wafers"}``).
    """
    record = {
        "params_hash": hash_params(params),
        "inputs_hash": inputs_hash,
        "code_version": code_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record.update(_to_jsonable(dict(extra)))
    return record
