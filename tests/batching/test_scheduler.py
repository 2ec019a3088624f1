"""The batching scheduler, driven by a fake clock: every branch, no real sleeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable

import pytest

from modelport.batching.scheduler import Batcher, BatchPolicy
from modelport.errors import ModelportError, Overloaded

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """``sleep`` that returns only when the test fires it."""

    def __init__(self) -> None:
        self.sleeps: list[asyncio.Future[None]] = []
        self.seconds: list[float] = []

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleeps.append(future)
        self.seconds.append(seconds)
        await future

    def fire(self) -> None:
        for future in self.sleeps:
            if not future.done():
                future.set_result(None)


class Model:
    """Records each batch; ``gate`` holds a batch inside the model until the test opens it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def process(self, values: list[str]) -> list[str]:
        self.batches.append(values)
        self.entered.set()
        await self.gate.wait()
        if "bad" in values:
            raise ValueError("bad value")
        return [v.upper() for v in values]


def make(policy: BatchPolicy | None = None) -> tuple[Batcher[str, str], Model, FakeClock]:
    model, clock = Model(), FakeClock()
    batcher: Batcher[str, str] = Batcher(model.process, policy or BatchPolicy(), clock.sleep)
    return batcher, model, clock


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def release(model: Model) -> None:
    """Let the batch now inside the model finish; the next one will wait at the gate again."""
    model.gate.set()
    model.gate.clear()
    await settle()


def submit(
    batcher: Batcher[str, str], value: str, size: int = 1, key: Hashable = None
) -> asyncio.Task[str]:
    return asyncio.ensure_future(batcher.submit(value, size, key))


async def test_a_lone_request_is_not_held_back() -> None:
    batcher, model, clock = make()
    assert await batcher.submit("a") == "A"
    assert model.batches == [["a"]]
    assert clock.sleeps == []


async def test_the_model_never_idles_while_requests_wait() -> None:
    """Whatever queued while a batch ran goes as one batch the moment the model is free, even
    right after a multi-item batch: no window, no sleep."""
    batcher, model, clock = make()
    model.gate.clear()
    tasks = [submit(batcher, v) for v in "ab"]  # one tick at idle: one batch
    await settle()
    tasks += [submit(batcher, v) for v in "cdefgh"]
    await settle()
    assert model.batches == [["a", "b"]]
    assert batcher.depth == 6
    await release(model)
    assert model.batches == [["a", "b"], ["c", "d", "e", "f", "g", "h"]]  # taken at once
    tasks += [submit(batcher, v) for v in "ij"]
    await settle()
    await release(model)
    assert model.batches[-1] == ["i", "j"]
    assert clock.sleeps == []
    model.gate.set()
    assert [await t for t in tasks] == list("ABCDEFGHIJ")


async def test_the_opt_in_window_holds_even_a_lone_request_at_idle() -> None:
    batcher, model, clock = make(BatchPolicy(max_batch_size=8, max_latency_s=0.01))
    first = submit(batcher, "a")
    await settle()
    assert model.batches == []
    assert clock.seconds == [0.01]
    second = submit(batcher, "b")
    await settle()
    assert model.batches == []  # the window is open until the clock fires
    clock.fire()
    assert [await first, await second] == ["A", "B"]
    assert model.batches == [["a", "b"]]


async def test_the_window_opens_again_for_what_queued_during_a_batch() -> None:
    batcher, model, clock = make(BatchPolicy(max_batch_size=8, max_latency_s=0.01))
    model.gate.clear()
    first = submit(batcher, "a")
    await settle()
    clock.fire()
    await model.entered.wait()
    queued = [submit(batcher, v) for v in "bc"]
    await settle()
    await release(model)
    assert len(clock.sleeps) == 2  # [b, c] is not full: wait for more
    assert model.batches == [["a"]]
    late = submit(batcher, "d")
    await settle()
    clock.fire()
    model.gate.set()
    assert [await t for t in [first, *queued, late]] == ["A", "B", "C", "D"]
    assert model.batches == [["a"], ["b", "c", "d"]]


