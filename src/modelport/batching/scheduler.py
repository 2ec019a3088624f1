"""Natural micro-batching: one generic scheduler per loaded model version.

Callers :meth:`Batcher.submit` an item of ``size`` rows and await its result. A worker task takes
queued items, groups those with the same ``key`` (width and dtype, say) into one batch of at most
``max_batch_size`` rows, and hands the batch to ``process``, which returns one result per item.

- **Natural**: the model never idles while requests wait. When the worker is free it takes
  everything queued at once and runs it; batches grow by themselves under load, because requests
  pile up while the previous batch runs.
- **Fill window, opt-in**: with ``max_latency_s > 0``, when the queue holds less than a full
  batch, the worker waits up to that long for more rows before it takes them (for models whose
  cost barely grows with batch size, a GPU say); a full batch ends the wait at once. The window
  applies to every batch that is not full, a lone request at idle included, as Triton's
  ``max_queue_delay_microseconds`` does. Why: the card opted in to trade up to the window of
  latency for fewer, fuller model calls, and an idle model is where requests arrive one by one and
  the window gathers them; skipping it at idle would bring back the "under load only" guess this
  scheduler dropped, and one rule keeps the bound easy to state.
- **Bounded by the latency it causes** (controlled delay, after CoDel and "Fail at Scale"): the
  queue is *standing* when for ``window`` seconds (``max_wait_s``, or twice the typical or the last
  batch's duration, whichever is more) every batch was full or left items behind, or as soon as
  an item waited past the window (see Deadlines), which happens only when requests arrive faster
  than the model serves them. While it stands, :meth:`submit`
  admits only up to one full batch ahead and raises :class:`Overloaded` at once for the rest (the
  server answers 503 with ``Retry-After``, before it even reads the body: :attr:`refusing`), so the
  model stays busy with full batches and an admitted item waits about two batches, however many
  callers knock. It stands until a whole window passes without a busy batch (one that left items
  behind, or a full one that did not find the model idle), checked at each batch and, once the
  model idles, a window later (a timer): refused clients come back in waves, and a queue that
  empties for a moment between two of them still stands, rather than queueing the next wave
  whole (whose requests would wait up to the window). A burst that the model drains within the
  window is queued, up to ``max_queue`` items.
- **Deadlines**: while the queue stands or holds more than a batch, an item that waited longer than
  ``window`` when its batch forms is answered :class:`Overloaded` instead of run (its caller's
  budget is spent, and running it would delay everyone behind it); an item whose caller gave up
  (cancelled, e.g. its deadline passed) is dropped before it reaches the model. Either way nothing
  is lost: every submitted item gets a result or an exception, and if a batch fails, each of its
  items is retried alone so one bad item cannot fail the others. A long wait alone is no overload:
  requests queued behind one slow batch (a cold model's first call: the window is at least twice
  the last batch's duration), held by the opt-in fill window, or delayed while the event loop was
  busy elsewhere (a model loading beside it), with no more than a batch waiting, are served, not
  refused.
- **Spread retries**: a refusal's ``Retry-After`` (:meth:`Batcher.overloaded`) is a whole number
  of seconds drawn at random from 1 to about how many requests the model refused for each one
  it served lately (counts halved for every second gone by), at most ``max_retry_after_s``
  (``DataPlane.admit`` asks the first of a model's refusing versions). A short burst
  gets ``1``; a herd of clients many times the model's capacity, refused together, comes back
  spread over several seconds at about the rate the model serves, instead of as one wave a
  second whose refusals would crowd out the admitted requests (``Retry-After`` takes whole
  seconds only, so spreading over seconds is what a server can ask of its clients).

Time is injected (``sleep``, ``clock``) so the tests drive the window with a fake clock. The
clock is read once when a batch forms and once when it ends, never per item (``submit`` takes
the item's arrival time from the caller); a refusal reads it once more, for its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from modelport.errors import ModelportError, Overloaded

__all__ = ["BatchPolicy", "Batcher"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a model batches. ``max_batch_size`` counts rows."""

    max_batch_size: int = 64
    max_latency_s: float = 0.0  # the opt-in fill window; 0: take what is queued, no wait
    max_queue: int = 1024
    max_wait_s: float = 0.1  # the controlled delay's window (see the module docstring)
    max_retry_after_s: int = 4  # the longest Retry-After a refusal asks for


