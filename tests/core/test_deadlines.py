"""Every prediction's deadline on one timer: the same answers as ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import Any

import pytest

from modelport.core.deadlines import Deadlines

pytestmark = pytest.mark.anyio
SECONDS = 0.05


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def answer(value: int) -> int:
    return value


async def never() -> int:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def expires(work: Awaitable[object]) -> None:
    """``work`` ends in its deadline's TimeoutError, long before wait_for's own safety net."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(work, 100 * SECONDS)
    assert loop.time() - started < 50 * SECONDS


async def test_an_answer_in_time_is_returned_and_nothing_cancels_the_task_later() -> None:
    deadlines = Deadlines(SECONDS)
    assert await deadlines.run(answer(7)) == 7
    assert not deadlines.pending
    with pytest.raises(TimeoutError):  # wait_for's own, past the deadline: no cancel arrived
        await asyncio.wait_for(asyncio.Event().wait(), 3 * SECONDS)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_work_past_its_deadline_is_a_timeout_and_the_task_goes_on() -> None:
    deadlines = Deadlines(SECONDS)
    await expires(deadlines.run(never()))
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # as asyncio.timeout leaves it
    assert not deadlines.pending
    assert await deadlines.run(answer(1)) == 1


async def released(release: asyncio.Event, value: int) -> int:
    await release.wait()
    return value


async def started(work: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
    """``work`` in a task that has begun (its deadline taken)."""
    task = asyncio.create_task(work)
    await asyncio.sleep(0)
    return task


def postpone_newest(deadlines: Deadlines, seconds: float) -> None:
    """Move the newest deadline later, as if its request had started ``seconds`` after."""
    next(reversed(deadlines.pending.values())).at += seconds


async def test_deadlines_expire_in_order_while_later_requests_still_run() -> None:
    deadlines = Deadlines(SECONDS)
    release = asyncio.Event()
    first = await started(deadlines.run(never()))  # its deadline is the oldest
    second = await started(deadlines.run(released(release, 2)))
    postpone_newest(deadlines, 60)  # started well after the first (the order is what counts)
    await expires(first)
    assert not second.done()  # its own deadline is later
    release.set()
    assert await second == 2
    assert not deadlines.pending


async def test_the_timer_moves_on_to_the_oldest_request_left() -> None:
    """The oldest request ends in time; the timer set for it then times out the next one."""
    deadlines = Deadlines(SECONDS)
    release = asyncio.Event()
    first = await started(deadlines.run(released(release, 1)))
    second = await started(deadlines.run(never()))
    postpone_newest(deadlines, SECONDS)  # due after the first's timer
    release.set()
    assert await first == 1
    await expires(second)
    assert not deadlines.pending


async def test_work_that_swallows_the_cancellation_leaves_the_task_as_it_was() -> None:
    """As with asyncio.timeout: the cancel request is taken back, so later awaits go on."""
    deadlines = Deadlines(SECONDS)

    async def stubborn() -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return 5
        return 0

    async def failing() -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("gave up") from None
        return 0

    task = asyncio.current_task()
    assert task is not None
    assert await deadlines.run(stubborn()) == 5
    assert task.cancelling() == 0
    with pytest.raises(ValueError, match="gave up"):
        await deadlines.run(failing())
    assert task.cancelling() == 0
    assert await deadlines.run(answer(3)) == 3


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines(60)
    task = asyncio.create_task(deadlines.run(never()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines.pending


async def test_a_cancellation_meeting_the_deadline_stays_a_cancellation() -> None:
    """Cancelled from outside and past its deadline at once: the outside cancellation wins, as
    with ``asyncio.timeout``."""
    deadlines = Deadlines(SECONDS)
    task = asyncio.create_task(deadlines.run(never()))
    await asyncio.sleep(0)
    deadlines.pending[next(iter(deadlines.pending))].at = 0.0  # due now
    deadlines._expire()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_failures_pass_through_and_leave_nothing_pending() -> None:
    async def fails() -> int:
        raise ValueError("bad rows")

    deadlines = Deadlines(SECONDS)
    with pytest.raises(ValueError, match="bad rows"):
        await deadlines.run(fails())
    assert not deadlines.pending


async def test_many_quick_requests_keep_nothing() -> None:
    deadlines = Deadlines(SECONDS)
    results = await asyncio.gather(*(deadlines.run(answer(i)) for i in range(1000)))
    assert results == list(range(1000))
    assert not deadlines.pending


async def test_close_stops_the_timer() -> None:
    deadlines = Deadlines(SECONDS)
    task = asyncio.create_task(deadlines.run(never()))
    await asyncio.sleep(0)
    timer = deadlines._timer
    assert timer is not None
    deadlines.close()
    assert timer.cancelled()
    assert not deadlines.pending
    with pytest.raises(TimeoutError):  # no deadline any more: only wait_for's own
        await asyncio.wait_for(asyncio.shield(task), 3 * SECONDS)
    task.cancel()


def test_a_new_loop_gets_its_own_timer_and_forgets_the_old_loops_requests() -> None:
    deadlines = Deadlines(SECONDS)
    old = asyncio.new_event_loop()
    stuck = old.create_task(deadlines.run(never()))
    old.run_until_complete(asyncio.sleep(0))  # started: its deadline and timer are the old loop's
    assert len(deadlines.pending) == 1

    async def time_out_on_a_new_loop() -> None:
        await expires(deadlines.run(never()))

    try:
        asyncio.run(time_out_on_a_new_loop())
        assert not deadlines.pending  # the old loop's request is no longer timed here
    finally:
        stuck.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            old.run_until_complete(stuck)
        old.close()
