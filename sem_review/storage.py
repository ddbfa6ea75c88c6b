"""S3 object storage of the service: validated keys, bytes in and out, OME-Zarr levels read chunk by chunk.

Everything goes through s3fs (one synchronous filesystem for objects, one asynchronous one under zarr's
``FsspecStore``), so MinIO, AWS S3 and SeaweedFS are interchangeable by endpoint URL. Errors that mean "the
object store is unreachable" become :class:`StorageUnavailable` (HTTP 503 in the API); a missing object stays
``FileNotFoundError`` (404).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np
import zarr
from zarr.storage import FsspecStore

from .settings import ServiceSettings

__all__ = ["ObjectStore", "StorageUnavailable", "validate_key", "KeyError_"]

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_MAX_KEY = 512


class StorageUnavailable(RuntimeError):
    """The object store cannot be reached (or refused our credentials)."""


class KeyError_(ValueError):
    """An object key or name from a request is not acceptable (traversal, odd characters, too long)."""


def validate_key(key: str) -> str:
    """Return ``key`` if every ``/``-separated segment is a plain name (no ``..``, no leading dot or slash).

    Raises
    ------
    KeyError_
        Naming the key.
    """
    if not key or len(key) > _MAX_KEY or key.startswith("/") or "//" in key or "\\" in key:
        raise KeyError_(f"invalid object key {key[:80]!r}")
    for part in key.split("/"):
        if not _SEGMENT.match(part) or part in (".", ".."):
            raise KeyError_(f"invalid object key {key[:80]!r}: segment {part[:40]!r}")
    return key


def _unavailable_types() -> tuple[type[BaseException], ...]:
    import aiohttp
    import botocore.exceptions

    return (OSError, TimeoutError, asyncio.TimeoutError, aiohttp.ClientError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError)


@contextmanager
def _guard(what: str) -> Iterator[None]:
    try:
        yield
    except (FileNotFoundError, KeyError_):
        raise
    except _unavailable_types() as exc:
        raise StorageUnavailable(f"object store unavailable ({what}): {type(exc).__name__}: {exc}"[:400]) from exc


class ObjectStore:
    """The service's bucket; keys are relative to it and validated."""

    def __init__(self, settings: ServiceSettings, *, array_cache: int = 256, chunk_cache_mb: float = 256.0):
        import s3fs

        self.bucket = settings.s3_bucket
        opts = dict(
            key=settings.s3_access_key, secret=settings.s3_secret_key,
            client_kwargs={"endpoint_url": settings.s3_endpoint, "region_name": settings.s3_region},
            config_kwargs={"connect_timeout": settings.storage_timeout_s, "read_timeout": 30,
                           "retries": {"max_attempts": 1}},
            skip_instance_cache=True,
        )
        self.fs = s3fs.S3FileSystem(**opts)
        self.fs.retries = 1
        self.afs = s3fs.S3FileSystem(asynchronous=True, **opts)
        self.afs.retries = 1
        self._arrays: OrderedDict[str, zarr.Array] = OrderedDict()
        self._array_cache = array_cache
        self._chunks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._chunk_bytes = 0
        self._chunk_cache_bytes = int(chunk_cache_mb * 2**20)
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
        return f"{self.bucket}/{validate_key(key)}"

    def check(self) -> None:
        """Raise StorageUnavailable unless the bucket answers now (no cache)."""
        with _guard("health check"):
            self.fs.call_s3("head_bucket", Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        with _guard("create bucket"):
            try:
                self.fs.call_s3("head_bucket", Bucket=self.bucket)
            except FileNotFoundError:
                self.fs.call_s3("create_bucket", Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes) -> None:
        with _guard(f"put {key}"):
            self.fs.pipe_file(self._path(key), data)

    def put_stream(self, key: str, stream: IO[bytes], *, limit: int, block: int = 8 << 20) -> int:
        """Copy ``stream`` to ``key`` in blocks (multipart), refusing more than ``limit`` bytes.

        Returns the size; raises ValueError (and deletes the partial object) past the limit.
        """
        total = 0
        with _guard(f"put {key}"):
            with self.fs.open(self._path(key), "wb", block_size=max(block, 5 << 20)) as out:
                while chunk := stream.read(block):
                    total += len(chunk)
                    if total > limit:
                        break
                    out.write(chunk)
            if total > limit:
                self.delete_prefix(key)
                raise ValueError(f"upload larger than the limit of {limit} bytes")
        return total

    def get_bytes(self, key: str) -> bytes:
        with _guard(f"get {key}"):
            return self.fs.cat_file(self._path(key))

    def exists(self, key: str) -> bool:
        with _guard(f"head {key}"):
            try:
                self.fs.info(self._path(key), refresh=True)
                return True
            except FileNotFoundError:
                return False

    def list_prefix(self, prefix: str) -> list[str]:
        """Keys under ``prefix/`` (recursive), relative to the bucket."""
        with _guard(f"list {prefix}"):
            try:
                found = self.fs.find(self._path(prefix), refresh=True, detail=True)
            except FileNotFoundError:
                return []
        return [p.split("/", 1)[1] for p, info in found.items() if info.get("type") == "file"]

    def list_children(self, prefix: str) -> list[str]:
        """Immediate child names under ``prefix/``."""
        with _guard(f"list {prefix}"):
            try:
                found = self.fs.ls(self._path(prefix), detail=False, refresh=True)
            except FileNotFoundError:
                return []
        own = self._path(prefix).rstrip("/")
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in found if p.rstrip("/") != own]

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (and ``prefix`` itself); returns how many were deleted."""
        keys = self.list_prefix(prefix)
        with _guard(f"delete {prefix}"):
            if keys:
                self.fs.rm([f"{self.bucket}/{k}" for k in keys])
            try:
                self.fs.rm_file(self._path(prefix))
            except FileNotFoundError:
                pass
            self.fs.invalidate_cache()
        return len(keys)

    def open_array(self, prefix: str) -> zarr.Array:
        """Open the Zarr v3 array at ``prefix`` read-only (cached); chunks are fetched lazily."""
        validate_key(prefix)
        with self._lock:
            arr = self._arrays.get(prefix)
            if arr is not None:
                self._arrays.move_to_end(prefix)
                return arr
        with _guard(f"open array {prefix}"):
            store = FsspecStore(self.afs, read_only=True, path=f"{self.bucket}/{prefix}")
            arr = zarr.open_array(store=store, mode="r")
        with self._lock:
            self._arrays[prefix] = arr
            while len(self._arrays) > self._array_cache:
                self._arrays.popitem(last=False)
        return arr

    def read_chunk(self, prefix: str, i: int, j: int) -> np.ndarray:
        """Decoded chunk ``(i, j)`` of the 2-D array at ``prefix`` (an LRU keeps recent ones: neighbouring tiles
        of one large chunk are decoded once)."""
        key = (prefix, i, j)
        with self._lock:
            block = self._chunks.get(key)
            if block is not None:
                self._chunks.move_to_end(key)
                return block
        arr = self.open_array(prefix)
        ch, cw = arr.chunks[-2:]
        with _guard(f"read {prefix}"):
            block = np.asarray(arr[i * ch:(i + 1) * ch, j * cw:(j + 1) * cw])
        block.setflags(write=False)
        with self._lock:
            self._chunks[key] = block
            self._chunk_bytes += block.nbytes
            while self._chunk_bytes > self._chunk_cache_bytes and self._chunks:
                self._chunk_bytes -= self._chunks.popitem(last=False)[1].nbytes
        return block

    def read_region(self, prefix: str, rows: slice, cols: slice) -> np.ndarray:
        """Pixels ``[rows, cols]`` (unit-step slices within bounds) of the 2-D array at ``prefix``, assembled from
        the chunks they touch; nothing else is fetched."""
        arr = self.open_array(prefix)
        ch, cw = arr.chunks[-2:]
        out = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=arr.dtype)
        for i in range(rows.start // ch, (rows.stop - 1) // ch + 1):
            for j in range(cols.start // cw, (cols.stop - 1) // cw + 1):
                block = self.read_chunk(prefix, i, j)
                r0, r1 = max(rows.start, i * ch), min(rows.stop, i * ch + block.shape[0])
                c0, c1 = max(cols.start, j * cw), min(cols.stop, j * cw + block.shape[1])
                out[r0 - rows.start:r1 - rows.start, c0 - cols.start:c1 - cols.start] = \
                    block[r0 - i * ch:r1 - i * ch, c0 - j * cw:c1 - j * cw]
        return out
