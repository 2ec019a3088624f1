"""The HTTP/1.1 protocol modelport serves: uvicorn's httptools protocol plus the limits it lacks.

uvicorn bounds neither the size of a request's head nor the time a client may take to send it,
and its ``limit_concurrency`` answers a plain-text 503 only once the headers are in. This
subclass adds, per connection (the settings are in :class:`~modelport.settings.Settings`):

- **Head size**: the request line and headers may take ``max_header_bytes``, counted as the bytes
  arrive (so httptools never holds more than that plus one read), and ``max_headers`` lines.
  Past either: 431, and the connection is closed.
- **Header timeout**: a request's line and headers must arrive within ``header_timeout`` of the
  connection (or of the request's first byte on a kept-alive connection): 408 and close once a
  request began, a plain close if nothing came.
- **Body timeout**: the body must arrive within ``body_timeout`` of the headers: 408 and close,
  unless the app answered already.
- **Keep-alive**: an idle connection is closed ``keepalive_timeout`` after its last answer.
- **Connections**: a connection opened while ``max_connections`` are open gets 503 with
  ``Retry-After`` for its request, and is closed, before the app sees it.
- **Shedding**: while a model is overloaded, a prediction it refuses gets its 503 with
  ``Retry-After`` from here, as soon as the request's head is in, with no ASGI task (the app's
  pipeline decides: :class:`~modelport.server.pipeline.Shedder`, found in the lifespan state).
  The connection is kept open and the request's body, if any, is read and dropped; a request
  that announced a large or chunked body, ``Expect: 100-continue`` or no keep-alive gets the
  same answer with the connection closed.

The answers have modelport's one error body (:func:`~modelport.protocols._http.error_body`).

Cost: no timer is armed per request. A phase change stores a deadline (one read of the loop's
clock); one timer per connection wakes at most every ``tick`` seconds while a deadline is pending
and enforces whichever deadline has passed, so a limit acts at most ``tick`` late. An answer's
head and body leave in one write (:class:`~modelport.server.onewrite.OneWrite`), not two; a
prediction skips the app's stack (:mod:`~modelport.server.direct`).
"""

from __future__ import annotations

import asyncio
import resource
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from modelport.core.validation import ascii_int
from modelport.errors import HeadersTooLarge, ModelportError, Overloaded, RequestTimeout
from modelport.server.direct import LANE_HOOK, DirectAnswer, Lane, entry
from modelport.server.onewrite import OneWrite
from modelport.server.refusals import kept_open, raw_answer

if TYPE_CHECKING:
    from modelport.settings import Settings

__all__ = ["LimitedHttp", "Limits", "Shedding", "fd_room", "protocol_class"]

_FD_RESERVE = 128  # descriptors kept for model files, the outcome store, logs, the listener
SHED_HOOK = "modelport.shed"  # where the app's pipeline puts its shedder in the lifespan state
_SHED_KEEP_BODY = 64 * 1024  # a shed request's body up to this is read and dropped; past it: close

# What a connection waits for; the order matters (head bytes are counted up to _HEAD).
_NEW, _IDLE, _HEAD, _BODY, _APP = range(5)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may take; from :meth:`from_settings`."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 8192

    @classmethod
    def from_settings(cls, settings: Settings, max_connections: int | None = None) -> Limits:
        return cls(
            settings.max_header_bytes,
            settings.max_headers,
            settings.header_timeout,
            settings.body_timeout,
            settings.keepalive_timeout,
            settings.max_connections if max_connections is None else max_connections,
        )

    @property
    def tick(self) -> float:
        """How late a timeout may act at most: half the shortest one."""
        return min(self.header_timeout, self.body_timeout, self.keepalive_timeout) / 2


