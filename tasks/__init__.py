"""Prefect tasks: the pipeline's stage tasks and the batch-inbox tasks.

The stage tasks (:mod:`tasks.stages`) run each stage's ``sem-denoise`` command function through
the stage runner of :mod:`sem_pipeline.run`, exactly what ``dvc repro`` runs; the batch tasks
(:mod:`tasks.batch`) call ``sem_core`` directly (read one item, denoise, write OME-Zarr).

Importing this package applies the project's Prefect defaults (analytics off, persisted
results under ``.prefect/results``) before Prefect itself is imported.
"""

from .settings import apply_env_defaults

apply_env_defaults()
