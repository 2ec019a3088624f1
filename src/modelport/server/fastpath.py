"""Pure ASGI serving of the hot prediction routes (:mod:`modelport.protocols.predict`).

Prediction requests skip FastAPI's routing and dependency machinery, which cost more than the
model on small tabular models; everything else passes through to the FastAPI app. The body limit
(:class:`modelport.server.limits.BodyLimit`) wraps this middleware, and errors are answered exactly
as
the app's error handler answers them. Answers carry ``Server-Timing: app;dur=<ms>``: the time
from the whole request being read to the answer (validation, queueing and inference).
"""

from __future__ import annotations

import logging
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from modelport.core.dataplane import DataPlane
from modelport.errors import ModelportError
from modelport.protocols import predict
from modelport.settings import Settings

__all__ = ["FastPath"]

log = logging.getLogger("modelport.server.fastpath")


class FastPath:
    def __init__(self, app: ASGIApp, plane: DataPlane, settings: Settings) -> None:
        self.app = app
        self.plane = plane
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            route = predict.match(scope["path"])
        except ModelportError as exc:  # a version that cannot be one
            await _send(send, exc.status, exc.to_body(), exc.headers())
            return
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send(
                send,
                405,
                {"error": "Method Not Allowed", "detail": "Method Not Allowed", "code": "http_405"},
                {"Allow": "POST"},
            )
            return
        handler, name, version = route
        try:
            body = await _read(receive)
            started = time.perf_counter()  # from a whole request: the client's pace is not ours
            reply = await handler(predict.Call(self.plane, self.settings, name, version, body))
        except ModelportError as exc:
            if exc.status >= 500:
                log.error("POST %s: %s", scope["path"], exc.message)
            await _send(send, exc.status, exc.to_body(), exc.headers())
            return
        except Exception:
            log.exception("unexpected error on POST %s", scope["path"])
            error = ModelportError("internal error")
            await _send(send, error.status, error.to_body(), {})
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        headers = {**reply.headers, "Server-Timing": f"app;dur={elapsed_ms:.2f}"}
        await _send(send, reply.status, reply.content, headers)


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, status: int, content: object, headers: dict[str, str]) -> None:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
