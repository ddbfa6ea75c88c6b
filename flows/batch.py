"""Scheduled batch processing: denoise every new batch that lands in the inbox.

``<inbox>/<batch>/`` holds SEM image files and/or Zarr scans. For each batch without a finished
output for its current content, every item is denoised with each chosen method (by default the
production U-Net ``paths.release_model`` and the configured classical method), in parallel on
the Dask task runner. Outputs go to a hidden staging folder, which is renamed to
``<outputs>/<batch>/`` after its ``_SUCCESS`` marker is written; the ledger entry comes last
(see :mod:`tasks.ledger`).

* A corrupt item is reported (``errors.json``, the ledger, a UI artifact) and the rest of the
  batch completes. A batch where nothing succeeded, or whose batch-level step failed (e.g. the
  model is missing), is recorded ``failed``, leaves no published output and is retried next run.
* A finished batch is never reprocessed unless its content changes.
* The flow run ends Failed when any batch failed, so the UI shows it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

import tasks  # noqa: F401  (Prefect defaults)
from sem_core.config import load_params
from sem_core.denoise.base import Denoiser, build_denoiser, describe_denoiser
from sem_core.provenance import make_provenance
from tasks.adapt import adapt_for_batch
from tasks.artifacts import publish_failures, publish_link, publish_table
from tasks.batch import denoise_item, find_new_batches, list_items, validate_metrics
from tasks.ledger import publish_output, record_batch, write_json_atomic
from tasks.register import register_run
from tasks.runners import make_task_runner

__all__ = ["process_batches", "default_methods", "process_one_batch"]

DenoiserBuilder = Callable[..., Denoiser]


def default_methods(params: Any, *, classical: str | None = None, use_unet: bool = True) -> dict[str, dict]:
    """Method name -> builder keyword arguments from the typed config.

    The production U-Net reads ``paths.release_model``; the classical method is ``classical`` or
    ``denoise.method``, with its configured parameters.
    """
    methods: dict[str, dict] = {}
    if use_unet:
        methods["unet"] = {"checkpoint": str(params.paths.release_model), **params.denoise.method_params("unet")}
    name = classical or params.denoise.method
    if name:
        methods[name] = params.denoise.method_params(name)
    return methods


def process_one_batch(
    batch: Mapping[str, str],
    *,
    outputs_dir: Path,
    methods: Mapping[str, Mapping[str, Any]],
    builder: DenoiserBuilder,
    chunks: int | None,
    default_chunk_px: int,
    extra_provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Denoise one batch into staging, publish it with its marker, record it in the ledger.

    Raises whatever the batch-level steps raise (the caller records the batch as failed); item
    failures are collected, not raised.
    """
    name, content_hash = batch["batch"], batch["content_hash"]
    denoisers = {method: builder(method, **dict(kwargs)) for method, kwargs in methods.items()}
    staging = outputs_dir / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        items = list_items(Path(batch["path"]))
        futures = {item: denoise_item.submit(item, staging, denoisers=denoisers, chunks=chunks,
                                                   default_chunk_px=default_chunk_px) for item in items}
        rows, errors = [], []
        for item, future in futures.items():
            future.wait()
            if future.state.is_completed():
                rows.extend(future.result())
            else:
                errors.append({"item": item.name, "error": repr(future.result(raise_on_failure=False))})
        if not rows:
            raise RuntimeError(f"batch {name}: no item could be processed ({len(errors)} failed, {len(items)} found)")
        metrics = validate_metrics(rows)
        metrics.to_csv(staging / "metrics.csv", index=False)
        write_json_atomic(staging / "errors.json", errors)
        provenance = make_provenance(
            params={m: describe_denoiser(d) for m, d in denoisers.items()}, inputs_hash=content_hash,
            extra={"stage": "process_batches", "batch": name, **dict(extra_provenance or {})},
        )
        write_json_atomic(staging / "provenance.json", provenance)
        summary = {"n_items": len(items), "n_failed": len(errors), "methods": sorted(methods)}
        final = publish_output(staging, outputs_dir / name, content_hash=content_hash, summary=summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left behind when something failed
    entry = record_batch(outputs_dir, name, {"status": "done", "content_hash": content_hash, "output": str(final),
                                             "errors": errors, **summary})
    publish_table(metrics, key=f"batch-{name}-metrics", description=f"denoising metrics of batch {name}")
    publish_failures(errors, key=f"batch-{name}-failures")
    publish_link(final, key=f"batch-{name}-output", text=f"outputs of batch {name}")
    return entry


def _adapted_methods(params: Any, batch: Mapping[str, str], methods: Mapping[str, Mapping[str, Any]],
                     outputs: Path) -> tuple[dict[str, dict], dict[str, Any]]:
    """With ``adapt.per_batch`` and a U-Net among ``methods``: adapt it to the batch first (a task), point the
    U-Net at the adapted model and return its report for the batch provenance. Otherwise ``methods`` unchanged."""
    chosen = {m: dict(kw) for m, kw in methods.items()}
    if not params.adapt.per_batch or "unet" not in chosen:
        return chosen, {}
    out = outputs / "adapted_models" / f"{batch['batch']}-{batch['content_hash'][:16]}.safetensors"
    report = adapt_for_batch(batch["path"], str(chosen["unet"]["checkpoint"]), str(out), seed=params.seed,
                             max_images=params.adapt.max_images, options=params.adapt.library_kwargs())
    chosen["unet"]["checkpoint"] = str(out)
    keep = ("model_hash", "file_sha256", "kept", "n_images")
    return chosen, {"adapted_unet": {"from": str(methods["unet"]["checkpoint"]), **{k: report.get(k) for k in keep}}}


@flow(name="process-batches", task_runner=make_task_runner())
def process_batches(
    params_path: str = "params.yaml",
    profile: str | None = None,
    methods: dict[str, dict[str, Any]] | None = None,
    classical: str | None = None,
    use_unet: bool = True,
    inbox_dir: str | None = None,
    outputs_dir: str | None = None,
    chunks: int | None = None,
    denoiser_builder: DenoiserBuilder | None = None,
) -> dict[str, dict[str, Any]]:
    """Process every new batch of the inbox once.

    Parameters
    ----------
    params_path, profile : str
        The typed config (``paths.inbox_dir``, ``paths.outputs_dir``, ``paths.release_model``, ``denoise``).
    methods : dict, optional
        Method name -> builder keyword arguments; default :func:`default_methods`.
    classical : str, optional
        Classical method for the default methods (default ``denoise.method``).
    use_unet : bool
        Include the production U-Net in the default methods.
    inbox_dir, outputs_dir : str, optional
        Override ``paths.inbox_dir`` / ``paths.outputs_dir``.
    chunks : int, optional
        Block side for tiled denoising of Zarr scans (default: each method's own, as ``sem-denoise denoise`` chooses
        it; ``denoise.chunk_px`` for methods without one).
    denoiser_builder : callable, optional
        ``(name, **kwargs) -> Denoiser``; default :func:`sem_core.denoise.base.build_denoiser`
        (injectable for tests; not a deployment parameter).

    Returns
    -------
    dict
        Batch name -> its ledger entry (``status`` ``done`` or ``failed``).
    """
    logger = get_run_logger()
    params = load_params(params_path, profile=profile)
    inbox = Path(inbox_dir or params.paths.inbox_dir)
    outputs = Path(outputs_dir or params.paths.outputs_dir)
    outputs.mkdir(parents=True, exist_ok=True)
    chosen = methods or default_methods(params, classical=classical, use_unet=use_unet)
    builder = denoiser_builder or build_denoiser
    results: dict[str, dict[str, Any]] = {}
    for batch in find_new_batches(inbox, outputs):
        try:
            batch_methods, extra = _adapted_methods(params, batch, chosen, outputs)
            results[batch["batch"]] = process_one_batch(batch, outputs_dir=outputs, methods=batch_methods,
                                                        builder=builder, chunks=chunks,
                                                        default_chunk_px=params.denoise.chunk_px,
                                                        extra_provenance=extra)
        except Exception as exc:  # recorded in the ledger as failed; retried next run
            logger.error("batch %s failed: %r", batch["batch"], exc)
            results[batch["batch"]] = record_batch(outputs, batch["batch"], {
                "status": "failed", "content_hash": batch["content_hash"], "error": repr(exc)})
    publish_table([{"batch": b, "status": e["status"], "n_failed": e.get("n_failed", ""), "error": e.get("error", "")}
                   for b, e in results.items()] or [{"batch": "(none)", "status": "nothing new"}],
                  key="process-batches-summary", description="batches handled by this run")
    register_run(params, kind="batch", inbox_dir=str(inbox),  # no-op unless service.url is configured
                 outputs=[e["output"] for e in results.values() if e["status"] == "done"])
    failed = sorted(b for b, e in results.items() if e["status"] == "failed")
    if failed:
        raise RuntimeError(f"{len(failed)} batch(es) failed and will be retried next run: {failed}")
    return results
