"""Database engine and sessions; connection failures become :class:`DatabaseUnavailable` (HTTP 503)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_engine", "make_sessionmaker", "check_database", "DatabaseUnavailable"]


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or is not migrated."""


def make_engine(database_url: str, *, pool_size: int = 10) -> Engine:
    """Engine with pre-ping (a restarted database is picked up again) and a short connect timeout."""
    connect_args = {"connect_timeout": 3} if database_url.startswith("postgresql") else {}
    kwargs = {"pool_size": pool_size, "max_overflow": 30, "pool_timeout": 10} if "sqlite" not in database_url else {}
    return create_engine(database_url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def check_database(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless ``SELECT 1`` works and the schema is migrated."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, DBAPIError) as exc:
        msg = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0][:300]
        if "alembic_version" in msg:
            raise DatabaseUnavailable("database not migrated: run `sem-denoise service migrate`") from exc
        raise DatabaseUnavailable(f"database unavailable: {msg}") from exc
    if not version:
        raise DatabaseUnavailable("database not migrated: run `sem-denoise service migrate`")
