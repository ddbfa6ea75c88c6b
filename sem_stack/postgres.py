"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` as the postgres user, trust auth, 127.0.0.1 only.

Layout under ``root``: ``data/`` (the cluster), ``sock/`` (its own Unix socket folder), ``postgres.log``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from sem_stack.ports import pick_free_ports
from sem_stack.process import StackError, pid_matches, terminate_pid, wait_port

PG_BIN_ENV = "SEM_STACK_PG_BIN"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_pg_bin() -> Path:
    """Folder holding ``initdb``/``pg_ctl``: ``$SEM_STACK_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``.

    Prefers version 15 (what the project pins) when several are installed.
    """
    if os.environ.get(PG_BIN_ENV):
        candidates = [Path(os.environ[PG_BIN_ENV])]
    else:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0))
        preferred = [p for p in found if Path(p).parent.name == "15"]
        candidates = [Path(p) for p in preferred or found[::-1]]
        if shutil.which("initdb"):
            candidates.append(Path(shutil.which("initdb")).parent)
    for cand in candidates:
        if (cand / "initdb").is_file() and (cand / "pg_ctl").is_file():
            return cand
    raise StackError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb); "
        f"install postgresql-15 (apt-get install -y postgresql-15) or set {PG_BIN_ENV}"
    )


def _run_kwargs(run_as: str | None) -> dict:
    """subprocess kwargs that drop to ``run_as`` (only when we are root)."""
    if run_as is None:
        return {}
    entry = pwd.getpwnam(run_as)
    env = dict(os.environ, HOME=entry.pw_dir, USER=run_as, LOGNAME=run_as)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env}


def _check_traversable(path: Path, user: str) -> None:
    """Raise when ``user`` could not reach ``path`` (an ancestor lacks o+x and is not theirs)."""
    uid = pwd.getpwnam(user).pw_uid
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise StackError(
                f"{path}: the {user} user cannot traverse {parent} (mode {oct(st.st_mode & 0o777)}); "
                "put the stack folder somewhere world-traversable (e.g. a mkdtemp folder chmod 755)"
            )


@dataclass
class PostgresHandle:
    """A running (or stopped) throwaway cluster; ``stop()`` ends exactly the postmaster it started."""

    root: str
    port: int
    pg_bin: str
    run_as: str | None
    pid: int | None = None
    host: str = "127.0.0.1"
    user: str = "postgres"

    @property
    def data_dir(self) -> Path:
        return Path(self.root) / "data"

    @property
    def socket_dir(self) -> Path:
        return Path(self.root) / "sock"

    @property
    def log_file(self) -> Path:
        return Path(self.root) / "postgres.log"

    def url(self, db: str = "postgres", *, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of database ``db`` over TCP on 127.0.0.1 (trust auth, user postgres)."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{db}"

    def is_running(self) -> bool:
        return pid_matches(self.pid, "postgres", str(self.data_dir))

    def start(self, *, timeout: float = 30.0) -> "PostgresHandle":
        """Start the postmaster on the existing cluster (no-op when already running)."""
        if self.is_running():
            return self
        opts = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        cmd = [f"{self.pg_bin}/pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
               "-t", str(int(timeout)), "-o", opts, "start"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, **_run_kwargs(self.run_as))
        if proc.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-800:] if self.log_file.exists() else ""
            raise StackError(f"pg_ctl start failed for {self.data_dir} on port {self.port}: "
                             f"{proc.stderr.strip() or proc.stdout.strip()}\n{tail}")
        self.pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        wait_port(self.port, timeout=timeout, alive=self.is_running, what="postgres")
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT) of the postmaster by PID; a no-op when it is not running."""
        if self.pid is not None:
            terminate_pid(self.pid, "postgres", str(self.data_dir), timeout=timeout, sig=signal.SIGINT)

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists."""
        if not _DB_NAME.match(name):
            raise StackError(f"database name {name!r}: use lower-case letters, digits and _")
        base = ["-h", self.host, "-p", str(self.port), "-U", self.user]
        exists = subprocess.run(
            [f"{self.pg_bin}/psql", *base, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
            capture_output=True, text=True,
        )
        if exists.returncode != 0:
            raise StackError(f"psql on port {self.port} failed: {exists.stderr.strip()}")
        if exists.stdout.strip() == "1":
            return
        made = subprocess.run([f"{self.pg_bin}/createdb", *base, name], capture_output=True, text=True)
        if made.returncode != 0:
            raise StackError(f"createdb {name} on port {self.port} failed: {made.stderr.strip()}")

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "PostgresHandle":
        return cls(**state)


def start_postgres(
    root: Path | str,
    *,
    port: int | None = None,
    databases: list[str] | tuple[str, ...] = (),
    timeout: float = 30.0,
) -> PostgresHandle:
    """Create a throwaway cluster under ``root`` (or reuse one there) and start it on 127.0.0.1.

    Parameters
    ----------
    root : path
        Folder for ``data/``, ``sock/`` and the log; created. As root the server runs as the ``postgres`` user,
        who must be able to traverse every ancestor of ``root``.
    port : int, optional
        TCP port; default a free one (``$SEM_STACK_PORT_RANGE`` honoured).
    databases : list of str
        Databases to create (idempotent).

    Returns
    -------
    PostgresHandle
        ``url(db)`` gives the SQLAlchemy URL; ``stop()`` stops it.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pg_bin = find_pg_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as:
        _check_traversable(root, run_as)
    handle = PostgresHandle(root=str(root), port=0, pg_bin=str(pg_bin), run_as=run_as)
    if not (handle.data_dir / "PG_VERSION").exists():
        handle.data_dir.mkdir(exist_ok=True)
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
            os.chown(handle.data_dir, entry.pw_uid, entry.pw_gid)
        cmd = [f"{pg_bin}/initdb", "-D", str(handle.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
               "--locale=C.UTF-8", "--no-sync"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(root), **_run_kwargs(run_as))
        if proc.returncode != 0:
            raise StackError(f"initdb {handle.data_dir} failed: {proc.stderr.strip()[-800:]}")
    handle.socket_dir.mkdir(exist_ok=True)
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(handle.socket_dir, entry.pw_uid, entry.pw_gid)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        handle.port = port if port is not None else pick_free_ports(1)[0]
        try:
            handle.start(timeout=timeout)
            break
        except StackError:
            if attempt == attempts - 1:
                raise
    for db in databases:
        handle.create_database(db)
    return handle
