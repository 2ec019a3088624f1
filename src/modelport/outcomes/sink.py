"""The outcome writer process, started by a server process (:class:`.child.WriterProcess`) with
this module's :func:`main`, never by hand.

It turns each batch the server's writer thread hands it into rows and commits them to the
outcome store, in a process of its own: that work (the conversion, SQLite's b-trees and the
commit, the per-minute totals) then no longer takes turns with the event loop for the server's
GIL, which cost 3 to 5 % of the throughput of a small model under load.

The conversation, in :mod:`.frames` messages on its standard input and output: first
``("open", url, path, log_level)``, answered ``("done", failure)`` (``None`` or a
:class:`~.health.Failure`) once the store is open; then, per batch, its records as the serving
path queued them (``("records", records)``, 2,500 at most in each) and then ``("commit", offset,
piece)``, in one write when the batch holds 2,500 records or fewer, answered ``("done",
written)`` (:class:`Written`) once they are converted and committed. Any answer comes after the
``("log", logger, level, message, traceback)`` messages of what the work logged (the server
writes them to its own log). The end of its input ends it, after the batch in hand: a server
that exits, however it exits, leaves no writer process behind. It runs in a session of its own
and ignores SIGINT and SIGTERM: stopping is the server's to decide (it commits what is queued,
then closes the input).

It offers its CPU to a task waiting for it (:func:`~.records.offer_cpu`) between two pieces of
a batch (32 to 500 records, :func:`~.records.piece`) and every :data:`OFFER_STEPS` steps of
SQLite's statements (about 40 µs): a request that wakes the server meanwhile is not held up for
the rest of the batch (it sleeps nowhere: a wake-up would take a CPU from whatever runs there).
In four sets of 12 alternating rounds of a single connection (LR, one worker, 3 s each) the p99
fell in every set, from 0.76 to 0.99 ms without the offers to 0.60 to 0.78 ms with them
(recording off: 0.40 to 0.68 ms); at 64 connections the throughput stayed the same.

It imports the store and the standard library, nothing else: about 17 MB at start, 23 MB under
load (its SQLite keeps 16 prepared statements).
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import WriterLost
from modelport.outcomes import frames
from modelport.outcomes.backends import open_store
from modelport.outcomes.health import Failure, trace
from modelport.outcomes.records import Pending, to_rows
from modelport.outcomes.store import Store

__all__ = ["OFFER_STEPS", "Written", "commit", "main"]

# SQLite's steps between two offers of the CPU (:meth:`.store.Store.offer_cpu_every`): a record
# takes about 60 of them, so about 40 µs of the batch's statements
OFFER_STEPS = 1_000


@dataclass(frozen=True, slots=True)
class Written:
    """What committing a batch did: ``requests`` converted (committed unless ``failure``), and
    the answers that could not be converted: how many, the first one's request id and
    traceback."""

    requests: int
    failure: Failure | None = None
    unconvertible: int = 0
    unconvertible_id: str | None = None
    unconvertible_trace: str | None = None


def commit(store: Store, records: list[Pending], offset: float, piece: int) -> Written:
    """Turn a batch into rows (:func:`~.records.to_rows`) and insert them in one transaction
    (:meth:`~.store.Store.write`), in the writer process or, without one, the server's thread."""
    converted = to_rows(records, offset, piece, store.pause)
    failure = None
    if converted.requests:
        try:
            store.write(converted.requests, converted.predictions, piece)
        except Exception as exc:
            failure = Failure.of(exc)
    error = converted.error
    return Written(
        len(converted.requests), failure, converted.failed, converted.failed_id,
        None if error is None else trace(error),
    )  # fmt: skip


class Relay(logging.Handler):
    """Hand each log record to the server, which logs it in its own format."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            error = record.exc_info[1] if record.exc_info else None
            traced = None if error is None else trace(error)
            message = ("log", record.name, record.levelno, record.getMessage(), traced)
            frames.send(self.fd, message)
        except Exception:
            self.handleError(record)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping is the server's: it closes the input
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.dup(1)
    os.dup2(2, 1)  # a stray print reaches the log, never the answers
    requests = frames.Reader(0)
    try:
        opening: Any = requests.receive()
    except WriterLost:
        return 0
    _, url, path, level = opening
    logging.root.handlers[:] = [Relay(answers)]
    logging.root.setLevel(level)
    try:
        store = open_store(url, None if path is None else Path(path))
    except Exception as exc:
        frames.send(answers, ("done", Failure.of(exc)))
        return 1
    store.offer_cpu_every(OFFER_STEPS)
    try:
        frames.send(answers, ("done", None))
        records: list[Pending] = []
        while True:
            try:
                message: Any = requests.receive()
            except WriterLost:
                return 0  # the server closed its end: everything it asked for is committed
            if message[0] == "records":
                records.extend(message[1])
            else:  # ("commit", offset, piece)
                _, offset, piece = message
                written = commit(store, records, offset, piece)
                records = []
                frames.send(answers, ("done", written))
    except WriterLost:
        return 0  # the server is gone
    finally:
        store.close()
