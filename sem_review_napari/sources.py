"""Where the widget gets runs, images, defects and pixels: the review service or local files.

Both sources return the service contract's JSON shapes (docs/SERVICE_API.md), so the widget has one
code path. Pixels come back as the levels of a multiscale image (finest first), read lazily.
"""

from __future__ import annotations

from typing import Any, Protocol

from .client import ReviewClient
from .model import multiscale_levels

__all__ = ["Source", "ServiceSource"]


class Source(Protocol):
    """What the review widget needs from a data source."""

    label: str

    def runs(self, *, kind: str | None = None, dataset: str | None = None) -> list[dict[str, Any]]: ...
    def run(self, run_id: str) -> dict[str, Any]: ...
    def compare(self, a: str, b: str) -> list[dict[str, Any]]: ...
    def images(self, run_id: str) -> list[dict[str, Any]]: ...
    def defects(self, run_id: str) -> list[dict[str, Any]]: ...
    def levels(self, image: dict[str, Any], method: str) -> list[Any]: ...


class ServiceSource:
    """The review service through :class:`ReviewClient` (pixels via its credentials-free OME-Zarr keys)."""

    def __init__(self, client: ReviewClient) -> None:
        self.client = client
        self.label = client.url
        self._levels: dict[tuple[str, str], list[Any]] = {}

    def runs(self, *, kind: str | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
        return self.client.runs(kind=kind, dataset=dataset)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.client.run(run_id)

    def compare(self, a: str, b: str) -> list[dict[str, Any]]:
        return list(self.client.compare(a, b)["deltas"])

    def images(self, run_id: str) -> list[dict[str, Any]]:
        return self.client.images(run_id)

    def defects(self, run_id: str) -> list[dict[str, Any]]:
        return self.client.defects(run_id)

    def levels(self, image: dict[str, Any], method: str) -> list[Any]:
        key = (str(image["id"]), method)
        if key not in self._levels:
            self._levels[key] = multiscale_levels(self.client.open_zarr_group(str(image["id"]), method))
        return self._levels[key]
