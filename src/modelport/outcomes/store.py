"""The outcome store: a thin DB-API layer over SQLite (stdlib ``sqlite3``) or PostgreSQL
(``psycopg``, the ``postgres`` extra), one schema, the same SQL for both.

Tables: ``mp_requests`` (one row per answered prediction request, errors included),
``mp_predictions`` (one row per predicted row: ``request_id`` + ``row_index``) and
``mp_feedback`` (the true label or value of a predicted row, and a classifier's business
value; the latest feedback wins, and keeps what it does not send), and
``mp_experiments`` (named experiments and their windows, :mod:`.experiments`), and the
per-minute totals a report over many records reads (``mp_rollup``, ``mp_rollup_latency``,
:mod:`.rollup`), written in the transaction that writes the requests they sum.

The two databases: :mod:`.sqlite_store` (the default) and :mod:`.postgres_store`; which one a
URL or path names: :func:`.backends.open_store`. A request id seen twice (a caller re-sending
its ``X-Request-Id``) keeps its first record.

Retention (:mod:`.retention` decides when): :meth:`Store.prune_bound` finds the newest ``ts`` to
delete, :meth:`Store.prune` deletes the oldest requests up to it, a chunk at a time, each with its
predicted rows and feedback in one transaction (children first, so no row outlives its request),
and the totals of the minutes whose requests are all gone.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from modelport.errors import OutcomesUnavailable
from modelport.outcomes.records import (
    MAX_PIECE,
    PredictionRow,
    RequestRow,
    StoredRequest,
    let_loop_run,
    offer_cpu,
)
from modelport.outcomes.rollup import (
    ADD_BINS,
    ADD_HOUR_BINS,
    ADD_TOTALS,
    BACKFILL,
    HOUR_S,
    MINUTE_S,
    NOTE_PRUNED,
    PRUNE_TOTALS,
    ROLLUP_SCHEMA,
    rollup_rows,
)

__all__ = ["Store"]

log = logging.getLogger("modelport.outcomes")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS mp_requests (
        request_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, model TEXT NOT NULL,
        version INTEGER, variant TEXT NOT NULL, kind TEXT, n_rows INTEGER NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL, status INTEGER NOT NULL, error TEXT)""",
    # a model's requests, in a window: the exact report (a model with few records) and the
    # partial minutes of the per-minute one. Both keys grow with time, so a batch's rows land at
    # the ends of the index, never in the middle (the former index by latency cost the writer
    # about 12 us a record, twice the rest of its work)
    "CREATE INDEX IF NOT EXISTS mp_requests_model_ts ON mp_requests (model, ts)",
    "DROP INDEX IF EXISTS mp_requests_report_ts",  # (model, variant, latency_ms, ...)
    "DROP INDEX IF EXISTS mp_requests_report",
    "DROP INDEX IF EXISTS mp_requests_model",
    "CREATE INDEX IF NOT EXISTS mp_requests_ts ON mp_requests (ts)",  # retention's order
    """CREATE TABLE IF NOT EXISTS mp_predictions (
        request_id TEXT NOT NULL, row_index INTEGER NOT NULL, label TEXT,
        value DOUBLE PRECISION, PRIMARY KEY (request_id, row_index)){clustered}""",
    """CREATE TABLE IF NOT EXISTS mp_feedback (
        request_id TEXT NOT NULL, row_index INTEGER NOT NULL, label TEXT,
        value DOUBLE PRECISION, ts DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (request_id, row_index)){clustered}""",
    # experiments (:mod:`.experiments`): a name, a window, the policy and the changes meanwhile
    """CREATE TABLE IF NOT EXISTS mp_experiments (
        model TEXT NOT NULL, name TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        stopped_at DOUBLE PRECISION, metric TEXT, traffic TEXT, events TEXT NOT NULL,
        PRIMARY KEY (model, name))""",
    """CREATE UNIQUE INDEX IF NOT EXISTS mp_experiments_running ON mp_experiments (model)
        WHERE stopped_at IS NULL""",
    *ROLLUP_SCHEMA,
]
_INSERT_REQUEST = (  # (head, columns, tail) of multi-row statements (Store._insert_many)
    "INSERT INTO mp_requests (request_id, ts, model, version, variant, kind, n_rows, latency_ms,"
    " status, error)", 10, " ON CONFLICT DO NOTHING",
)  # fmt: skip
_INSERT_ROW = (
    "INSERT INTO mp_predictions (request_id, row_index, label, value)", 4,
    " ON CONFLICT DO NOTHING",
)  # fmt: skip
_UPSERT_FEEDBACK = (
    "INSERT INTO mp_feedback (request_id, row_index, label, value, ts) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (request_id, row_index) DO UPDATE SET"
    " label = COALESCE(excluded.label, mp_feedback.label),"
    " value = COALESCE(excluded.value, mp_feedback.value), ts = excluded.ts"
)
_REQUEST = (
    "SELECT request_id, model, version, variant, kind, n_rows, status FROM mp_requests"
    " WHERE request_id = ?"
)
_BEYOND_ROWS = "SELECT ts FROM mp_requests ORDER BY ts DESC LIMIT 1 OFFSET ?"
_CHUNK_END = "SELECT ts FROM mp_requests WHERE ts <= ? ORDER BY ts LIMIT 1 OFFSET ?"
_PRUNE = [
    "DELETE FROM mp_predictions WHERE request_id IN"
    " (SELECT request_id FROM mp_requests WHERE ts <= ?)",
    "DELETE FROM mp_feedback WHERE request_id IN"
    " (SELECT request_id FROM mp_requests WHERE ts <= ?)",
    "DELETE FROM mp_requests WHERE ts <= ?",
]
_STORED_TS = "SELECT request_id, ts FROM mp_requests WHERE request_id IN ({marks})"
_LOCK_ATTEMPTS = 10  # waits (each the busy timeout) for another process summing up the store
_ID_CHUNK = 500  # ids per lookup (SQLite takes up to 32,766 parameters; PostgreSQL, 65,535)


