"""Serve the scheduled batch-processing deployment (and an on-demand pipeline deployment).

Needs a Prefect API (``prefect server start`` and ``PREFECT_API_URL``): an ephemeral server would
vanish with this process. Usage (see docs/ORCHESTRATION.md)::

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve --cron "*/15 * * * *"

Equivalent declarative deployments for ``prefect deploy`` are in ``prefect.yaml``.
"""

from __future__ import annotations

import argparse

import tasks  # noqa: F401  (Prefect defaults)
from prefect import serve

from flows.batch import process_batches
from flows.pipeline import pipeline

__all__ = ["main", "build_deployments"]


def build_deployments(*, cron: str, params_path: str, profile: str | None, classical: str | None,
                      use_unet: bool) -> list:
    """The deployments: ``process-batches/inbox`` on ``cron`` and ``pipeline/manual`` (no schedule)."""
    batch_params = {"params_path": params_path, "profile": profile, "classical": classical, "use_unet": use_unet}
    return [
        process_batches.to_deployment(
            name="inbox", cron=cron, parameters={k: v for k, v in batch_params.items() if v is not None},
            description="Denoise every new batch in paths.inbox_dir into paths.outputs_dir.",
            tags=["sem-denoise", "batch"], concurrency_limit=1,
        ),
        pipeline.to_deployment(
            name="manual", parameters={"params_path": params_path, **({"profile": profile} if profile else {})},
            description="The whole sem-denoise pipeline (run on demand from the UI).", tags=["sem-denoise"],
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cron", default="*/15 * * * *", help="Schedule of process-batches (default: every 15 min).")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--classical", default=None, help="Classical method (default: denoise.method).")
    parser.add_argument("--no-unet", action="store_true", help="Do not use the production U-Net.")
    args = parser.parse_args(argv)
    serve(*build_deployments(cron=args.cron, params_path=args.params, profile=args.profile,
                             classical=args.classical, use_unet=not args.no_unet))


if __name__ == "__main__":  # pragma: no cover
    main()
