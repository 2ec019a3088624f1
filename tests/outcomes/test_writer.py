"""The serving path's ``Outcomes.record`` (a tuple on a deque) and the background writer: what is
recorded, batches of one statement per table, a full queue, flush, close and crashes."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.core.result import InferenceResult
from modelport.outcomes import records as records_module
from modelport.outcomes.backends import open_store
from modelport.outcomes.service import Outcomes
from modelport.outcomes.store import Store
from modelport.outcomes.writer import Writer
from modelport.runtimes import Outputs
from modelport.settings import Settings
from tests.outcomes.helpers import REGRESSOR, classified, pending, query

IDLE = 3600.0  # a writer delay no test reaches: the writer wakes only when flushed or closed


class _Cursor:
    def __init__(self, cursor: Any, statements: list[tuple[str, str, int]]) -> None:
        self._cursor = cursor
        self._statements = statements

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._statements.append(("execute", sql, 1))
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> Any:
        params = list(params)
        self._statements.append(("executemany", sql, len(params)))
        return self._cursor.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class Recording:
    """A DB-API connection noting each statement its cursors run, and each commit."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.statements: list[tuple[str, str, int]] = []
        self.commits = 0

    def cursor(self) -> _Cursor:
        return _Cursor(self._connection.cursor(), self.statements)

    def commit(self) -> None:
        self.commits += 1
        self._connection.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def count(store: Store) -> int:
    return int(query(store, "SELECT count(*) FROM mp_requests")[0][0])


def test_record_stores_rows_kind_error_variant_and_latency(backend: dict[str, Any]) -> None:
    outcomes = Outcomes(Settings(**backend))
    outcomes.open()
    started, wall = time.perf_counter(), time.time()
    regression = InferenceResult("m", 2, REGRESSOR, Outputs(np.asarray([1.25, 2.5])))
    outcomes.record("c", started, "m", 1, "v1", 2.5, 200, classified(["yes", "no"]))
    outcomes.record("r", started + 1, "m", 2, "v2", 3.0, 200, regression)
    outcomes.record("e", started + 2, "m", 2, "v2", 0.5, 503, None)
    outcomes.record("x", started + 3, "m", 2, "v2", 0.25, 599, None)
    assert outcomes.writer is not None
    assert outcomes.writer.flush()
    assert outcomes.store is not None
    rows = query(outcomes.store, "SELECT * FROM mp_requests ORDER BY ts")
    assert [row[0] for row in rows] == ["c", "r", "e", "x"]
    for i, row in enumerate(rows):  # started (perf_counter) became Unix time
        assert row[1] == pytest.approx(wall + i, abs=0.05)
    assert [row[2:] for row in rows] == [
        ("m", 1, "v1", "classification", 2, 2.5, 200, None),
        ("m", 2, "v2", "regression", 2, 3.0, 200, None),
        ("m", 2, "v2", None, 0, 0.5, 503, HTTPStatus(503).phrase),
        ("m", 2, "v2", None, 0, 0.25, 599, "HTTP 599"),
    ]  # fmt: skip
    sql = "SELECT * FROM mp_predictions ORDER BY request_id, row_index"
    predictions = query(outcomes.store, sql)
    assert predictions == [("c", 0, "yes", None), ("c", 1, "no", None),
                           ("r", 0, None, 1.25), ("r", 1, None, 2.5)]  # fmt: skip
    assert outcomes.writer.written == 4
    outcomes.close()


def _sizes(statements: list[tuple[str, str, int]], table: str) -> list[tuple[str, int]]:
    """How each statement into ``table`` was run, and how many rows it carried."""
    return [
        (s[0], s[1].count("), (") + 1)
        for s in statements
        if s[1].startswith(f"INSERT INTO {table} ")
    ]


def test_one_batch_is_one_transaction_of_a_few_multi_row_statements(store: Store) -> None:
    """1,200 requests with 1,600 predicted rows: one commit, the rows a quarter of the batch
    (300) to a statement, the batch's totals one statement per table (each statement hands the
    GIL over twice)."""
    writer = Writer(store, max_delay_s=IDLE)
    recording = Recording(store._connection)
    store._connection = recording
    for i in range(1200):
        labels = ["yes", "no"] if i % 3 else None
        writer.submit(pending(f"r{i}", labels, 200 if labels else 422))
    assert writer.flush()
    statements = recording.statements
    assert _sizes(statements, "mp_requests") == [("execute", 300)] * 4
    assert _sizes(statements, "mp_predictions") == [("execute", 300)] * 5 + [("execute", 100)]
    totals, bins, hours = (
        _sizes(statements, table)
        for table in ("mp_rollup", "mp_rollup_latency", "mp_rollup_latency_hour")
    )
    assert [how for how, _ in totals + bins + hours] == ["execute"] * 3
    assert 2 <= totals[0][1] <= 4  # one or two minutes; two kinds
    assert 1 <= bins[0][1] <= 2  # one latency
    assert len(statements) == 4 + 6 + 3  # nothing else
    assert (recording.commits, writer.batches, writer.written) == (1, 1, 1200)
    writer.close()
    assert count(store) == 1200
    assert query(store, "SELECT COUNT(*) FROM mp_predictions") == [(1600,)]
    assert query(store, "SELECT SUM(requests), SUM(errors + rejected) FROM mp_rollup") == [
        (1200, 400)
    ]


