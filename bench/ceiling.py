"""The HTTP ceiling: a bare ASGI app that answers a constant, served by uvicorn without access
log. Nothing in Python can answer an HTTP request on this machine much faster."""

from __future__ import annotations

from typing import Any

BODY = b'{"prediction":"setosa","probability":0.98,"probabilities":[0.98,0.02,0.0]}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
