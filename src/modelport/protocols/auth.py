"""API keys: the admin key (``MODELPORT_ADMIN_KEY``) and the optional inference key
(``MODELPORT_INFERENCE_KEY``).

Without an admin key the admin API is off (403 ``admin API disabled``), never open. A key is sent
as ``Authorization: Bearer <key>``, or in ``X-Admin-Key`` (admin) / ``X-Api-Key`` (inference).
Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from modelport.errors import Forbidden, Unauthorized

__all__ = ["check_admin", "check_inference", "presented_key"]


def presented_key(headers: list[tuple[bytes, bytes]], own_header: bytes) -> bytes | None:
    """The key a request presents: a Bearer token, else the value of ``own_header``."""
    found = None
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
        if name == own_header:
            found = value
    return found


def _matches(given: bytes | None, key: SecretStr) -> bool:
    return given is not None and hmac.compare_digest(given, key.get_secret_value().encode())


def check_admin(headers: list[tuple[bytes, bytes]], key: SecretStr | None) -> None:
    """Raise unless the request carries the admin key (403 when none is configured)."""
    if key is None or not key.get_secret_value():
        raise Forbidden("admin API disabled: set MODELPORT_ADMIN_KEY to turn it on")
    if not _matches(presented_key(headers, b"x-admin-key"), key):
        raise Unauthorized("admin API: send the admin key as Authorization: Bearer <key>")


def check_inference(headers: list[tuple[bytes, bytes]], key: SecretStr) -> None:
    """Raise unless a prediction carries the inference key."""
    if not _matches(presented_key(headers, b"x-api-key"), key):
        raise Unauthorized("send the inference key as Authorization: Bearer <key>")
