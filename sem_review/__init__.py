"""The review service: every run's images, metrics and provenance in PostgreSQL and S3, behind FastAPI.

Modules: ``settings`` (environment), ``models`` (SQLAlchemy tables), ``migrate`` (Alembic), ``storage`` (S3 objects
and Zarr over s3fs), ``auth`` (hashed bearer tokens with roles), ``tiles`` (PNG tiles from OME-Zarr levels),
``registry`` (atomic, idempotent registration on the server), ``app`` + ``api`` (FastAPI; routes in
``routes_*``, shared dependencies in ``deps``),
``collect`` + ``client`` (gather a pipeline or batch run's files and register them over HTTP).
"""
