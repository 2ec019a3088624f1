"""Experiments as objects over HTTP: start and stop with the admin key, a report over each
experiment's window, the sample-ratio check, and warnings for traffic changes while one runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from modelport.outcomes.report import MISMATCH
from tests.conftest import ClientFactory
from tests.protocols.test_outcomes import ab_repo, feedback  # noqa: F401  (a fixture)

KEY = "s3cret-admin"
ADMIN = {"Authorization": f"Bearer {KEY}"}
SPLIT_90_10 = {"split": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}
SPLIT_50_50 = {"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}


def _predict(client: TestClient, path: str, n: int, *, user: str = "", truth: bool = True) -> None:
    """``n`` predictions at ``path``, each given feedback (right when ``truth``)."""
    for i in range(n):
        headers = {"X-User-Id": f"{user}{i}"} if user else {}
        answer = client.post(path, json={"x0": i % 2, "x1": 0}, headers=headers)
        assert answer.status_code == 200, answer.text
        label = answer.json()["prediction"]
        wrong = "yes" if label == "no" else "no"
        sent = feedback(
            client, request_id=answer.headers["x-request-id"], label=label if truth else wrong
        )
        assert sent.status_code == 200, sent.text


def _start(client: TestClient, **body: Any) -> Any:
    return client.post("/admin/experiments/ab", json=body, headers=ADMIN)


def test_an_experiment_reports_its_window_and_flags_a_sample_ratio_mismatch(
    ab_repo: Path,  # noqa: F811
    make_client: ClientFactory,
) -> None:
    with make_client(ab_repo, admin_key=KEY) as client:
        _predict(client, "/models/ab/versions/1/predict", 5)  # before: not in the experiment
        assert client.post("/admin/experiments/ab", json={"name": "x"}).status_code == 401
        started = _start(client, name="first", traffic=SPLIT_90_10)
        assert started.status_code == 201, started.text
        assert started.json()["stopped_at"] is None
        assert client.get("/admin/models/ab", headers=ADMIN).json()["traffic"]["split"]
        # a 90/10 policy that delivered 80/20 (here: forced, by explicit versions)
        _predict(client, "/models/ab/versions/1/predict", 160)
        _predict(client, "/models/ab/versions/2/predict", 20)
        _predict(client, "/models/ab/versions/2/predict", 20, truth=False)
        assert client.post("/models/ab/versions/7/predict", json={"x0": 1}).status_code == 404
        report = client.get("/experiments/ab").json()
        assert report["experiment"]["name"] == "first"
        assert [(v["variant"], v["requests"]) for v in report["variants"]] == [
            ("v1", 160),
            ("v2", 40),
        ]  # no phantom v7, nothing from before the start
        srm = report["srm"]
        assert srm["mismatch"] is True
        assert srm["p_value"] < 0.001
        assert srm["expected"] == {"v1": 180.0, "v2": 20.0}
        assert srm["observed"] == {"v1": 160, "v2": 40}
        assert report["verdict"] == MISMATCH
        (comparison,) = report["comparisons"]
        assert comparison["always_valid_p_value"] is not None
        assert comparison["confidence_sequence"] is not None

        changed = client.put("/admin/models/ab/traffic", json=SPLIT_50_50, headers=ADMIN)
        assert changed.status_code == 200
        assert "experiment 'first' of 'ab' is running" in changed.json()["warning"]
        rolled = client.post("/admin/models/ab/rollout/2", headers=ADMIN).json()
        assert "warning" in rolled
        assert (
            client.post("/admin/experiments/ab/stop?name=other", headers=ADMIN).status_code == 404
        )
        stopped = client.post("/admin/experiments/ab/stop", headers=ADMIN)
        assert stopped.status_code == 200, stopped.text
        events = stopped.json()["events"]
        assert [e["change"] for e in events] == ["traffic policy change", "rollout"]
        assert stopped.json()["stopped_at"] >= stopped.json()["started_at"]
        assert (
            "warning" not in client.put("/admin/models/ab/traffic", json=None, headers=ADMIN).json()
        )
        assert _start(client, name="first").status_code == 409  # names are not reused
        assert client.post("/admin/experiments/ab/stop", headers=ADMIN).status_code == 404

        _predict(client, "/models/ab/versions/1/predict", 3)  # after: not in "first"
        past = client.get("/experiments/ab/first").json()
        assert [v["requests"] for v in past["variants"]] == [160, 40]
        assert client.get("/experiments/ab", params={"experiment": "first"}).json() == past
        everything = client.get("/experiments/ab").json()  # none runs: everything recorded
        assert everything["experiment"] is None
        assert [v["requests"] for v in everything["variants"]] == [168, 40]
        assert client.get("/experiments/ab/nope").status_code == 404
        listed = client.get("/admin/experiments", params={"model": "ab"}, headers=ADMIN).json()
        assert [e["name"] for e in listed] == ["first"]


def test_a_split_that_delivers_its_shares_passes_the_sample_ratio_check(
    ab_repo: Path,  # noqa: F811
    make_client: ClientFactory,
) -> None:
    with make_client(ab_repo, admin_key=KEY) as client:
        assert (
            _start(client, name="fair", traffic=SPLIT_50_50, metric="accuracy").status_code == 201
        )
        conflict = _start(client, name="second")
        assert conflict.status_code == 409
        assert "'fair' of 'ab' is running" in conflict.json()["error"]
        _predict(client, "/models/ab/predict", 300, user="u")  # sticky users: deterministic
        report = client.get("/experiments/ab").json()
        assert report["srm"]["mismatch"] is False
        assert sum(report["srm"]["observed"].values()) == 300
        assert report["verdict"].startswith("no significant difference, always-valid p=")
        bad = _start(client, name="bad name!")
        assert bad.status_code == 422


def test_experiments_need_the_admin_key_and_a_known_model(
    ab_repo: Path,  # noqa: F811
    make_client: ClientFactory,
) -> None:
    with make_client(ab_repo) as client:  # no admin key configured: the admin API is off
        assert client.post("/admin/experiments/ab", json={"name": "a"}).status_code == 403
    with make_client(ab_repo, admin_key=KEY) as client:
        assert (
            client.post("/admin/experiments/nope", json={"name": "a"}, headers=ADMIN).status_code
            == 404
        )
        unloaded = {"split": [{"version": 1, "weight": 1}, {"version": 9, "weight": 1}]}
        assert _start(client, name="a", traffic=unloaded).status_code == 400
        assert client.get("/admin/experiments", headers=ADMIN).json() == []
