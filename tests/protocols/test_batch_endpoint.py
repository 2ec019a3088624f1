"""POST /predict/batch: many instances in one request, answered in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW

VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


@pytest.mark.parametrize(
    "path",
    ["/predict/batch", "/models/iris/predict/batch", "/models/iris/versions/1/predict/batch"],
)
def test_batch_answers_each_instance_in_order(client: TestClient, path: str) -> None:
    instances = [IRIS_ROW, VIRGINICA, IRIS_ROW]
    response = client.post(path, json={"instances": instances})
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["model_version"] == 1
    singles = [client.post("/predict", json=i).json() for i in instances]
    for batched, single in zip(body["predictions"], singles, strict=True):
        assert batched["probabilities"] == single["probabilities"]
        assert batched["probability"] == pytest.approx(single["probability"], rel=1e-12)
    assert [p["prediction"] for p in body["predictions"]] == ["setosa", "virginica", "setosa"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"instances": [IRIS_ROW, {**IRIS_ROW, "petal_width": -1}]},
            422,
            "instances.1.petal_width: Input should be greater than 0",
        ),
        ({"instances": []}, 422, "a non-empty list of objects"),
        ({"rows": [IRIS_ROW]}, 422, '{"instances": [...]}'),
        ([IRIS_ROW], 422, '{"instances": [...]}'),
        ({"instances": [IRIS_ROW] * 6}, 413, "6 instances is more than the limit of 5"),
    ],
)
def test_batch_errors(
    make_client: ClientFactory, repo: Path, body: object, status: int, message: str
) -> None:
    with make_client(repo, max_batch_instances=5) as client:
        response = client.post("/predict/batch", json=body)
        assert response.status_code == status
        assert message in response.json()["error"]


def test_batch_invalid_json(client: TestClient) -> None:
    response = client.post("/predict/batch", content=b"{nope")
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]


def test_batch_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict/batch", "/models/iris/predict/batch", "/models/wine/predict/batch"} <= set(
        paths
    )
