"""The per-minute totals: written with every batch, equal to the records they sum (reused ids,
retention, a store from before them), and a report read from them equal to the exact one: the
same counts and means, percentiles within 1 %, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.core.result import InferenceResult
from modelport.outcomes import summary
from modelport.outcomes.backends import open_store
from modelport.outcomes.experiments import Experiment
from modelport.outcomes.report import ExperimentReport, experiment_report
from modelport.outcomes.rollup import BACKFILL, bin_value, latency_bin, percentile
from modelport.outcomes.sqlite_store import SqliteStore
from modelport.outcomes.store import Store
from modelport.runtimes import Outputs
from modelport.settings import Settings
from tests.outcomes.helpers import REGRESSOR, pending, query, write

T0 = 1_700_000_017.25  # not on a minute
TOTALS = "SELECT * FROM mp_rollup ORDER BY model, minute, variant, version, kind"
BINS = "SELECT * FROM mp_rollup_latency ORDER BY model, minute, variant, bin"


def test_bins_are_two_percent_wide_and_percentiles_within_one_percent() -> None:
    for latency in (0.0011, 0.5, 1.0, 3.7, 250.0, 9e4):
        found = latency_bin(latency)
        assert bin_value(found) == pytest.approx(latency, rel=0.01)
        assert latency_bin(latency * 1.021) > found
    assert latency_bin(0.0) == latency_bin(-1.0) == latency_bin(0.001)  # clamped, not an error
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 10, 101, 5000):
        values = rng.lognormal(1.5, 0.8, n)
        histogram: dict[int, int] = {}
        for v in values:
            histogram[latency_bin(v)] = histogram.get(latency_bin(v), 0) + 1
        for q in (0, 1, 50, 90, 99, 100):
            assert percentile(histogram, q) == pytest.approx(np.percentile(values, q), rel=0.01)
    assert percentile({}, 50) is None


def _records(rng: np.random.Generator, n: int, seconds: float) -> list[Any]:
    """``n`` requests of model ``c`` over ``seconds`` from T0: v1 (version 1), v2 (2) and a
    canary served by 3 then 4; statuses 200, 422 and 500; two kinds of answer."""
    records = []
    for i in range(n):
        ts = T0 + seconds * i / n
        variant, version = [("v1", 1), ("v2", 2), ("canary", 3 + (i > n // 2))][i % 3]
        status = int(rng.choice([200] * 16 + [422, 422, 500, 503]))
        latency = float(rng.lognormal(1.2 + 0.1 * (variant == "v2"), 0.5))
        at = {"started": ts, "model": "c", "version": version, "variant": variant}
        if i % 7 == 0:  # a regressor's answer: a kind of its own
            result = InferenceResult("c", version, REGRESSOR, Outputs(np.asarray([1.5])))
            answer = result if status < 400 else None
            records.append(pending(f"c{i}", None, status, latency_ms=latency, result=answer, **at))
        else:
            labels = [str(rng.choice(["yes", "no"]))] if status < 400 else None
            records.append(pending(f"c{i}", labels, status, latency_ms=latency, **at))
    return records


def _fill(store: Store, n: int = 3000, seconds: float = 600.0) -> list[Any]:
    rng = np.random.default_rng(11)
    records = _records(rng, n, seconds)
    for first in range(0, n, 250):  # batches, as the writer commits them
        write(store, records[first : first + 250], offset=0.0)
    for record in records[::3]:
        if record[6] < 400 and record[7] == "classification":
            store.put_feedback(record[0], 0, str(rng.choice(["yes", "no"])), None)
    return records


def _report(
    store: Store, monkeypatch: pytest.MonkeyPatch, exact: bool, window: tuple[float, Any] | None
) -> ExperimentReport:
    experiment = None
    if window is not None:
        experiment = Experiment(
            model="c", name="w", started_at=window[0], stopped_at=window[1], metric="accuracy",
            traffic=None, events=[],
        )  # fmt: skip
    monkeypatch.setattr(summary, "EXACT_ROWS", 10**9 if exact else -1)
    return experiment_report(store, "c", experiment=experiment)


def _assert_same(rolled: ExperimentReport, exact: ExperimentReport) -> None:
    """Counts, versions, feedback and the metric equal; latency means and the guardrail to
    rounding; percentiles within 1 %."""
    assert [v.variant for v in rolled.variants] == [v.variant for v in exact.variants]
    for r, e in zip(rolled.variants, exact.variants, strict=True):
        got, want = r.model_dump(), e.model_dump()
        for key in ("latency_ms_p50", "latency_ms_p99"):
            assert got.pop(key) == pytest.approx(want.pop(key), rel=0.01)
        assert got.pop("latency_ms_mean") == pytest.approx(want.pop("latency_ms_mean"), rel=1e-9)
        assert got == want
    assert len(rolled.comparisons) == len(exact.comparisons)
    for r, e in zip(rolled.comparisons, exact.comparisons, strict=True):
        assert (r.difference, r.p_value, r.always_valid_p_value) == (
            e.difference, e.p_value, e.always_valid_p_value,
        )  # fmt: skip
        assert (r.latency is None) == (e.latency is None)
        if r.latency is not None and e.latency is not None:
            assert r.latency.difference == pytest.approx(e.latency.difference, rel=1e-9)
            assert r.latency.always_valid_p_value == pytest.approx(
                e.latency.always_valid_p_value, rel=1e-6, abs=1e-12
            )
    assert rolled.verdict == exact.verdict


def _windows(records: list[Any]) -> list[tuple[float, float | None] | None]:
    last = records[-1][1]
    return [
        None,  # everything
        (T0 + 100.5, None),  # a running experiment
        (T0 + 100.5, T0 + 400.75),  # partial minutes at both ends
        (T0 + 42.75, T0 + 120.0 - 17.25),  # from inside a minute to a minute's start
        (T0 + 130.0, T0 + 150.0),  # inside one minute: the records only
        (T0 - 1000.0, T0 - 10.0),  # before any record
        (last - 5.0, None),  # the last seconds
    ]


def test_a_report_from_the_totals_equals_the_exact_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _fill(store)
    read: list[str] = []
    select = store.select

    def noting(statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
        read.append(statement)
        return select(statement, params)

    def rolled_read() -> bool:  # the totals of whole minutes, or the records of partial ones
        return any("minute >=" in s or "GROUP BY 1, 2" in s for s in read)

    monkeypatch.setattr(store, "select", noting)
    for window in _windows(records):
        exact = _report(store, monkeypatch, True, window)
        assert not rolled_read()
        rolled = _report(store, monkeypatch, False, window)
        assert rolled_read()
        _assert_same(rolled, exact)
        read.clear()
    assert sum(v.requests for v in rolled.variants) > 0
    everything = _report(store, monkeypatch, False, None)
    assert sum(v.requests for v in everything.variants) == len(records)
    assert {tuple(v.versions) for v in everything.variants} == {(1,), (2,), (3, 4)}


def _sums(store: Store) -> tuple[int, int, float]:
    """Requests in the totals, requests stored, and the answered latencies' sum difference."""
    ((rolled, total),) = query(store, "SELECT SUM(requests), SUM(latency_sum) FROM mp_rollup")
    ((stored, latency),) = query(
        store, "SELECT COUNT(*), SUM(CASE WHEN status < 400 THEN latency_ms END) FROM mp_requests"
    )
    return int(rolled or 0), int(stored), abs(float(total or 0) - float(latency or 0))


