"""Content-addressed cache keys for Prefect tasks.

Prefect's default ``INPUTS`` policy hashes an argument's *Python value*: a path by its
string, a ``zarr.Array`` by its store path and metadata. A file or store rewritten in place
would then hit a stale cache. :func:`content_cache_key` instead keys a task on

* the **content** of the arguments named in ``inputs`` (files and folders, a Zarr store being
  a folder of chunk files plus metadata; ``zarr.Array``/``zarr.Group`` values are hashed
  through their store folder), via :func:`sem_core.provenance.hash_tree`;
* the **values** of every other argument (canonical JSON; paths as strings);
* the task's **source code**, plus the source files of the ``sem_core`` modules named in
  ``code`` (so a change in the library function a thin task calls invalidates it too).

Outputs: when a task names its ``outputs`` arguments and one of those paths is missing (the
user deleted a stage output), the stored record for the key is dropped so the task runs
again instead of returning a path to nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sem_core.provenance import hash_file, hash_params, hash_tree

__all__ = ["content_cache_key", "hash_content", "hash_modules", "hash_task_source"]

KeyFn = Callable[[Any, dict[str, Any]], str]


def _store_path(value: Any) -> Path | None:
    """The local folder behind a ``zarr.Array``/``zarr.Group``, else ``None``."""
    store = getattr(value, "store", None)
    root = getattr(store, "root", None)
    if root is None:
        return None
    base = Path(str(root))
    sub = getattr(value, "path", "") or ""
    return base / sub if sub else base


def hash_content(value: Any) -> str:
    """Content hash of a file, folder, list of paths or Zarr array/group.

    Parameters
    ----------
    value : str, Path, zarr.Array, zarr.Group or iterable of those
        What to hash. Folders (Zarr stores) are walked: every file's relative name and bytes.

    Raises
    ------
    FileNotFoundError
        A path does not exist (named in the message).
    TypeError
        ``value`` is not path-like.
    """
    store = _store_path(value)
    if store is not None:
        return hash_tree([store])
    if isinstance(value, (str, Path)):
        path = Path(value)
        return hash_file(path) if path.is_file() else hash_tree([path])
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        return hashlib.sha256("".join(hash_content(v) for v in value).encode()).hexdigest()
    raise TypeError(f"cannot content-hash a {type(value).__name__}: expected a path, list of paths or zarr store")


@lru_cache(maxsize=256)
def _module_file_hash(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"cannot hash the code of module {name!r}: not importable")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":  # a package: every .py file under it
        return hash_tree(sorted(origin.parent.rglob("*.py")))
    return hash_file(origin)


def hash_modules(names: Iterable[str]) -> str:
    """Hash of the source files of modules/packages ``names`` (without importing them)."""
    return hash_params({name: _module_file_hash(name) for name in sorted(names)})


def hash_task_source(task: Any) -> str:
    """Hash of a task's function source (falls back to its bytecode when the source is unavailable)."""
    fn = getattr(task, "fn", task)
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        text = fn.__code__.co_code.hex()
    return hashlib.sha256(text.encode()).hexdigest()


def _hash_value(name: str, value: Any) -> str:
    """Hash an argument by value: canonical JSON, or a callable by its qualified name and source."""
    try:
        return hash_params(value)
    except TypeError as exc:
        if callable(value):
            qualname = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
            return hash_params({"callable": qualname, "source": hash_task_source(value)})
        raise TypeError(f"cannot hash argument {name!r} ({type(value).__name__}) for the cache key; "
                        "pass it in `inputs` (paths) or `ignore`") from exc


def _as_paths(value: Any) -> list[Path]:
    """``None`` -> [], a path -> [path], a list of paths -> the list."""
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def _drop_stale_record(context: Any, key: str) -> None:
    """Delete a persisted record for ``key`` from the result store, local or remote (outputs vanished)."""
    store = getattr(context, "result_store", None)
    for storage in (getattr(store, "result_storage", None), getattr(store, "metadata_storage", None)):
        basepath = getattr(storage, "basepath", None)
        if not basepath:
            continue
        if "://" in str(basepath):  # RemoteFileSystem (s3://…): its fsspec file system
            fs = storage.filesystem
            path = f"{str(basepath).rstrip('/')}/{key}"
            if fs.exists(path):
                fs.rm(path)
        else:
            Path(basepath, key).expanduser().unlink(missing_ok=True)


def content_cache_key(
    *,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    code: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> KeyFn:
    """Build a Prefect ``cache_key_fn`` keyed on input content, parameter values and code.

    Parameters
    ----------
    inputs : iterable of str
        Names of task arguments holding files/folders/Zarr stores whose *content* is keyed.
    outputs : iterable of str
        Names of arguments that are output paths (or lists of them): keyed by value; if any is missing on disk the
        cached record is dropped and the task recomputes.
    code : iterable of str
        Module names (e.g. ``"sem_core.denoise"``) whose source files are part of the key.
    ignore : iterable of str
        Arguments left out of the key (e.g. a logger or a worker count that does not change results).

    Returns
    -------
    callable
        ``(TaskRunContext, parameters) -> str``, for ``@task(cache_key_fn=...)``.
    """
    inputs, outputs, code, ignore = frozenset(inputs), tuple(outputs), tuple(code), frozenset(ignore)

    def cache_key(context: Any, parameters: dict[str, Any]) -> str:
        parts: dict[str, Any] = {"task": getattr(context.task, "task_key", getattr(context.task, "name", ""))}
        parts["source"] = hash_task_source(context.task)
        if code:
            parts["code"] = hash_modules(code)
        for name, value in sorted(parameters.items()):
            if name in ignore:
                continue
            if name in inputs:
                try:
                    parts[f"content:{name}"] = hash_content(value)
                except FileNotFoundError as exc:
                    raise FileNotFoundError(f"input {name!r} of task {parts['task']}: {exc}") from exc
            else:
                parts[f"value:{name}"] = _hash_value(name, value)
        key = hash_params(parts)
        if any(not Path(p).exists() for name in outputs for p in _as_paths(parameters.get(name))):
            _drop_stale_record(context, key)
        return key

    return cache_key
