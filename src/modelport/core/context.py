"""Per-request context shared by every layer: the request id, and what served the request.

The server's pipeline makes one :class:`RequestInfo` per request and holds it in a contextvar for
the request's lifetime. Layers below record what served the request (model, version, traffic
variant) in the same object, so metrics, logs and traffic records read one source and never pass
ids around by hand.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.core.registry import LoadedModel
    from modelport.core.result import InferenceResult

__all__ = ["RequestInfo", "bind", "current", "new_request_id", "unbind", "use"]


@dataclass(slots=True)
class RequestInfo:
    """What one request is and what answered it; mutable so inner layers can fill it in.

    ``started`` is when the request arrived (``time.perf_counter()`` seconds). The traffic
    router keeps the versions the request holds (``held``, released when it ends, so an unload
    can wait for requests in flight) and a pending shadow copy here; the data plane records the
    version that served and its result.
    """

    request_id: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    model: str | None = None
    version: int | None = None
    variant: str | None = None
    result: InferenceResult | None = None  # the prediction that answered
    held: list[LoadedModel] = field(default_factory=list)
    shadow: LoadedModel | None = None
    scope: str = ""

    def release(self) -> None:
        """Give back the versions this request held."""
        for model in self.held:
            model.inflight -= 1
        self.held.clear()


_current: ContextVar[RequestInfo | None] = ContextVar("modelport_request", default=None)


class _Ids:
    """Request ids: 16 random hex digits per process, then a 16-digit counter.

    As unique as a random UUID across processes and restarts, without a system call for
    randomness on every request; a forked worker draws its own prefix (a fork hook forgets the
    parent's: asking ``os.getpid()`` for every id was a system call per request).
    """

    def __init__(self) -> None:
        self.prefix = ""
        self.counter = itertools.count()
        self._hooked = False

    def next(self) -> str:
        if not self.prefix:
            self._draw()
        return f"{self.prefix}{next(self.counter):016x}"

    def _draw(self) -> None:
        if not self._hooked:  # (registered on first use: importing this module does nothing)
            os.register_at_fork(after_in_child=self._forget)
            self._hooked = True
        self.prefix = secrets.token_hex(8)

    def _forget(self) -> None:
        self.prefix = ""


_ids = _Ids()
_TOKEN = re.compile(rb"[!-~]{1,128}")  # printable ASCII, no spaces


def new_request_id() -> str:
    """A new request id: 32 lowercase hex digits, unique across processes and restarts."""
    return _ids.next()


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token (printable ASCII without spaces, at
    most 128 characters), else a new id."""
    for key, value in headers:
        if key == b"x-request-id":
            return value.decode("ascii") if _TOKEN.fullmatch(value) else new_request_id()
    return new_request_id()


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


def bind(info: RequestInfo) -> Token[RequestInfo | None]:
    """Make ``info`` the current request until :func:`unbind` (the server's pipeline)."""
    return _current.set(info)


def unbind(token: Token[RequestInfo | None]) -> None:
    _current.reset(token)
