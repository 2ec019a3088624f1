"""Helpers the protocol adapters share: fast JSON answers and reading the body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from modelport.errors import ModelNotFound

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.traffic.router import TrafficRouter

__all__ = ["json_response", "parse_version", "plane_of", "read_body", "traffic_of"]


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
    if not version.isdigit() or int(version) < 1:
        raise ModelNotFound(f"no version {version!r}: versions are positive integers")
    return int(version)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer serialised with orjson (numpy scalars and arrays included)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


async def read_body(request: Request) -> bytes:
    """The request body; the size limit is enforced by
    :class:`modelport.server.limits.BodyLimit`."""
    return await request.body()
