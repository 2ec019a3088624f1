"""The outcome store in an embedded SQLite file (stdlib ``sqlite3``): the default.

SQLite runs with a rollback journal (``journal_mode=TRUNCATE``) and ``synchronous=FULL``: a
committed transaction survives a crash of the process and of the machine. Several processes
(gunicorn workers, the CLI's report) may share one file; they take turns through SQLite's file
locks (``busy_timeout``). Nothing is memory-mapped (``mmap_size=0``, and no WAL, whose ``-shm``
index SQLite always maps): a file that cannot be written (full disk, ``chattr +i``, a read-only
mount) fails the transaction with an error instead of killing the process with SIGBUS.
Before and after each transaction the file's ``(st_dev, st_ino)`` is compared with the one
opened: a file deleted or replaced underneath (``.modelport/`` removed) is reopened (the folder and
a new file are created), and a transaction committed to the lost file raises
:class:`~modelport.errors.OutcomesUnavailable`, so nothing claims a record it did not keep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, OutcomesUnavailable
from modelport.outcomes.records import offer_cpu
from modelport.outcomes.rollup import latency_bin
from modelport.outcomes.store import Store

__all__ = ["SqliteStore"]

log = logging.getLogger("modelport.outcomes")


class SqliteStore(Store):
    """An embedded SQLite file with a rollback journal; created with its folder on first use,
    and again when it is deleted or replaced while open."""

    clustered = " WITHOUT ROWID"  # a predicted row costs its key once, not twice (new files)
    period_sql = "CAST(ts / {seconds} AS INTEGER)"  # ts is positive: truncation is the floor
    busy_timeout_s = 30.0  # how long a transaction waits for another process's lock
    bin_sql = "mp_latency_bin(latency_ms)"  # SQLite may be built without LN: Python's, the writer's
    # prepared statements kept: Python's default, 128, kept about 18 MB of multi-row inserts of
    # every length a batch ended with; 16 bound that, and a statement of a length not seen
    # lately is prepared again (about 10 % more writer CPU under load)
    cached_statements = 16

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        self.reopened = 0  # times the file was found deleted or replaced, and opened again
        super().__init__(str(path))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_s,
            check_same_thread=False,
            cached_statements=self.cached_statements,
        )
        try:
            _leave_wal(connection, self.path)
            connection.create_function("mp_latency_bin", 1, latency_bin, deterministic=True)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA mmap_size=0")
            if self.offer_steps:
                connection.set_progress_handler(offer_cpu, self.offer_steps)
            self.max_parameters = _max_parameters(connection)
            self._identity = _identity(self.path)
        except BaseException:
            connection.close()
            raise
        return connection

    def offer_cpu_every(self, steps: int) -> None:
        super().offer_cpu_every(steps)  # (and for a connection opened again: _connect)
        if self._connection is not None:
            self._connection.set_progress_handler(offer_cpu, steps)

    def _reconnect_if_lost(self) -> None:
        if self._connection is not None and _identity(self.path) == self._identity:
            return
        if self._connection is not None:
            log.warning("outcome store %s was deleted or replaced: opening it again", self.path)
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None  # never write to the lost file again
        connection = self._connect()
        cursor = connection.cursor()
        try:
            self._create(cursor)
            cursor.execute("BEGIN IMMEDIATE")
            self._sum_up(cursor)  # a file restored from an old backup
            connection.commit()
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self.reopened += 1

    def _lock_rollup(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # the database's write lock, before the first read

    def _lock_timed_out(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _check_kept(self) -> None:
        if _identity(self.path) != self._identity:
            raise OutcomesUnavailable(  # no path: this reaches callers
                "the outcome store's file was deleted or replaced during this write, which is "
                "lost: the next write opens it again"
            )


def _max_parameters(connection: sqlite3.Connection) -> int:
    """The parameters one statement of this SQLite build takes (999 before 3.32, where Python
    3.10 cannot ask)."""
    limit = getattr(connection, "getlimit", None)  # Python 3.11+
    if limit is None:
        return 999
    return int(limit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def _identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path`` now; ``None`` when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _leave_wal(connection: sqlite3.Connection, path: Path, tries: int = 20) -> None:
    """Use a rollback journal, never WAL (its ``-shm`` index is memory-mapped). A file in WAL
    mode (written by an older modelport) is converted once no other connection holds it;
    workers converting it together take turns."""
    for attempt in range(tries):
        try:
            mode = connection.execute("PRAGMA journal_mode=TRUNCATE").fetchone()[0]
        except sqlite3.OperationalError:
            mode = None  # another worker is converting it at this moment
        if mode is not None and str(mode).lower() != "wal":
            return  # truncate; or delete on a file this process may only read: nothing mapped
        time.sleep(0.05 + random.random() * 0.1 * (attempt + 1))
    raise ConfigError(
        f"outcome store {path}: could not leave WAL mode (journal mode {mode}); "
        "stop the other processes that hold it open"
    )
