"""Pure ASGI middleware that answers 413 for request bodies over the configured size."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import PayloadTooLarge
from modelport.protocols._http import json_response

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuse bodies larger than ``max_bytes``: at once by Content-Length, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than the limit of {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                error = self._error()
                response = json_response(error.to_body(), status_code=error.status)
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited, send)
