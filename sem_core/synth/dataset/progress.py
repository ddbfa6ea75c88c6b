"""Optional progress bar (rich) over the items a store writer consumes."""

from __future__ import annotations


def _progress_iter(items, *, total: int, label: str, enabled: bool):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=label, transient=True)
