"""Pure ASGI middleware, outermost in the app: the request id and the answer's status and time.

It takes the caller's ``X-Request-Id`` when it is a sane token (at most 128 printable ASCII
characters without spaces) and makes a new one otherwise, puts it in a
:class:`~modelport.core.context.RequestInfo` for the request's lifetime, and adds
``X-Request-Id`` to every answer on every protocol.
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.core.context import RequestInfo, new_request_id, use

__all__ = ["RequestIds"]

_TOKEN = re.compile(rb"[!-~]{1,128}")  # printable ASCII, no spaces


def _given_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return value.decode("ascii") if _TOKEN.fullmatch(value) else None
    return None


class RequestIds:
    """Give each request an id, answer it as ``X-Request-Id``, expose it via :func:`current`.

    When the answer starts it records its status and time in the :class:`RequestInfo` and, for
    a prediction a traffic policy routed, adds ``X-Model-Variant``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo(_given_id(scope) or new_request_id())
        header = (b"x-request-id", info.request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status, info.answered = message["status"], time.perf_counter()
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append(header)
                if info.variant:
                    headers.append((b"x-model-variant", info.variant.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with use(info):
            await self.app(scope, receive, send_with_id)
