"""The one HTTP client of the review service (contract: docs/SERVICE_API.md, issue 14).

Everything the plugin asks the service goes through :class:`ReviewClient`: JSON endpoints with httpx,
and the layers' OME-Zarr keys (``/api/images/{id}/zarr/{method}/...``) opened lazily with zarr's fsspec
HTTP store carrying the same bearer token, so no object-store credentials reach the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["ReviewClient", "ServiceError"]


class ServiceError(RuntimeError):
    """A request to the review service failed (the message names the URL and the status or cause)."""


class ReviewClient:
    """Typed-ish access to the review service's JSON API.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8080`` (``/api/...`` is appended).
    token : str or None
        Bearer token (every endpoint but ``/api/health`` needs it).
    timeout_s : float
        Per-request timeout.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``).
    """

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            resp = self._http.get(path, params=clean)
        except httpx.HTTPError as exc:
            raise ServiceError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            detail = resp.text[:200].replace("\n", " ")
            raise ServiceError(f"{self.url}{path}: HTTP {resp.status_code}: {detail}")
        return resp

    def _json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        resp = self._get(path, params)
        try:
            return resp.json()
        except ValueError as exc:
            raise ServiceError(f"{self.url}{path}: not JSON ({resp.headers.get('content-type')})") from exc

    # --- JSON endpoints -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /api/health`` (a 503 raises :class:`ServiceError` naming the failing part)."""
        return self._json("/api/health")

    def runs(self, *, kind: str | None = None, dataset: str | None = None, since: str | None = None,
             until: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first (``Run`` objects of the contract)."""
        body = self._json("/api/runs", {"kind": kind, "dataset": dataset, "since": since, "until": until,
                                        "limit": limit})
        return list(body["runs"])

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with ``provenance`` and ``input_hashes``."""
        return self._json(f"/api/runs/{run_id}")

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """``{"a", "b", "deltas": [{dataset, method, metric, a, b, delta}]}``."""
        return self._json("/api/runs/compare", {"a": a, "b": b})

    def images(self, run_id: str, *, dataset: str | None = None, limit: int | None = None,
               offset: int | None = None) -> list[dict[str, Any]]:
        """Images of a run (``Image`` objects); pages through ``limit``/``offset`` when ``limit`` is None."""
        if limit is not None:
            return list(self._json(f"/api/runs/{run_id}/images",
                                   {"dataset": dataset, "limit": limit, "offset": offset})["images"])
        out: list[dict[str, Any]] = []
        page = 500
        while True:
            batch = self._json(f"/api/runs/{run_id}/images", {"dataset": dataset, "limit": page,
                                                               "offset": len(out)})["images"]
            out += batch
            if len(batch) < page:
                return out

    def defects(self, run_id: str) -> list[dict[str, Any]]:
        """Defects of a run: ``{image_id, defect_id, type, bbox: [r0, c0, r1, c1], retention: {method: v}}``."""
        return list(self._json(f"/api/runs/{run_id}/defects")["defects"])

    def report_html(self, run_id: str) -> str:
        return self._get(f"/api/runs/{run_id}/report").text

    def tile(self, image_id: str, *, method: str, level: int = 0, row: int = 0, col: int = 0,
             size: int = 256) -> bytes:
        """One PNG tile of a layer."""
        return self._get(f"/api/images/{image_id}/tile",
                         {"method": method, "level": level, "row": row, "col": col, "size": size}).content

    # --- lazy pixels ----------------------------------------------------------------------------
    def zarr_url(self, image_id: str, method: str) -> str:
        return f"{self.url}/api/images/{image_id}/zarr/{method}"

    def open_zarr_group(self, image_id: str, method: str) -> Any:
        """The layer's OME-Zarr group, read lazily over HTTP (only the chunks napari asks for are fetched)."""
        import zarr
        from zarr.storage import FsspecStore

        url = self.zarr_url(image_id, method)
        store = FsspecStore.from_url(
            url, read_only=True,
            storage_options={"client_kwargs": {"headers": self.auth_headers}, "asynchronous": True},
        )
        try:
            return zarr.open_group(store, mode="r", zarr_format=3)
        except Exception as exc:  # noqa: BLE001 - zarr/fsspec raise many types; name the URL once
            raise ServiceError(f"{url}: cannot open the layer's OME-Zarr: {type(exc).__name__}: {exc}") from exc
