"""Prediction deadlines on one timer.

``asyncio.timeout`` arms a timer for each request: a handle pushed on the loop's heap, cancelled
and left there when the request ends, some 4 us of the event loop per prediction (6 % of the
throughput of a small model, measured). Every prediction of a data plane has the same timeout, so
their deadlines fall in the order they started: one timer, set for the oldest deadline still
pending, serves them all. A request enters an ordered dict as it starts and leaves it as it ends
(O(1) each); when the timer fires it cancels the requests past their deadline exactly as
``asyncio.timeout`` would (their task is cancelled, and the cancellation comes out of
:meth:`Deadlines.run` as :class:`TimeoutError` unless something else cancelled the task too),
then sets itself for the oldest deadline left.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Deadlines"]

T = TypeVar("T")


class _Deadline:
    __slots__ = ("at", "cancelling", "expired", "task")

    def __init__(self, at: float, task: asyncio.Task[object], cancelling: int) -> None:
        self.at = at
        self.task = task
        self.cancelling = cancelling  # the task's cancel requests before this deadline
        self.expired = False


class Deadlines:
    """The deadlines of requests that all get ``seconds``, served by one timer on one loop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.pending: OrderedDict[int, _Deadline] = OrderedDict()  # oldest first
        self._keys = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def run(self, work: Awaitable[T]) -> T:
        """``await work``, or :class:`TimeoutError` once it has run for ``seconds``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs an asyncio task to cancel")
        loop = task.get_loop()
        if loop is not self._loop:  # a new loop (a test's): the old one's requests are gone
            self.close()
            self._loop = loop
        deadline = _Deadline(loop.time() + self.seconds, task, task.cancelling())
        key = next(self._keys)
        self.pending[key] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._expire)
        try:
            result = await work
        except asyncio.CancelledError as exc:
            if deadline.expired and task.uncancel() <= deadline.cancelling:
                raise TimeoutError from exc
            raise
        except BaseException:
            if deadline.expired:
                task.uncancel()
            raise
        finally:
            self.pending.pop(key, None)
        if deadline.expired:  # the work swallowed the cancellation and ended anyway
            task.uncancel()
        return result

    def _expire(self) -> None:
        """Cancel every request past its deadline; set the timer for the oldest one left."""
        self._timer = None
        loop, pending = self._loop, self.pending
        if loop is None:
            return
        now = loop.time()
        while pending:
            oldest = next(iter(pending.values()))
            if oldest.at > now:
                self._timer = loop.call_at(oldest.at, self._expire)
                return
            pending.popitem(last=False)
            oldest.expired = True
            oldest.task.cancel()

    def close(self) -> None:
        """Stop the timer (the requests still pending are no longer timed)."""
        if self._timer is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: it never fires
                self._timer.cancel()
            self._timer = None
        self.pending.clear()
