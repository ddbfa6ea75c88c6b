"""Shared pieces of the routes: sessions, bearer-token roles, path parameter types, the body spooler."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from .auth import lookup_role, role_allows
from .schemas import RUN_ID

_bearer = HTTPBearer(auto_error=False, description="A token from `sem-denoise service token --role ...`")

RunId = Annotated[str, Path(pattern=RUN_ID, description="Run id, e.g. pipeline-3f2a...")]
ImageId = Annotated[str, Path(pattern=r"^img-[0-9a-f]{20}$")]
UNAUTHORIZED = {401: {"description": "missing or invalid token"}, 403: {"description": "role too low"},
                 503: {"description": "database or object store unavailable"}}


def get_session(request: Request) -> Iterator[Session]:
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def _lookup_role(request: Request, token: str) -> str | None:
    session = request.app.state.sessions()
    try:
        return lookup_role(session, token)
    finally:
        session.close()


def require(need: str):
    """Dependency: the caller's role, at least ``need`` (401 without a valid token, 403 when too low). Async, so a
    token seen in the last seconds costs no thread hop and no database query."""
    async def dependency(request: Request,
                         creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        cache = request.app.state.tokens
        role = cache.get(creds.credentials)
        if role is None:
            role = await run_in_threadpool(_lookup_role, request, creds.credentials)
            if role is None:
                raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
            cache.put(creds.credentials, role)
        if not role_allows(role, need):
            raise HTTPException(403, f"this needs the {need} role; the token has {role}")
        return role
    return Depends(dependency)


Read, Write, Admin = require("read"), require("write"), require("admin")
SessionDep = Annotated[Session, Depends(get_session)]


async def spool_body(request: Request, limit: int) -> tempfile.SpooledTemporaryFile:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            spool.close()
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        spool.write(chunk)
    spool.seek(0)
    return spool
