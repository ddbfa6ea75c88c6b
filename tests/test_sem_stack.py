"""sem_stack: the real PostgreSQL and SeaweedFS launchers start, serve, and stop exactly what they started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sem_stack import StackError, pick_free_ports, start_postgres, start_seaweedfs
from sem_stack.ports import parse_port_range, port_is_free
from sem_stack.process import pid_matches

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stack_dir():
    """A world-traversable temp folder (the postgres user must reach it when tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix="sem-stack-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_pick_free_ports_distinct_and_in_range():
    ports = pick_free_ports(5, port_range=(40000, 40999))
    assert len(set(ports)) == 5
    assert all(40000 <= p <= 40999 and port_is_free(p) for p in ports)
    with pytest.raises(StackError, match="LO-HI"):
        parse_port_range("15400")


def test_postgres_start_query_stop(stack_dir):
    import psycopg

    pg = start_postgres(stack_dir / "pg", databases=["review_test"])
    try:
        assert pg.is_running() and _listening(pg.port)
        assert pg.url("review_test") == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/review_test"
        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=review_test") as conn:
            assert conn.execute("SELECT current_database(), 1 + 1").fetchone() == ("review_test", 2)
            listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert listen == "127.0.0.1"
        pg.create_database("review_test")  # idempotent
    finally:
        pid = pg.pid
        pg.stop()
    assert not pid_matches(pid) and not _listening(pg.port)


def test_seaweedfs_put_get_auth_stop(stack_dir):
    import s3fs

    s3 = start_seaweedfs(stack_dir / "s3", buckets=["sem-stack-test"])
    try:
        assert s3.endpoint.startswith("http://127.0.0.1:")
        assert oct(s3.config_file.stat().st_mode & 0o777) == "0o600"
        fs = s3fs.S3FileSystem(**s3.storage_options())
        payload = os.urandom(70_000)
        fs.pipe("sem-stack-test/a/b.bin", payload)
        assert fs.cat("sem-stack-test/a/b.bin") == payload
        # Credentials are always set: an anonymous read is refused.
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{s3.endpoint}/sem-stack-test/a/b.bin", timeout=5)
        assert err.value.code == 403
        wrong = s3fs.S3FileSystem(key=s3.access_key, secret="wrong-secret",
                                  client_kwargs=s3.storage_options()["client_kwargs"])
        with pytest.raises(PermissionError):
            wrong.cat("sem-stack-test/a/b.bin")
        # Nothing of ours listens on another interface, and the fixed default admin ports stay free.
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        ours = [line for line in out.splitlines() if f"pid={s3.pid}," in line]
        assert ours and all(" 127.0.0.1:" in line for line in ours)
        assert not any(":23646 " in line or ":33646 " in line for line in ours)
    finally:
        pid = s3.pid
        s3.stop()
    assert not pid_matches(pid) and not _listening(s3.ports["s3"])


def test_cli_up_status_down(stack_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = lambda *a: subprocess.run([sys.executable, "-m", "sem_stack", *a, "--dir", str(stack_dir)],  # noqa: E731
                                    capture_output=True, text=True, env=env, timeout=120)
    up = run("up", "--databases", "db_one", "--no-seaweedfs")
    assert up.returncode == 0, up.stderr
    status = run("status")
    assert status.returncode == 0 and '"running": true' in status.stdout
    from sem_stack.state import load_state

    pid = load_state(stack_dir)["postgres"].pid
    assert pid_matches(pid, "postgres")
    down = run("down")
    assert down.returncode == 0 and f"stopped pid {pid}" in down.stdout
    assert not pid_matches(pid)
    assert run("status").returncode == 1
