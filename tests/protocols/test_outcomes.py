"""POST /feedback and GET /experiments/{model} in process: an A/B test end to end, its rules,
restarts, and the request id on every protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelport.outcomes.sequential import TAU, sequential_proportions
from modelport.outcomes.stats import compare_proportions
from tests.conftest import ClientFactory
from tests.helpers import write_fake_model

CLASSES = ["no", "yes"]


@pytest.fixture
def ab_repo(tmp_path: Path) -> Path:
    """``ab``: a classifier with versions 1 and 2; ``reg``: a regressor."""
    write_fake_model(tmp_path / "repo", "ab", versions=(1, 2), parameters={"classes": CLASSES})
    write_fake_model(tmp_path / "repo", "reg", parameters={"classes": []})
    return tmp_path / "repo"


def predict(client: TestClient, version: int, row: dict[str, float]) -> tuple[str, str]:
    """Predict with one version explicitly; the request id and the predicted label."""
    response = client.post(f"/models/ab/versions/{version}/predict", json=row)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"], response.json()["prediction"]


def feedback(client: TestClient, **body: Any) -> Any:
    return client.post("/feedback", json=body)


def run_ab_test(client: TestClient, n: int, right: dict[int, int]) -> None:
    """``n`` predictions per version; feedback says version ``v`` was right ``right[v]`` times."""
    for version, hits in right.items():
        for i in range(n):
            request_id, label = predict(client, version, {"x0": i % 2, "x1": 0})
            truth = label if i < hits else CLASSES[1 - CLASSES.index(label)]
            answer = feedback(client, request_id=request_id, label=truth)
            assert answer.status_code == 200, answer.text
            assert answer.json()["correct"] is (i < hits)


def test_ab_test_names_the_winner_and_survives_a_restart(
    ab_repo: Path, make_client: ClientFactory
) -> None:
    with make_client(ab_repo) as client:
        run_ab_test(client, 150, {1: 90, 2: 120})  # v1 right 60 %, v2 right 80 %
        assert client.post("/models/ab/versions/2/predict", json={"x0": "?"}).status_code == 422
        report = client.get("/experiments/ab").json()
    v1, v2 = report["variants"]
    assert (v1["variant"], v1["versions"], v1["requests"], v1["feedback"]) == ("v1", [1], 150, 150)
    assert (v2["variant"], v2["requests"], v2["rejected"], v2["errors"]) == ("v2", 151, 1, 0)
    assert (v1["accuracy"], v2["accuracy"]) == (pytest.approx(0.6), pytest.approx(0.8))
    assert 0 < v1["latency_ms_p50"] <= v1["latency_ms_p99"]
    expected = compare_proportions("v1", 90, 150, "v2", 120, 150)
    (comparison,) = report["comparisons"]
    assert comparison["p_value"] == pytest.approx(expected.p_value)
    assert comparison["p_value"] < 0.001
    assert comparison["difference"] == pytest.approx(0.2)
    assert comparison["ci95"][0] > 0  # the whole interval favours v2
    always = sequential_proportions(90, 150, 120, 150, TAU)
    assert comparison["always_valid_p_value"] == pytest.approx(always.p_value)
    assert expected.p_value < comparison["always_valid_p_value"] < 0.05  # peeking has a price
    assert comparison["confidence_sequence"] == pytest.approx(always.sequence)
    assert report["verdict"] == f"v2 better, always-valid p={always.p_value:.3f}"
    assert report["metric"] == "accuracy"
    assert report["srm"] is None  # no experiment, no configured shares to check against
    with make_client(ab_repo) as restarted:  # a new app on the same database
        assert restarted.get("/experiments/ab").json() == report


def test_not_enough_data_and_a_documented_minimum(
    ab_repo: Path, make_client: ClientFactory
) -> None:
    with make_client(ab_repo) as client:
        run_ab_test(client, 10, {1: 6, 2: 8})
        report = client.get("/experiments/ab").json()
        assert report["verdict"] == "not enough data yet (v1: 10, v2: 10 of 30 feedback each)"
        assert report["comparisons"][0]["p_value"] is None
        smaller = client.get("/experiments/ab", params={"min_samples": 5}).json()
        assert smaller["verdict"].startswith("no significant difference, always-valid p=")
        assert client.get("/experiments/ab", params={"min_samples": 0}).status_code == 422


def test_feedback_rules(ab_repo: Path, make_client: ClientFactory) -> None:
    with make_client(ab_repo) as client:
        request_id, label = predict(client, 1, {"x0": 1, "x1": 0})
        first = feedback(client, request_id=request_id, label=label)
        assert first.json()["recorded"] == "new"
        again = feedback(client, request_id=request_id, label="no")
        assert (again.status_code, again.json()["recorded"]) == (200, "replaced")
        assert again.json()["correct"] is (label == "no")

        unknown = feedback(client, request_id="never-seen", label="yes")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_request")
        for body, message in [
            ({"label": "maybe"}, "label 'maybe' is not a class of model 'ab'"),
            ({}, 'send the true "label" (classifiers) or "value" (regressors'),
            ({"label": "yes", "row": 1}, "row 1 is out of range: that answer has 1 row(s)"),
        ]:
            answer = feedback(client, request_id=request_id, **body)
            assert answer.status_code == 422, body
            assert message in answer.json()["error"]
        for bad in [b"{oops", b'{"label": "yes"}', b'{"request_id": "x", "label": [1]}']:
            answer = client.post("/feedback", content=bad)
            assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input")

        refused = client.post("/models/ab/predict", json={"x0": "?"})
        answer = feedback(client, request_id=refused.headers["x-request-id"], label="yes")
        assert answer.status_code == 422
        assert "answered with HTTP 422" in answer.json()["error"]

        scraped = client.get("/metrics").text  # only accepted feedback is counted
        for recorded in ("new", "replaced"):
            labels = f'model="ab",recorded="{recorded}",variant="v1",version="1"'
            assert f"modelport_feedback_total{{{labels}}} 1.0" in scraped


def test_a_classifier_takes_a_business_value_within_bounds(
    ab_repo: Path, make_client: ClientFactory
) -> None:
    """A classifier's ``value`` (revenue, 1/0 converted) beside its label, after it, or alone; a
    value that is not a finite JSON number within 1e15 either side of 0 is a precise 422."""
    with make_client(ab_repo) as client:
        request_id, label = predict(client, 1, {"x0": 1, "x1": 0})
        both = feedback(client, request_id=request_id, label=label, value=12.5)
        assert (both.status_code, both.json()["recorded"], both.json()["correct"]) == (
            200, "new", True,
        )  # fmt: skip
        later = feedback(client, request_id=request_id, value=-3)  # a refund, later
        assert (later.status_code, later.json()["recorded"]) == (200, "replaced")
        assert "correct" not in later.json()  # no label sent: the stored one is kept
        other, _ = predict(client, 2, {"x0": 0, "x1": 0})
        assert feedback(client, request_id=other, value=1).status_code == 200  # converted
        for raw, message in [
            ("NaN", "Input should be a finite number"),
            ("Infinity", "Input should be a finite number"),
            ("1e400", "Input should be a finite number"),
            ("-1e400", "Input should be a finite number"),
            ("1e16", "less than or equal to 1000000000000000"),
            ("-123456789012345678901234567890", "greater than or equal to -1000000000000000"),
            ('"12.5"', "Input should be a valid number"),
            ("true", "Input should be a valid number"),
            ("[1]", "Input should be a valid number"),
            ('{"usd": 3}', "Input should be a valid number"),
        ]:
            body = f'{{"request_id": "{request_id}", "value": {raw}}}'.encode()
            answer = client.post("/feedback", content=body)
            assert answer.status_code == 422, (raw, answer.text)
            assert answer.json()["code"] == "invalid_input"
            assert message in answer.json()["error"], (raw, answer.json()["error"])
            assert answer.json()["error"].startswith("value: "), answer.json()["error"]
        schema = client.get("/openapi.json").json()["paths"]["/feedback"]["post"]
        value = schema["requestBody"]["content"]["application/json"]["schema"]["properties"]
        declared = value["value"]["anyOf"][0]
        assert (declared["type"], declared["minimum"], declared["maximum"]) == (
            "number", -1e15, 1e15,
        )  # fmt: skip
        report = client.get("/experiments/ab").json()  # accuracy: the labelled row only
    v1, v2 = report["variants"]
    assert (v1["feedback"], v1["value_feedback"], v1["accuracy"]) == (1, 1, 1.0)
    assert (v2["feedback"], v2["value_feedback"], v2["accuracy"]) == (1, 1, None)
    assert report["metric"] == "accuracy"


def test_regressors_take_values_and_report_mae(ab_repo: Path, make_client: ClientFactory) -> None:
    with make_client(ab_repo) as client:
        response = client.post("/models/reg/predict/batch", json={"instances": [
            {"x0": 1, "x1": 2}, {"x0": 3, "x1": 4},
        ]})  # fmt: skip
        request_id = response.json()["request_id"]
        assert request_id == response.headers["x-request-id"]
        label = feedback(client, request_id=request_id, label="3")
        assert 'is a regressor: send the true "value"' in label.json()["error"]
        answer = feedback(client, request_id=request_id, value=5.0, row=1)  # predicted 7
        assert answer.json()["abs_error"] == pytest.approx(2.0)
        huge = f'{{"request_id": "{request_id}", "value": 1e999}}'.encode()  # inf
        assert client.post("/feedback", content=huge).status_code == 422
        report = client.get("/experiments/reg").json()
    assert report["metric"] == "mae"
    assert report["variants"][0]["mae"] == pytest.approx(2.0)
    assert report["verdict"] == "only v1 has served: nothing to compare yet"


def test_every_protocol_is_recorded_under_its_request_id(
    ab_repo: Path, make_client: ClientFactory
) -> None:
    tensor = {"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 0]}
    with make_client(ab_repo) as client:
        v2 = client.post("/v2/models/ab/infer", json={"inputs": [tensor]})
        assert v2.json()["id"] == v2.headers["x-request-id"]
        own = client.post("/v2/models/ab/infer", json={"id": "mine-1", "inputs": [tensor]})
        assert own.json()["id"] == "mine-1"  # the OIP spec: echo the request's own id
        v1 = client.post("/v1/models/ab:predict", json={"instances": [[1, 0], [0, 0]]})
        given = client.post("/predict", json={"x0": 1, "x1": 0}, headers={"X-Request-Id": "abc-9"})
        assert set(given.json()) == {"prediction", "probability", "probabilities"}
        for request_id, row in [(v2.headers["x-request-id"], 0), (own.headers["x-request-id"], 0),
                                (v1.headers["x-request-id"], 1), ("abc-9", 0)]:  # fmt: skip
            answer = feedback(client, request_id=request_id, label="yes", row=row)
            assert answer.status_code == 200, (request_id, answer.text)
            assert answer.json()["variant"] == "v2"  # the default version is the highest
        assert client.get("/experiments/ab").json()["variants"][0]["requests"] == 4
        assert client.get("/experiments/nope").status_code == 404


def test_serving_goes_on_without_a_store(
    ab_repo: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    for settings in [{"outcomes": False}, {"outcomes_db": tmp_path / "a-file" / "o.db"}]:
        with make_client(ab_repo, **settings) as client:
            request_id, _ = predict(client, 1, {"x0": 1, "x1": 0})
            answer = feedback(client, request_id=request_id, label="yes")
            assert (answer.status_code, answer.json()["code"]) == (503, "outcomes_unavailable")
            assert client.get("/experiments/ab").status_code == 503


def test_a_failing_store_answers_503_not_500(ab_repo: Path, make_client: ClientFactory) -> None:
    with make_client(ab_repo) as client:
        request_id, _ = predict(client, 1, {"x0": 1, "x1": 0})
        client.app.state.outcomes.store._connection.close()  # type: ignore[attr-defined]
        answer = feedback(client, request_id=request_id, label="yes")
        assert (answer.status_code, answer.json()["code"]) == (503, "outcomes_unavailable")
        assert "the outcome store failed: ProgrammingError" in answer.json()["error"]
        assert client.get("/experiments/ab").status_code == 503
        assert predict(client, 2, {"x0": 1, "x1": 0})  # serving goes on


def test_the_traffic_policys_variants_are_the_experiments_arms(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """A 50/50 sticky split with a shadow: each answer is recorded under the variant it
    announced in X-Model-Variant; the shadow copy is never recorded as the caller's answer."""
    traffic = {
        "split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
        "sticky_header": "X-User-Id",
        "shadow": {"version": 3, "fraction": 1.0},
    }
    repo = tmp_path / "repo"
    write_fake_model(
        repo, "ab", versions=(1, 2, 3), parameters={"classes": CLASSES}, traffic=traffic
    )
    seen: dict[str, int] = {}
    with make_client(repo) as client:
        for user in range(40):
            answer = client.post(
                "/models/ab/predict", json={"x0": user, "x1": 0}, headers={"X-User-Id": f"u{user}"}
            )
            assert answer.status_code == 200, answer.text
            variant = answer.headers["x-model-variant"]
            seen[variant] = seen.get(variant, 0) + 1
            body = {"request_id": answer.headers["x-request-id"], "label": "no"}
            assert feedback(client, **body).json()["variant"] == variant
        report = client.get("/experiments/ab").json()
    assert len(seen) == 2
    assert {v["variant"]: v["requests"] for v in report["variants"]} == seen
    assert sum(v["feedback"] for v in report["variants"]) == 40
