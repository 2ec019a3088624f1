"""The answers the HTTP protocol writes itself, before or instead of the app: whole responses
as bytes, with modelport's one error body (:func:`~modelport.protocols._http.error_body`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from modelport.errors import ModelportError
from modelport.protocols._http import JSON, error_body

__all__ = ["kept_open", "raw_answer"]


def raw_answer(error: ModelportError, close: bool = True) -> bytes:
    """A whole answer, written by the protocol itself (ending the connection unless not
    ``close``)."""
    body = error_body(error)
    status = HTTPStatus(error.status)
    headers = {**error.headers(), "Connection": "close"} if close else error.headers()
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"content-type: {JSON}",
        f"content-length: {len(body)}",
        *(f"{name.lower()}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_KEPT_OPEN: dict[tuple[Any, ...], bytes] = {}


def kept_open(error: ModelportError, request_id: str) -> bytes:
    """A shed request's answer, connection kept open, with its ``X-Request-Id`` as every answer
    has. The rest is cached by the refusal's text and ``Retry-After`` (a few per model with the
    default ``max_retry_after_s``): under overload it is most of what the server writes."""
    key = (type(error), error.message, getattr(error, "retry_after", None))
    raw = _KEPT_OPEN.get(key)
    if raw is None:
        if len(_KEPT_OPEN) >= 256:
            _KEPT_OPEN.clear()
        raw = _KEPT_OPEN[key] = raw_answer(error, close=False)
    head, _, body = raw.partition(b"\r\n\r\n")
    return b"%s\r\nx-request-id: %s\r\n\r\n%s" % (head, request_id.encode("ascii"), body)