async def test_the_window_closes_early_when_the_batch_is_full() -> None:
    batcher, model, clock = make(BatchPolicy(max_batch_size=3, max_latency_s=10))
    waiting = submit(batcher, "a")
    await settle()
    assert len(clock.sleeps) == 1
    filled = [submit(batcher, v) for v in "bc"]
    assert [await t for t in [waiting, *filled]] == ["A", "B", "C"]  # without firing the clock
    assert model.batches == [["a", "b", "c"]]
    assert clock.sleeps[0].cancelled()  # the timer does not outlive its window


async def test_a_full_queue_skips_the_window() -> None:
    batcher, model, clock = make(BatchPolicy(max_batch_size=2, max_latency_s=10))
    model.gate.clear()
    tasks = [submit(batcher, v) for v in "ab"]
    await model.entered.wait()
    tasks += [submit(batcher, v) for v in "cdef"]
    await settle()
    model.gate.set()
    await asyncio.gather(*tasks)
    assert model.batches == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert clock.sleeps == []


async def test_batches_respect_the_row_limit_and_keys() -> None:
    batcher, model, _ = make(BatchPolicy(max_batch_size=4))
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    queued = [
        submit(batcher, "b", size=3),
        submit(batcher, "x", key="other"),
        submit(batcher, "c", size=2),
        submit(batcher, "d", size=1),
        submit(batcher, "huge", size=10),
    ]
    await settle()
    model.gate.set()
    await asyncio.gather(first, *queued)
    assert model.batches == [["a"], ["b", "d"], ["x"], ["c"], ["huge"]]


async def test_a_full_queue_answers_overloaded_at_once() -> None:
    batcher, model, _ = make(BatchPolicy(max_queue=2))
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    queued = [submit(batcher, v) for v in "bc"]
    await settle()
    with pytest.raises(Overloaded, match="queue is full"):
        await batcher.submit("d")
    assert Overloaded("x").headers() == {"Retry-After": "1"}
    assert Overloaded("x", 7).headers() == {"Retry-After": "7"}
    model.gate.set()
    await asyncio.gather(first, *queued)


async def test_cancelled_requests_never_reach_the_model() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    gone, kept = submit(batcher, "gone"), submit(batcher, "kept")
    await settle()
    gone.cancel()
    await settle()
    model.gate.set()
    assert await kept == "KEPT"
    await first
    assert model.batches == [["a"], ["kept"]]
    assert batcher.dropped == 1


async def test_when_every_queued_request_was_cancelled_the_worker_stops() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    gone = submit(batcher, "gone")
    await settle()
    gone.cancel()
    await settle()
    model.gate.set()
    await first
    await settle()
    assert model.batches == [["a"]]
    assert await batcher.submit("again") == "AGAIN"  # a new worker starts on demand


async def test_a_result_for_a_caller_that_left_is_discarded() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    leaving = submit(batcher, "a")
    await model.entered.wait()
    leaving.cancel()
    await settle()
    model.gate.set()
    await settle()
    assert model.batches == [["a"]]
    assert leaving.cancelled()


async def test_one_bad_item_does_not_fail_its_batch() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    good, bad, other = submit(batcher, "b"), submit(batcher, "bad"), submit(batcher, "c")
    await settle()
    model.gate.set()
    await first
    assert await good == "B"
    assert await other == "C"
    with pytest.raises(ValueError, match="bad value"):
        await bad
    assert model.batches[1:] == [["b", "bad", "c"], ["b"], ["bad"], ["c"]]


async def test_close_answers_every_waiting_request() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    inside = submit(batcher, "a")
    await model.entered.wait()
    waiting, left = submit(batcher, "b"), submit(batcher, "c")
    await settle()
    left.cancel()
    await settle()
    await batcher.close()
    await settle()
    assert inside.cancelled()
    with pytest.raises(ModelportError, match="shutting down"):
        await waiting


