"""The direct lane: a prediction handed to the pipeline without the ASGI stack around it.

uvicorn gives every request to the app it was configured with: its proxy-header middleware, then
FastAPI's and Starlette's ``__call__``, then modelport's pipeline, which serves a prediction itself
and never goes further in. Its ``receive`` waits on an event for the body, and its ``send``
checks every header of the answer with two regular expressions and writes head and body apart.

For a ``POST`` to a prediction route (the pipeline's :class:`Lane` says which),
:class:`~modelport.server.protocol.LimitedHttp` runs the pipeline through a
:class:`DirectAnswer` instead, behind uvicorn's proxy-header handling only when the request has
such headers (:func:`entry`). It hands over the body at once when all of it is in, and writes an
answer that declares its length in one piece, head and body, after uvicorn's checks of its
headers, done on all of them at once. Anything else (a body still arriving, ``Expect:
100-continue``, a chunked or streamed answer, a ``Connection`` header, writes paused by flow
control) goes to uvicorn's own ``receive`` and ``send``: the client sees byte for byte what it
would otherwise. This took some 4 % off a small model's time per prediction (alternating runs).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

from modelport.server.onewrite import JOIN_BYTES

__all__ = ["LANE_HOOK", "DirectAnswer", "Lane", "entry"]

LANE_HOOK = "modelport.lane"  # where the app's pipeline puts its lane in the lifespan state
_PROXIED = "modelport.lane.proxied"  # how the lane runs, decided once per server (:func:`entry`)
_PASS = frozenset({b"connection", b"transfer-encoding"})  # answers uvicorn's send shapes itself


class Lane(Protocol):
    """The app's pipeline as the protocol sees it (found in the lifespan state)."""

    @property
    def owner(self) -> object:
        """The ASGI app whose stack the pipeline heads."""

    def takes(self, scope: Any) -> bool:
        """Whether the pipeline serves this request itself (recording its route in ``scope``)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


def entry(app: Any, lane: Lane, state: dict[str, Any], headers: Any) -> Any:
    """What runs a request with ``headers`` down ``lane``, or ``None`` when the lane is not to
    be taken at all: ``app`` (what uvicorn calls) must be the lane's own app, or that app behind
    uvicorn's proxy-header handling and nothing else. Anything a user wrapped around it (their
    authentication, tracing, uvicorn's trace-level message logging) sees every request, so then
    every request goes the usual way. Decided once per server, kept in its lifespan ``state``.

    The lane runs behind a copy of that proxy-header handling only for a request with
    ``X-Forwarded-*`` headers: without them it changes nothing, and skipping it skips a coroutine.
    """
    proxied = state.get(_PROXIED)
    if proxied is None:
        if app is lane.owner:
            proxied = lane
        elif isinstance(app, ProxyHeadersMiddleware) and app.app is lane.owner:
            proxied = copy.copy(app)  # the same trusted hosts, around the lane
            proxied.app = lane
        else:
            proxied = False
        state[_PROXIED] = proxied
    if proxied is False or proxied is lane:
        return proxied or None
    for name, _value in headers:
        if name.startswith(b"x-forwarded-"):
            return proxied
    return lane


def _nothing() -> None:
    pass


class DirectAnswer:
    """``receive`` and ``send`` (the object itself, with :meth:`whole` beside it) for one
    request's uvicorn cycle, and the task that runs the pipeline with them (:meth:`run`, which
    ends the request as uvicorn's ``run_asgi`` does)."""

    __slots__ = ("_cycle", "_head", "_read")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self._head: bytes | None = None  # an answer's head, until its body comes
        self._read = False  # the whole body was handed over

    async def run(self, app: Any) -> None:
        cycle = self._cycle
        try:
            await app(cycle.scope, self.receive, self)  # this object is the app's send
        except BaseException as exc:
            cycle.logger.error("Exception in ASGI application\n", exc_info=exc)
            self._flush()
            if not cycle.response_started:
                await cycle.send_500_response()
            else:
                cycle.transport.close()
        else:
            self._flush()
            if not cycle.response_started and not cycle.disconnected:
                cycle.logger.error("ASGI callable returned without starting response.")
                await cycle.send_500_response()
            elif not cycle.response_complete and not cycle.disconnected:
                cycle.logger.error("ASGI callable returned without completing response.")
                cycle.transport.close()
        finally:
            cycle.on_response = _nothing

    async def receive(self) -> Any:
        cycle = self._cycle
        if (
            self._read
            or cycle.more_body
            or cycle.waiting_for_100_continue
            or cycle.disconnected
            or cycle.response_complete
        ):
            return await cycle.receive()
        self._read = True
        cycle.flow.resume_reading()
        cycle.message_event.clear()
        body, cycle.body = bytes(cycle.body), bytearray()
        return {"type": "http.request", "body": body, "more_body": False}

    async def __call__(self, message: Any) -> None:
        """The app's ``send``."""
        cycle = self._cycle
        head = self._head
        if head is not None:
            self._head = None
            whole = message["type"] == "http.response.body" and not message.get("more_body")
            body = message.get("body", b"")
            if whole and not cycle.disconnected and len(body) == cycle.expected_content_length:
                self._write(head, body)
                return
            if not cycle.disconnected:
                self._cycle.transport.write(head)
        elif message["type"] == "http.response.start" and self._free():
            shaped = self._shape(message["status"], message.get("headers", ()))
            if shaped is not None:
                self._head = self._begin(*shaped)
                return
        await cycle.send(message)

    def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        """Write a whole answer now, as ``send`` would from its two messages: ``False``
        (nothing done) when it is to go as messages instead. The pipeline's response writer
        calls this first (:class:`~modelport.server.pipeline.Pipeline`): two coroutines and
        two messages fewer per answer."""
        if not self._free():
            return False
        shaped = self._shape(status, headers)
        if shaped is None or shaped[1] != len(body):
            return False
        self._write(self._begin(*shaped), body)
        return True

    def _free(self) -> bool:
        """Whether an answer may start here: none has, and nothing holds it back."""
        cycle = self._cycle
        return not (cycle.response_started or cycle.disconnected or cycle.flow.write_paused)

    def _shape(self, status: int, headers: Any) -> tuple[bytes, int] | None:
        """An answer's head and length; ``None`` when uvicorn's own ``send`` is to shape it."""
        cycle = self._cycle
        line = STATUS_LINE.get(status)
        if line is None:
            return None
        parts, names, values = [line], [], []
        length = None
        for name, value in (*cycle.default_headers, *headers):
            name = name.lower()
            if name == b"content-length":
                length = value if length is None else length  # the first, as uvicorn reads it
            elif name in _PASS:
                return None
            names.append(name)
            values.append(value)
            parts += (name, b": ", value, b"\r\n")
        if length is None or not length.isdigit():
            return None
        if HEADER_RE.search(b"".join(names)) or HEADER_VALUE_RE.search(b"".join(values)):
            return None  # uvicorn's send refuses it (500)
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts), int(length)

    def _begin(self, head: bytes, length: int) -> bytes:
        """The cycle's state once an answer of ``length`` bytes started, as uvicorn sets it."""
        cycle = self._cycle
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = False
        cycle.expected_content_length = length
        return head

    def _write(self, head: bytes, body: bytes) -> None:
        """The whole answer, then the cycle's end as uvicorn's ``send`` ends it."""
        cycle = self._cycle
        transport = cycle.transport
        if len(body) <= JOIN_BYTES:
            transport.write(head + body)
        else:  # a copy of a large body would cost more than the second write
            transport.write(head)
            transport.write(body)
        cycle.expected_content_length = 0
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            transport.close()
        cycle.on_response()

    def _flush(self) -> None:
        """Send a head still held (the app failed between head and body)."""
        head, self._head = self._head, None
        if head is not None and not self._cycle.disconnected:
            self._cycle.transport.write(head)
