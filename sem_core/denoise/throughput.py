"""Throughput of a denoiser in MPix/s: one definition for the benchmarks and the report's table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["mpix_per_s", "time_call"]


def mpix_per_s(pixels: int, seconds: float) -> float:
    """Megapixels (10⁶ output pixels) per second of wall clock; ``seconds`` floored at 1 ns."""
    return pixels / 1e6 / max(float(seconds), 1e-9)


def time_call(fn: Callable[[], Any], *, repeats: int = 1) -> tuple[Any, float]:
    """Call ``fn`` ``repeats`` times; return its last result and the median wall-clock seconds of one call."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)
