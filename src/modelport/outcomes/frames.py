"""Messages between the server and its outcome writer process (:mod:`.child`, :mod:`.sink`):
a 4-byte length, then a pickle, over a pipe both ends of which this package opened.

The pipe joins two processes of one server, one of which started the other, so pickle is safe
here: nothing else can write to it. The server's end is non-blocking and every wait has a
deadline (a writer process that stops answering never holds the server's writer thread up);
the writer process's own end blocks.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time

from modelport.errors import WriterLost

__all__ = ["MAX_FRAME", "receive", "send"]

_HEADER = struct.Struct("<I")
MAX_FRAME = 1 << 30  # the writer sends a batch a piece at a time: a few hundred KB each
_CHUNK = 1 << 16


def send(fd: int, message: object, deadline: float | None = None) -> None:
    """Write one message by ``deadline`` (``time.monotonic()``; ``None`` only on a blocking
    descriptor); raises :class:`~modelport.errors.WriterLost` when the other end is gone or does
    not read in time."""
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(blob) > MAX_FRAME:
        raise WriterLost(f"a message of {len(blob)} bytes, past {MAX_FRAME}")
    for data in (memoryview(_HEADER.pack(len(blob))), memoryview(blob)):
        while data:
            _wait(fd, deadline, writing=True)
            try:
                written = os.write(fd, data[:_CHUNK])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise WriterLost("the other end of the pipe is closed") from exc
            data = data[written:]


def receive(fd: int, deadline: float | None = None) -> object:
    """Read one message by ``deadline`` (as :func:`send`'s); raises
    :class:`~modelport.errors.WriterLost` when the other end is gone (the end of the stream) or
    does not answer in time."""
    (size,) = _HEADER.unpack(_exactly(fd, _HEADER.size, deadline))
    if size > MAX_FRAME:
        raise WriterLost(f"a message of {size} bytes: the stream is not this protocol's")
    return pickle.loads(_exactly(fd, size, deadline))


def _exactly(fd: int, size: int, deadline: float | None) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        _wait(fd, deadline, writing=False)
        try:
            part = os.read(fd, min(left, _CHUNK))
        except BlockingIOError:
            continue
        if not part:
            raise WriterLost("the other end of the pipe is closed")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _wait(fd: int, deadline: float | None, writing: bool) -> None:
    """Until ``fd`` can be written (or read); at once on a blocking descriptor."""
    if deadline is None:
        return  # a blocking descriptor: the read or write itself waits
    left = deadline - time.monotonic()
    poller = select.poll()  # (select() fails on a descriptor above 1023: a busy server's)
    poller.register(fd, select.POLLOUT if writing else select.POLLIN)
    if left <= 0 or not poller.poll(left * 1000):
        raise WriterLost("no answer in time")
