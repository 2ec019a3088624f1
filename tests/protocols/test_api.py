"""The tutorial protocol, in process: answers, errors, models listing, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from modelport.server.app import GC_YOUNG_THRESHOLD
from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW, write_fake_model


def test_predict_answers_the_tutorial_shape(client: TestClient, repo: Path) -> None:
    response = client.post("/predict", json=IRIS_ROW)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["prediction", "probability", "probabilities"]
    model = joblib.load(repo / "iris" / "1" / "model.joblib")
    probas = model.predict_proba([[5.1, 3.5, 1.4, 0.2]])[0]
    assert (
        body["prediction"]
        == ["setosa", "versicolor", "virginica"][model.predict([[5.1, 3.5, 1.4, 0.2]])[0]]
    )
    assert body["probability"] == float(max(probas))
    assert body["probabilities"] == [round(p, 4) for p in probas]
    assert response.headers["x-model-version"] == "1"
    assert response.headers["x-model-name"] == "iris"
    assert response.headers["server-timing"].startswith("app;dur=")


def test_every_iris_sample_matches_sklearn(client: TestClient, repo: Path) -> None:
    data = load_iris()
    model = joblib.load(repo / "iris" / "1" / "model.joblib")
    names = ["setosa", "versicolor", "virginica"]
    for row in data.data[::7]:
        body = client.post("/predict", json=dict(zip(IRIS_ROW, row.tolist(), strict=True))).json()
        assert body["prediction"] == names[model.predict([row])[0]]


def test_the_start_up_heap_is_frozen_and_young_collections_are_rare(client: TestClient) -> None:
    import gc

    assert gc.get_freeze_count() > 10_000  # frameworks and models out of the collector's sight
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD  # young collections 14 times rarer


def test_health_has_the_tutorial_keys(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["model_loaded"] is True
    ready = client.get("/ready").json()
    assert (ready["ready"], ready["not_ready"], ready["outcomes"]["state"]) == (True, [], "ok")


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({**IRIS_ROW, "sepal_length": 0}, "sepal_length", "greater than 0"),
        ({**IRIS_ROW, "petal_width": 10.5}, "petal_width", "less than or equal to 10"),
        ({**IRIS_ROW, "sepal_width": "wide"}, "sepal_width", "valid number"),
        ({**IRIS_ROW, "sepal_width": None}, "sepal_width", "valid number"),
        ({k: v for k, v in IRIS_ROW.items() if k != "petal_length"}, "petal_length", "required"),
        ({**IRIS_ROW, "sepal_width": [1.0]}, "sepal_width", "valid number"),
    ],
)
def test_bad_fields_are_422_naming_field_and_rule(
    client: TestClient, body: dict[str, object], field: str, rule: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["detail"][0]["loc"] == ["body", field]
    assert field in answer["error"]
    assert rule in answer["error"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422(client: TestClient, token: str) -> None:
    body = '{"sepal_length": %s, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
    response = client.post("/predict", content=body % token)
    assert response.status_code == 422
    assert "sepal_length" in response.json()["error"]
    assert "finite" in response.json()["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Invalid JSON"),
        (b"{", "Invalid JSON"),
        (b"not json", "Invalid JSON"),
        (b"[5.1, 3.5, 1.4, 0.2]", "should be a JSON object"),
        (b'"text"', "should be a JSON object"),
        (b"\xff\xfe", "Invalid JSON"),
    ],
)
def test_bodies_that_are_not_an_object_are_422(
    client: TestClient, content: bytes, message: str
) -> None:
    response = client.post("/predict", content=content)
    assert response.status_code == 422
    assert message in response.json()["error"]
    assert '"sepal_length": 5.1' in response.json()["error"]  # shows a body that works


def test_extra_fields_are_ignored_like_the_tutorial(client: TestClient) -> None:
    assert client.post("/predict", json={**IRIS_ROW, "colour": "blue"}).status_code == 200


def test_strict_card_rejects_extra_fields(make_client: ClientFactory, tmp_path: Path) -> None:
    write_fake_model(tmp_path, "strict", strict=True)
    with make_client(tmp_path) as client:
        ok = client.post("/predict", json={"x0": 1, "x1": 2})
        assert ok.status_code == 200
        response = client.post("/predict", json={"x0": 1, "x1": 2, "x2": 3})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "x2"]
        assert "Extra inputs are not permitted" in response.json()["error"]


@pytest.mark.parametrize("loose", ["5.1", True])
def test_numbers_as_strings_and_booleans_are_taken_like_the_tutorial(
    client: TestClient, loose: object
) -> None:
    assert client.post("/predict", json={**IRIS_ROW, "sepal_length": loose}).status_code == 200


def test_body_over_the_limit_is_413(make_client: ClientFactory, repo: Path) -> None:
    with make_client(repo, max_body_bytes=2048) as client:
        response = client.post("/predict", content=b'{"pad": "' + b"x" * 4096 + b'"}')
        assert response.status_code == 413
        assert "2048" in response.json()["error"]


def test_streamed_body_over_the_limit_is_413(make_client: ClientFactory, repo: Path) -> None:
    def chunks() -> object:
        for _ in range(8):
            yield b"x" * 1024

    with make_client(repo, max_body_bytes=2048) as client:
        response = client.post("/predict", content=chunks())  # type: ignore[arg-type]
        assert response.status_code == 413


def test_named_models_and_versions(client: TestClient) -> None:
    assert client.post("/models/iris/predict", json=IRIS_ROW).status_code == 200
    assert client.post("/models/iris/versions/1/predict", json=IRIS_ROW).status_code == 200
    wine = client.get("/models/wine").json()
    example = {f["name"]: f["example"] for f in wine["signature"]["inputs"]}
    body = client.post("/models/wine/predict", json=example).json()
    assert body["prediction"] == "cultivar_1"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/models/nope/predict", "model 'nope' not found"),
        ("/models/iris/versions/7/predict", "has no version 7"),
        ("/models/iris/versions/latest/predict", "versions are positive integers"),
    ],
)
def test_unknown_model_or_version_is_404(client: TestClient, path: str, message: str) -> None:
    response = client.post(path, json=IRIS_ROW)
    assert response.status_code == 404
    assert message in response.json()["error"]


def test_models_lists_versions_readiness_and_signature(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert set(models) == {"iris", "sentiment", "wine"}
    iris = models["iris"]
    assert iris["default"] is True
    assert iris["ready"] is True
    assert iris["versions"][0]["state"] == "ready"
    inputs = iris["signature"]["inputs"]
    assert [f["name"] for f in inputs] == list(IRIS_ROW)
    assert inputs[0]["gt"] == 0
    assert inputs[0]["le"] == 10
    assert iris["signature"]["output"]["class_names"] == ["setosa", "versicolor", "virginica"]
    assert client.get("/models/nope").status_code == 404


def test_openapi_documents_each_model_with_fields_and_example(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/predict", "/models/iris/predict", "/models/wine/predict", "/health"} <= set(
        doc["paths"]
    )
    ref = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    assert list(schema["properties"]) == list(IRIS_ROW)
    sepal = schema["properties"]["sepal_length"]
    assert sepal["exclusiveMinimum"] == 0
    assert sepal["maximum"] == 10
    assert sepal["description"] == "Sepal length in cm"
    example = schema["examples"][0]
    assert client.post("/predict", json=example).status_code == 200
    wine_ref = doc["paths"]["/models/wine/predict"]["post"]["requestBody"]["content"]
    wine = doc["components"]["schemas"][
        wine_ref["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert "od280/od315_of_diluted_wines" in wine["properties"]
    assert client.get("/docs").status_code == 200


def test_a_model_that_failed_to_load_answers_503(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    write_fake_model(tmp_path, "broken", parameters={"load_error": "weights are corrupt"})
    write_fake_model(tmp_path, "fine")
    with make_client(tmp_path, default_model="broken") as client:
        response = client.post("/predict", json={"x0": 1, "x1": 2})
        assert response.status_code == 503
        assert "weights are corrupt" in response.json()["error"]
        assert client.get("/health").json()["model_loaded"] is False
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["not_ready"][0]["error"] == "weights are corrupt"
        assert client.post("/models/fine/predict", json={"x0": 1, "x1": 2}).status_code == 200


def test_loaded_before_taking_traffic(make_client: ClientFactory, tmp_path: Path) -> None:
    write_fake_model(tmp_path / "repo", "m", parameters={"load_delay_s": 0.5})
    with make_client(tmp_path / "repo") as client:
        assert client.get("/ready").status_code == 200  # the first request already finds it loaded


def test_background_loading_is_not_ready_until_loaded(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    write_fake_model(tmp_path / "repo", "slow", parameters={"load_gate": str(gate)})
    with make_client(tmp_path / "repo", background_loading=True) as client:
        assert client.get("/health").json()["model_loaded"] is False
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json={"x0": 1, "x1": 2}).status_code == 503
        gate.touch()
        registry = client.app.state.dataplane.registry  # type: ignore[attr-defined]
        assert registry.wait_loaded(30)
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json={"x0": 1, "x1": 2}).status_code == 200


def test_model_that_rejects_input_is_422_and_server_survives(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    write_fake_model(tmp_path, "picky", parameters={"predict_error": "x0 must be even"})
    with make_client(tmp_path) as client:
        response = client.post("/predict", json={"x0": 1, "x1": 2})
        assert response.status_code == 422
        assert "x0 must be even" in response.json()["error"]
        assert client.get("/health").status_code == 200


def test_regressor_answers_a_value(make_client: ClientFactory, tmp_path: Path) -> None:
    write_fake_model(tmp_path, "reg", parameters={"classes": []})
    with make_client(tmp_path) as client:
        assert client.post("/predict", json={"x0": 1.5, "x1": 2}).json() == {"prediction": 3.5}


def test_unknown_route_and_method(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "detail": "Not Found", "code": "http_404"}
    wrong = client.get("/predict")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "http_405"
    assert wrong.headers["allow"] == "POST"
    assert "predictions are sent with POST (examples at /docs)" in wrong.json()["error"]
    assert client.put("/health").json()["code"] == "http_405"
