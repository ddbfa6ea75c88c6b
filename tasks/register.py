"""Register a finished run with the review service: the one task both flows call (a no-op when not configured).

Configured by ``params.service.url`` (or ``$SEM_REVIEW_URL``) and a write token (``$SEM_REVIEW_TOKEN`` or
``service.token_file``). Registration is idempotent, so a retried task or a rerun flow never duplicates a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

__all__ = ["register_run"]


@task(name="register-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def register_run(params: Any, *, kind: Literal["pipeline", "batch"], outputs: list[str] | None = None,
                 inbox_dir: str | None = None) -> list[dict]:
    """Register the pipeline's evaluation (``kind="pipeline"``) or the given batch output folders.

    Returns the service's answers (empty when no service is configured or nothing to register).
    """
    from sem_review.register import register_batches, register_pipeline, resolve_service

    logger = get_run_logger()
    service = resolve_service(params)
    if service is None:
        return []
    url, token = service
    if kind == "pipeline":
        answers = [register_pipeline(params, url=url, token=token)]
    else:
        if not outputs:
            return []
        answers = register_batches(params, [Path(o) for o in outputs], url=url, token=token,
                                   inbox_dir=Path(inbox_dir) if inbox_dir else None)
    for a in answers:
        logger.info("registered %s run %s with %s (%s)", kind, a["run_id"], url,
                    "already there" if a.get("already") else f"{a.get('uploaded', 0)} objects")
    return answers
