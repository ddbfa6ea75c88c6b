"""Register a bundle with a running review service over HTTP (no database or object-store credentials needed).

``begin`` -> upload every object (``PUT``) -> ``commit``. Killed anywhere before the commit, nothing is visible;
running it again starts a fresh attempt, and the server deletes the dead attempt's objects.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable

import httpx

from .collect import Bundle

__all__ = ["ServiceClient", "ServiceError", "register_bundle"]


class ServiceError(RuntimeError):
    """The review service refused a request or could not be reached."""


class ServiceClient:
    """Thin httpx client with the bearer token; raises ServiceError naming the URL and the service's message."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ServiceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"review service at {self.url} unreachable: {exc}") from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text[:300]
            raise ServiceError(f"{method} {path} -> {resp.status_code}: {detail}")
        return resp


def register_bundle(client: ServiceClient, bundle: Bundle, *, workers: int = 4,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Register ``bundle``; returns the service's answer (``{"run_id", "status": "registered", ...}``).

    Idempotent: a run already registered is answered at once without uploading anything.
    """
    begun = client.request("POST", "/api/registrations", json={"run_id": bundle.run_id}).json()
    if begun["status"] == "registered":
        return {"run_id": bundle.run_id, "status": "registered", "uploaded": 0, "already": True}
    attempt = begun["attempt"]
    items = sorted(bundle.files.items())
    done = 0
    t0 = time.perf_counter()

    def upload(item):
        key, path = item
        client.request("PUT", f"/api/registrations/{attempt}/objects/{key}", content=path.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})

    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in cf.as_completed([pool.submit(upload, it) for it in items]):
            fut.result()
            done += 1
            if progress:
                progress(done, len(items))
    answer = client.request("POST", f"/api/registrations/{attempt}/commit", json=bundle.manifest).json()
    answer.update(uploaded=len(items), seconds=round(time.perf_counter() - t0, 2), already=False)
    return answer
