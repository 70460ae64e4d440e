"""Secrets and tokens of the catalog.

Provisioning secrets and device tokens are random and high-entropy (≥ 192/256 bit), so a plain
SHA-256 is enough to store them (a slow password hash only helps against guessable secrets and
would make every check-in cost milliseconds). Comparisons run in constant time so a wrong token
leaks nothing through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bit
SECRET_BYTES = 24  # 192 bit, shown once to the operator


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches(value: str, stored_digest: str | None) -> bool:
    if not stored_digest:
        # still spend the same work so "unknown" and "wrong" look alike
        hmac.compare_digest(digest(value), "0" * 64)
        return False
    return hmac.compare_digest(digest(value), stored_digest)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
