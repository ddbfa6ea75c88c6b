"""The cache key of a stage, the same for the Prefect route and the ``dvc repro`` route.

A key is the SHA-256 of a canonical JSON record of

* the stage's definition in the table (name, command, call arguments, output paths),
* the values of the config sections it reads (after the profile is applied),
* the content hashes of its data dependencies,
* the content hashes of the source files of its code (:attr:`Stage.code`).

Nothing else: a change in a config section or module the stage does not read leaves its key alone.
DVC keys the same things with its own hashes (``deps``/``params`` in ``dvc.yaml``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sem_core.provenance import hash_file, hash_params, hash_tree

from .stages import Stage
from .trace import REPO_ROOT

__all__ = ["section_values", "data_digests", "code_digests", "code_version_of", "stage_key", "hash_path"]


def hash_path(path: str | Path) -> str:
    """Content hash of a file, or of a folder (every file's relative name and bytes)."""
    path = Path(path)
    return hash_file(path) if path.is_file() else hash_tree([path])


def section_values(config: Mapping[str, Any], sections: Iterable[str]) -> dict[str, Any]:
    """``{"denoise.nlm": {...}, "seed": 1}``: the value under each dotted key of a JSON-ready config dump.

    Raises
    ------
    KeyError
        A dotted key does not exist in ``config``.
    """
    out = {}
    for dotted in sections:
        node: Any = config
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(f"config has no section {dotted!r}")
            node = node[part]
        out[dotted] = node
    return out


def data_digests(paths: Iterable[Path]) -> dict[str, str]:
    """``{posix path: content hash}`` of data dependencies (named FileNotFoundError when one is missing)."""
    out = {}
    for p in paths:
        try:
            out[Path(p).as_posix()] = hash_path(p)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"stage input {p} does not exist: {exc}") from exc
    return out


def code_digests(files: Iterable[Path], root: Path = REPO_ROOT) -> dict[str, str]:
    """``{relative posix path: sha256}`` of source files."""
    return {Path(f).as_posix(): hash_file(root / f) for f in files}


def code_version_of(code: Mapping[str, str]) -> str:
    """The code version recorded in a stage's outputs: a hash of its code's sources (not of the git state)."""
    return f"src-{hash_params(dict(code))[:16]}"


def stage_key(stage: Stage, config: Mapping[str, Any], *, data: Mapping[str, str] | None = None,
              code: Mapping[str, str] | None = None) -> str:
    """The cache key of ``stage`` under ``config`` (a ``Params.model_dump(mode="json")``).

    Parameters
    ----------
    stage : Stage
    config : mapping
        The JSON-ready config (profile applied).
    data, code : mapping, optional
        Precomputed :func:`data_digests` / :func:`code_digests` (default: computed now).
    """
    record = {
        "stage": stage.name,
        "command": stage.command,
        "call": dict(stage.call),
        "params_kw": stage.params_kw,
        "outputs": [p.as_posix() for p in stage.all_outputs],
        "sections": section_values(config, stage.sections),
        "data": dict(data) if data is not None else data_digests(stage.deps),
        "code": dict(code) if code is not None else code_digests(stage.code),
    }
    return hash_params(record)
