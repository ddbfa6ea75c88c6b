"""Byte reproducibility and the shared DVC remote, end to end on the ``tiny`` profile (slow: minutes each).

* Two copies of the code at different paths run the Prefect pipeline (one with ``OMP_NUM_THREADS=1``): every output
  file is byte-identical.
* ``dvc repro`` in one clone, ``dvc push`` to a real S3 store (SeaweedFS started here), ``dvc pull`` in a second fresh
  clone: ``dvc repro`` there reruns no stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIN_BALLS = (ROOT / ".." / "shared" / "data" / "tin_balls").resolve()
pytestmark = pytest.mark.slow


def _env(code: Path, home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(code), PREFECT_HOME=str(home / "prefect-home"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300", DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SEM_PROFILE", None)
    env.update(extra)
    return env


def _copy_code(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    return dst


def _output_hashes(repo: Path, env: dict[str, str]) -> dict[str, str]:
    script = (
        "import json,sys; from pathlib import Path; from sem_core.config import load_params; "
        "from sem_pipeline.stages import build_stages; from sem_pipeline.keys import hash_path; "
        f"p = load_params('params.yaml', profile='tiny', overrides={{'paths': {{'tin_balls_source': '{TIN_BALLS}'}}}}); "
        "real = Path(p.paths.tin_balls_source).is_dir(); out = {}\n"
        "for s in build_stages(p, real_data=real).values():\n"
        "    for o in s.all_outputs:\n"
        "        fs = [f for f in sorted(Path(o).rglob('*')) if f.is_file()] if Path(o).is_dir() else [Path(o)]\n"
        "        out.update({f.as_posix(): hash_path(f) for f in fs})\n"
        "print(json.dumps(out))"
    )
    import json

    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_two_copies_at_different_paths_write_byte_identical_outputs(tmp_path):
    runs = []
    for where, threads in ((tmp_path / "a" / "repo", None), (tmp_path / "b" / "deeper" / "clone", "1")):
        code = _copy_code(where)
        env = _env(code, where.parent, **({"OMP_NUM_THREADS": threads} if threads else {}))
        proc = subprocess.run([sys.executable, "-m", "sem_cli.main", "pipeline", "--profile", "tiny",
                               "--set", f"paths.tin_balls_source={TIN_BALLS}"], cwd=code, env=env,
                              capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs.append(_output_hashes(code, env))
    a, b = runs
    assert len(a) > 100 and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def _dvc(repo: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"dvc {args}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.shared_data
def test_dvc_push_then_pull_in_a_fresh_clone_reruns_nothing(tmp_path):
    from sem_pipeline.remote import BUCKET, configure_dvc_remote
    from sem_stack import start_seaweedfs

    s3 = start_seaweedfs(tmp_path / "s3", buckets=[BUCKET])
    try:
        first = tmp_path / "first"
        _git(tmp_path, "clone", "-q", str(ROOT), str(first))
        env = _env(first, tmp_path)
        params = (first / "params.yaml").read_text().replace("\nprofile: default\n", "\nprofile: tiny\n")
        params = params.replace("tin_balls_source: ../shared/data/tin_balls", f"tin_balls_source: {TIN_BALLS}")
        (first / "params.yaml").write_text(params)
        subprocess.run([sys.executable, "-m", "sem_cli.main", "stages", "dvc-yaml", "--write"], cwd=first, env=env,
                       check=True, capture_output=True)
        _dvc(first, env, "repro")
        _git(first, "add", "-A")
        _git(first, "commit", "-qm", "tiny run")
        configure_dvc_remote(first, endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
        _dvc(first, env, "push")

        second = tmp_path / "second"
        _git(tmp_path, "clone", "-q", str(first), str(second))
        env2 = _env(second, tmp_path)
        configure_dvc_remote(second, endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
        _dvc(second, env2, "pull")
        log = _dvc(second, env2, "repro")
        assert "Running stage" not in log, log
        assert "didn't change, skipping" in log
        assert "up to date" in _dvc(second, env2, "status")
    finally:
        s3.stop()
