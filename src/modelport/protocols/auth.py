"""API keys: the admin key (``MODELPORT_ADMIN_KEY``) and the optional inference key
(``MODELPORT_INFERENCE_KEY``).

Without an admin key the admin API is off (403 ``admin API disabled``), never open. A key is sent
as ``Authorization: Bearer <key>``, or in ``X-Admin-Key`` (admin) / ``X-Api-Key`` (inference).
Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

import orjson
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from modelport.errors import Forbidden, ModelportError, Unauthorized
from modelport.protocols import predict

__all__ = ["InferenceKey", "check_admin", "is_prediction", "presented_key"]


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


def is_prediction(method: str, path: str) -> bool:
    """Whether a request is a prediction on any protocol."""
    if method != "POST" or path.startswith("/admin"):
        return False
    if path.endswith((":predict", "/infer")):
        return True
    try:
        return predict.match(path) is not None
    except ModelportError:  # a prediction route with a version that cannot be one
        return True


class InferenceKey:
    """Pure ASGI middleware: predictions need the inference key; everything else passes."""

    def __init__(self, app: ASGIApp, key: SecretStr) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_prediction(scope["method"], scope["path"]):
            given = presented_key(scope["headers"], b"x-api-key")
            if not _matches(given, self.key):
                error = Unauthorized("send the inference key as Authorization: Bearer <key>")
                body = orjson.dumps(error.to_body())
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
