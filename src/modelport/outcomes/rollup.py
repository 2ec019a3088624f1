"""Per-minute totals of the recorded requests, kept beside them so that a report over millions of
records reads thousands of rows.

The writer adds each batch's totals to two tables in the transaction that inserts the batch, so
the totals always equal the records they sum (a request id seen before, which the store skips,
is not added either):

* ``mp_rollup``: per model, minute (``floor(ts / 60)``), variant, version and kind: requests,
  5xx, 4xx, requests answered below 400, and the sum and sum of squares of those answered
  requests' latencies (the latency guardrail's mean and variance);
* ``mp_rollup_latency``: per model, minute, variant and latency bin: how many requests (any
  status) took a latency in the bin. Bins are 2 % wide on a log scale (:func:`latency_bin`), so
  a percentile read from them (:func:`percentile`) is within 1 % of the exact one;
* ``mp_rollup_latency_hour``: the same per hour, so that a quiet model (a few requests a minute,
  each minute its own handful of bins) still has few rows per month.

Retention deletes a period's totals once every record of it is gone and notes how far it deleted
(:meth:`~modelport.outcomes.store.Store.prune`); a report uses a period's totals only when every
record of it is still there, and counts the partial minutes at its edges from the records
themselves (:mod:`.rolled`). A store written before the rollup existed is summed up once, when
it is first opened (:meth:`~modelport.outcomes.store.Store.backfill`: about 2 s per million
records, while other processes wait for it), or when such a file replaces the open one.

Only modelport writes totals: while replicas that share one PostgreSQL are upgraded one by one,
the records an older replica still writes have none, and a report that reads totals (a model
with more than :data:`~modelport.outcomes.summary.EXACT_ROWS` records) does not count them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

from modelport.outcomes.records import MAX_PIECE, RequestRow, let_loop_run, yielding
from modelport.outcomes.stats import lerp

__all__ = [
    "ADD_BINS",
    "ADD_HOUR_BINS",
    "ADD_TOTALS",
    "BACKFILL",
    "HOUR_S",
    "MINUTE_S",
    "NOTE_PRUNED",
    "PRUNED_THROUGH",
    "PRUNE_TOTALS",
    "ROLLUP_SCHEMA",
    "TOTALS",
    "BinRow",
    "TotalsRow",
    "bin_value",
    "latency_bin",
    "percentile",
    "rollup_rows",
]

MINUTE_S = 60
HOUR_S = 3600
RATIO = 1.02  # a bin's upper bound over its lower bound
_LOG_RATIO = math.log(RATIO)
FLOOR_MS = 0.001  # latencies below a microsecond share the lowest bin

ROLLUP_SCHEMA = [
    # version 0 and kind '' stand for none
    """CREATE TABLE IF NOT EXISTS mp_rollup (
        model TEXT NOT NULL, minute BIGINT NOT NULL, variant TEXT NOT NULL,
        version INTEGER NOT NULL, kind TEXT NOT NULL, requests BIGINT NOT NULL,
        errors BIGINT NOT NULL, rejected BIGINT NOT NULL, answered BIGINT NOT NULL,
        latency_sum DOUBLE PRECISION NOT NULL, latency_squares DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model, minute, variant, version, kind)){clustered}""",
    "CREATE INDEX IF NOT EXISTS mp_rollup_minute ON mp_rollup (minute)",
    """CREATE TABLE IF NOT EXISTS mp_rollup_latency (
        model TEXT NOT NULL, minute BIGINT NOT NULL, variant TEXT NOT NULL, bin INTEGER NOT NULL,
        requests BIGINT NOT NULL, PRIMARY KEY (model, minute, variant, bin)){clustered}""",
    "CREATE INDEX IF NOT EXISTS mp_rollup_latency_minute ON mp_rollup_latency (minute)",
    """CREATE TABLE IF NOT EXISTS mp_rollup_latency_hour (
        model TEXT NOT NULL, hour BIGINT NOT NULL, variant TEXT NOT NULL, bin INTEGER NOT NULL,
        requests BIGINT NOT NULL, PRIMARY KEY (model, hour, variant, bin)){clustered}""",
    "CREATE INDEX IF NOT EXISTS mp_rollup_latency_hour_hour ON mp_rollup_latency_hour (hour)",
    # the newest ts retention deleted up to ('pruned_through'): a period before it is partial
    """CREATE TABLE IF NOT EXISTS mp_meta (
        name TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL)""",
]
# (head, columns, tail) of multi-row upserts (:meth:`.store.Store.write`): a batch's totals are
# one statement per table; rollup_rows gives each key once, as PostgreSQL requires of a statement
ADD_TOTALS = (
    "INSERT INTO mp_rollup (model, minute, variant, version, kind, requests, errors, rejected,"
    " answered, latency_sum, latency_squares)",
    11,
    " ON CONFLICT (model, minute, variant, version, kind) DO UPDATE SET"
    " requests = mp_rollup.requests + excluded.requests,"
    " errors = mp_rollup.errors + excluded.errors,"
    " rejected = mp_rollup.rejected + excluded.rejected,"
    " answered = mp_rollup.answered + excluded.answered,"
    " latency_sum = mp_rollup.latency_sum + excluded.latency_sum,"
    " latency_squares = mp_rollup.latency_squares + excluded.latency_squares",
)
ADD_BINS = (
    "INSERT INTO mp_rollup_latency (model, minute, variant, bin, requests)",
    5,
    " ON CONFLICT (model, minute, variant, bin) DO UPDATE SET"
    " requests = mp_rollup_latency.requests + excluded.requests",
)
ADD_HOUR_BINS = (
    "INSERT INTO mp_rollup_latency_hour (model, hour, variant, bin, requests)",
    5,
    " ON CONFLICT (model, hour, variant, bin) DO UPDATE SET"
    " requests = mp_rollup_latency_hour.requests + excluded.requests",
)
TOTALS = (  # what mp_rollup sums, over requests (the report's edges read the same)
    "COUNT(*), SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END),"
    " COALESCE(SUM(CASE WHEN status < 400 THEN latency_ms END), 0),"
    " COALESCE(SUM(CASE WHEN status < 400 THEN latency_ms * latency_ms END), 0)"
)
BACKFILL = [  # {minute}, {hour}, {bin}: the store's SQL for them
    "INSERT INTO mp_rollup (model, minute, variant, version, kind, requests, errors, rejected,"
    " answered, latency_sum, latency_squares) SELECT model, {minute}, variant,"
    f" COALESCE(version, 0), COALESCE(kind, ''), {TOTALS} FROM mp_requests GROUP BY 1, 2, 3, 4, 5",
    "INSERT INTO mp_rollup_latency (model, minute, variant, bin, requests)"
    " SELECT model, {minute}, variant, {bin}, COUNT(*) FROM mp_requests GROUP BY 1, 2, 3, 4",
    "INSERT INTO mp_rollup_latency_hour (model, hour, variant, bin, requests)"
    " SELECT model, {hour}, variant, {bin}, COUNT(*) FROM mp_requests GROUP BY 1, 2, 3, 4",
]
PRUNE_TOTALS = [  # (statement, period): the periods before ``floor(end / period)`` are all gone
    ("DELETE FROM mp_rollup WHERE minute < ?", MINUTE_S),
    ("DELETE FROM mp_rollup_latency WHERE minute < ?", MINUTE_S),
    ("DELETE FROM mp_rollup_latency_hour WHERE hour < ?", HOUR_S),
]
NOTE_PRUNED = [  # (statement, how many times it takes the bound)
    ("INSERT INTO mp_meta (name, value) VALUES ('pruned_through', ?) ON CONFLICT DO NOTHING", 1),
    ("UPDATE mp_meta SET value = ? WHERE name = 'pruned_through' AND value < ?", 2),
]
PRUNED_THROUGH = "SELECT value FROM mp_meta WHERE name = 'pruned_through'"

TotalsRow: TypeAlias = tuple[str, int, str, int, str, int, int, int, int, float, float]
"""A ``mp_rollup`` row: ``(model, minute, variant, version, kind, requests, errors, rejected,
answered, latency_sum, latency_squares)``; version 0 and kind ``""`` when the request had none."""

BinRow: TypeAlias = tuple[str, int, str, int, int]
"""A ``mp_rollup_latency`` row: ``(model, minute, variant, bin, requests)``; the hour table's
have the hour instead of the minute."""


def latency_bin(latency_ms: float) -> int:
    """The bin of a latency: ``floor(log(latency) / log(1.02))``."""
    return math.floor(math.log(max(latency_ms, FLOOR_MS)) / _LOG_RATIO)


def bin_value(found: int) -> float:
    """The latency that stands for a bin: its geometric middle (within 1 % of any in it)."""
    return math.exp((found + 0.5) * _LOG_RATIO)


def rollup_rows(
    requests: Sequence[RequestRow],
    every: int = MAX_PIECE,
    pause: Callable[[], object] = let_loop_run,
) -> tuple[list[TotalsRow], list[BinRow], list[BinRow]]:
    """A batch's totals, minute bins and hour bins, each sorted by key (writers that add to the
    same rows take them in one order, so they never wait on each other in a cycle); ``pause``
    every ``every`` requests (:func:`~.records.to_rows`)."""
    totals: dict[tuple[str, int, str, int, str], list[float]] = {}
    bins: dict[tuple[str, int, str, int], int] = {}
    for request in yielding(requests, every, pause):
        _id, ts, model, version, variant, kind, _rows, latency, status, _error = request
        minute = math.floor(ts / MINUTE_S)
        key = (model, minute, variant, version or 0, kind or "")
        found = totals.get(key)
        if found is None:
            found = totals[key] = [0, 0, 0, 0, 0.0, 0.0]
        found[0] += 1
        if status >= 500:
            found[1] += 1
        elif status >= 400:
            found[2] += 1
        else:
            found[3] += 1
            found[4] += latency
            found[5] += latency * latency
        where = (model, minute, variant, latency_bin(latency))
        bins[where] = bins.get(where, 0) + 1
    rows: list[TotalsRow] = [
        (*key, int(t[0]), int(t[1]), int(t[2]), int(t[3]), t[4], t[5])
        for key, t in sorted(totals.items())
    ]
    hours: dict[tuple[str, int, str, int], int] = {}
    for (name, at, variant, which), n in bins.items():
        hour = (name, at // (HOUR_S // MINUTE_S), variant, which)
        hours[hour] = hours.get(hour, 0) + n
    return rows, _sorted(bins), _sorted(hours)


def _sorted(counts: dict[tuple[str, int, str, int], int]) -> list[BinRow]:
    return [(*key, n) for key, n in sorted(counts.items())]


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """numpy's linear ``q``-th percentile, each of the two order statistics it needs read as the
    middle of its bin; ``None`` for an empty histogram."""
    ordered: Sequence[tuple[int, int]] = sorted((b, n) for b, n in histogram.items() if n > 0)
    total = sum(n for _, n in ordered)
    if total < 1:
        return None
    rank = (total - 1) * (q / 100)
    below = math.floor(rank)
    low = high = None
    seen = 0
    for found, n in ordered:
        seen += n
        if low is None and seen > below:
            low = bin_value(found)
        if seen > below + 1 or seen == total:
            high = bin_value(found)
            break
    if low is None or high is None:
        return None
    return lerp(low, high, rank - below)
