"""Experiments in the store, SQLite and PostgreSQL alike: one running per model, windows by
timestamp, names never reused, events kept."""

from __future__ import annotations

import threading

import pytest

from modelport.errors import Conflict, PageNotFound
from modelport.model.policy import TrafficPolicy
from modelport.outcomes import experiments
from modelport.outcomes.backends import open_store
from modelport.outcomes.experiments import ExperimentIn
from modelport.outcomes.report import experiment_report
from modelport.outcomes.store import Store
from modelport.settings import Settings
from tests.outcomes.helpers import pending, write

SPLIT = TrafficPolicy.model_validate(
    {"split": [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}]}
)


def test_start_stop_and_windows(store: Store) -> None:
    write(store, [pending("early", ["yes"])])
    (ts,) = store.select("SELECT ts FROM mp_requests WHERE request_id = 'early'")[0]
    first = experiments.start(store, "m", ExperimentIn(name="a", traffic=SPLIT), now=ts + 1)
    assert experiments.running(store, "m") == first
    with pytest.raises(Conflict, match="'a' of 'm' is running"):
        experiments.start(store, "m", ExperimentIn(name="b"), now=ts + 2)
    assert experiments.start(store, "other", ExperimentIn(name="a"), now=ts).running
    noted = experiments.add_event(store, "m", "rollout", version=2)
    assert noted is not None
    assert [e["change"] for e in noted.events] == ["rollout"]
    assert experiments.add_event(store, "none", "rollout") is None
    stopped = experiments.stop(store, "m", "a", now=ts + 3)
    assert (stopped.stopped_at, stopped.events) == (ts + 3, noted.events)
    with pytest.raises(Conflict, match="stopped already"):
        experiments.stop(store, "m", "a")
    with pytest.raises(PageNotFound):
        experiments.stop(store, "m")
    with pytest.raises(Conflict, match="already had an experiment named 'a'"):
        experiments.start(store, "m", ExperimentIn(name="a"))
    found = experiments.find(store, "m", "a")
    assert found is not None
    assert found.traffic == SPLIT
    assert found.events == noted.events
    assert [e.model for e in experiments.listed(store)] == ["m", "other"]
    with pytest.raises(PageNotFound):
        experiments.resolve(store, "m", "zzz")
    # the early request is outside the window, and the report says so
    assert experiment_report(store, "m", experiment=found).variants == []
    assert [v.requests for v in experiment_report(store, "m").variants] == [1]


def test_concurrent_notes_are_all_kept(store: Store, backend: dict[str, object]) -> None:
    """Two writers (each its own connection, as two workers or the CLI and a server) noting
    changes at once: none overwrites the other's."""
    experiments.start(store, "m", ExperimentIn(name="busy"))
    settings = Settings(**backend)  # type: ignore[arg-type]
    writers = [open_store(settings.outcomes_url, settings.outcomes_db) for _ in range(2)]
    together = threading.Barrier(len(writers))

    def note(index: int) -> None:
        together.wait()
        for i in range(25):
            assert experiments.add_event(writers[index], "m", "rollout", by=index, i=i)

    try:
        threads = [threading.Thread(target=note, args=(i,)) for i in range(len(writers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for writer in writers:
            writer.close()
    found = experiments.find(store, "m", "busy")
    assert found is not None
    assert sorted((e["by"], e["i"]) for e in found.events) == [
        (w, i) for w in range(2) for i in range(25)
    ]
