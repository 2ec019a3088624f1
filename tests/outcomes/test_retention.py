"""Retention: old requests go by age and by count, with their rows and feedback, on SQLite and
PostgreSQL; when (at open, then every minute, a chunk at a time); the settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pydantic
import pytest

from modelport.outcomes.backends import open_store
from modelport.outcomes.retention import DAY_S, Retention
from modelport.outcomes.service import Outcomes
from modelport.outcomes.store import Store
from modelport.settings import Settings
from tests.outcomes.helpers import pending, query, write

NOW = 2_000_000_000.0


def fill(store: Store, times: list[float]) -> list[str]:
    """One request per ``ts`` (``t<i>``), each with two rows and feedback on its first row."""
    ids = [f"t{i}" for i in range(len(times))]
    records = [pending(i, ["yes", "no"], started=ts) for i, ts in zip(ids, times, strict=True)]
    write(store, records, offset=0.0)
    for request_id in ids:
        store.put_feedback(request_id, 0, "yes", None)
    return ids


def kept(store: Store) -> tuple[list[str], list[str], list[str]]:
    """The ids left in each table: requests, predicted rows, feedback."""
    return (
        [r[0] for r in query(store, "SELECT request_id FROM mp_requests ORDER BY ts")],
        sorted({r[0] for r in query(store, "SELECT request_id FROM mp_predictions")}),
        sorted(r[0] for r in query(store, "SELECT request_id FROM mp_feedback")),
    )


def test_prune_by_age_takes_rows_and_feedback_along(store: Store) -> None:
    ids = fill(store, [NOW - 40 * DAY_S, NOW - 31 * DAY_S, NOW - 29 * DAY_S, NOW - 60])
    bound = store.prune_bound(30 * DAY_S, 0, NOW)
    assert bound == NOW - 30 * DAY_S
    assert store.prune(bound, 100) == 2
    assert kept(store) == (ids[2:], ids[2:], ids[2:])
    assert store.prune_bound(30 * DAY_S, 0, NOW) is None  # nothing more to delete


def test_prune_by_count_keeps_the_newest_a_chunk_at_a_time(store: Store) -> None:
    ids = fill(store, [NOW + i for i in range(10)])
    assert store.prune_bound(0, 10, NOW) is None
    bound = store.prune_bound(0, 4, NOW)
    assert bound == NOW + 5  # the 5th newest: it and everything older go
    assert [store.prune(bound, 3) for _ in range(3)] == [3, 3, 0]
    assert kept(store) == (ids[6:], ids[6:], ids[6:])


def test_both_bounds_the_tighter_wins(store: Store) -> None:
    ids = fill(store, [NOW - 40 * DAY_S, NOW - 3, NOW - 2, NOW - 1])
    assert store.prune_bound(30 * DAY_S, 2, NOW) == NOW - 3  # by count
    assert store.prune_bound(30 * DAY_S, 10, NOW) == NOW - 30 * DAY_S  # by age
    assert store.prune_bound(0, 0, NOW) is None  # no bound at all
    assert store.prune(NOW - 3, 100) == 2
    assert kept(store)[0] == ids[2:]


def test_retention_prunes_at_open_then_every_minute_a_chunk_a_wake(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    ids = fill(store, [NOW + i for i in range(10)])
    clock = [0.0]
    retention = Retention(store, max_rows=4, every_s=60, chunk=3, clock=lambda: clock[0])
    steps = []
    for _ in range(4):
        retention.step()
        steps.append((len(kept(store)[0]), retention.running))
    assert steps == [(7, True), (4, True), (4, False), (4, False)]  # due at open, in chunks
    assert retention.pruned == 6
    write(store, [pending("late", ["yes"], started=NOW + 20)], offset=0.0)
    retention.step()
    assert kept(store)[0] == [*ids[6:], "late"]  # not due yet
    clock[0] = 60.0
    retention.step()
    assert kept(store)[0] == [*ids[7:], "late"]
    store.close()


def test_no_bound_prunes_nothing(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    fill(store, [1.0, 2.0])
    retention = Retention(store, max_age_days=0, max_rows=0)
    retention.step()
    assert not retention.bounded
    assert len(kept(store)[0]) == 2
    store.close()


def test_a_failed_prune_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(path=tmp_path / "o.db")
    clock = [0.0]
    retention = Retention(store, max_rows=1, clock=lambda: clock[0])
    store._connection.close()
    retention.step()  # never raises
    assert "could not delete old outcome records" in caplog.text
    assert not retention.running


@pytest.mark.parametrize(
    ("limits", "left"),
    [({"outcomes_max_rows": 3}, 3), ({"outcomes_max_age_days": 30, "outcomes_max_rows": 0}, 5)],
)
def test_the_server_prunes_when_it_opens_the_store(
    backend: dict[str, Any], limits: dict[str, Any], left: int
) -> None:
    settings = Settings(**backend, **limits)
    store = open_store(settings.outcomes_url, settings.outcomes_db)
    now = time.time()
    ids = fill(store, [now - 40 * DAY_S + i for i in range(10)] + [now - 10 + i for i in range(5)])
    store.close()
    outcomes = Outcomes(settings)
    outcomes.open()
    outcomes.flush()  # the writer prunes at open, before it takes anything
    assert outcomes.store is not None
    assert kept(outcomes.store) == (ids[-left:], ids[-left:], ids[-left:])
    outcomes.close()


def test_settings_default_bounds_and_zero_for_none(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.outcomes_max_age_days, settings.outcomes_max_rows) == (30, 1_000_000)
    monkeypatch.setenv("MODELPORT_OUTCOMES_MAX_AGE_DAYS", "0.5")
    monkeypatch.setenv("MODELPORT_OUTCOMES_MAX_ROWS", "0")
    settings = Settings()
    assert (settings.outcomes_max_age_days, settings.outcomes_max_rows) == (0.5, 0)
    with pytest.raises(pydantic.ValidationError):
        Settings(outcomes_max_rows=-1)