class Store:
    """One connection, used by one thread at a time (the writer, or a request's worker thread)."""

    placeholder = "?"
    max_parameters = 65_535  # in one statement (PostgreSQL's; SQLite's is the build's)
    clustered = ""  # SQLite: rows kept in their primary key's b-tree (no second copy of the key)
    offer_steps = 0  # the writer process's: database steps between offers of the CPU (0: none)
    period_sql = "CAST(FLOOR(ts / {seconds}) AS BIGINT)"  # a request's minute or hour, in SQL
    bin_sql = "CAST(FLOOR(LN(GREATEST(latency_ms, 0.001)) / LN(1.02)) AS INTEGER)"  # rollup's bin

    def __init__(self, where: str) -> None:
        """Connect (:meth:`_connect`), create what is missing and sum up an older store; the
        connection is closed again if any of it fails."""
        self._connection = self._connect()
        self._lock = threading.Lock()
        self.where = where
        try:
            with self._transaction() as cursor:
                self._create(cursor)
            self.backfill()
        except BaseException:
            self._connection.close()
            raise

    def _connect(self) -> Any:
        """A new connection to the database (each backend's)."""
        raise NotImplementedError

    def _create(self, cursor: Any) -> None:
        """The tables and indexes (those already there are kept)."""
        for statement in _SCHEMA:
            cursor.execute(statement.format(clustered=self.clustered))

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self.placeholder)

    def offer_cpu_every(self, steps: int) -> None:
        """In the writer process only (in the server it would take the GIL from the event loop):
        :func:`~.records.offer_cpu` between two pieces of a batch, and every ``steps`` steps of
        the statements that run in this process (SQLite's; PostgreSQL runs its own)."""
        self.offer_steps = steps

    @property
    def pause(self) -> Callable[[], object]:
        """What the work on a batch does between two pieces: :func:`~.records.offer_cpu` in the
        writer process (:meth:`offer_cpu_every`), else :func:`~.records.let_loop_run`."""
        return offer_cpu if self.offer_steps else let_loop_run

    def _reconnect_if_lost(self) -> None:
        """Replace a connection the server dropped (a database restart) or a file that was
        deleted or replaced underneath."""

    def _check_kept(self) -> None:
        """Raise when what was just committed did not go where it is kept (a lost file)."""

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            self._reconnect_if_lost()
            cursor = self._connection.cursor()
            try:
                yield cursor
                self._connection.commit()
                self._check_kept()
            except BaseException:
                with contextlib.suppress(Exception):  # a lost connection cannot roll back
                    self._connection.rollback()
                raise
            finally:
                with contextlib.suppress(Exception):
                    cursor.close()

    def _lock_rollup(self, cursor: Any) -> None:
        """Take the lock that makes one process's backfill exclude every other writer."""
        cursor.execute("LOCK TABLE mp_rollup IN EXCLUSIVE MODE")

    def backfill(self) -> int:
        """Sum up, once, the requests a store written before the rollup holds: when there are
        requests and no totals (a store always writes both together); how many requests. Only
        then does it lock (every other writer waits); an up-to-date store is only read."""
        for _attempt in range(_LOCK_ATTEMPTS):
            try:
                if not self._unsummed():  # (a process summing up may even hold reads off)
                    return 0
                with self._transaction() as cursor:
                    self._lock_rollup(cursor)
                    return self._sum_up(cursor)
            except Exception as exc:
                if not self._lock_timed_out(exc):
                    raise
                log.info("another process is summing up the outcome store; waiting for it")
        raise OutcomesUnavailable(
            f"outcome store {self.where}: another process held it locked through "
            f"{_LOCK_ATTEMPTS} waits while it was to be summed up"
        )

    def _lock_timed_out(self, exc: Exception) -> bool:
        """Whether ``exc`` is the database's answer to a lock held too long by another one."""
        return False

    def _unsummed(self) -> bool:
        """Requests and no totals."""
        with self._transaction() as cursor:
            return _unsummed(cursor)

    def _sum_up(self, cursor: Any) -> int:
        """The rollup of every stored request, when it has none (checked again: another
        process may have done it while this one waited for the lock); how many requests."""
        if not _unsummed(cursor):
            return 0
        cursor.execute("SELECT COUNT(*) FROM mp_requests")
        (count,) = cursor.fetchone()
        log.info("summing up %d recorded outcome requests per minute (once)", count)
        minute, hour = (self.period_sql.format(seconds=s) for s in (MINUTE_S, HOUR_S))
        for statement in BACKFILL:
            cursor.execute(statement.format(minute=minute, hour=hour, bin=self.bin_sql))
        return int(count)

    def write(
        self,
        requests: Sequence[RequestRow],
        predictions: Sequence[PredictionRow],
        piece: int = MAX_PIECE,
    ) -> None:
        """Insert answered requests, their predicted rows and their per-minute totals in one
        transaction: ``piece`` rows to a statement (:func:`~.records.piece`; fewer where the
        database takes fewer parameters), the totals one statement per table."""
        with self._transaction() as cursor:
            if requests:
                inserted = self._insert_many(cursor, _INSERT_REQUEST, requests, piece)
                kept = requests
                if inserted != len(requests):  # ids seen before, not inserted (none: a batch
                    # committed already, written again after its writer process was lost)
                    kept = self._inserted(cursor, requests) if inserted else []
                totals, bins, hours = rollup_rows(kept, piece, self.pause)
                self._insert_many(cursor, ADD_TOTALS, totals)
                self._insert_many(cursor, ADD_BINS, bins)
                self._insert_many(cursor, ADD_HOUR_BINS, hours)
            if predictions:
                self._insert_many(cursor, _INSERT_ROW, predictions, piece)

    def _insert_many(
        self,
        cursor: Any,
        insert: tuple[str, int, str],
        rows: Sequence[tuple[Any, ...]],
        piece: int = MAX_PIECE,
    ) -> int:
        """Insert ``rows`` with multi-row ``INSERT`` statements (a statement per row would cost
        a step of the database, and a release and retake of the GIL, per row); how many rows
        were inserted (ids seen before are not; an upsert counts each row)."""
        inserted = 0
        step = min(piece, self.rows_per_statement(insert[1]))
        for first in range(0, len(rows), step):
            chunk = rows[first : first + step]
            statement = _multi_row(*insert, len(chunk), self.placeholder)
            cursor.execute(statement, list(itertools.chain.from_iterable(chunk)))
            inserted += cursor.rowcount
        return inserted

    def rows_per_statement(self, columns: int) -> int:
        """How many rows of ``columns`` values one multi-row statement takes."""
        return max(1, min(MAX_PIECE, self.max_parameters // columns))

    def _inserted(self, cursor: Any, requests: Sequence[RequestRow]) -> list[RequestRow]:
        """The requests of a batch that were inserted just now: the first of each id, where the
        row stored under that id is this one (same ``ts``)."""
        stored: dict[str, float] = {}
        ids = list(dict.fromkeys(r[0] for r in requests))
        for first in range(0, len(ids), _ID_CHUNK):
            chunk = ids[first : first + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            cursor.execute(self._sql(_STORED_TS.format(marks=marks)), chunk)
            stored.update((request_id, ts) for request_id, ts in cursor.fetchall())
        kept = []
        for row in requests:
            if stored.get(row[0]) == row[1]:
                kept.append(row)
                del stored[row[0]]  # a second request with this id in the batch was skipped
        return kept

    def prune_bound(self, max_age_s: float, max_rows: int, now: float) -> float | None:
        """The newest ``ts`` to delete so that no request is older than ``max_age_s`` and at most
        ``max_rows`` remain (0: no bound of that kind); ``None`` when nothing is to go."""
        bounds = [now - max_age_s] if max_age_s > 0 else []
        with self._transaction() as cursor:
            if max_rows > 0:
                cursor.execute(self._sql(_BEYOND_ROWS), (max_rows,))
                found = cursor.fetchone()
                if found is not None:
                    bounds.append(found[0])
            if not bounds:
                return None
            bound = max(bounds)
            cursor.execute(self._sql("SELECT 1 FROM mp_requests WHERE ts <= ? LIMIT 1"), (bound,))
            return bound if cursor.fetchone() is not None else None

    def prune(self, bound: float, chunk: int) -> int:
        """Delete the oldest requests with ``ts <= bound``, about ``chunk`` of them (more only
        where several share a ``ts``), with their rows and feedback; how many requests went."""
        with self._transaction() as cursor:
            cursor.execute(self._sql(_CHUNK_END), (bound, chunk - 1))
            found = cursor.fetchone()
            end = bound if found is None else found[0]
            for statement in _PRUNE:
                cursor.execute(self._sql(statement), (end,))
            deleted = int(cursor.rowcount)
            for statement, seconds in PRUNE_TOTALS:  # the periods whose records are all gone
                cursor.execute(self._sql(statement), (math.floor(end / seconds),))
            for statement, arity in NOTE_PRUNED:  # how far: a period before it lost some records
                cursor.execute(self._sql(statement), (end,) * arity)
            return deleted

    def request(self, request_id: str) -> StoredRequest | None:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_REQUEST), (request_id,))
            found = cursor.fetchone()
        return None if found is None else StoredRequest(*found)

    def put_feedback(
        self, request_id: str, row: int, label: str | None, value: float | None
    ) -> bool:
        """Record the truth for one row (``None``: keep what earlier feedback gave); ``True``
        when it replaced earlier feedback."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT 1 FROM mp_feedback WHERE request_id = ? AND row_index = ?"),
                (request_id, row),
            )
            replaced = cursor.fetchone() is not None
            cursor.execute(
                self._sql(_UPSERT_FEEDBACK), (request_id, row, label, value, time.time())
            )
        return replaced

    def prediction(self, request_id: str, row: int) -> tuple[str | None, float | None] | None:
        """The predicted label and value of one row, if it was recorded."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT label, value FROM mp_predictions WHERE request_id = ? AND row_index = ?"
                ),
                (request_id, row),
            )
            found = cursor.fetchone()
        return None if found is None else (found[0], found[1])

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one ``SELECT`` (``?`` placeholders); callers keep them few (aggregates)."""
        with self._transaction() as cursor:
            cursor.execute(self._sql(statement), tuple(params))
            return [tuple(row) for row in cursor.fetchall()]

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one writing statement in its own transaction; how many rows it changed."""
        with self._transaction() as cursor:
            cursor.execute(self._sql(statement), tuple(params))
            return int(cursor.rowcount)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()


@functools.lru_cache(maxsize=256)
def _multi_row(head: str, columns: int, tail: str, rows: int, placeholder: str) -> str:
    """``head VALUES (?, ...), (?, ...) tail`` for ``rows`` rows of ``columns`` values."""
    row = "(" + ", ".join([placeholder] * columns) + ")"
    return f"{head} VALUES {', '.join([row] * rows)}{tail}"


def _unsummed(cursor: Any) -> bool:
    """Requests and no totals: a store written before the rollup."""
    cursor.execute("SELECT 1 FROM mp_rollup LIMIT 1")
    if cursor.fetchone() is not None:
        return False
    cursor.execute("SELECT 1 FROM mp_requests LIMIT 1")
    return cursor.fetchone() is not None
