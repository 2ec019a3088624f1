"""Request metrics kept as plain numbers on the event loop, handed to prometheus_client in bulk.

Each prometheus_client update takes a lock (with several workers it also writes a memory-mapped
file), and a prediction made six of them: about 9 us of the event loop per request, a tenth of
what serving a small model costs. Here a request adds to a few Python numbers instead. The first
change in a loop iteration asks the loop to :meth:`Tally.flush` (``call_soon``), which adds the
totals to prometheus_client's values: the loop runs it before it reads any new request, so a scrape
(of this worker or, with several workers, of another one) never misses an answered request, and
under load one flush carries every request of the iteration. Outside a running loop (a thread, a
test) a change is flushed at once.

Everything here runs on the event loop's thread (requests, gRPC calls and batches all do); other
threads (the outcome writer) update prometheus_client directly.

A histogram's flush adds to its child's ``_sum`` and ``_buckets`` values, prometheus_client's own
representation (one non-cumulative count per upper bound), since it offers no way to observe many
values at once; ``tests/observability/test_tally.py`` checks that the result equals one
``observe`` per value.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["Counted", "Level", "Observed", "Tally"]


class _Pending(Protocol):
    def flush(self) -> None: ...


class Tally:
    """The changes since the last flush, and the one scheduled flush."""

    __slots__ = ("_changed", "_scheduled")

    def __init__(self) -> None:
        self._changed: list[_Pending] = []
        self._scheduled = False

    def changed(self, pending: _Pending) -> None:
        """``pending`` has its first change since the last flush."""
        self._changed.append(pending)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing would run a later flush
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand every change to prometheus_client."""
        self._scheduled = False
        changed, self._changed = self._changed, []
        for pending in changed:
            pending.flush()


class Counted:
    """A counter child's increments since the last flush."""

    __slots__ = ("child", "count", "tally")

    def __init__(self, tally: Tally, child: Counter) -> None:
        self.tally = tally
        self.child = child
        self.count = 0

    def add(self, amount: int = 1) -> None:
        first = not self.count
        self.count += amount
        if first:
            self.tally.changed(self)

    def flush(self) -> None:
        self.child.inc(self.count)
        self.count = 0


class Observed:
    """A histogram child's observations since the last flush."""

    __slots__ = ("bounds", "child", "count", "counts", "tally", "total")

    def __init__(self, tally: Tally, child: Histogram) -> None:
        self.tally = tally
        self.child = child
        self.bounds: list[float] = list(child._upper_bounds)  # the last one is +Inf
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.count = 0

    def add(self, value: float, times: int = 1) -> None:
        """Observe ``value`` (``times`` times)."""
        first = not self.count
        self.count += times
        self.total += value * times
        self.counts[bisect_left(self.bounds, value)] += times  # the first bound >= value
        if first:
            self.tally.changed(self)

    def flush(self) -> None:
        child = self.child
        child._sum.inc(self.total)
        counts = self.counts
        for index, count in enumerate(counts):
            if count:
                child._buckets[index].inc(count)
                counts[index] = 0
        self.total = 0.0
        self.count = 0


class Level:
    """A gauge child's value, set on the loop and shown at the next flush."""

    __slots__ = ("child", "pending", "tally", "value")

    def __init__(self, tally: Tally, child: Gauge) -> None:
        self.tally = tally
        self.child = child
        self.value = 0.0
        self.pending = False

    def set(self, value: float) -> None:
        self.value = value
        if not self.pending:
            self.pending = True
            self.tally.changed(self)

    def add(self, amount: float) -> None:
        self.set(self.value + amount)

    def flush(self) -> None:
        self.pending = False
        self.child.set(self.value)
