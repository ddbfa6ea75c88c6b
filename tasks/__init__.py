"""Thin Prefect tasks around ``sem_core`` (load inputs, one library call, write outputs, return paths/hashes).

Importing this package applies the project's Prefect defaults (analytics off, persisted
results under ``.prefect/results``) before Prefect itself is imported.
"""

from .settings import apply_env_defaults

apply_env_defaults()