async def test_close_during_a_window_answers_the_waiting_request() -> None:
    batcher, model, clock = make(BatchPolicy(max_latency_s=10))
    waiting = submit(batcher, "a")
    await settle()
    await batcher.close()
    with pytest.raises(ModelportError, match="shutting down"):
        await waiting
    assert model.batches == []
    assert clock.sleeps[0].cancelled()


async def test_close_without_work_is_fine() -> None:
    batcher, _, _ = make()
    await batcher.close()
    assert batcher.depth == 0


async def test_a_failure_for_a_caller_that_left_is_discarded() -> None:
    batcher, model, _ = make()
    model.gate.clear()
    leaving = submit(batcher, "bad")
    await model.entered.wait()
    leaving.cancel()
    await settle()
    model.gate.set()
    await settle()
    assert leaving.cancelled()
    assert batcher.batches == 1


class Now:
    """The batcher's clock, set by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_timed(
    policy: BatchPolicy, tell: bool = True
) -> tuple[Batcher[str, str], Model, Now, list[bool]]:
    model, now, changes = Model(), Now(), []
    batcher: Batcher[str, str] = Batcher(
        model.process, policy, FakeClock().sleep, now, changes.append if tell else None
    )
    return batcher, model, now, changes


async def test_a_standing_queue_admits_one_batch_ahead_and_refuses_the_rest_at_once() -> None:
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=2, max_wait_s=1.0))
    model.gate.clear()
    tasks = [submit(batcher, "a")]  # t=0: taken at once, the model keeps up
    await model.entered.wait()
    tasks += [submit(batcher, v) for v in "bcd"]
    await settle()
    for t, more in ((0.4, "ef"), (0.8, "gh")):  # every batch full, and some left behind
        now.t = t
        await release(model)
        assert not batcher.standing
        tasks += [submit(batcher, v) for v in more]
        await settle()
    now.t = 1.2  # more than the window (1 s) without slack: the queue stands
    await release(model)
    assert batcher.standing
    assert changes == [True]
    assert batcher.depth == 1  # one batch ahead may still queue
    assert not batcher.refusing
    tasks.append(submit(batcher, "i"))
    await settle()
    assert batcher.refusing
    with pytest.raises(Overloaded, match="serving all it can"):
        await batcher.submit("refused")
    assert batcher.refused == 1
    now.t = 1.6
    await release(model)  # [h, i]: a full batch, nothing left: still standing
    assert batcher.standing
    model.gate.set()
    assert await asyncio.gather(*tasks) == list("ABCDEFGHI")
    assert batcher.standing  # the queue emptied, but its last batch was full (at 1.6 s)
    assert not batcher.refusing  # one batch may queue ahead
    check = batcher._idle_check  # a window on (1 s), the idle model's standing ends
    assert check is not None
    assert check.when() - asyncio.get_running_loop().time() == pytest.approx(1.0, abs=0.1)
    now.t = 2.0  # (had a batch been busy within the window, it would stand on)
    batcher._end_idle_standing()
    assert batcher.standing
    now.t = 2.7
    batcher._end_idle_standing()
    assert not batcher.standing
    assert changes == [True, False]
    assert await batcher.submit("j") == "J"
    assert model.batches == [["a"], ["b", "c"], ["d", "e"], ["f", "g"], ["h", "i"], ["j"]]


async def test_a_burst_the_model_drains_within_the_window_is_queued() -> None:
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=2, max_wait_s=1.0))
    model.gate.clear()
    tasks = [submit(batcher, "a")]
    await model.entered.wait()
    tasks += [submit(batcher, v) for v in "bcdef"]
    await settle()
    now.t = 0.1
    await release(model)
    now.t = 0.2
    await release(model)
    model.gate.set()
    assert await asyncio.gather(*tasks) == list("ABCDEF")
    assert changes == []
    assert batcher.refused == 0


async def test_a_request_that_waited_past_the_window_is_answered_overloaded_not_run() -> None:
    batcher, model, now, _ = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=1.0))
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    queued = [submit(batcher, v) for v in "bc"]
    late = asyncio.ensure_future(batcher.submit("late", arrived=0.0))
    fresh = asyncio.ensure_future(batcher.submit("fresh", arrived=1.1))
    await settle()
    for t in (0.4, 0.8):  # batches of 0.4 s: the window stays 1 s
        now.t = t
        await release(model)
    now.t = 1.2  # "late" waited 1.2 s behind two full batches, "fresh" 0.1 s
    model.gate.set()
    assert await asyncio.gather(first, *queued) == ["A", "B", "C"]
    with pytest.raises(Overloaded, match="waited too long"):
        await late
    assert await fresh == "FRESH"
    assert model.batches == [["a"], ["b"], ["c"], ["fresh"]]
    assert batcher.expired == 1


async def test_requests_queued_behind_a_slow_first_batch_are_served() -> None:
    """A cold model's first call takes 2 s, twenty times the window: what queued behind it, more
    than one batch's worth, is served, not refused, and the queue does not count as standing."""
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=2, max_wait_s=0.1))
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    queued = [submit(batcher, v) for v in "bcdef"]
    await settle()
    now.t = 2.0
    await release(model)
    for t in (2.01, 2.02):  # warm now: 10 ms a batch
        now.t = t
        await release(model)
    model.gate.set()
    assert await asyncio.gather(first, *queued) == list("ABCDEF")
    assert (batcher.expired, batcher.refused, changes) == (0, 0, [])


