"""The outcome store on SQLite and on a real PostgreSQL: rows, feedback, reconnection."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from modelport.core.result import InferenceResult
from modelport.outcomes import records
from modelport.outcomes.backends import open_store
from modelport.outcomes.sqlite_store import SqliteStore
from modelport.outcomes.store import Store
from modelport.runtimes import Outputs
from tests.conftest import ClientFactory
from tests.helpers import running_server, write_fake_model
from tests.outcomes.helpers import REGRESSOR, outcomes, pending, traffic, write
from tests.postgres import fresh_database


def test_requests_rows_and_errors_round_trip(store: Store) -> None:
    write(store, [pending("a", ["yes", "no"]), pending("b", status=422)])
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
    assert sorted(traffic(store, "m")) == [
        ("v1", 1, 200, 1.5, "classification"), ("v1", 1, 422, 1.5, None),
    ]  # fmt: skip


def test_regressor_rows_store_values(store: Store) -> None:
    result = InferenceResult("m", 1, REGRESSOR, Outputs(np.asarray([1.25, 2.5])))
    write(store, [pending("r", result=result)])
    assert store.prediction("r", 1) == (None, 2.5)


def test_a_reused_request_id_keeps_its_first_record(store: Store) -> None:
    write(store, [pending("a", ["yes"])])
    write(store, [pending("a", ["no"], variant="v2")])
    found = store.request("a")
    assert found is not None
    assert found.variant == "v1"
    assert store.prediction("a", 0) == ("yes", None)


def test_feedback_is_upserted_and_joined_to_its_prediction(store: Store) -> None:
    write(store, [pending("a", ["yes", "no"]), pending("b", ["no"], variant="v2", version=2)])
    assert store.put_feedback("a", 1, "no", None) is False
    assert store.put_feedback("a", 1, "yes", None) is True  # the latest truth wins
    assert store.put_feedback("b", 0, "no", None) is False
    assert sorted(outcomes(store, "m")) == [
        ("v1", "no", None, "yes", None), ("v2", "no", None, "no", None),
    ]  # fmt: skip
    assert outcomes(store, "other") == []


def test_the_writer_processs_store_offers_the_cpu_while_its_statements_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``steps`` steps of SQLite's statements (more often for fewer steps), in a file
    opened again too; PostgreSQL runs them in its own server, and a store that was not asked
    (the server's) offers nothing."""
    offered: list[None] = []
    monkeypatch.setattr(records.os, "sched_yield", lambda: offered.append(None))
    write(store, [pending(f"r{i}", ["yes"]) for i in range(50)])
    assert offered == []
    assert store.pause is records.let_loop_run
    store.offer_cpu_every(100)
    assert store.pause is records.offer_cpu  # between two pieces of a batch, too
    write(store, [pending(f"s{i}", ["yes"]) for i in range(50)])
    assert store.request("s49") is not None  # the handler let every statement finish
    if not isinstance(store, SqliteStore):
        assert offered == []
        return
    every_100 = len(offered)
    assert every_100 > 0
    store.offer_cpu_every(25)
    offered.clear()
    write(store, [pending(f"t{i}", ["yes"]) for i in range(50)])
    assert len(offered) > 2 * every_100
    store.path.unlink()  # opened again: with the handler
    offered.clear()
    write(store, [pending(f"u{i}", ["yes"]) for i in range(50)])
    assert store.reopened == 1
    assert len(offered) > 2 * every_100


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
    write(store, [pending("a", ["yes"])])
    with psycopg.connect(url, autocommit=True) as admin:  # what a database restart does
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(psycopg.OperationalError):
        store.request("a")  # the transaction that meets the drop fails
    assert store.request("a") is not None  # the next one runs on a new connection
    write(store, [pending("b", ["no"])])
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
