"""The one request pipeline: the only ASGI middleware, which every HTTP request passes once.

Per request it makes one :class:`~modelport.core.context.RequestInfo` (the caller's
``X-Request-Id`` when it is a sane token, else a new one), does one route match against the
prediction table (:mod:`modelport.protocols.routes`) and reads the clock twice: at arrival and
when the answer is sent. Then:

1. ``GET /metrics`` is answered here (unless the metrics have their own port);
2. a prediction needs an inference key when one is set (401), whose caller scope it records
   under (:mod:`modelport.protocols.auth`);
3. a body larger than ``max_body_bytes`` is refused (413), by ``Content-Length`` at once, else
   while it streams; while a model is overloaded, a prediction it would refuse gets its 503
   before its body is read (:meth:`~modelport.core.dataplane.DataPlane.admit`), and before
   any of this: the HTTP protocol asks the pipeline's :class:`Shedder` (offered to it in the
   lifespan state under ``protocol.SHED_HOOK``) as soon as a request's head is in, and answers the
   refusal itself, without an ASGI task;
4. predictions on every protocol are served by their handler directly; every other path goes
   to the FastAPI app. The HTTP protocol hands a prediction (:meth:`Pipeline.takes`, which
   matches its route, once) to this pipeline without the app's stack around it
   (:mod:`~modelport.server.direct`), and this pipeline's writer hands its answer over whole;
5. every answer carries ``X-Request-Id`` (and ``X-Model-Variant`` for a routed prediction), and
   every error has the one body shape (``{"error", "detail", "code"}``);
6. one observing step (:class:`~modelport.server.observe.Observe`) records the metrics, the
   access log line, the outcome and the canary's view of the answer, and the versions the
   request held are released.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.core import context
from modelport.core.validation import ascii_int
from modelport.errors import (
    MethodNotAllowed,
    ModelportError,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
)
from modelport.protocols._http import JSON, Call, error_body
from modelport.protocols.auth import InferenceKeys, check_inference, inference_keys
from modelport.protocols.routes import Match, match
from modelport.server.direct import LANE_HOOK
from modelport.server.protocol import SHED_HOOK

if TYPE_CHECKING:
    from modelport.core.dataplane import DataPlane
    from modelport.observability.tracing import Tracing
    from modelport.server.observe import Observe
    from modelport.settings import Settings

__all__ = ["METRICS_PATH", "Pipeline", "Shedder"]

METRICS_PATH = "/metrics"
_ROUTE = "modelport.route"  # a prediction's route, when the protocol asked :meth:`Pipeline.takes`
_UNMATCHED = object()
log = logging.getLogger("modelport.server")


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            return ascii_int(value, 18)
    return None


class Shedder:
    """Which predictions an overloaded model refuses, asked by the HTTP protocol
    (:class:`~modelport.server.protocol.LimitedHttp`) the moment a request's head is in.

    Under overload most requests are refused; answering each through an ASGI task, the app and
    this pipeline costs several times what answering it from the protocol does, and that time
    comes out of the event loop the admitted requests need. So while any model's queue stands
    (:attr:`armed`: one set lookup, all the protocol pays otherwise), the protocol asks
    :meth:`refuse`, answers a refusal itself and skips the body. The answer is the one the
    pipeline would give: the same check (:meth:`~modelport.core.dataplane.DataPlane.admit`),
    after the same route match and key check (a caller without a valid key gets its 401 from
    the pipeline instead), the same error body, and the same metrics and access log line.
    """

    __slots__ = ("keys", "observe", "plane")

    def __init__(self, plane: DataPlane, keys: InferenceKeys, observe: Observe) -> None:
        self.plane = plane
        self.keys = keys
        self.observe = observe

    @property
    def armed(self) -> bool:
        return bool(self.plane.standing)

    def refuse(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
    ) -> tuple[Overloaded, str] | None:
        """The 503 for this request and its id, or ``None`` to serve it as usual."""
        route = match(path) if method == "POST" else None
        if route is None or route.error is not None:
            return None
        try:
            if self.keys:
                check_inference(headers, self.keys)
            self.plane.admit(route.model, route.version)
        except Overloaded as exc:
            request_id = context.request_id(headers)
            self.observe.shed(route, method, path, client, request_id)
            return exc, request_id
        except ModelportError:  # no valid key: the pipeline answers the 401
            return None
        return None


class Pipeline:
    """Serve, answer and observe every HTTP request; the FastAPI ``app`` is inside it."""

    def __init__(
        self,
        app: ASGIApp,
        plane: DataPlane,
        settings: Settings,
        observe: Observe,
        tracing: Tracing | None = None,
        owner: object = None,
    ) -> None:
        self.app = app
        self.owner = owner  # the ASGI app whose stack this pipeline heads (the lane checks it)
        self.plane = plane
        self.settings = settings
        self.observe = observe
        self.tracing = tracing
        self.max_body = settings.max_body_bytes
        self.keys = inference_keys(settings.inference_key)
        self.serve_metrics = settings.metrics_port is None
        self.shedder = Shedder(plane, self.keys, observe)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and "state" in scope:  # offered to the protocol
                scope["state"][SHED_HOOK] = self.shedder
                scope["state"][LANE_HOOK] = self
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if self.serve_metrics and scope["path"] == METRICS_PATH:
            await self.observe.expose(scope["method"], send)
            return
        headers = scope["headers"]
        info = context.RequestInfo(context.request_id(headers), headers, started)
        token = context.bind(info)
        route = scope.get(_ROUTE, _UNMATCHED)
        if route is _UNMATCHED:
            route = match(scope["path"])
        answer = _Answer(send, info)
        self.observe.arrived()
        try:
            if self.tracing is not None:
                with self.tracing.request(scope, started) as span:
                    await self._serve(scope, receive, answer, route)
                    span.finish(self.observe.endpoint(scope, route), answer.status, info)
            else:
                await self._serve(scope, receive, answer, route)
        finally:
            context.unbind(token)
            info.release()
            seconds = (answer.ended or time.perf_counter()) - started
            self.observe.answered(scope, route, info, answer.status, seconds)

    def takes(self, scope: Scope) -> bool:
        """Whether this is a prediction, which the protocol may hand to this pipeline directly
        (:mod:`~modelport.server.direct`): its route is kept in the scope, matched once."""
        if scope["method"] != "POST":
            return False
        route = match(scope["path"])
        if route is None:
            return False
        scope[_ROUTE] = route
        return True

    async def _serve(
        self, scope: Scope, receive: Receive, answer: _Answer, route: Match | None
    ) -> None:
        try:
            declared = _declared_length(scope["headers"])
            if declared is not None and declared > self.max_body:
                raise self._too_large()
            if route is None:
                await self.app(scope, self._limited(receive), answer.forward)
                return
            self._check(scope, route, answer.info)
            body = await self._read(receive)
            info = answer.info
            call = Call(
                self.plane,
                self.settings,
                route.model,
                route.version,
                body,
                info.headers,
                info.request_id,
            )
            reply = await route.handler(call)
            answer.ended = time.perf_counter()  # the request's second and last clock read
            elapsed_ms = (answer.ended - info.started) * 1000
            headers = {**reply.headers, "Server-Timing": f"app;dur={elapsed_ms:.2f}"}
            await answer.send(reply.status, reply.body(), headers, reply.media_type)
        except ModelportError as exc:
            if exc.status >= 500 and not isinstance(exc, Overloaded):  # shedding is no fault
                log.error("%s %s: %s", scope["method"], scope["path"], exc.message)
            await answer.error(exc)
        except Exception as exc:
            if answer.started:  # the app answered (and logged) it
                return
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await answer.error(ModelportError(f"internal error: {type(exc).__name__}"))

    def _check(self, scope: Scope, route: Match, info: context.RequestInfo) -> None:
        """What refuses a prediction before its body is read: its route, method, key, and an
        overloaded model. (The prediction itself is served in :meth:`_serve`, not in a
        coroutine of its own: each one between the request's task and the batcher is entered on
        the way in and resumed on the way out.)"""
        if route.error is not None:
            raise route.error
        if scope["method"] != "POST":
            raise MethodNotAllowed()
        if self.keys:
            info.scope = check_inference(scope["headers"], self.keys)
        if self.plane.standing:  # overload: refuse at once, before reading or parsing the body
            self.plane.admit(route.model, route.version)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than the limit of {self.max_body} bytes")

    async def _read(self, receive: Receive) -> bytes:
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone, or cut off by the body timeout
                raise RequestTimeout("the connection closed before the whole body arrived")
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_large()
            return message

        return limited


class _Answer:
    """The one response writer: raw ASGI messages with the request's id (and variant), or,
    where ``send`` has a ``whole`` beside it (the direct lane's:
    :meth:`~modelport.server.direct.DirectAnswer.whole`), the same answer handed over whole."""

    __slots__ = ("_send", "_whole", "ended", "info", "started", "status")

    def __init__(self, send: Send, info: context.RequestInfo) -> None:
        self._send = send
        self._whole: Callable[[int, list[tuple[bytes, bytes]], bytes], bool] | None = getattr(
            send, "whole", None
        )
        self.info = info
        self.status = 500  # until an answer starts
        self.started = False
        self.ended: float | None = None  # when a prediction's answer was ready

    def _ours(self) -> list[tuple[bytes, bytes]]:
        extra = [(b"x-request-id", self.info.request_id.encode("ascii"))]
        if self.info.variant:
            extra.append((b"x-model-variant", self.info.variant.encode("latin-1")))
        return extra

    async def send(
        self, status: int, body: bytes, headers: dict[str, str], media_type: str = JSON
    ) -> None:
        raw = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
            *self._ours(),
        ]
        self.status, self.started = status, True
        if self._whole is not None and self._whole(status, raw, body):
            return
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        await self._send({"type": "http.response.body", "body": body})

    async def error(self, error: ModelportError) -> None:
        if self.started:  # the answer is on its way: nothing more can be said
            return
        await self.send(int(error.status), error_body(error), error.headers())

    async def forward(self, message: Message) -> None:
        """``send`` for the FastAPI app: its answers get the same request headers."""
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
            message = {**message, "headers": headers + self._ours()}
        await self._send(message)