async def test_the_window_grows_to_two_batches_of_a_slow_model() -> None:
    batcher, model, now, _ = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=0.1))
    model.gate.clear()
    for value, t in (("a", 3.0), ("b", 6.0)):  # two batches of 3 s each
        model.entered.clear()
        task = submit(batcher, value)
        await model.entered.wait()
        now.t = t
        await release(model)
        assert await task == value.upper()
    assert batcher.window > 2.0
    first = submit(batcher, "c")
    await settle()
    waited = submit(batcher, "d")  # waits 2 s for "c": within the grown window
    await settle()
    now.t = 8.0
    model.gate.set()
    assert await asyncio.gather(first, waited) == ["C", "D"]
    assert batcher.expired == 0


async def _stand(batcher: Batcher[str, str], model: Model, now: Now) -> list[asyncio.Task[str]]:
    """Keep more than a batch waiting for over the window (1 s): the queue stands."""
    model.gate.clear()
    tasks = [submit(batcher, "a")]
    await model.entered.wait()
    for t in (0.4, 0.8, 1.2):
        tasks += [submit(batcher, v) for v in "xy"]
        await settle()
        now.t = t
        await release(model)
    assert batcher.standing
    return tasks


async def test_a_standing_queue_stands_through_a_lull_shorter_than_the_window() -> None:
    """Refused clients come back in waves: between two, the queue may empty for a moment. It
    goes on standing (one batch ahead, the rest refused at once) rather than queueing the next
    wave, whose requests would wait up to the window."""
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=1.0))
    tasks = await _stand(batcher, model, now)
    model.gate.set()
    await asyncio.gather(*tasks)  # drained at 1.2 s, every batch full
    model.gate.clear()
    now.t = 1.5  # after a lull of 0.3 s, a wave
    wave = [submit(batcher, v) for v in "pqrs"]
    await settle()
    assert batcher.standing
    assert changes == [True]
    model.gate.set()
    results = await asyncio.gather(*wave, return_exceptions=True)
    assert results[0] == "P"
    assert all(isinstance(r, Overloaded) for r in results[1:])
    assert batcher.refused == 3


@pytest.mark.parametrize("tell", [True, False], ids=["told", "untold"])
async def test_close_while_standing_ends_it(tell: bool) -> None:
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=1.0), tell)
    tasks = await _stand(batcher, model, now)
    assert changes == ([True] if tell else [])
    await batcher.close()
    assert not batcher.standing
    assert changes == ([True, False] if tell else [])
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(r, ModelportError) for r in results)


