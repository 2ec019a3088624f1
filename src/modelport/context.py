"""Per-request context shared by every layer: the request id, and what served the request.

:class:`RequestIds` is pure ASGI middleware, outermost in the app. It takes the caller's
``X-Request-Id`` when it is a sane token (at most 128 printable ASCII characters without spaces)
and makes a new one otherwise, puts it in a :class:`RequestInfo` held by a contextvar for the
request's lifetime, and adds ``X-Request-Id`` to every answer on every protocol. Layers below
record what served the request (model, version, traffic variant) in the same object, so metrics,
logs and traffic records read one source and never pass ids around by hand.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from modelport.dataplane import InferenceResult

__all__ = ["RequestIds", "RequestInfo", "current", "new_request_id", "use"]

_TOKEN = re.compile(rb"[!-~]{1,128}")  # printable ASCII, no spaces


@dataclass(slots=True)
class RequestInfo:
    """What one request is and what answered it; mutable so inner layers can fill it in.

    ``started`` is when the request arrived, ``status`` and ``answered`` (both
    ``time.perf_counter()`` seconds) are set by :class:`RequestIds` when the answer starts, so
    the layers inside it read the outcome here instead of each wrapping ``send``.
    """

    request_id: str
    model: str | None = None
    version: int | None = None
    variant: str | None = None
    result: InferenceResult | None = None  # the prediction that answered (for the recorder)
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    answered: float | None = None

    def answer_status(self) -> int:
        """The answer's status; 500 when the app failed before answering."""
        return 500 if self.status is None else self.status

    def seconds_to_answer(self) -> float:
        """Seconds from arrival to the answer's start (to now, while there is none)."""
        return (self.answered or time.perf_counter()) - self.started


_current: ContextVar[RequestInfo | None] = ContextVar("modelport_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestInfo | None:
    """The request being served in this context, or ``None`` outside a request."""
    return _current.get()


@contextlib.contextmanager
def use(info: RequestInfo) -> Iterator[RequestInfo]:
    """Serve ``info`` as the current request inside the block (a shadow copy, a background job)."""
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


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
