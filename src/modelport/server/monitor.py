"""Pure ASGI middleware that measures every request: metrics, the access log and a trace span.

It sits just inside :class:`modelport.core.context.RequestIds`, so the request id and what served
the
request (model, version, variant, filled in by the data plane and traffic policy) are in
:func:`modelport.core.context.current` when the answer has gone. It also answers ``GET /metrics``
(unless the metrics are served on their own port); scrapes are not counted.

The access log is one line per request on the ``modelport.access`` logger, with ``request_id``,
``method``, ``path``, ``endpoint``, ``status``, ``duration_ms``, ``model``, ``version``,
``variant`` and ``client`` as record attributes (the JSON formatter writes them all).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from modelport.core import context
from modelport.protocols import predict

if TYPE_CHECKING:
    from modelport.core.registry import Registry
    from modelport.observability.metrics import Metrics
    from modelport.observability.tracing import Tracing
    from modelport.settings import Settings

__all__ = ["METRICS_PATH", "Monitor", "endpoint_of", "observers"]

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"
access_log = logging.getLogger("modelport.access")

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_FAST = [(pattern, _GROUP.sub(r"{\1}", pattern.pattern)) for pattern, _ in predict.ROUTES]


@functools.lru_cache(maxsize=1024)
def _fast_endpoint(path: str) -> str:
    for pattern, template in _FAST:
        if pattern.fullmatch(path):
            return template
    return UNMATCHED


def endpoint_of(scope: Scope) -> str:
    """The route template that served ``scope`` (never the raw path: labels stay few)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    return _fast_endpoint(scope["path"])


def protocol_of(endpoint: str) -> str:
    if endpoint.startswith("/v1/"):
        return "v1"
    if endpoint.startswith("/v2"):
        return "v2"
    return "other" if endpoint == UNMATCHED else "tutorial"


class Monitor:
    """Record each HTTP request in ``metrics``, the access log and (optionally) a trace."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        *,
        serve_metrics: bool = True,
        log_requests: bool = True,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.serve_metrics = serve_metrics
        self.log_requests = log_requests
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.serve_metrics and scope["path"] == METRICS_PATH:
            await self._expose(scope, send)
            return
        info = context.current()  # RequestIds (outside) records the answer's status in it
        started = info.started if info is not None else time.perf_counter()
        span = self.tracing.request(scope) if self.tracing else contextlib.nullcontext()
        self.metrics.in_flight.inc()
        try:
            with span as recorder:
                await self.app(scope, receive, send)
                if recorder is not None:
                    recorder.finish(endpoint_of(scope), _status(info))
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, _status(info), time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        endpoint = endpoint_of(scope)
        self.metrics.request(protocol_of(endpoint), endpoint, scope["method"], status, seconds)
        if self.log_requests and access_log.isEnabledFor(logging.INFO):
            _log_access(scope, endpoint, status, seconds)

    async def _expose(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, b"Method Not Allowed\n", b"text/plain", [(b"allow", b"GET")])
            return
        body = self.metrics.exposition()
        await _answer(send, 200, body, self.metrics.content_type, [])


def _status(info: context.RequestInfo | None) -> int:
    return info.answer_status() if info is not None else 500


def observers(settings: Settings, registry: Registry) -> tuple[Metrics, Tracing | None]:
    """The metrics (and tracing, when enabled) of one app; imports their libraries now."""
    from modelport.observability.metrics import Metrics

    tracing = None
    if settings.tracing:
        from modelport.observability.tracing import Tracing

        tracing = Tracing.from_settings(settings)
    return Metrics(registry), tracing


def _log_access(scope: Scope, endpoint: str, status: int, seconds: float) -> None:
    info = context.current()
    client = scope.get("client")
    fields = {
        "request_id": info.request_id if info else None,
        "method": scope["method"],
        "path": scope["path"],
        "endpoint": endpoint,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "model": info.model if info else None,
        "version": info.version if info else None,
        "variant": info.variant if info else None,
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    access_log.info(
        '%s "%s %s" %d %.1fms',
        fields["client"] or "-",
        scope["method"],
        scope["path"],
        status,
        seconds * 1000,
        extra=fields,
    )


async def _answer(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    raw = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