async def test_a_long_wait_with_less_than_a_batch_queued_is_served_not_refused() -> None:
    """The event loop was busy elsewhere (a model loading beside this one) for five windows
    before the batcher ran: what waited is no overload, since less than a batch is queued."""
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=4, max_wait_s=0.1))
    tasks = [asyncio.ensure_future(batcher.submit(v, arrived=0.0)) for v in "abc"]
    now.t = 0.5  # when the batcher's worker first gets the loop
    assert await asyncio.gather(*tasks) == ["A", "B", "C"]
    assert model.batches == [["a", "b", "c"]]
    assert (batcher.expired, batcher.refused, changes) == (0, 0, [])


async def test_a_fill_window_longer_than_the_controlled_delay_refuses_nothing() -> None:
    model, now = Model(), Now()
    clock = FakeClock()
    policy = BatchPolicy(max_batch_size=4, max_latency_s=0.3, max_wait_s=0.1)
    batcher: Batcher[str, str] = Batcher(model.process, policy, clock.sleep, now)
    tasks = [asyncio.ensure_future(batcher.submit(v, arrived=0.0)) for v in "ab"]
    await settle()
    now.t = 0.3  # the fill window ends: "a" and "b" waited three times max_wait_s
    clock.fire()
    assert await asyncio.gather(*tasks) == ["A", "B"]
    assert batcher.expired == 0


