"""The data plane under concurrency: micro-batching, deadlines, batching switched off."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.core.dataplane import INLINE_S, DataPlane
from modelport.core.registry import Registry
from modelport.core.repository import scan
from modelport.errors import GatewayTimeout, InvalidInput, Overloaded
from tests.helpers import write_fake_model

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def plane_for(tmp_path: Path, timeout: float = 30, **card: object) -> DataPlane:
    write_fake_model(tmp_path, "m", **card)
    registry = Registry(scan(tmp_path))
    registry.load_all()
    return DataPlane(registry, request_timeout=timeout)


async def test_concurrent_requests_share_batches(tmp_path: Path) -> None:
    plane = plane_for(tmp_path, parameters={"delay_s": 0.05})
    model = plane.version("m")
    rows = [np.array([[float(i), 0.0]]) for i in range(16)]
    results = await asyncio.gather(*(plane.infer(model, r) for r in rows))
    assert [r.labels()[0] for r in results] == [i % 2 for i in range(16)]
    assert model.batcher is not None
    assert model.batcher.batches < 16  # requests that waited rode together
    await plane.close()


async def test_a_bad_request_fails_alone(tmp_path: Path) -> None:
    plane = plane_for(tmp_path, parameters={"delay_s": 0.02})
    model = plane.version("m")
    good = [np.array([[1.0, 1.0]]) for _ in range(4)]
    bad = np.array([["x", "y"]], dtype=object)
    outcomes = await asyncio.gather(
        *(plane.infer(model, r) for r in [good[0], good[1], bad, good[2], good[3]]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], InvalidInput)
    assert all(not isinstance(o, Exception) for i, o in enumerate(outcomes) if i != 2)


async def test_deadline_answers_504(tmp_path: Path) -> None:
    plane = plane_for(tmp_path, timeout=0.05, parameters={"delay_s": 1.0})
    model = plane.version("m")
    with pytest.raises(GatewayTimeout, match=r"did not answer within 0\.05 s"):
        await plane.infer(model, np.array([[1.0, 2.0]]))


async def test_batching_can_be_switched_off(tmp_path: Path) -> None:
    plane = plane_for(tmp_path, batching={"enabled": False})
    model = plane.version("m")
    result = await plane.infer(model, np.array([[1.0, 2.0], [2.0, 2.0]]))
    assert result.labels() == [1, 0]
    assert model.batcher is None


async def test_a_cheap_model_runs_on_the_loop_and_a_costly_one_in_a_thread(
    tmp_path: Path,
) -> None:
    """Batches of numbers that the model lately ran in under INLINE_S skip the worker thread;
    one that turns slow goes back to the thread once its running average says so."""
    plane = plane_for(tmp_path, batching={"enabled": False})
    model = plane.version("m")
    runtime: Any = model.runtime
    ran_in: list[int] = []
    predict = runtime.predict

    def noting(rows: np.ndarray) -> Any:
        ran_in.append(threading.get_ident())
        return predict(rows)

    runtime.predict = noting
    loop = threading.get_ident()
    row = np.array([[1.0, 2.0]])
    for _ in range(3):
        await plane.infer(model, row)
    assert ran_in[0] != loop  # its cost is not known yet
    assert ran_in[1:] == [loop, loop]
    assert model.batch_seconds is not None
    assert model.batch_seconds < INLINE_S
    runtime.delay_s = 0.02  # 100x the budget: one batch on the loop, then threads
    for _ in range(3):
        await plane.infer(model, row)
    assert ran_in[3] == loop
    assert loop not in ran_in[4:]
    assert model.batch_seconds > INLINE_S
    await plane.close()


async def test_the_card_sets_the_batching_policy(tmp_path: Path) -> None:
    batching = {
        "max_batch_size": 8,
        "max_latency_ms": 2,
        "max_queue": 16,
        "max_wait_ms": 250,
        "max_retry_after_s": 3,
    }
    plane = plane_for(tmp_path, batching=batching)
    model = plane.version("m")
    await plane.infer(model, np.array([[1.0, 2.0]]))
    assert model.batcher is not None
    policy = model.batcher.policy
    assert (policy.max_batch_size, policy.max_latency_s, policy.max_queue) == (8, 0.002, 16)
    assert (policy.max_wait_s, policy.max_retry_after_s) == (0.25, 3)
    await plane.close()


async def test_an_overloaded_model_is_refused_with_its_own_retry_after(tmp_path: Path) -> None:
    """``admit`` (the HTTP layer's early refusal) answers with the refusing batcher's spread,
    and counts the refusal there."""
    plane = plane_for(tmp_path, batching={"max_retry_after_s": 2})
    model = plane.version("m")
    assert model.batcher is None
    await plane.infer(model, np.array([[1.0, 2.0]]))
    batcher = model.batcher
    assert batcher is not None
    plane.admit("m")  # not standing: admitted
    batcher.standing, batcher._rows = True, batcher.policy.max_batch_size  # a batch waits ahead
    for _ in range(20):
        with pytest.raises(Overloaded, match="serving all it can") as refused:
            plane.admit("m")
        assert 1 <= refused.value.retry_after <= 2
    assert batcher._shed >= 10  # counted there (halved at most once meanwhile)
    batcher.standing, batcher._rows = False, 0
    await plane.close()


async def test_one_version_ending_its_standing_leaves_another_standing(tmp_path: Path) -> None:
    """The early refusal stays armed while any version's queue stands: the versions of one
    model stand and end apart."""
    write_fake_model(tmp_path, "m", versions=(1, 2))
    registry = Registry(scan(tmp_path))
    registry.load_all()
    plane = DataPlane(registry)
    one, two = plane.version("m", 1), plane.version("m", 2)
    for model in (one, two):
        await plane.infer(model, np.array([[1.0, 2.0]]))
    assert one.batcher is not None
    assert two.batcher is not None
    one.batcher._on_standing(True)  # type: ignore[misc]
    two.batcher._on_standing(True)  # type: ignore[misc]
    two.batcher._on_standing(False)  # type: ignore[misc]
    assert len(plane.standing) == 1
    one.batcher._on_standing(False)  # type: ignore[misc]
    assert not plane.standing
    await plane.close()


async def test_a_retired_queue_ending_leaves_its_reloaded_versions_queue_standing(
    tmp_path: Path,
) -> None:
    """A reload builds version 1 anew while the old one's queue closes: the old queue's end
    does not disarm the early refusal the new one's standing asked for."""
    write_fake_model(tmp_path, "m")
    registry = Registry(scan(tmp_path), origin=tmp_path)
    registry.load_all()
    plane = DataPlane(registry)
    old = plane.version("m", 1)
    await plane.infer(old, np.array([[1.0, 2.0]]))
    registry.reload("m")
    new = plane.version("m", 1)
    assert new is not old
    await plane.infer(new, np.array([[1.0, 2.0]]))
    assert old.batcher is not None
    assert new.batcher is not None
    new.batcher._on_standing(True)  # type: ignore[misc]
    old.batcher._on_standing(False)  # type: ignore[misc]
    assert plane.standing
    await plane.close()