def test_a_reused_request_id_is_summed_once(store: Store) -> None:
    """A caller re-sending its X-Request-Id: the store keeps the first record, and so do the
    totals, whether the second comes in a later batch or the same one."""
    first = [pending(f"r{i}", ["yes"], started=T0 + i, latency_ms=2.0) for i in range(5)]
    write(store, first, offset=0.0)
    again = [
        pending("r1", ["no"], started=T0 + 100, latency_ms=50.0),  # seen in a batch before
        pending("n1", ["no"], started=T0 + 101, latency_ms=3.0),
        pending("n1", ["no"], started=T0 + 102, latency_ms=70.0),  # twice in this batch
        pending("n2", None, 500, started=T0 + 103, latency_ms=4.0),
    ]
    write(store, again, offset=0.0)
    rolled, stored, difference = _sums(store)
    assert (rolled, stored) == (7, 7)
    assert difference == pytest.approx(0.0, abs=1e-9)
    bins = query(store, "SELECT bin, SUM(requests) FROM mp_rollup_latency GROUP BY bin")
    assert dict(bins) == {latency_bin(2.0): 5, latency_bin(3.0): 1, latency_bin(4.0): 1}


def test_retention_deletes_the_totals_of_minutes_it_emptied(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prune's bound falls inside a minute: that minute keeps its totals (some of its records
    remain) and the report counts it from the records; the minutes before lose theirs."""
    records = _fill(store)
    bound = T0 + 250.5
    while store.prune(bound, 400):
        pass
    minutes = [m for (m,) in query(store, "SELECT DISTINCT minute FROM mp_rollup")]
    assert min(minutes) == math.floor(bound / 60)  # the partial minute, nothing before
    assert [m for (m,) in query(store, "SELECT MIN(minute) FROM mp_rollup_latency")] == [
        math.floor(bound / 60)
    ]
    left = [r for r in records if r[1] > bound]
    for window in (None, (T0, None), (T0 + 300.0, T0 + 500.0)):
        rolled = _report(store, monkeypatch, False, window)
        _assert_same(rolled, _report(store, monkeypatch, True, window))
    assert sum(v.requests for v in _report(store, monkeypatch, False, None).variants) == len(left)


def _drop_totals(store: Store) -> tuple[list[Any], list[Any]]:
    """The totals as written, then the tables dropped: a store from before the totals."""
    written = query(store, TOTALS), query(store, BINS)
    for table in ("mp_rollup", "mp_rollup_latency", "mp_rollup_latency_hour", "mp_meta"):
        store.execute(f"DROP TABLE {table}")
    return written


def _approx_rows(rows: list[Any]) -> list[Any]:
    return [tuple(pytest.approx(x, rel=1e-9) if isinstance(x, float) else x for x in r)
            for r in rows]  # fmt: skip


def test_a_store_from_before_the_totals_is_summed_up_when_opened(
    backend: dict[str, Any],
) -> None:
    settings = Settings(**backend)
    store = open_store(settings.outcomes_url, settings.outcomes_db)
    _fill(store, n=900)
    totals, bins = _drop_totals(store)
    store.close()
    reopened = open_store(settings.outcomes_url, settings.outcomes_db)
    try:
        assert query(reopened, TOTALS) == _approx_rows(totals)
        assert query(reopened, BINS) == bins
        assert reopened.backfill() == 0  # once: the totals are there now
    finally:
        reopened.close()


def test_workers_opening_an_old_store_together_sum_it_up_once(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.db"
    store = SqliteStore(path)
    _fill(store, n=900)
    totals, _ = _drop_totals(store)
    store.close()
    barrier = threading.Barrier(4)
    opened: list[Store] = []

    def open_it() -> None:
        barrier.wait()
        opened.append(SqliteStore(path))

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 4
    assert query(opened[0], TOTALS) == _approx_rows(totals)
    for each in opened:
        each.close()


def test_a_record_older_than_what_retention_deleted_is_counted_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow request (or a writer behind) commits a record that started before the minute
    retention last reached: that minute's totals still count deleted records, so the report
    reads it from the records, and counts the late one once."""
    records = _fill(store, n=600, seconds=600.0)
    while store.prune(T0 + 330.5, 1000):
        pass
    late = pending("late", ["yes"], started=T0 + 130.0, model="c", latency_ms=3.0)
    write(store, [late], offset=0.0)
    left = len([r for r in records if r[1] > T0 + 330.5]) + 1
    for window in (None, (T0, None), (T0 + 100.0, T0 + 500.0)):
        rolled = _report(store, monkeypatch, False, window)
        _assert_same(rolled, _report(store, monkeypatch, True, window))
    assert sum(v.requests for v in _report(store, monkeypatch, False, None).variants) == left