class Draws(random.Random):
    """Records each ``randint`` range and answers its upper end."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        self.ranges.append((a, b))
        return b


def make_drawn(policy: BatchPolicy) -> tuple[Batcher[str, str], Model, Now, Draws]:
    model, now, draws = Model(), Now(), Draws()
    batcher: Batcher[str, str] = Batcher(model.process, policy, FakeClock().sleep, now, rng=draws)
    return batcher, model, now, draws


async def _herd(batcher: Batcher[str, str], model: Model, size: int) -> list[Overloaded]:
    """One request runs, one waits (the queue holds one), then ``size`` are refused."""
    model.gate.clear()
    model.entered.clear()
    served = [submit(batcher, "a")]
    await model.entered.wait()
    served.append(submit(batcher, "b"))
    await settle()
    errors = []
    for i in range(size):
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(f"herd{i}")
        errors.append(refused.value)
    return errors


async def test_a_refusal_after_a_lone_burst_asks_for_one_second() -> None:
    batcher, model, _, draws = make_drawn(BatchPolicy(max_batch_size=1, max_queue=1))
    (refused,) = await _herd(batcher, model, 1)
    model.gate.set()
    assert refused.retry_after == 1  # one refused for one served: no spread
    assert draws.ranges == []


async def test_a_herd_refused_together_is_asked_to_come_back_spread_out() -> None:
    batcher, model, _, draws = make_drawn(BatchPolicy(max_batch_size=1, max_queue=1))
    errors = await _herd(batcher, model, 30)  # 30 refused while one is served
    model.gate.set()
    assert [e.retry_after for e in errors[:4]] == [1, 2, 3, 4]  # drawn from 1..ratio
    assert draws.ranges[:3] == [(1, 2), (1, 3), (1, 4)]
    assert max(e.retry_after for e in errors) == 4  # max_retry_after_s
    assert errors[-1].headers() == {"Retry-After": "4"}
    assert batcher.refused == 30


async def test_the_spread_follows_the_last_seconds_and_its_own_cap() -> None:
    policy = BatchPolicy(max_batch_size=1, max_queue=1, max_retry_after_s=3)
    batcher, model, now, draws = make_drawn(policy)
    await _herd(batcher, model, 16)
    assert batcher.retry_after() == 3  # 16 refused for 1 served, capped at 3
    now.t = 4.0  # four seconds on, at the next batch, what was tallied weighs a sixteenth
    model.gate.set()
    await settle()
    for value in "cde":  # served one at a time, none refused
        assert await batcher.submit(value) == value.upper()
    draws.ranges.clear()
    assert batcher.retry_after() == 1  # 1 refused (16/16) for 3.125 served (2/16 + 3)
    assert draws.ranges == []


async def test_requests_expired_in_a_backlog_count_as_shed() -> None:
    batcher, model, now, _ = make_drawn(BatchPolicy(max_batch_size=1, max_wait_s=1.0))
    model.gate.clear()
    first = submit(batcher, "a")
    await model.entered.wait()
    queued = [asyncio.ensure_future(batcher.submit(f"late{i}", arrived=0.0)) for i in range(10)]
    await settle()
    for t in (0.4, 0.8, 1.2):  # batches of 0.4 s: the window stays 1 s
        now.t = t
        await release(model)
    model.gate.set()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    expired = [r for r in results if isinstance(r, Overloaded)]
    assert len(expired) == batcher.expired == 8  # late2.. waited past the window at 1.2 s
    # each drawn from 1 to ceil(shed / served), at most 4: 3 served (a, late0, late1), halved
    # once (1.2 s since the first batch): 1.5
    assert [e.retry_after for e in expired] == [1, 2, 2, 3, 4, 4, 4, 4]
    # and the queue stands from then on: what expired had not drained for a window, though
    # the batch that found nothing else left was not full
    assert batcher.standing


async def test_the_tallies_start_with_the_first_batch_whatever_the_clock() -> None:
    batcher, model, now, draws = make_drawn(BatchPolicy(max_batch_size=1, max_queue=1))
    now.t = 5000.0  # a clock far from 0 (perf_counter): nothing is halved away at first
    (refused,) = await _herd(batcher, model, 1)
    model.gate.set()
    assert refused.retry_after == 1
    assert draws.ranges == []


async def test_refusals_after_a_quiet_spell_weigh_against_what_was_served_lately() -> None:
    batcher, model, now, _ = make_drawn(BatchPolicy(max_batch_size=1, max_queue=1))
    model.gate.set()
    for value in "abcdefgh":  # 8 served at 0 s
        assert await batcher.submit(value) == value.upper()
    now.t = 3.0  # three seconds on: they weigh 1 now, at the first refusal
    model.gate.clear()
    errors = await _herd(batcher, model, 3)  # (one more served at 3 s)
    model.gate.set()
    assert [e.retry_after for e in errors] == [1, 1, 2]  # refused 1, 2, 3 for 1 + 1 served


async def test_a_cap_below_one_still_asks_for_a_second() -> None:
    batcher, model, _, draws = make_drawn(
        BatchPolicy(max_batch_size=1, max_queue=1, max_retry_after_s=0)
    )
    errors = await _herd(batcher, model, 5)
    model.gate.set()
    assert {e.retry_after for e in errors} == {1}
    assert draws.ranges == []


async def test_light_traffic_ends_a_standing_even_when_every_batch_is_full() -> None:
    """With ``max_batch_size: 1`` every batch is full: a request that finds the model idle is
    no sign of load, so requests one at a time let the standing end."""
    batcher, model, now, changes = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=1.0))
    tasks = await _stand(batcher, model, now)
    model.gate.set()
    await asyncio.gather(*tasks)
    for t in (1.5, 2.0, 2.5):  # one request every 0.5 s, each to an idle model
        now.t = t
        assert await batcher.submit("x") == "X"
    assert not batcher.standing  # 2.5 s: a window past the last busy batch (1.2 s)
    assert changes == [True, False]
    now.t = 2.6
    wave = [submit(batcher, v) for v in "pqr"]
    assert await asyncio.gather(*wave) == list("PQR")  # queued, not refused


async def test_an_idle_standing_queue_busy_again_stands_on() -> None:
    batcher, model, now, _ = make_timed(BatchPolicy(max_batch_size=1, max_wait_s=1.0))
    tasks = await _stand(batcher, model, now)
    model.gate.set()
    await asyncio.gather(*tasks)
    model.gate.clear()
    model.entered.clear()
    busy = [submit(batcher, "a")]  # the model works again
    await model.entered.wait()
    now.t = 5.0
    batcher._end_idle_standing()  # the check set when it idled: busy now, it does not decide
    assert batcher.standing
    model.gate.set()
    await asyncio.gather(*busy)
    await batcher.close()
    assert batcher._idle_check is None
