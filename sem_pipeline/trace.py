"""The code a stage runs: the project modules its command imports, found by tracing ``import`` statements.

A stage's cache key and its ``dvc.yaml`` code dependencies are the source files of every project
module its command module imports, directly or through other project modules, including imports
inside functions (the CLI commands import their library code lazily). Importing ``a.b.c`` also runs
``a/__init__.py`` and ``a/b/__init__.py``, so those count too. Third-party and standard-library
modules are not followed (their versions are pinned by the lock file).

The tracing is static (the AST of each file), so it needs no import of torch, Prefect or DVC and
takes a few milliseconds.
"""

from __future__ import annotations

import ast
import threading
from functools import lru_cache
from pathlib import Path

__all__ = ["PROJECT_PACKAGES", "REPO_ROOT", "module_file", "trace_imports", "traced_files"]

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("sem_core", "sem_cli", "sem_pipeline", "tasks", "flows")
"""Top-level packages whose modules are followed (and keyed)."""


def module_file(name: str, root: Path = REPO_ROOT) -> Path | None:
    """The source file of project module ``name`` (``pkg/__init__.py`` for a package), else ``None``."""
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported_names(path: Path, module: str) -> set[str]:
    """Absolute names of the modules an ``import``/``from ... import`` anywhere in ``path`` may load."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


_LOCK = threading.Lock()  # ast.parse is not safe in concurrent threads on CPython 3.11 (stage keys run in parallel)


def _trace(module: str, root: Path) -> frozenset[str]:
    with _LOCK:
        return _trace_locked(module, root)


@lru_cache(maxsize=64)
def _trace_locked(module: str, root: Path) -> frozenset[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            continue  # third party, standard library, or a name imported from a module (not a module)
        seen.add(name)
        todo.extend(_parents(name))
        todo.extend(_imported_names(path, name))
    return frozenset(seen)


def trace_imports(module: str, root: Path = REPO_ROOT) -> list[str]:
    """Sorted names of the project modules that importing ``module`` runs (``module`` itself included).

    Raises
    ------
    ModuleNotFoundError
        ``module`` is not a project module under ``root``.
    """
    if module_file(module, root) is None:
        raise ModuleNotFoundError(f"{module!r} is not a module of {PROJECT_PACKAGES} under {root}")
    return sorted(_trace(module, Path(root)))


def traced_files(module: str, root: Path = REPO_ROOT) -> list[Path]:
    """Source files of :func:`trace_imports` relative to ``root``, sorted (POSIX order)."""
    files = {module_file(name, root).relative_to(root) for name in trace_imports(module, root)}
    return sorted(files, key=lambda p: p.as_posix())
