"""Per-request context shared by every layer: the request id, and what served the request.

The server's pipeline makes one :class:`RequestInfo` per request and holds it in a contextvar for
the request's lifetime. Layers below record what served the request (model, version, traffic
variant) in the same object, so metrics, logs and traffic records read one source and never pass
ids around by hand.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.core.result import InferenceResult

__all__ = ["RequestInfo", "current", "new_request_id", "use"]


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
