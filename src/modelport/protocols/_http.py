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
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from modelport.core import context
from modelport.core.redact import redact
from modelport.core.validation import bounded, version_number
from modelport.errors import ModelNotFound, ModelportError, PayloadTooLarge
from modelport.protocols.auth import check_admin, check_reader, inference_keys

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.settings import Settings
    from modelport.traffic.router import TrafficRouter

__all__ = [
    "JSON",
    "Call",
    "ErrorBody",
    "Handler",
    "Reply",
    "check_instances",
    "encode",
    "error_body",
    "error_responses",
    "json_response",
    "parse_version",
    "plane_of",
    "read_body",
    "require_admin",
    "require_reader",
    "serve",
    "traffic_of",
]

JSON = "application/json"


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


class ErrorBody(BaseModel):
    """The one error body of every answer (OpenAPI's schema of every error status)."""

    error: str = Field(description="What went wrong, for a person.")
    code: str = Field(description="What went wrong, for a program: model_not_found, ...")
    detail: str | list[dict[str, Any]] = Field(
        description="The message again (FastAPI's key), or each field's problem for a 422."
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring error statuses with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": HTTPStatus(s).phrase} for s in statuses}


def encode(content: Any) -> bytes:
    """JSON with orjson (numpy scalars and arrays included); integers beyond 64 bits as text."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # an echoed input orjson cannot write (a 100-digit integer, say)
        return json.dumps(content, default=str).encode()


def error_body(error: ModelportError) -> bytes:
    """The one error body of every answer: ``{"error", "detail", "code"}``, with absolute paths
    and sha256 values left out (:func:`~modelport.core.redact.redact`; the log has them)."""
    body = error.to_body()
    for key in ("error", "detail"):
        if isinstance(body.get(key), str):
            body[key] = redact(body[key])
    return encode(body)


async def require_admin(request: Request) -> None:
    """A route dependency: the admin key (403 when none is configured, 401 without it)."""
    check_admin(request.scope["headers"], request.app.state.settings.admin_key)


async def require_reader(request: Request) -> None:
    """A route dependency: a report reader, an inference key or the admin key (401 without
    one, when keys are set)."""
    settings = request.app.state.settings
    check_reader(
        request.scope["headers"], inference_keys(settings.inference_key), settings.admin_key
    )


def plane_of(request: Request) -> DataPlane:
    """The app's data plane."""
    plane: DataPlane = request.app.state.dataplane
    return plane


def traffic_of(request: Request) -> TrafficRouter:
    """The app's live traffic policies."""
    router: TrafficRouter = request.app.state.traffic
    return router


def parse_version(version: str) -> int:
    """A version path segment as a number (:func:`~modelport.core.validation.ascii_int`); 404
    for anything that cannot be a version."""
    number = version_number(version)
    if number is None:
        shown = bounded(version, 20)
        raise ModelNotFound(f"no version {shown!r}: versions are positive integers")
    return number


def check_instances(count: int, settings: Settings) -> None:
    """413 when one request holds more instances (rows) than ``max_batch_instances``, on every
    protocol; called with the count a request declares, before its rows are built."""
    limit = settings.max_batch_instances
    if count > limit:
        raise PayloadTooLarge(
            f"{count} instances is more than the limit of {limit} per request "
            "(MODELPORT_MAX_BATCH_INSTANCES)"
        )


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