@dataclass(slots=True)
class _Item(Generic[T, R]):
    value: T
    size: int
    key: Hashable
    arrived: float
    future: asyncio.Future[R] = field(repr=False)


class Batcher(Generic[T, R]):
    """Batches items for ``process(values) -> results`` (one result per value, in order)."""

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[list[R]]],
        policy: BatchPolicy,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
        on_standing: Callable[[bool], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._process = process
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        self._on_standing = on_standing  # told when the queue starts and stops standing
        self._queue: deque[_Item[T, R]] = deque()
        self._rows = 0  # rows queued
        self._filled: asyncio.Future[None] | None = None  # set while a fill window is open
        self._worker: asyncio.Task[None] | None = None
        self._slack_at = 0.0  # when the model was last seen keeping up
        self._busy_at = 0.0  # when a batch was last full or left items behind
        self._batch_s = 0.0  # how long a batch takes (moving average, from the first batch's)
        self._last_s = 0.0  # how long the last batch took
        self._rng = rng or random.Random()
        self._shed = 0.0  # requests refused lately (halved for every second gone by)
        self._served = 0.0  # requests served lately (likewise)
        self._halved_at: float | None = None  # when the tallies were last halved
        self._fresh = False  # the next batch is the first since the model idled
        self._idle_check: asyncio.TimerHandle | None = None  # ends a standing once idle
        self.standing = False
        self.batches = 0  # counters, for metrics and tests
        self.dropped = 0  # items whose caller gave up before their batch
        self.expired = 0  # items that waited past the window: answered Overloaded, not run
        self.refused = 0  # items refused at once by submit

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def refusing(self) -> bool:
        """Whether :meth:`submit` would refuse an item now (a cheap check for the caller)."""
        full = self.standing and self._rows >= self._limit
        return full or len(self._queue) >= self.policy.max_queue

    @property
    def window(self) -> float:
        """How long an item may wait, and the queue stay non-empty before it counts as standing."""
        return max(self.policy.max_wait_s, 2 * max(self._batch_s, self._last_s))

    async def submit(
        self, value: T, size: int = 1, key: Hashable = None, arrived: float | None = None
    ) -> R:
        """Queue ``value`` (which arrived at ``arrived`` on this batcher's clock; default: now)
        and wait for its result."""
        if self.refusing:
            self.refused += 1
            raise self.overloaded()
        if arrived is None:
            arrived = self._clock()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(value, size, key, arrived, future))
        self._rows += size
        if self._filled is not None and self._rows >= self._limit:
            self._filled.set_result(None)  # a full batch waits: close the window now
            self._filled = None
        if self._worker is None or self._worker.done():
            self._slack_at = arrived  # the model was idle until now
            self._fresh = True
            self._worker = asyncio.ensure_future(self._run())
        return await future

    def overloaded(self, message: str | None = None) -> Overloaded:
        """The error of a request this model sheds (refused now or after waiting too long),
        counted, with a spread ``Retry-After`` (see the module docstring); ``message`` defaults
        to why the queue refuses."""
        self._decay(self._clock())
        self._shed += 1
        if message is None:
            message = (
                "the model is serving all it can: try again shortly"
                if self.standing
                else f"the model's queue is full ({self.policy.max_queue} requests waiting)"
            )
        return Overloaded(message, self.retry_after())

    def retry_after(self) -> int:
        """Seconds a refused client is asked to wait: drawn from 1 to the refused-per-served
        ratio of late (at least 1, at most ``max_retry_after_s``)."""
        ratio = self._shed / self._served if self._served else self._shed
        spread = max(1, min(self.policy.max_retry_after_s, math.ceil(ratio)))
        return 1 if spread == 1 else self._rng.randint(1, spread)

    def _decay(self, now: float) -> None:
        """Halve the refused and served tallies once for every whole second since the last
        time ("lately")."""
        if self._halved_at is None:
            self._halved_at = now
        elif now - self._halved_at >= 1.0:
            halve = 0.5 ** min(64, int(now - self._halved_at))
            self._shed *= halve
            self._served *= halve
            self._halved_at = now

    async def close(self) -> None:
        """Stop the worker; items still queued get an error, never silence."""
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ModelportError("the server is shutting down"))
        self._rows = 0
        self._stand(False)

    def _take(self, now: float) -> list[_Item[T, R]]:
        """The next batch: live items sharing the first live item's key, up to the size limit.

        Items whose caller gave up are dropped, and items that waited past the window while
        more than a batch waits are answered :class:`Overloaded`, before they cost anything."""
        batch: list[_Item[T, R]] = []
        rows = kept_rows = 0
        kept: deque[_Item[T, R]] = deque()
        backlog = self.standing or self._rows > self._limit
        oldest = now - self.window if backlog else -math.inf
        expired = self.expired
        while self._queue:
            item = self._queue.popleft()
            if item.future.done():  # its caller gave up: drop it before it costs anything
                self.dropped += 1
            elif item.arrived < oldest:
                self.expired += 1
                error = self.overloaded("the request waited too long for the model")
                item.future.set_exception(error)
            elif not batch or (item.key == batch[0].key and rows + item.size <= self._limit):
                batch.append(item)
                rows += item.size
            else:
                kept.append(item)
                kept_rows += item.size
        self._queue.extendleft(reversed(kept))
        self._rows = kept_rows
        late = self.expired != expired  # the queue did not drain for a window: it stands
        fresh, self._fresh = self._fresh, False  # a full batch found by an idle model: no load
        if late or kept or (rows >= self._limit and not fresh):
            self._busy_at = now
        elif rows < self._limit:  # the model keeps up: it found less than it can take
            self._slack_at = now
        if late or not self.standing:
            self._stand(late or now - self._slack_at > self.window)
        else:  # it stands until a whole window passes without a busy batch
            self._stand(now - self._busy_at <= self.window)
        self._decay(now)
        self._served += len(batch)
        return batch

    def _stand(self, standing: bool) -> None:
        if standing != self.standing:
            self.standing = standing
            if self._on_standing is not None:
                self._on_standing(standing)

    @property
    def _limit(self) -> int:
        return self.policy.max_batch_size

    async def _fill(self) -> None:
        """The opt-in window: wait up to ``max_latency_s`` for the queue to hold a full batch."""
        if self.policy.max_latency_s <= 0 or self._rows >= self._limit:
            return
        self._filled = asyncio.get_running_loop().create_future()
        timer = asyncio.ensure_future(self._sleep(self.policy.max_latency_s))
        try:
            await asyncio.wait({timer, self._filled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            self._filled = None

    async def _run(self) -> None:
        """The one dequeue loop: while items wait, (fill,) take a batch and run it."""
        while self._queue:
            await self._fill()
            started = self._clock()
            batch = self._take(started)
            if not batch:
                break
            self.batches += 1
            await self._deliver(batch)
            self._last_s = took = self._clock() - started
            first = self.batches == 1
            self._batch_s = took if first else self._batch_s + (took - self._batch_s) / 4
        if self.standing:  # nothing waits: the model idles; it stands a window on, unless busy
            if self._idle_check is not None:
                self._idle_check.cancel()
            loop = asyncio.get_running_loop()
            self._idle_check = loop.call_later(self.window, self._end_idle_standing)

    def _end_idle_standing(self) -> None:
        """A window after the model went idle while its queue stood: the standing ends, unless
        the model is busy again (its next batches decide) or was busy within the window."""
        self._idle_check = None
        idle = self._worker is None or self._worker.done()
        if self.standing and idle and self._clock() - self._busy_at > self.window:
            self._stand(False)

    async def _deliver(self, batch: list[_Item[T, R]]) -> None:
        try:
            results = await self._process([item.value for item in batch])
        except asyncio.CancelledError:
            for item in batch:
                item.future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            for item in batch:  # isolate the item that failed; the others still get answers
                await self._deliver([item])
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)


def _settle(item: _Item[Any, Any], exc: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
