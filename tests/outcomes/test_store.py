"""The outcome store on SQLite and on a real PostgreSQL, and its background writer."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from modelport.core.dataplane import InferenceResult
from modelport.model.signature import FieldSpec, OutputSpec, Signature
from modelport.outcomes.records import Served
from modelport.outcomes.store import Store, open_store
from modelport.outcomes.writer import Writer
from modelport.runtimes import Outputs
from tests.conftest import ClientFactory
from tests.helpers import running_server, write_fake_model
from tests.postgres import cluster, fresh_database, postgres_bin

CLASSIFIER = Signature(
    inputs=[FieldSpec(name="x")],
    output=OutputSpec(kind="classification"),
    classes=["no", "yes"],
)
REGRESSOR = Signature(inputs=[FieldSpec(name="x")], output=OutputSpec(kind="regression"))


def served(
    request_id: str, labels: list[str] | None = None, status: int = 200, **kw: object
) -> Served:
    result = None
    if labels is not None:
        result = InferenceResult("m", 1, CLASSIFIER, Outputs(np.asarray(labels, dtype=object)))
    fields: dict[str, object] = {
        "time": time.time(), "model": "m", "version": 1, "variant": "v1",
        "kind": "classification", "latency_ms": 1.5, "status": status, "result": result,
    }  # fmt: skip
    fields.update(kw)
    return Served(request_id, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with cluster(bin_dir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(path=tmp_path / "outcomes.db")
    else:
        opened = open_store(fresh_database(request.getfixturevalue("postgres_url")))
    yield opened
    opened.close()


def test_requests_rows_and_errors_round_trip(store: Store) -> None:
    store.write([served("a", ["yes", "no"]), served("b", status=422, error="Unprocessable")])
    found = store.request("a")
    assert found is not None
    assert (found.model, found.version, found.variant, found.rows, found.status) == (
        "m", 1, "v1", 2, 200,
    )  # fmt: skip
    assert store.prediction("a", 0) == ("yes", None)
    assert store.prediction("a", 1) == ("no", None)
    assert store.prediction("a", 2) is None
    error = store.request("b")
    assert error is not None
    assert (error.rows, error.status) == (0, 422)
    assert store.request("c") is None
    assert sorted(store.traffic("m")) == [
        ("v1", 1, 200, 1.5, "classification"), ("v1", 1, 422, 1.5, "classification"),
    ]  # fmt: skip


def test_regressor_rows_store_values(store: Store) -> None:
    result = InferenceResult("m", 1, REGRESSOR, Outputs(np.asarray([1.25, 2.5])))
    store.write([served("r", kind="regression", result=result)])
    assert store.prediction("r", 1) == (None, 2.5)


def test_a_reused_request_id_keeps_its_first_record(store: Store) -> None:
    store.write([served("a", ["yes"])])
    store.write([served("a", ["no"], variant="v2")])
    found = store.request("a")
    assert found is not None
    assert found.variant == "v1"
    assert store.prediction("a", 0) == ("yes", None)


def test_feedback_is_upserted_and_joined_to_its_prediction(store: Store) -> None:
    store.write([served("a", ["yes", "no"]), served("b", ["no"], variant="v2", version=2)])
    assert store.put_feedback("a", 1, "no", None) is False
    assert store.put_feedback("a", 1, "yes", None) is True  # the latest truth wins
    assert store.put_feedback("b", 0, "no", None) is False
    assert sorted(store.outcomes("m")) == [
        ("v1", "no", None, "yes", None), ("v2", "no", None, "no", None),
    ]  # fmt: skip
    assert store.outcomes("other") == []


def test_writer_batches_and_flushes(store: Store) -> None:
    writer = Writer(store, max_queue=1000, batch_size=50)
    for i in range(300):
        writer.submit(served(f"r{i}", ["yes"]))
    assert writer.flush()
    assert len(store.traffic("m")) == 300
    assert writer.written == 300
    writer.close()


def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    writer = Writer(store)
    for i in range(50):
        writer.submit(served(f"r{i}", ["yes"]))
    writer.close()
    writer.submit(served("late", ["yes"]))  # after close: ignored, never raises
    store.close()
    reopened = open_store(path=tmp_path / "o.db")
    assert len(reopened.traffic("m")) == 50
    reopened.close()


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    writer = Writer(store, max_queue=2, batch_size=1)
    with store._lock:  # the database is stuck: the writer holds at most one record
        started = time.perf_counter()
        for i in range(100):
            writer.submit(served(f"r{i}", ["yes"]))
        assert time.perf_counter() - started < 1.0  # submit never waits for the database
        assert writer.dropped >= 97
    assert writer.flush()
    assert writer.written + writer.dropped == 100
    writer.close()
    store.close()


def test_a_database_error_is_counted_and_the_writer_goes_on(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "o.db")
    writer = Writer(store)
    writer.submit(served("bad", ["yes"], model=None))  # NOT NULL violated
    assert writer.flush()
    assert writer.failed == 1
    writer.submit(served("good", ["yes"]))
    assert writer.flush()
    assert writer.written == 1
    writer.close()
    store.close()


CRASH = """
import os, sys
from pathlib import Path
from tests.outcomes.test_store import served
from modelport.outcomes.store import open_store
from modelport.outcomes.writer import Writer
writer = Writer(open_store(path=Path(sys.argv[1])))
for i in range(20):
    writer.submit(served(f"r{i}", ["yes"]))
