"""Bearer tokens with roles (read < write < admin), stored as SHA-256 hashes.

Tokens are 256-bit random strings (``semr_`` + url-safe base64), so a plain SHA-256 is a sufficient one-way hash;
the plaintext is shown once, when the token is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Token

__all__ = ["ROLES", "hash_token", "new_token", "create_token", "lookup_role", "role_allows", "TokenCache"]

ROLES = ("read", "write", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "semr_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def role_allows(have: str, need: str) -> bool:
    return _RANK.get(have, -1) >= _RANK[need]


def create_token(session: Session, *, role: str, name: str = "") -> str:
    """Store a new token's hash with ``role``; return the plaintext (shown once)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    token = new_token()
    session.add(Token(name=name or role, role=role, token_hash=hash_token(token)))
    session.commit()
    return token


def lookup_role(session: Session, token: str) -> str | None:
    """The role of a valid, unrevoked token, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    digest = hash_token(token)
    query = select(Token).where(Token.token_hash == digest, Token.revoked.is_(False))
    row = session.execute(query).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row.role


class TokenCache:
    """A few seconds of memory of token -> role, to spare the database one query per tile."""

    def __init__(self, ttl_s: float = 5.0, size: int = 1024):
        self.ttl_s, self.size = ttl_s, size
        self._data: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> str | None:
        key = hash_token(token)
        with self._lock:
            hit = self._data.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, token: str, role: str) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()
            self._data[hash_token(token)] = (time.monotonic() + self.ttl_s, role)
