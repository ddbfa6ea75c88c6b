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


def _config_sections_read(command: str) -> set[str]:
    """Top-level config sections the stage command reads, found in its source (an oracle independent of the table).

    Walks the command function and the module functions it calls (transitively) for attribute reads on the
    names bound to ``read_params(...)``; ``paths`` and the profile machinery are structural, not sections.
    """
    import ast

    from sem_core.config import Params

    fields = set(Params.model_fields) - {"paths", "profile", "profiles", "seed"}
    module, _, fn = command.partition(":")
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    cfg_names = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                 and getattr(n.value.func, "id", None) == "read_params" for t in n.targets if isinstance(t, ast.Name)}
    cfg_names |= {"params"} if module == "sem_cli.noise" else set()
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    todo, seen, read = [fn], set(), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        for node in ast.walk(defs[name]):
            if (isinstance(node, ast.Attribute) and node.attr in fields and isinstance(node.value, ast.Name)
                    and node.value.id in cfg_names):
                read.add(node.attr)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                todo.append(node.func.id)
    return read


def test_table_sections_are_the_sections_each_stage_command_reads():
    """Issue 16.3: a stage whose table entry forgets a section it reads (e.g. synth_wafers without imaging and
    specimen) would keep a stale cache; one listing a section it never reads would rerun for nothing."""
    params = load_params(ROOT / "params.yaml")
    for name, stage in build_stages(params).items():
        table = {s.split(".")[0] for s in stage.sections} - {"seed"}
        assert _config_sections_read(stage.command) == table, name
