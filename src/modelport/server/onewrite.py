"""One write per answer: the transport a uvicorn request cycle writes its answer through.

Used by :class:`~modelport.server.protocol.LimitedHttp`, which gives each new cycle one.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["JOIN_BYTES", "OneWrite"]

JOIN_BYTES = 64 * 1024  # an answer's body up to this is copied behind its head, for one write


class OneWrite:
    """The transport as one request's uvicorn cycle sees it: the head of an answer that
    declares its length is held back and goes out with the answer's first body bytes, in one
    write. uvicorn writes the two apart, and each write is a ``send(2)`` that delivers a segment:
    two of them cost the event loop about 3 us a request more than one (some 5 % of a small
    model's throughput at 64 connections, in alternating runs). Everything else passes through
    at once: a ``100 Continue``, a chunked head (its body may come much later), the head of a
    ``HEAD`` request (no body follows), and every write after the first body bytes.

    The cycle holds this object as its transport, and this object reads the cycle's state until
    the head is out; then it lets go of the cycle, so the two make no reference cycle that only
    the garbage collector could free (one per request, which cost more than the write saved).
    """

    __slots__ = ("_cycle", "_head", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle  # None once the answer's head went out: everything passes
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        cycle = self._cycle
        if cycle is None:
            self._transport.write(data)
            return
        head = self._head
        if head is not None:  # the first body bytes (b"" for an empty body)
            self._head = self._cycle = None
            if len(data) <= JOIN_BYTES:
                self._transport.write(head + data)
            else:  # a copy of a large body would cost more than the second write
                self._transport.write(head)
                self._transport.write(data)
            return
        if not cycle.response_started:  # 100 Continue: the client waits for it
            self._transport.write(data)
        elif cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
            self._head = data
        else:
            self._cycle = None
            self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        """Close, after a head still held (an app that failed between head and body: the
        client sees the head and the close, as it would without holding)."""
        head, self._head, self._cycle = self._head, None, None
        if head is not None:
            self._transport.write(head)
        self._transport.close()