def test_a_quiet_model_reads_whole_hours_from_the_hourly_bins(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few requests a minute over four hours: the whole hours' latency bins come from the
    hourly table (few rows however quiet the model), the same report as the exact one."""
    records = _fill(store, n=1500, seconds=4 * 3600.0)
    read: list[str] = []
    select = store.select

    def noting(statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
        read.append(statement)
        return select(statement, params)

    monkeypatch.setattr(store, "select", noting)
    hour = 3600.0
    windows = [None, (T0 + 1000.5, T0 + 3 * hour + 20.25), (T0 + hour, None), (T0, T0 + 600.0)]
    for window in windows:
        rolled = _report(store, monkeypatch, False, window)
        _assert_same(rolled, _report(store, monkeypatch, True, window))
    assert sum(v.requests for v in _report(store, monkeypatch, False, None).variants) == len(
        records
    )
    assert any("mp_rollup_latency_hour" in s for s in read)
    (rows,) = query(store, "SELECT COUNT(*) FROM mp_rollup_latency_hour")
    (minute_rows,) = query(store, "SELECT COUNT(*) FROM mp_rollup_latency")
    assert rows[0] < minute_rows[0]  # (far fewer once each hour holds more than its bins)


def test_an_old_file_put_in_place_of_a_running_store_is_summed_up(tmp_path: Path) -> None:
    """A backup from before the totals restored under a running server: the store opens it
    again (the file was replaced) and sums it up."""
    old = tmp_path / "old.db"
    store = SqliteStore(old)
    _fill(store, n=300)
    totals, _ = _drop_totals(store)
    store.close()
    running = SqliteStore(tmp_path / "outcomes.db")
    try:
        old.replace(tmp_path / "outcomes.db")
        assert query(running, TOTALS) == _approx_rows(totals)
        assert running.reopened == 1
    finally:
        running.close()


def test_a_worker_waits_for_another_summing_up_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the store's write lock (summing it up) past the busy timeout: the
    opening worker waits again instead of failing, and finds the totals done."""
    path = tmp_path / "outcomes.db"
    store = SqliteStore(path)
    _fill(store, n=300)
    totals, _ = _drop_totals(store)
    store.close()
    other = SqliteStore(path)  # sums it up in a transaction this test holds open
    other.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.create_function("mp_latency_bin", 1, latency_bin, deterministic=True)
    for table in ("mp_rollup", "mp_rollup_latency", "mp_rollup_latency_hour"):
        holder.execute(f"DELETE FROM {table}")
    holder.execute("BEGIN IMMEDIATE")
    period = SqliteStore.period_sql
    minute, hour = period.format(seconds=60), period.format(seconds=3600)
    for statement in BACKFILL:
        holder.execute(statement.format(minute=minute, hour=hour, bin=SqliteStore.bin_sql))
    waited = threading.Event()
    found: list[Any] = []
    timed_out = SqliteStore._lock_timed_out

    def noting(self: SqliteStore, exc: Exception) -> bool:
        waited.set()
        return timed_out(self, exc)

    monkeypatch.setattr(SqliteStore, "_lock_timed_out", noting)
    monkeypatch.setattr(SqliteStore, "busy_timeout_s", 1.0)  # ten waits: 10 s to commit
    opening = threading.Thread(target=lambda: found.append(SqliteStore(path)))
    opening.start()
    assert waited.wait(30)  # it met the lock, and waits again
    holder.execute("COMMIT")
    opening.join(30)
    holder.close()
    assert len(found) == 1
    assert query(found[0], TOTALS) == _approx_rows(totals)  # summed once, by the other
    found[0].close()
