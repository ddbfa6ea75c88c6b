"""Provenance: content hashes, parameter hashes and the code version.

Every output of a stage carries ``{"params_hash", "inputs_hash", "code_version"}`` in its
metadata (Zarr attributes, JSON reports, Parquet metadata). Nothing that changes from run to run
(creation time, host, duration, a git "dirty" flag) goes into an output: the same inputs,
parameters and code give byte-identical files. The pipeline writes those facts into a run record
beside the outputs instead (:mod:`sem_pipeline.run`).

The code version is a hash of source files, not of the git state: inside a pipeline stage it is
the hash of the modules that stage imports (set by the stage runner with
:func:`use_code_version`); elsewhere the hash of the project's packages.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
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
    "use_code_version",
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


_CODE_VERSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("sem_code_version", default=None)
_PACKAGES = ("sem_core", "sem_cli", "sem_pipeline", "tasks", "flows")


@lru_cache(maxsize=1)
def _source_version() -> str:
    root = Path(__file__).resolve().parent.parent
    files = sorted(f for pkg in _PACKAGES for f in (root / pkg).rglob("*.py"))
    digest = hash_params({f.relative_to(root).as_posix(): hash_file(f) for f in files})
    return f"src-{digest[:16]}"


def code_version() -> str:
    """The code version recorded in provenance: ``src-<hash of source files>``.

    Inside :func:`use_code_version` (a pipeline stage) it is the value set there, the hash of the
    code that stage runs; otherwise the hash of every ``.py`` file of the project's packages. It
    depends only on file contents, so two clones at different paths, or a tree made "dirty" by the
    pipeline's own outputs, record the same version.
    """
    return _CODE_VERSION.get() or _source_version()


@contextlib.contextmanager
def use_code_version(version: str) -> Iterator[None]:
    """Record ``version`` as the code version of every provenance made in this context (thread/task local)."""
    token = _CODE_VERSION.set(version)
    try:
        yield
    finally:
        _CODE_VERSION.reset(token)


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
    }
    if extra:
        record.update(_to_jsonable(dict(extra)))
    return record
