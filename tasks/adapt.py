"""Per-batch adaptation of the production U-Net (``adapt.per_batch``): one thin task over :func:`sem_core.adapt.adapt_batch`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

__all__ = ["adapt_for_batch"]


@task(name="adapt-unet", cache_policy=NO_CACHE, persist_result=False)
def adapt_for_batch(batch_dir: str, source: str, out: str, *, seed: int, max_images: int | None,
                    options: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune ``source`` on the batch's noisy images alone (x-run Noise2Self, SURE guard) into ``out``.

    Returns the adaptation report: ``model_hash`` (the adapted weights), ``kept`` (whether the guard kept the
    adapted weights), ``path``, ``file_sha256``.
    """
    from sem_core.adapt import adapt_batch

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    report = adapt_batch(batch_dir, source, out, seed=seed, max_images=max_images, **options)
    get_run_logger().info("adapted %s on %s -> %s (kept=%s, model %s)", source, batch_dir, out,
                          report.get("kept"), str(report.get("model_hash", ""))[:12])
    return report
