"""A model's traffic per variant from the per-minute totals (:mod:`.rollup`), for stores too big
to walk: what a report over millions of records reads is a few thousand rows.

The whole minutes of the report's window whose records are all still stored (after the minute of
the newest ``ts`` retention deleted up to, and not before the oldest record) come from the
totals, the latency bins of its whole hours from the hourly bins; the partial minutes at the
window's edges are summed by the database from the records themselves, through the
``(model, ts)`` index:
at most two minutes of traffic, plus any record that arrived after retention passed its minute.
Counts, the answered requests' latency mean and variance (from sums of squares) are exact; the
50th and 99th latency percentiles come from the 2 % latency bins, so they are within 1 % of the
exact ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelport.outcomes.rollup import HOUR_S, MINUTE_S, PRUNED_THROUGH, TOTALS
from modelport.outcomes.store import Store

__all__ = ["Rolled", "rolled", "rows_of"]

_ROWS = "SELECT SUM(requests) FROM mp_rollup WHERE model = ?"
_OLDEST = "SELECT MIN(ts) FROM mp_requests"
_TOTALS = (
    "SELECT variant, version, kind, SUM(requests), SUM(errors), SUM(rejected), SUM(answered),"
    " SUM(latency_sum), SUM(latency_squares) FROM mp_rollup"
    " WHERE model = ? AND minute >= ?{upper} GROUP BY variant, version, kind"
)
_BINS = (
    "SELECT variant, bin, SUM(requests) FROM mp_rollup_latency"
    " WHERE model = ? AND minute >= ? AND minute < ? GROUP BY variant, bin"
)
_HOUR_BINS = (
    "SELECT variant, bin, SUM(requests) FROM mp_rollup_latency_hour"
    " WHERE model = ? AND hour >= ?{upper} GROUP BY variant, bin"
)
_EDGE_TOTALS = (
    f"SELECT variant, COALESCE(version, 0), COALESCE(kind, ''), {TOTALS} FROM mp_requests"
    " WHERE model = ? AND ts >= ? AND ts < ? GROUP BY 1, 2, 3"
)
_EDGE_BINS = (
    "SELECT variant, {bin}, COUNT(*) FROM mp_requests"
    " WHERE model = ? AND ts >= ? AND ts < ? GROUP BY 1, 2"
)

Span = tuple[float, float]  # [from, to) in Unix seconds


@dataclass
class Rolled:
    """One variant's totals over the window."""

    versions: set[int] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    answered: int = 0
    latency_sum: float = 0.0
    latency_squares: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)  # latency bin -> requests

    def add(self, row: tuple[Any, ...]) -> None:
        """Add one row of totals: ``(variant, version, kind, requests, errors, rejected,
        answered, latency sum, latency sum of squares)``."""
        _variant, version, kind, requests, errors, rejected, answered, total, squares = row
        if version:
            self.versions.add(int(version))
        if kind:
            self.kinds.add(str(kind))
        self.requests += int(requests)
        self.errors += int(errors or 0)
        self.rejected += int(rejected or 0)
        self.answered += int(answered or 0)
        self.latency_sum += float(total or 0.0)
        self.latency_squares += float(squares or 0.0)


def rows_of(store: Store, model: str) -> int:
    """About how many requests of ``model`` the store holds (the totals of its minutes)."""
    ((found,),) = store.select(_ROWS, (model,))
    return int(found or 0)


def _split(
    oldest: float, pruned: float | None, window: tuple[float, float | None] | None
) -> tuple[tuple[int, int | None] | None, list[Span]]:
    """The whole minutes ``[first, last)`` read from the totals (``last`` None: no end), and
    the spans read from the records."""
    start = oldest if window is None else max(window[0], oldest)
    stop = None if window is None else window[1]
    first = math.ceil(start / MINUTE_S)
    if pruned is not None:  # the minute retention reached lost some records: not whole
        first = max(first, math.floor(pruned / MINUTE_S) + 1)
    last = None if stop is None else math.floor(stop / MINUTE_S)
    if last is not None and stop is not None and last <= first:
        return None, [(start, stop)]
    edges = [(start, float(first * MINUTE_S))]
    if last is not None and stop is not None:
        edges.append((float(last * MINUTE_S), stop))
    return (first, last), [(a, b) for a, b in edges if a < b]


def rolled(
    store: Store, model: str, window: tuple[float, float | None] | None
) -> dict[str, Rolled]:
    """Every variant of ``model`` over ``window`` (None: everything stored)."""
    ((oldest,),) = store.select(_OLDEST)
    variants: dict[str, Rolled] = {}
    if oldest is None:
        return variants
    found = store.select(PRUNED_THROUGH)
    pruned = float(found[0][0]) if found else None
    minutes, edges = _split(float(oldest), pruned, window)
    if minutes is not None:
        first, last = minutes
        upper, bounds = (
            ("", (model, first)) if last is None else (" AND minute < ?", (model, first, last))
        )
        for row in store.select(_TOTALS.format(upper=upper), bounds):
            variants.setdefault(row[0], Rolled()).add(row)
        _bins(store, model, first, last, variants)
    for span in edges:
        for row in store.select(_EDGE_TOTALS, (model, *span)):
            variants.setdefault(row[0], Rolled()).add(row)
        bins = _EDGE_BINS.format(bin=store.bin_sql)
        for variant, which, n in store.select(bins, (model, *span)):
            _count(variants.setdefault(variant, Rolled()).histogram, int(which), int(n))
    return variants


def _bins(
    store: Store, model: str, first: int, last: int | None, variants: dict[str, Rolled]
) -> None:
    """The latency bins of the minutes ``[first, last)``: whole hours from the hourly bins,
    the minutes around them from the minute bins."""
    per_hour = HOUR_S // MINUTE_S
    hour_first = -(-first // per_hour)  # the first whole hour
    hour_last = None if last is None else last // per_hour
    if hour_last is not None and hour_last <= hour_first:  # no whole hour
        spans = [(first, last)]
        hours = None
    else:
        spans = [(first, hour_first * per_hour)]
        if hour_last is not None and last is not None:
            spans.append((hour_last * per_hour, last))
        hours = (hour_first, hour_last)
    rows: list[tuple[Any, ...]] = []
    for low, high in spans:
        if high is None or low < high:
            rows += store.select(_BINS, (model, low, high if high is not None else 1 << 62))
    if hours is not None:
        upper, bounds = (
            ("", (model, hours[0])) if hours[1] is None else (" AND hour < ?", (model, *hours))
        )
        rows += store.select(_HOUR_BINS.format(upper=upper), bounds)
    for variant, which, n in rows:
        _count(variants.setdefault(variant, Rolled()).histogram, int(which), int(n))


def _count(histogram: dict[int, int], found: int, n: int) -> None:
    histogram[found] = histogram.get(found, 0) + n
