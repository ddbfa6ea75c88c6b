"""The stack's state file: what was started (PIDs, ports, credentials), so ``down`` stops exactly that."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sem_stack.postgres import PostgresHandle
from sem_stack.seaweedfs import SeaweedHandle

STATE_NAME = "stack.json"


def state_path(stack_dir: Path | str) -> Path:
    return Path(stack_dir) / STATE_NAME


def save_state(stack_dir: Path | str, *, postgres: PostgresHandle | None, seaweedfs: SeaweedHandle | None,
               extra: dict | None = None) -> Path:
    """Write ``stack.json`` (mode 600: it holds the S3 secret) atomically; return its path."""
    path = state_path(stack_dir)
    state = {"postgres": postgres.to_state() if postgres else None,
             "seaweedfs": seaweedfs.to_state() if seaweedfs else None, **(extra or {})}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)
    return path


def load_state(stack_dir: Path | str) -> dict | None:
    """Read ``stack.json`` into ``{"postgres": PostgresHandle|None, "seaweedfs": SeaweedHandle|None, ...}``."""
    path = state_path(stack_dir)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    out = dict(raw)
    out["postgres"] = PostgresHandle.from_state(raw["postgres"]) if raw.get("postgres") else None
    out["seaweedfs"] = SeaweedHandle.from_state(raw["seaweedfs"]) if raw.get("seaweedfs") else None
    return out