@pytest.mark.parametrize(
    ("records", "piece", "releases"),
    [(100, 32, 3 + 3), (1200, 300, 3 + 3), (4000, 500, 7 + 7)],  # converting + summing up
)
def test_the_writer_lets_the_loop_have_the_gil_every_piece(
    store: Store, monkeypatch: pytest.MonkeyPatch, records: int, piece: int, releases: int
) -> None:
    """A light load (a small batch) holds the GIL for a few dozen records at a time, a heavy
    one for up to 500: short waits for the event loop, and few handovers."""
    assert records_module.piece(records) == piece
    slept: list[float] = []
    monkeypatch.setattr(records_module.time, "sleep", slept.append)
    writer = Writer(store, max_delay_s=IDLE)
    writer.early = 0  # one batch of them all (no early wake-up at a quarter of the queue)
    for i in range(records):
        writer.submit(pending(f"r{i}", ["yes"]))
    assert writer.flush()
    writer.close()
    assert slept.count(0) == releases
    assert count(store) == records


def test_statements_stay_within_the_databases_parameters(store: Store) -> None:
    """A SQLite built with a lower limit (999 before 3.32): as many rows as fit."""
    store.max_parameters = 45  # 4 requests of 10 values, 11 predicted rows of 4
    writer = Writer(store, max_delay_s=IDLE)
    recording = Recording(store._connection)
    store._connection = recording
    for i in range(10):
        writer.submit(pending(f"r{i}", ["yes", "no"]))
    assert writer.flush()
    assert _sizes(recording.statements, "mp_requests") == [("execute", 4)] * 2 + [("execute", 2)]
    assert [n for _, n in _sizes(recording.statements, "mp_predictions")] == [11, 9]
    writer.close()
    assert count(store) == 10


