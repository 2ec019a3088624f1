"""The outcome service of a process: reports one at a time and shared by the calls waiting,
a bounded wait, and readiness's ``outcomes`` detail (failing readiness only when required)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from modelport.errors import Overloaded
from modelport.outcomes.report import ExperimentReport
from modelport.outcomes.service import Outcomes
from modelport.settings import Settings
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model
from tests.outcomes.helpers import pending, write


def _outcomes(tmp_path: Path) -> Outcomes:
    outcomes = Outcomes(Settings(models=tmp_path, outcomes_db=tmp_path / "o.db"))
    outcomes.open()
    assert outcomes.store is not None
    write(outcomes.store, [pending(f"r{i}", ["yes"], variant=f"v{1 + i % 2}") for i in range(50)])
    return outcomes


def test_concurrent_reports_share_one_computation_and_none_is_stale(tmp_path: Path) -> None:
    outcomes = _outcomes(tmp_path)

    async def eight() -> list[ExperimentReport]:
        reports: list[ExperimentReport] = []

        async def one() -> None:
            reports.append(await outcomes.report("m", 30))

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        return reports

    reports = anyio.run(eight)
    assert len(reports) == 8
    assert all(r == reports[0] for r in reports)
    assert reports[0].variants[0].requests == 25
    assert outcomes.reports_computed <= 2  # the first, and one for every call that waited
    assert outcomes.store is not None
    write(outcomes.store, [pending("late", ["yes"], variant="v1")])
    later = anyio.run(outcomes.report, "m", 30)  # a call after a computation gets a new one
    assert later.variants[0].requests == 26
    outcomes.close()


def test_a_report_waits_a_bounded_time_then_answers_overloaded(tmp_path: Path) -> None:
    outcomes = _outcomes(tmp_path)
    outcomes.report_wait_s = 0.2

    async def while_another_runs() -> None:
        lock = outcomes._report_lock = anyio.Lock()
        held, done = anyio.Event(), anyio.Event()

        async def computing() -> None:  # a report being computed, for as long as it takes
            async with lock:
                held.set()
                await done.wait()

        async with anyio.create_task_group() as group:
            group.start_soon(computing)
            await held.wait()
            with pytest.raises(Overloaded, match="another experiment report"):
                await outcomes.report("m", 30)
            done.set()
        assert (await outcomes.report("m", 30)).variants  # free again

    anyio.run(while_another_runs)
    outcomes.close()


def test_readiness_shows_the_store_and_fails_only_when_required(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "ab", parameters={"classes": ["no", "yes"]})
    (tmp_path / "a-file").write_text("not a folder")
    broken = {"outcomes_db": tmp_path / "a-file" / "o.db"}
    with make_client(repo) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["outcomes"] == {
            "state": "ok", "recording": True, "failure": None, "failing_since": None,
            "dropped": {"queue_full": 0, "store_error": 0, "unconvertible": 0},
        }  # fmt: skip
        metrics = client.get("/metrics").text
        assert "modelport_outcomes_recording 1.0" in metrics
        assert 'modelport_outcomes_dropped_total{reason="store_error"} 0.0' in metrics
    with make_client(repo, **broken) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200  # serving does not depend on the store
        detail = ready.json()["outcomes"]
        assert (detail["state"], detail["failure"]) == ("unavailable", "os_error")
        assert str(tmp_path) not in ready.text  # no path to anonymous callers
        assert "modelport_outcomes_recording 0.0" in client.get("/metrics").text
    with make_client(repo, outcomes_required=True, **broken) as client:
        assert client.get("/ready").status_code == 503
    with make_client(repo, outcomes_required=True, outcomes=False) as client:
        ready = client.get("/ready")
        assert (ready.status_code, ready.json()["outcomes"]["state"]) == (200, "off")
