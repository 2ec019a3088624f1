"""The outcome writer process, started by a server process (:class:`.child.WriterProcess`) with
this module's :func:`main`, never by hand.

It commits the rows the server's writer thread made of each batch to the outcome store, in a
process of its own: the database's work (SQLite's b-trees and the commit, the per-minute totals)
then no longer takes turns with the event loop for the server's GIL, which cost about 6 % of the
throughput of a small model under load.

The conversation, in :mod:`.frames` messages on its standard input and output: first
``("open", url, path, log_level)``, answered once the store is open; then, per batch, its rows a
piece at a time (``("requests", rows)``, ``("predictions", rows)``) and ``("commit", piece)``,
answered once they are committed. An answer is ``("done", failure)``, with ``failure`` ``None``
or a :class:`~.health.Failure`, after any ``("log", logger, level, message, traceback)`` the
work logged (the server writes them to its own log). The end of its input ends it, after the
batch in hand: a server that exits, however it exits, leaves no writer process behind. It runs
in a session of its own and ignores SIGINT and SIGTERM: stopping is the server's to decide (it
commits what is queued, then closes the input).

It imports the store and the standard library, nothing else: about 17 MB at start, 23 MB under
load (its SQLite keeps 16 prepared statements).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

from modelport.errors import WriterLost
from modelport.outcomes import frames
from modelport.outcomes.backends import open_store
from modelport.outcomes.health import Failure

__all__ = ["main"]

_FORMAT = logging.Formatter()


class Relay(logging.Handler):
    """Hand each log record to the server, which logs it in its own format."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            trace = _FORMAT.formatException(record.exc_info) if record.exc_info else None
            message = ("log", record.name, record.levelno, record.getMessage(), trace)
            frames.send(self.fd, message)
        except Exception:
            self.handleError(record)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (a session of its own: a kill by group)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.dup(1)
    os.dup2(2, 1)  # a stray print reaches the log, never the answers
    try:
        _, url, path, level = _receive()
    except WriterLost:
        return 0
    logging.root.handlers[:] = [Relay(answers)]
    logging.root.setLevel(level)
    try:
        store = open_store(url, None if path is None else Path(path))
    except Exception as exc:
        frames.send(answers, ("done", Failure.of(exc)))
        return 1
    try:
        frames.send(answers, ("done", None))
        requests: list[Any] = []
        predictions: list[Any] = []
        while True:
            try:
                kind, content = _receive()
            except WriterLost:
                return 0  # the server closed its end: everything it asked for is committed
            if kind == "requests":
                requests.extend(content)
            elif kind == "predictions":
                predictions.extend(content)
            else:  # "commit", with the piece to insert by
                failure = None
                try:
                    store.write(requests, predictions, content)
                except Exception as exc:
                    failure = Failure.of(exc)
                requests, predictions = [], []
                frames.send(answers, ("done", failure))
    except WriterLost:
        return 0  # the server is gone
    finally:
        store.close()


def _receive() -> Any:
    return frames.receive(0)
