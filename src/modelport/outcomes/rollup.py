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
  a percentile read from them (:func:`percentile`) is within 1 % of the exact one.

Retention deletes a minute's totals once every record of that minute is gone
(:meth:`~modelport.outcomes.store.Store.prune`); a report uses a minute's totals only when every
record of the minute is still there, and counts the partial minutes at its edges from the records
themselves (:mod:`.rolled`). A store written before the rollup existed is summed up once, when
it is first opened (:meth:`~modelport.outcomes.store.Store.backfill`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from modelport.outcomes.records import RequestRow
from modelport.outcomes.stats import lerp

__all__ = [
    "MINUTE_S",
    "BinRow",
    "TotalsRow",
    "bin_value",
    "latency_bin",
    "percentile",
    "rollup_rows",
]

MINUTE_S = 60
RATIO = 1.02  # a bin's upper bound over its lower bound
_LOG_RATIO = math.log(RATIO)
FLOOR_MS = 0.001  # latencies below a microsecond share the lowest bin

TotalsRow: TypeAlias = tuple[str, int, str, int, str, int, int, int, int, float, float]
"""A ``mp_rollup`` row: ``(model, minute, variant, version, kind, requests, errors, rejected,
answered, latency_sum, latency_squares)``; version 0 and kind ``""`` when the request had none."""

BinRow: TypeAlias = tuple[str, int, str, int, int]
"""A ``mp_rollup_latency`` row: ``(model, minute, variant, bin, requests)``."""


def latency_bin(latency_ms: float) -> int:
    """The bin of a latency: ``floor(log(latency) / log(1.02))``."""
    return math.floor(math.log(max(latency_ms, FLOOR_MS)) / _LOG_RATIO)


def bin_value(found: int) -> float:
    """The latency that stands for a bin: its geometric middle (within 1 % of any in it)."""
    return math.exp((found + 0.5) * _LOG_RATIO)


def rollup_rows(requests: Iterable[RequestRow]) -> tuple[list[TotalsRow], list[BinRow]]:
    """A batch's totals, sorted by key (writers that add to the same rows take them in one
    order, so they never wait on each other in a cycle)."""
    totals: dict[tuple[str, int, str, int, str], list[float]] = {}
    bins: dict[tuple[str, int, str, int], int] = {}
    for _id, ts, model, version, variant, kind, _rows, latency, status, _error in requests:
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
    return rows, [(*key, n) for key, n in sorted(bins.items())]


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