assert writer.flush()
os._exit(9)  # a crash: no close, no flush, no atexit
"""


def test_a_crash_loses_nothing_already_flushed(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", CRASH, str(db)], cwd=root, check=False)
    assert done.returncode == 9
    store = open_store(path=db)
    assert len(store.traffic("m")) == 20
    store.close()


def test_open_store_chooses_by_url(tmp_path: Path) -> None:
    sqlite = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    assert sqlite.where == str(tmp_path / "x.db")
    sqlite.close()
    from modelport.errors import ConfigError

    with pytest.raises(ConfigError, match="postgresql://"):
        open_store("mysql://user:secret@host/db")


def test_postgres_url_password_is_never_shown(postgres_url: str) -> None:
    store = open_store(postgres_url.replace("modelport@", "modelport:hunter2@"))
    assert "hunter2" not in store.where
    store.close()


def test_the_server_records_in_postgres(
    postgres_url: str, tmp_path: Path, make_client: ClientFactory
) -> None:
    """MODELPORT_OUTCOMES_URL=postgresql://...: predictions, feedback and the report there."""
    write_fake_model(tmp_path / "repo", "ab", versions=(1, 2), parameters={"classes": ["a", "b"]})
    url = fresh_database(postgres_url)
    with make_client(tmp_path / "repo", outcomes_url=url) as client:
        answer = client.post("/models/ab/versions/1/predict", json={"x0": 1, "x1": 0})
        request_id = answer.headers["x-request-id"]
        body = {"request_id": request_id, "label": answer.json()["prediction"]}
        assert client.post("/feedback", json=body).json()["correct"] is True
        assert client.get("/experiments/ab").json()["variants"][0]["accuracy"] == 1.0
    assert not (tmp_path / "repo" / ".modelport").exists()  # nothing went to SQLite
    store = open_store(url)
    assert store.prediction(request_id, 0) == ("b", None)
    store.close()


def test_postgres_reconnects_after_the_server_drops_it(postgres_url: str) -> None:
    import psycopg

    url = fresh_database(postgres_url)
    store = open_store(url)
    store.write([served("a", ["yes"])])
    with psycopg.connect(url, autocommit=True) as admin:  # what a database restart does
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(psycopg.OperationalError):
        store.request("a")  # the transaction that meets the drop fails
    assert store.request("a") is not None  # the next one runs on a new connection
    store.write([served("b", ["no"])])
    assert store.prediction("b", 0) == ("no", None)
    store.close()


@pytest.mark.e2e
def test_two_replicas_share_one_postgres(postgres_url: str, tmp_path: Path) -> None:
    """Predict on one server process, give feedback on another: one experiment."""
    write_fake_model(tmp_path / "repo", "ab", versions=(1, 2), parameters={"classes": ["a", "b"]})
    env = {"MODELPORT_OUTCOMES_URL": fresh_database(postgres_url)}
    args = [str(tmp_path / "repo")]
    with (
        running_server(args, tmp_path / "a.log", env) as first,
        running_server(args, tmp_path / "b.log", env) as second,
    ):
        for version in (1, 2):
            for i in range(3):
                url = f"{first.url}/models/ab/versions/{version}/predict"
                answer = httpx.post(url, json={"x0": i, "x1": 0})
                body = {"request_id": answer.headers["x-request-id"], "label": "a"}
                assert httpx.post(f"{second.url}/feedback", json=body).status_code == 200
        report = httpx.get(f"{second.url}/experiments/ab").json()
    assert [(v["variant"], v["requests"], v["feedback"]) for v in report["variants"]] == [
        ("v1", 3, 3), ("v2", 3, 3),
    ]  # fmt: skip
    assert not (tmp_path / "repo" / ".modelport").exists()
