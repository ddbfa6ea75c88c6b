"""Stage cache keys vs the real stage code (issue 16 item 3).

For every stage of the default table: the modules its command imports are found by an independent
oracle (the standard library's :class:`modulefinder.ModuleFinder`, which scans the bytecode of every
function, so lazy imports inside the CLI commands count); changing the source of any of them changes
the stage's key and changing any other project file does not. Changing any config value under a
section the stage reads changes its key; changing any other value does not. ``dvc.yaml`` lists the
same code files and config keys, so the DVC route invalidates on exactly the same changes.
"""

from __future__ import annotations

import contextlib
import functools
from modulefinder import ModuleFinder
from pathlib import Path

import pytest

import sem_pipeline.keys as keys
from sem_core.config import load_params
from sem_pipeline.dvc_yaml import dvc_stage
from sem_pipeline.stages import build_stages
from sem_pipeline.trace import PROJECT_PACKAGES

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml", profile="default")
STAGES = build_stages(PARAMS)
CONFIG = PARAMS.model_dump(mode="json")
PROJECT_FILES = sorted(p.relative_to(ROOT).as_posix() for pkg in PROJECT_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@functools.lru_cache(maxsize=None)
def _modulefinder_files(module: str) -> frozenset[str]:
    finder = ModuleFinder(path=[str(ROOT)])
    finder.import_hook(module)
    out = set()
    for name, mod in finder.modules.items():
        if name.split(".")[0] in PROJECT_PACKAGES and mod.__file__:
            out.add(Path(mod.__file__).resolve().relative_to(ROOT).as_posix())
    return frozenset(out)


def _fake_data(stage):
    return {p.as_posix(): "data" for p in stage.deps}


def _leaves(node, prefix=()):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, (*prefix, k))
    else:
        yield prefix


@contextlib.contextmanager
def _perturbed(config, path):
    """``config`` with the value at ``path`` changed (in place, restored on exit)."""
    node = config
    for part in path[:-1]:
        node = node[part]
    value = node[path[-1]]
    if isinstance(value, bool):
        node[path[-1]] = not value
    elif isinstance(value, (int, float)):
        node[path[-1]] = value + 1
    elif isinstance(value, str):
        node[path[-1]] = value + "x"
    elif isinstance(value, list):
        node[path[-1]] = [*value, 1]
    else:  # None or an empty mapping
        node[path[-1]] = 1 if value is None else {"x": 1}
    try:
        yield config
    finally:
        node[path[-1]] = value


def _under(path, sections):
    return any(tuple(s.split(".")) == path[: len(s.split("."))] for s in sections)


@pytest.mark.parametrize("name", list(STAGES))
def test_code_a_stage_imports_and_nothing_else_changes_its_key(name, monkeypatch):
    stage = STAGES[name]
    imported = _modulefinder_files(stage.module)
    assert stage.module.replace(".", "/") + ".py" in imported
    assert {p.as_posix() for p in stage.code} == imported  # the table's code deps are the real imports
    dvc_deps = set(dvc_stage(stage)["deps"]) - {p.as_posix() for p in stage.deps}
    assert dvc_deps == imported  # and DVC lists the same files

    changed: set[str] = set()
    monkeypatch.setattr(keys, "hash_file", lambda path: "edited" if Path(path).relative_to(ROOT).as_posix()
                        in changed else "orig:" + Path(path).name)
    data = _fake_data(stage)
    base = keys.stage_key(stage, CONFIG, data=data)
    for f in PROJECT_FILES:
        changed.clear()
        changed.add(f)
        assert (keys.stage_key(stage, CONFIG, data=data) != base) == (f in imported), f


@pytest.mark.parametrize("name", list(STAGES))
def test_config_sections_a_stage_reads_and_nothing_else_change_its_key(name):
    stage = STAGES[name]
    data, code = _fake_data(stage), {p.as_posix(): "code" for p in stage.code}
    base = keys.stage_key(stage, CONFIG, data=data, code=code)
    leaves = list(_leaves(CONFIG))
    assert len(leaves) > 100
    for path in leaves:
        with _perturbed(CONFIG, path) as changed:
            key = keys.stage_key(stage, changed, data=data, code=code)
        assert (key != base) == _under(path, stage.sections), ".".join(path)
    assert dvc_stage(stage)["params"] == ["profile", *stage.sections]


def test_data_dependencies_change_the_key_and_other_files_do_not(tmp_path):
    src = tmp_path / "tin"
    src.mkdir()
    (src / "a.tif").write_bytes(b"1")
    params = load_params(ROOT / "params.yaml", profile="default",
                         overrides={"paths": {"tin_balls_source": str(src)}})
    ingest = build_stages(params)["ingest"]
    config = params.model_dump(mode="json")
    base = keys.stage_key(ingest, config)
    (tmp_path / "unrelated.txt").write_text("x")
    assert keys.stage_key(ingest, config) == base
    (src / "a.tif").write_bytes(b"2")
    assert keys.stage_key(ingest, config) != base
