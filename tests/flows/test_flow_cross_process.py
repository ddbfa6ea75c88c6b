"""The cache survives the process: two separate ephemeral-mode processes, the second recomputes nothing.

Slow (each process starts its own temporary Prefect server, 15-60 s on 2 busy cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path
    import tasks  # noqa: F401  (project Prefect defaults)
    from prefect import flow, task
    from tasks.caching import content_cache_key

    work = Path(sys.argv[1])

    @task(persist_result=True, cache_key_fn=content_cache_key(inputs=["src"], outputs=["out"]))
    def double(src: Path, out: Path) -> str:
        with open(work / "calls.log", "a") as fh:
            fh.write("double\\n")
        out.write_text(str(2 * int(src.read_text())))
        return str(out)

    @flow
    def toy():
        return double(work / "in.txt", work / "out.txt")

    toy()
''')


@pytest.mark.slow
def test_second_process_hits_the_persisted_cache(tmp_path):
    (tmp_path / "in.txt").write_text("21")
    script = tmp_path / "toy.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(SEM_PREFECT_RESULTS=str(tmp_path / "results"), PREFECT_HOME=str(tmp_path / "home"),
               PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    for _ in range(2):
        run = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=400)
        assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "calls.log").read_text().split() == ["double"]
    assert (tmp_path / "out.txt").read_text() == "42"
    (tmp_path / "in.txt").write_text("5")  # new content, same path: a third process recomputes
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "out.txt").read_text() == "10"