def fd_room(wanted: int) -> int:
    """Connections this process can hold, up to ``wanted``: raises the soft limit on open files
    towards the hard one when needed, and keeps ``_FD_RESERVE`` descriptors for everything else,
    so that past the limit a client gets a 503 rather than a reset."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # not allowed here: live with the soft limit
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _FD_RESERVE))


class Shedding(Protocol):
    """What the protocol asks before it starts a request (the app's pipeline answers)."""

    @property
    def armed(self) -> bool: ...

    def refuse(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
    ) -> tuple[ModelportError, str] | None:
        """The refusal and the request's id, or ``None`` to serve the request."""


@dataclass(frozen=True, slots=True)
class _Answers:
    too_large: bytes
    too_many: bytes
    slow_head: bytes
    slow_body: bytes
    busy: bytes

    @classmethod
    def of(cls, limits: Limits) -> _Answers:
        return cls(
            raw_answer(HeadersTooLarge(f"request headers past {limits.max_header_bytes} bytes")),
            raw_answer(HeadersTooLarge(f"more than {limits.max_headers} request headers")),
            raw_answer(RequestTimeout(f"request headers took over {limits.header_timeout:g} s")),
            raw_answer(RequestTimeout(f"request body took over {limits.body_timeout:g} s")),
            raw_answer(
                Overloaded(f"the server holds {limits.max_connections} connections already")
            ),
        )


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the answer is in ``_refusal``."""


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with modelport's limits (bound by :func:`protocol_class`)."""

    limits: ClassVar[Limits] = Limits()
    answers: ClassVar[_Answers] = _Answers.of(limits)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _NEW
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes received while a request's head was awaited
        self._refusal: bytes | None = None
        self._over = False
        self._shedding = False  # a refused request's body is being dropped
        # uvicorn's own access log, or fresh context variables per request, are done by its own
        # request cycle only: when either is asked for, predictions go that way too
        extras = self.access_log or getattr(self.config, "reset_contextvars", False)
        self._lane_allowed = not extras

    # --- deadlines ---

    def _expect(self, phase: int, seconds: float) -> None:
        self._phase = phase
        now = self.loop.time()
        self._deadline = now + seconds
        if self._timer is None:
            wake = min(self._deadline, now + self.limits.tick)
            self._timer = self.loop.call_at(wake, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._phase == _APP or self.transport.is_closing():
            return  # nothing is awaited from the client: no timer until something is
        now = self.loop.time()
        if now < self._deadline:
            wake = min(self._deadline, now + self.limits.tick)
            self._timer = self.loop.call_at(wake, self._expire)
            return
        self._timed_out()

    def _timed_out(self) -> None:
        phase, cycle = self._phase, self.cycle
        self._phase = _APP
        if phase in (_NEW, _IDLE) or self.pipeline or self._shedding:
            self.transport.close()  # nothing asked; answers still queued; a shed body too slow
        elif phase == _HEAD and (cycle is None or cycle.response_complete):
            self._answer(self.answers.slow_head)
        elif phase == _BODY and not cycle.response_started:
            cycle.disconnected = True  # the app's own answer, if any, is dropped
            cycle.message_event.set()
            self._answer(self.answers.slow_body)
        elif phase == _HEAD or cycle.response_complete:
            self.transport.close()
        # else the app is answering this request: the answer ends it (keep-alive deadline then)

    def _answer(self, raw: bytes) -> None:
        self.transport.write(raw)
        self.transport.close()

    # --- connection and parser events ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over = len(self.connections) > self.limits.max_connections
        self._expect(_NEW, self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._phase = _APP
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._phase <= _HEAD:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return
        if self._phase <= _HEAD and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(self.answers.too_large)

    def _refuse(self, raw: bytes) -> None:
        self._refusal = None
        self._phase = _APP
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # an answer is on its way: no second one can follow it
        else:
            self._answer(raw)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase == _NEW:  # the connection's first request: its deadline runs already
            self._phase = _HEAD
        else:
            self._expect(_HEAD, self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        refusal = self._head_refusal()
        if refusal is not None:
            self._refusal = refusal
            raise _Refused
        self._head_bytes = 0
        self._expect(_BODY, self.limits.body_timeout)
        if self._shed():
            return
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """A prediction takes the direct lane (:mod:`.direct`); the rest goes to ``app`` through
        uvicorn's cycle, its answers written in one piece (:class:`OneWrite`)."""
        lane: Lane | None = self.app_state.get(LANE_HOOK)
        if lane is not None and app is self.app and self._lane_allowed:
            run = entry(app, lane, self.app_state, cycle.scope["headers"])
            if run is not None and lane.takes(cycle.scope):
                task = self.loop.create_task(DirectAnswer(cycle).run(run))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        cycle.transport = OneWrite(self.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

    def _shed(self) -> bool:
        """Answer the request here when its model refuses it now (see the module docstring)."""
        shedding: Shedding | None = self.app_state.get(SHED_HOOK)
        if shedding is None or not shedding.armed:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # a pipelined request: the one before it is still being answered
        path = httptools.parse_url(self.url).path.decode("ascii", "replace")
        if "%" in path:
            path = urllib.parse.unquote(path)
        method = self.parser.get_method().decode("ascii", "replace")
        refusal = shedding.refuse(method, path, self.headers, self.client)
        if refusal is None:
            return False
        error, request_id = refusal
        keep = (
            self.parser.should_keep_alive()
            and not self.expect_100_continue
            and _declared(self.headers) <= _SHED_KEEP_BODY
        )
        if not keep:
            self._refusal = raw_answer(error)
            raise _Refused  # stop parsing: answered and closed by data_received
        self.transport.write(kept_open(error, request_id))
        self._shedding = True
        return True

    def on_body(self, body: bytes) -> None:
        if not self._shedding:
            super().on_body(body)

    def _head_refusal(self) -> bytes | None:
        if self._over:
            return self.answers.busy
        if len(self.headers) > self.limits.max_headers:
            return self.answers.too_many
        if self._head_bytes > self.limits.max_header_bytes:  # this read held more than the head:
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)  # measure it
            if size > self.limits.max_header_bytes:
                return self.answers.too_large
        return None

    def on_message_complete(self) -> None:
        if self._shedding:  # its answer went out with its head
            self._shedding = False
            self.server_state.total_requests += 1
            self._expect(_IDLE, self.limits.keepalive_timeout)
            return
        if self.cycle.response_complete:  # answered before its body was read
            self._expect(_IDLE, self.limits.keepalive_timeout)
        else:
            self._phase = _APP
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive deadline in place of a timer armed per request."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._phase == _APP:  # (a next request may be arriving already)
            self._expect(_IDLE, self.limits.keepalive_timeout)


def _declared(headers: list[tuple[bytes, bytes]]) -> int:
    """The body length a request announced; chunked (or unreadable) counts as unbounded."""
    for name, value in headers:
        if name == b"content-length":
            length = ascii_int(value, 18)
            return _UNBOUNDED if length is None else length
        if name == b"transfer-encoding":
            return _UNBOUNDED
    return 0


_UNBOUNDED = 1 << 62


def protocol_class(limits: Limits) -> type[LimitedHttp]:
    """The protocol class to give uvicorn (``Config(http=...)``), with ``limits`` bound."""

    class Bound(LimitedHttp):
        pass

    Bound.limits = limits
    Bound.answers = _Answers.of(limits)
    return Bound