class _Signalling:
    """A store whose writes are announced (so a test waits for one without sleeping)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.wrote = threading.Event()

    def write(self, *args: Any, **kwargs: Any) -> None:
        self.store.write(*args, **kwargs)
        self.wrote.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_quarter_of_the_queue_waiting_wakes_the_writer(tmp_path: Path) -> None:
    """Long before ``max_delay_s`` (which no test reaches here), from the serving path's own
    append: a fast server's queue never nears its bound between two batches."""
    settings = Settings(
        models=tmp_path, outcomes_db=tmp_path / "o.db", outcomes_queue=40, outcomes_process=False
    )
    outcomes = Outcomes(settings, max_delay_s=IDLE)
    outcomes.open()
    writer, store = outcomes.writer, outcomes.store
    assert writer is not None
    assert store is not None
    assert writer.early == 10
    signalling = _Signalling(store)
    writer.store = signalling  # type: ignore[assignment]
    for i in range(9):
        outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
    assert not signalling.wrote.is_set()
    outcomes.record("r9", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
    assert signalling.wrote.wait(10)
    assert count(store) == 10
    signalling.wrote.clear()
    for i in range(10, 20):  # and the writer's own submit wakes it the same way
        writer.submit(pending(f"r{i}", None, 422))
    assert signalling.wrote.wait(10)
    outcomes.close()


def test_a_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        models=tmp_path, outcomes_db=tmp_path / "o.db", outcomes_queue=5, outcomes_process=False
    )
    outcomes = Outcomes(settings, max_delay_s=IDLE)
    outcomes.open()
    assert outcomes.writer is not None
    assert outcomes.store is not None
    outcomes.writer.early = 0  # no early wake-up (tested below): the queue only fills here
    with caplog.at_level(logging.WARNING, "modelport.outcomes"):
        for i in range(100):
            outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
    assert (outcomes.writer.dropped, len(outcomes.writer.pending)) == (95, 5)
    assert [r.getMessage() for r in caplog.records] == [
        "outcome queue full (5 records): 1 predictions not recorded so far"
    ]  # logged once, not per drop
    with outcomes.store._lock:  # the database is stuck: recording still never waits
        outcomes.record("stuck", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
        assert not outcomes.writer.flush(timeout=0.1)
        for i in range(100):
            outcomes.record(f"s{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
    assert outcomes.writer.flush()
    assert outcomes.writer.written + outcomes.writer.dropped == 201
    assert count(outcomes.store) == outcomes.writer.written
    outcomes.close()


def test_flush_waits_for_everything_recorded_before_it(backend: dict[str, Any]) -> None:
    outcomes = Outcomes(Settings(**backend), max_delay_s=IDLE)
    outcomes.open()
    assert outcomes.writer is not None
    assert outcomes.store is not None
    for i in range(50):
        outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, classified(["yes"]))
    outcomes.flush()
    assert all(outcomes.store.request(f"r{i}") is not None for i in range(50))
    assert outcomes.writer.batches == 1
    outcomes.close()


def test_a_clean_close_loses_nothing(backend: dict[str, Any]) -> None:
    """close() commits everything recorded, at once (no waiting for the writer's timer)."""
    outcomes = Outcomes(Settings(**backend), max_delay_s=IDLE)
    outcomes.open()
    for i in range(1000):
        outcomes.record(f"r{i}", time.perf_counter(), "m", 1, "v1", 1.0, 200, classified(["yes"]))
    writer = outcomes.writer
    outcomes.close()
    assert writer is not None
    assert writer.flush()
    outcomes.record("late", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)  # ignored
    writer.submit(pending("late"))  # ignored, never raises
    outcomes.open()
    assert outcomes.store is not None
    assert count(outcomes.store) == 1000
    assert outcomes.store.request("late") is None
    outcomes.close()


def test_recording_off_records_nothing(tmp_path: Path) -> None:
    outcomes = Outcomes(Settings(models=tmp_path, outcomes=False))
    outcomes.open()
    outcomes.record("a", time.perf_counter(), "m", 1, "v1", 1.0, 200, None)
    outcomes.flush()
    assert (outcomes.recording, outcomes.store) == (False, None)
    outcomes.close()


def test_a_database_error_is_counted_and_the_writer_goes_on(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    writer = Writer(store)
    bad = pending("bad", ["yes"])
    writer.submit((*bad[:2], None, *bad[3:]))  # type: ignore[arg-type] # model: NOT NULL
    assert writer.flush()
    assert (writer.failed, writer.written) == (1, 0)
    writer.submit(pending("good", ["yes"]))
    assert writer.flush()
    assert (writer.failed, writer.written) == (1, 1)
    writer.close()
    store.close()


def test_an_answer_that_cannot_be_converted_fails_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = Outcomes(Settings(models=tmp_path, outcomes_db=tmp_path / "o.db"), max_delay_s=IDLE)
    outcomes.open()
    assert outcomes.writer is not None
    assert outcomes.store is not None
    broken = classified(["yes"])
    object.__setattr__(broken, "outputs", None)  # labels() raises, on the serving path
    started = time.perf_counter()
    outcomes.record("a", started, "m", 1, "v1", 1.0, 200, classified(["yes"]))
    with caplog.at_level(logging.ERROR, "modelport.outcomes"):
        outcomes.record("broken", started, "m", 1, "v1", 1.0, 200, broken)  # does not raise
    outcomes.record("b", started, "m", 1, "v1", 1.0, 200, classified(["no"]))
    queued = list(outcomes.writer.pending)
    assert [r[7:] for r in queued] == [("classification", ["yes"]), ("classification", ["no"])]
    assert not any(isinstance(v, InferenceResult) for r in queued for v in r)  # no model output
    outcomes.writer.submit(("c", started, "m", 1, "v1", 1.0, 200, "regression", ["x"]))
    outcomes.flush()
    writer = outcomes.writer
    assert (writer.batches, writer.failed, writer.written) == (1, 2, 2)  # float("x") fails
    assert outcomes.health.dropped["unconvertible"] == 2
    assert "could not record the answer of request broken" in caplog.text
    assert outcomes.store.request("broken") is None
    assert outcomes.store.prediction("b", 0) == ("no", None)
    outcomes.close()


CRASH = """
import os, sys
from pathlib import Path
from tests.outcomes.helpers import pending
from modelport.outcomes.backends import open_store
from modelport.outcomes.writer import Writer
writer = Writer(open_store(path=Path(sys.argv[1])))
for i in range(20):
    writer.submit(pending(f"r{i}", ["yes"]))
assert writer.flush()
writer.submit(pending("unflushed", ["yes"]))
os._exit(9)  # a crash: no close, no flush, no atexit
"""


def test_a_crash_loses_nothing_already_flushed(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", CRASH, str(db)], cwd=root, check=False)
    assert done.returncode == 9
    store = open_store(path=db)
    assert all(store.request(f"r{i}") is not None for i in range(20))
    store.close()
