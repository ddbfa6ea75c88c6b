"""The pure library stays pure: sem_core imports neither prefect nor dvc."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sem_core_source_never_imports_orchestration():
    offenders = []
    for path in (ROOT / "sem_core").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in {"prefect", "dvc", "prefect_dask"}]
    assert offenders == []


def test_importing_sem_core_loads_no_orchestration_module():
    code = (
        "import sys, pkgutil, importlib, sem_core\n"
        "for m in pkgutil.walk_packages(sem_core.__path__, 'sem_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in {'prefect', 'dvc', 'prefect_dask'})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
