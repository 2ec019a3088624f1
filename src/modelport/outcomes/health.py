"""How recording is doing, in one object per server process: the writer and the store report to
it; ``/ready`` (its ``outcomes`` detail), ``/metrics`` and the logs read it.

=============== ===========================================================================
state           meaning
=============== ===========================================================================
``off``         outcomes are turned off (``MODELPORT_OUTCOMES=false``)
``unavailable`` the store could not be opened at start: this process records nothing
``ok``          the last write committed (or nothing was written yet)
``failing``     the last write failed (full disk, read-only or immutable file, lost
                connection, deleted file): records are being dropped until a write commits
=============== ===========================================================================

Dropped records are counted per ``reason``, a fixed set (:data:`REASONS`): ``queue_full``
(the database cannot keep up), ``store_error`` (the transaction holding them failed) and
``unconvertible`` (an answer that could not be turned into rows). A failing store logs at most
one line per error kind every ``log_every_s`` (60 s), with the number of like failures not
logged since, and one line when it records again: a full disk never floods the log.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelport.errors import OutcomesUnavailable, WriterLost

__all__ = [
    "REASONS",
    "Failure",
    "Health",
    "OutcomeObserver",
    "RateLimitedLog",
    "error_kind",
    "log_traced",
    "trace",
]

log = logging.getLogger("modelport.outcomes")

REASONS = ("queue_full", "store_error", "unconvertible")
_SQLITE_KINDS = {
    "SQLITE_FULL": "disk_full",
    "SQLITE_READONLY": "read_only",
    "SQLITE_IOERR": "io_error",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_CANTOPEN": "cannot_open",
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_NOTADB": "corrupt",
    "SQLITE_PERM": "read_only",
}
_ERRNO_KINDS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "read_only",
    errno.EPERM: "read_only",
}


def error_kind(exc: BaseException) -> str:
    """A short, bounded name for what went wrong: ``disk_full``, ``read_only``, ``io_error``,
    ``file_lost``, ``locked``, ... (the log's rate limit and the readiness detail use it)."""
    if isinstance(exc, WriterLost):
        return "writer_lost"
    if isinstance(exc, OutcomesUnavailable):
        return "file_lost"
    if isinstance(exc, sqlite3.Error):
        name = str(getattr(exc, "sqlite_errorname", "") or "")  # SQLITE_IOERR_WRITE
        return _SQLITE_KINDS.get("_".join(name.split("_")[:2]), "database_error")
    if isinstance(exc, OSError):
        return _ERRNO_KINDS.get(exc.errno or 0, "os_error")
    if type(exc).__module__.startswith("psycopg"):
        return "database_error"
    return "unexpected"


_TRACED = ("unexpected", "os_error", "database_error")  # kinds whose log shows the traceback


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed write as plain text, so that the writer process can report it: its
    :func:`error_kind`, ``"<type>: <message>"``, and the traceback for the kinds that need one
    (the others say all in their kind)."""

    kind: str
    error: str
    trace: str | None = None

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        kind = error_kind(exc)
        return cls(kind, f"{type(exc).__name__}: {exc}", trace(exc) if kind in _TRACED else None)


def trace(exc: BaseException) -> str:
    """The traceback of ``exc`` as a formatter shows ``exc_info``'s."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")


class OutcomeObserver(Protocol):
    """What the metrics implement to count drops and show the state (structural: the metrics
    live in a sibling package)."""

    def outcomes_dropped(self, reason: str, count: int) -> None: ...

    def outcomes_recording(self, recording: bool) -> None: ...


def log_traced(
    logger: logging.Logger, level: int, message: str, args: tuple[Any, ...], trace: str | None
) -> None:
    """Log ``message % args`` with ``trace``, a traceback formatted in another process (the
    writer process), where a formatter shows ``exc_info``'s."""
    if logger.isEnabledFor(level):
        record = logger.makeRecord(logger.name, level, __file__, 0, message, args, None)
        record.exc_text = trace
        logger.handle(record)


class RateLimitedLog:
    """At most one line per key every ``every_s``; the next one says how many were held back."""

    def __init__(
        self, logger: logging.Logger, every_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.every_s = every_s
        self._clock = clock
        self._seen: dict[str, list[float]] = {}  # key -> [last logged at, held back since]

    def __call__(
        self,
        key: str,
        level: int,
        message: str,
        *args: Any,
        trace: str | None = None,
        **kwargs: Any,
    ) -> bool:
        """Log ``message % args`` unless ``key`` was logged within ``every_s``; ``trace`` is a
        traceback already formatted (in the writer process), shown as ``exc_info`` would be."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every_s:
            seen[1] += 1
            return False
        held = int(seen[1]) if seen is not None else 0
        self._seen[key] = [now, 0]
        if held:
            message += f" ({held} more like it in the last {self.every_s:.0f} s)"
        if trace is None:
            self.logger.log(level, message, *args, **kwargs)
        else:
            log_traced(self.logger, level, message, args, trace)
        return True


class Health:
    """The state of recording in this process; written by the writer thread, read anywhere."""

    def __init__(
        self,
        observer: OutcomeObserver | None = None,
        log_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.observer = observer
        self.state = "off"
        self.where: str | None = None
        self.error: str | None = None  # the last failure, while failing or unavailable
        self.kind: str | None = None
        self.since: float | None = None  # Unix time the failure began
        self.dropped = dict.fromkeys(REASONS, 0)
        self.log = RateLimitedLog(log, log_every_s, clock)
        self._dropped_while_failing = 0

    @property
    def recording(self) -> bool:
        return self.state == "ok"

    def opened(self, where: str) -> None:
        self.where, self.state, self.error, self.kind, self.since = where, "ok", None, None, None
        self._tell(True)

    def unavailable(self, where: str | None, exc: BaseException) -> None:
        self.where, self.state = where, "unavailable"
        self.kind, self.since = error_kind(exc), time.time()
        self.error = f"{type(exc).__name__}: {exc}"
        self._tell(False)

    def committed(self) -> None:
        """A write committed: back to ``ok`` (saying so once when it was failing)."""
        if self.state != "failing":
            return
        log.warning(
            "recording predictions in %s again; %d records were dropped while it failed (%s)",
            self.where, self._dropped_while_failing, self.kind,
        )  # fmt: skip
        self.state, self.error, self.kind, self.since = "ok", None, None, None
        self._tell(True)

    def failed(self, error: BaseException | Failure, records: int) -> None:
        """A write of ``records`` records failed: they are dropped; log (rate-limited)."""
        failure = error if isinstance(error, Failure) else Failure.of(error)
        kind = failure.kind
        if self.state != "failing":
            self.since, self._dropped_while_failing = time.time(), 0
        self.state, self.kind, self.error = "failing", kind, failure.error
        self._dropped_while_failing += records
        self.drop("store_error", records)
        self.log(
            kind, logging.ERROR, "could not record %d predictions in %s (%s): %s",
            records, self.where, kind, self.error, trace=failure.trace,
        )  # fmt: skip
        self._tell(False)

    def drop(self, reason: str, count: int = 1) -> None:
        if count <= 0:
            return
        self.dropped[reason] += count
        if self.observer is not None:
            self.observer.outcomes_dropped(reason, count)

    def _tell(self, recording: bool) -> None:
        if self.observer is not None:
            self.observer.outcomes_recording(recording)

    def snapshot(self) -> dict[str, Any]:
        """The readiness detail: the state, the failure's kind and start, the drops. No path
        and no error text (they go to the log): readiness is open to anyone."""
        return {
            "state": self.state,
            "recording": self.recording,
            "failure": self.kind,
            "failing_since": self.since,
            "dropped": dict(self.dropped),
        }
