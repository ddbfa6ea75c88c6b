"""Local launchers for the real services the review stack needs (PostgreSQL 15, SeaweedFS S3).

Used by tests (session fixtures), ``make serve`` and benchmarks. Every server binds 127.0.0.1, runs from its own
folder, and is stopped by the PID recorded when it was started (never by name).

>>> from sem_stack import start_postgres, start_seaweedfs
>>> pg = start_postgres(root / "pg", databases=["review"])        # doctest: +SKIP
>>> s3 = start_seaweedfs(root / "s3", buckets=["sem-review"])     # doctest: +SKIP
>>> pg.url("review"), s3.endpoint                                  # doctest: +SKIP
>>> s3.stop(); pg.stop()                                           # doctest: +SKIP
"""

from __future__ import annotations

from sem_stack.ports import pick_free_ports
from sem_stack.postgres import PostgresHandle, start_postgres
from sem_stack.process import StackError
from sem_stack.seaweedfs import SeaweedHandle, start_seaweedfs

__all__ = [
    "PostgresHandle",
    "SeaweedHandle",
    "StackError",
    "pick_free_ports",
    "start_postgres",
    "start_seaweedfs",
]
