"""What the protocol adapters share: the handler's call and reply, the one JSON encoder and
error body, reading the body, and the app's data plane.

Every prediction handler is ``async (Call) -> Reply``: the server's pipeline calls it directly
(no framework in between), and the FastAPI routes that document the same paths call it through
:func:`serve`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from modelport.core import context
from modelport.errors import ModelNotFound, ModelportError

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.settings import Settings
    from modelport.traffic.router import TrafficRouter

__all__ = [
    "JSON",
    "Call",
    "Handler",
    "Reply",
    "encode",
    "error_body",
    "json_response",
    "parse_version",
    "plane_of",
    "read_body",
    "serve",
    "traffic_of",
]

JSON = "application/json"
_MAX_VERSION_DIGITS = 9


@dataclass(frozen=True, slots=True)
class Call:
    """What a prediction handler gets: the data plane, settings, path parameters, the request."""

    plane: DataPlane
    settings: Settings
    name: str | None
    version: int | None
    body: bytes
    headers: list[tuple[bytes, bytes]]
    request_id: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: ``content`` is encoded as JSON unless it is already ``bytes``."""

    content: Any
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    media_type: str = JSON

    def body(self) -> bytes:
        return self.content if isinstance(self.content, bytes) else encode(self.content)


Handler = Callable[[Call], Awaitable[Reply]]


def encode(content: Any) -> bytes:
    """JSON with orjson (numpy scalars and arrays included); integers beyond 64 bits as text."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # an echoed input orjson cannot write (a 100-digit integer, say)
        return json.dumps(content, default=str).encode()


def error_body(error: ModelportError) -> bytes:
    """The one error body of every answer: ``{"error", "detail", "code"}``."""
    return encode(error.to_body())


def plane_of(request: Request) -> DataPlane:
    """The app's data plane."""
    plane: DataPlane = request.app.state.dataplane
    return plane


def traffic_of(request: Request) -> TrafficRouter:
    """The app's live traffic policies."""
    router: TrafficRouter = request.app.state.traffic
    return router


def parse_version(version: str) -> int:
    """A version path segment as a number; 404 for anything that cannot be a version."""
    digits = version.isascii() and version.isdigit() and len(version) <= _MAX_VERSION_DIGITS
    if not digits or int(version) < 1:
        shown = version if len(version) <= 20 else version[:20] + "..."
        raise ModelNotFound(f"no version {shown!r}: versions are positive integers")
    return int(version)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer from a FastAPI route, encoded by :func:`encode`."""
    return Response(encode(content), status_code=status_code, headers=headers, media_type=JSON)


async def read_body(request: Request) -> bytes:
    """The request body (the server's pipeline enforces the size limit)."""
    return await request.body()


async def serve(
    request: Request, handler: Handler, name: str | None, version: int | None
) -> Response:
    """Run a prediction handler for a FastAPI route: these routes document the paths in OpenAPI,
    while the server's pipeline serves them itself."""
    info = context.current()
    call = Call(
        plane_of(request),
        request.app.state.settings,
        name,
        version,
        await read_body(request),
        request.scope["headers"],
        info.request_id if info is not None else context.new_request_id(),
    )
    reply = await handler(call)
    return Response(reply.body(), reply.status, reply.headers, media_type=reply.media_type)
