"""The one observing step: each answered request becomes metrics, an access log line, an outcome
record and the automatic canary's view, read from its :class:`~modelport.core.context.RequestInfo`
once, after the answer has gone.

The access log (when on) is one line per request on the ``modelport.access`` logger
(:mod:`.access`).
Predictions on every protocol are recorded in the outcome store when, and only when, they
reached a model version: the traffic router resolved a loaded version and set the request's
``variant``. Their errors from then on (a body that does not fit the signature, a full queue, a
timeout) are recorded against that version; a request refused before (401, 404 for an unknown
model or version, 405, 413, 503 while loading) records nothing, so it can neither grow the store
nor invent a variant nor claim a request id. The id is stored in the request's caller scope
(:func:`~modelport.outcomes.records.scoped_id`). Scrapes of ``/metrics`` are not counted.

gRPC calls (:mod:`modelport.server.grpc_server`) go through :meth:`Observe.rpc_answered`: the same
metrics with protocol ``grpc``, the gRPC method's path as endpoint and method ``POST``, and the
HTTP status their gRPC status stands for as code (200 OK, 400 INVALID_ARGUMENT, 503 UNAVAILABLE,
...); ``ModelInfer`` calls that reached a model version are recorded as outcomes like REST
predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import Scope, Send

from modelport.core.context import RequestInfo
from modelport.outcomes.records import scoped_id
from modelport.protocols.routes import UNMATCHED, Match
from modelport.server import access

if TYPE_CHECKING:
    from modelport.observability.metrics import Metrics
    from modelport.outcomes.service import Outcomes
    from modelport.traffic.router import TrafficRouter

__all__ = ["Observe", "ObservedRpc"]

canary_log = logging.getLogger("modelport.traffic.canary")


class Observe:
    """Record answered requests; ``metrics`` is ``None`` when they are off."""

    def __init__(
        self,
        metrics: Metrics | None,
        outcomes: Outcomes,
        traffic: TrafficRouter,
        *,
        log_requests: bool = True,
        protocols: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics = metrics
        self.protocols = protocols or {}  # route template -> protocol label; else "other"
        self.outcomes = outcomes
        self.traffic = traffic
        self.log_requests = log_requests

    def arrived(self) -> None:
        if self.metrics is not None:
            self.metrics.arrived()

    @staticmethod
    def endpoint(scope: Scope, route: Match | None) -> str:
        """The route template that served ``scope`` (never the raw path: labels stay few)."""
        if route is not None:
            return route.endpoint
        template = getattr(scope.get("route"), "path", None)
        return template if isinstance(template, str) else UNMATCHED

    def answered(
        self, scope: Scope, route: Match | None, info: RequestInfo, status: int, seconds: float
    ) -> None:
        endpoint = self.endpoint(scope, route)
        if self.metrics is not None:
            self.metrics.left()
            protocol = (
                route.protocol if route is not None else self.protocols.get(endpoint, "other")
            )
            self.metrics.request(protocol, endpoint, scope["method"], status, seconds, info)
        if self.log_requests and access.access_log.isEnabledFor(logging.INFO):
            access.write(
                scope["method"], scope["path"], scope.get("client"), endpoint, status, seconds, info
            )
        if info.variant is not None and self.outcomes.recording:
            self._record(info, status, seconds)
        if info.variant == "canary" and info.model:
            self._canary(info, status, seconds)

    def shed(
        self,
        route: Match,
        method: str,
        path: str,
        client: tuple[str, int] | None,
        request_id: str,
    ) -> None:
        """A prediction its overloaded model refused before it started (answered 503 by the
        HTTP protocol, :class:`~modelport.server.pipeline.Shedder`): counted and logged like
        :meth:`answered` would, with no time spent and no version reached."""
        if self.metrics is not None:
            self.metrics.request(route.protocol, route.endpoint, method, 503, 0.0)
        if self.log_requests and access.access_log.isEnabledFor(logging.INFO):
            info = RequestInfo(request_id)
            access.write(method, path, client, route.endpoint, 503, 0.0, info)

    def rpc_answered(
        self, call: ObservedRpc, info: RequestInfo, status: int, seconds: float
    ) -> None:
        """A gRPC call answered with ``status`` (the HTTP status its gRPC status stands for)."""
        if self.metrics is not None:
            self.metrics.left()
            self.metrics.request("grpc", call.path, "POST", status, seconds, info)
        if self.log_requests and access.access_log.isEnabledFor(logging.INFO):
            client = _peer(call.peer)
            access.write("POST", call.path, client, call.path, status, seconds, info)
        if call.predicts and info.variant is not None and self.outcomes.recording:
            self._record(info, status, seconds)
        if info.variant == "canary" and info.model:
            self._canary(info, status, seconds)

    def _canary(self, info: RequestInfo, status: int, seconds: float) -> None:
        try:
            self.traffic.monitor.observe(info.model or "", status, seconds * 1000)
        except Exception:  # the answer is sent: a failed canary step must not raise
            canary_log.exception("canary step failed")

    def _record(self, info: RequestInfo, status: int, seconds: float) -> None:
        model, version, variant = info.model, info.version, info.variant
        if model is None or version is None or variant is None:
            return  # set together by the traffic router: never here
        request_id = scoped_id(info.scope, info.request_id) if info.scope else info.request_id
        result = info.result if status < 400 else None
        self.outcomes.record(
            request_id, info.started, model, version, variant, seconds * 1000, status, result
        )

    async def expose(self, method: str, send: Send) -> None:
        """Answer a scrape of ``/metrics``."""
        if self.metrics is None:
            body, status, kind = b'{"error":"metrics are off"}', 404, b"application/json"
        elif method not in ("GET", "HEAD"):
            body, status, kind = b"Method Not Allowed\n", 405, b"text/plain"
        else:
            body, status, kind = self.metrics.exposition(), 200, self.metrics.content_type
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        if status == 405:
            headers.append((b"allow", b"GET"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, slots=True)
class ObservedRpc:
    """A gRPC call as the observing step sees it: the method's path, the peer, and for a
    prediction the model and version it named."""

    path: str
    peer: str
    predicts: bool = False
    model: str | None = None
    version: int | None = None


def _peer(peer: str) -> tuple[str, int] | None:
    """gRPC's ``ipv4:127.0.0.1:5000`` (or ``ipv6:[::1]:5000``) as ``(host, port)``."""
    _, _, address = peer.partition(":")
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None
