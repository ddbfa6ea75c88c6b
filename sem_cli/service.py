"""``sem-denoise service ...``: the review service (tokens, migrations, serving, registration, jobs, gc)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import ParamsOpt, ProfileOpt, console, err_console, read_params

__all__ = ["register"]

service_app = typer.Typer(help="The review service: tokens, migrations, serve, register runs, jobs.",
                          no_args_is_help=True)

DbOpt = Annotated[str, typer.Option("--database-url", envvar="SEM_REVIEW_DATABASE_URL",
                                    help="SQLAlchemy URL of the service database.")]
UrlOpt = Annotated[str | None, typer.Option("--url", envvar="SEM_REVIEW_URL", help="Service base URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="SEM_REVIEW_TOKEN", show_default=False,
                                              help="Bearer token (write role to register).")]


def _fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@service_app.command("token")
def token_cmd(role: Annotated[str, typer.Option("--role", help="read | write | admin")],
              database_url: DbOpt, name: Annotated[str, typer.Option("--name")] = "") -> None:
    """Make a token with ROLE; it is printed once, alone on the last line (only its hash is stored)."""
    from sqlalchemy.exc import SQLAlchemyError

    from sem_review.auth import ROLES, create_token
    from sem_review.db import make_engine, make_sessionmaker

    if role not in ROLES:
        _fail(f"--role must be one of {', '.join(ROLES)}, got {role!r}", 2)
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            token = create_token(session, role=role, name=name)
    except SQLAlchemyError as exc:
        _fail(f"cannot store the token in {engine.url.render_as_string(hide_password=True)}: "
              f"{str(exc).splitlines()[0]} (did you run `sem-denoise service migrate`?)")
    finally:
        engine.dispose()
    err_console.print(f"new {role} token (shown once; only its hash is stored):")
    sys.stdout.write(token + "\n")


@service_app.command("migrate")
def migrate_cmd(database_url: DbOpt,
                revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
                down: Annotated[bool, typer.Option("--down", help="Downgrade to --revision (default base).")] = False
                ) -> None:
    """Migrate the service database (Alembic) up to head, or down with --down."""
    from sem_review import migrate

    try:
        if down:
            migrate.downgrade(database_url, "base" if revision == "head" else revision)
        else:
            migrate.upgrade(database_url, revision)
    except Exception as exc:  # noqa: BLE001  (alembic/sqlalchemy raise many kinds)
        _fail(f"migration failed: {str(exc).splitlines()[0]}")
    console.print(f"database at revision {migrate.current_revision(database_url)}")


@service_app.command("serve")
def serve_cmd(host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
              port: Annotated[int, typer.Option("--port")] = 15480,
              workers: Annotated[int, typer.Option("--workers", min=1)] = 1) -> None:
    """Run the API with uvicorn (settings from SEM_REVIEW_* variables); binds 127.0.0.1 unless told otherwise."""
    import uvicorn

    from sem_review.settings import load_settings

    try:
        load_settings()
    except ValueError as exc:
        _fail(str(exc), 2)
    uvicorn.run("sem_review.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, proxy_headers=False, server_header=False,
                timeout_keep_alive=30)


@service_app.command("register")
def register_cmd(
    params: ParamsOpt = Path("params.yaml"),
    profile: ProfileOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    batch: Annotated[list[Path] | None, typer.Option(
        "--batch", help="A published batch output folder (repeatable) instead of the pipeline's evaluation.")] = None,
    all_batches: Annotated[bool, typer.Option("--all-batches", help="Every batch under paths.outputs_dir.")] = False,
    metrics_dir: Annotated[Path | None, typer.Option("--metrics", help="Evaluate output folder "
                                                     "(default <reports_dir>/metrics).")] = None,
) -> None:
    """Register existing results after the fact: the pipeline's evaluation (default) or batch outputs.

    Idempotent: a run already registered is reported and nothing is uploaded again."""
    from sem_review.register import ServiceError, register_batches, register_pipeline, resolve_service

    cfg = read_params(params, profile)
    try:
        service = resolve_service(cfg, url=url, token=token)
    except ServiceError as exc:
        _fail(str(exc), 2)
    if service is None:
        _fail("no review service configured: pass --url or set SEM_REVIEW_URL / service.url", 2)
    url, token = service
    try:
        if batch or all_batches:
            outputs = list(batch or [])
            if all_batches:
                root = Path(cfg.paths.outputs_dir)
                outputs += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                                  and (p / "provenance.json").is_file()) if root.is_dir() else []
            answers = register_batches(cfg, outputs, url=url, token=token)
        else:
            answers = [register_pipeline(cfg, url=url, token=token, metrics_dir=metrics_dir)]
    except (ServiceError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    for a in answers:
        state = "already registered" if a.get("already") else f"registered ({a.get('uploaded', 0)} objects)"
        console.print(f"{a['run_id']}: {state}")


@service_app.command("gc")
def gc_cmd(url: UrlOpt = None, token: TokenOpt = None,
           older_than_s: Annotated[float, typer.Option("--older-than-s")] = 3600.0) -> None:
    """Delete objects of registrations that never committed (admin token)."""
    from sem_review.client import ServiceClient, ServiceError

    if not url or not token:
        _fail("--url and --token (admin) are needed", 2)
    try:
        with ServiceClient(url, token) as client:
            console.print(client.request("POST", "/api/admin/gc", params={"older_than_s": older_than_s}).json())
    except ServiceError as exc:
        _fail(str(exc))


@service_app.command("pull-jobs")
def pull_jobs_cmd(params: ParamsOpt = Path("params.yaml"), profile: ProfileOpt = None, url: UrlOpt = None,
                  token: TokenOpt = None) -> None:
    """Move queued jobs' uploads into the batch inbox (``<inbox>/job-<id>/``), where the batch flow finds them;
    the registered batch run marks the job done."""
    from sem_review.client import ServiceClient, ServiceError
    from sem_review.collect import safe_name
    from sem_review.register import resolve_service

    cfg = read_params(params, profile)
    service = resolve_service(cfg, url=url, token=token)
    if service is None:
        _fail("no review service configured", 2)
    inbox = Path(cfg.paths.inbox_dir)
    try:
        with ServiceClient(*service) as client:
            for job in client.request("GET", "/api/jobs", params={"status": "queued"}).json():
                data = client.request("GET", f"/api/jobs/{job['job_id']}/input").content
                hidden = inbox / f".job-{job['job_id']}"
                hidden.mkdir(parents=True, exist_ok=True)
                (hidden / safe_name(job["filename"])).write_bytes(data)
                os.replace(hidden, inbox / f"job-{job['job_id']}")
                client.request("PATCH", f"/api/jobs/{job['job_id']}", json={"status": "fetched"})
                console.print(f"job {job['job_id']}: {job['filename']} -> {inbox / ('job-' + job['job_id'])}")
    except ServiceError as exc:
        _fail(str(exc))


def register(app: typer.Typer) -> None:
    """Add the ``service`` command group to ``app``."""
    app.add_typer(service_app, name="service")
