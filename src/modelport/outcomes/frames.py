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

__all__ = ["MAX_FRAME", "Reader", "encode", "send", "write"]

_HEADER = struct.Struct("<I")
MAX_FRAME = 1 << 30  # a message holds at most 2,500 records: about 0.1 KB each
_CHUNK = 1 << 16


def encode(message: object) -> bytes:
    """One message as it goes down the pipe: its length, then its pickle."""
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(blob) > MAX_FRAME:
        raise WriterLost(f"a message of {len(blob)} bytes, past {MAX_FRAME}")
    return _HEADER.pack(len(blob)) + blob


def send(fd: int, message: object, deadline: float | None = None) -> None:
    """Write one message by ``deadline`` (:func:`write`)."""
    write(fd, encode(message), deadline)


def write(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write ``data`` (messages :func:`encode` made) by ``deadline`` (``time.monotonic()``;
    ``None`` only on a blocking descriptor); raises :class:`~modelport.errors.WriterLost` when
    the other end is gone or does not read in time. Each write takes what the pipe can hold: a
    batch that fits is one system call (each one hands the GIL back and forth with the event
    loop), and the descriptor is polled only when the pipe is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            _wait(fd, deadline, writing=True)
            continue
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise WriterLost("the other end of the pipe is closed") from exc
        view = view[written:]


class Reader:
    """The messages that arrive on ``fd``, read up to 64 KB at a time (an answer and the log
    records before it are usually one read). A message leaves the buffer only once it is whole,
    so one that is late is still whole at the next call."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def receive(self, deadline: float | None = None) -> object:
        """The next message by ``deadline`` (as :func:`write`'s); raises
        :class:`~modelport.errors.WriterLost` when the other end is gone (the end of the stream)
        or does not answer in time."""
        self._fill(_HEADER.size, deadline)
        (size,) = _HEADER.unpack_from(self._buffer)
        if size > MAX_FRAME:
            raise WriterLost(f"a message of {size} bytes: the stream is not this protocol's")
        end = _HEADER.size + size
        self._fill(end, deadline)
        with memoryview(self._buffer) as whole, whole[_HEADER.size : end] as blob:
            message = pickle.loads(blob)
        del self._buffer[:end]
        return message

    def _fill(self, size: int, deadline: float | None) -> None:
        """Read until the buffer holds ``size`` bytes."""
        while len(self._buffer) < size:
            _wait(self.fd, deadline, writing=False)
            try:
                part = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                continue
            if not part:
                raise WriterLost("the other end of the pipe is closed")
            self._buffer += part


def _wait(fd: int, deadline: float | None, writing: bool) -> None:
    """Until ``fd`` can be written (or read); at once on a blocking descriptor."""
    if deadline is None:
        return  # a blocking descriptor: the read or write itself waits
    left = deadline - time.monotonic()
    poller = select.poll()  # (select() fails on a descriptor above 1023: a busy server's)
    poller.register(fd, select.POLLOUT if writing else select.POLLIN)
    if left <= 0 or not poller.poll(left * 1000):
        raise WriterLost("no answer in time")
