"""Prefect flows of sem-denoise. They only compose the thin tasks in ``tasks/``."""

import tasks  # noqa: F401  (applies the project's Prefect defaults before prefect is imported)
