"""The one request pipeline: every answer, on every protocol and from every layer, has the same
error shape and the request's id; sizes and versions are checked before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW

PREDICTIONS = [
    ("/predict", IRIS_ROW),
    ("/models/iris/predict", IRIS_ROW),
    ("/v1/models/iris:predict", {"instances": [IRIS_ROW]}),
    (
        "/v2/models/iris/infer",
        {
            "inputs": [
                {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
                for n, v in IRIS_ROW.items()
            ]
        },
    ),
]


def _shape(body: dict[str, object]) -> set[str]:
    return set(body) & {"error", "detail", "code"}


@pytest.mark.parametrize(("path", "body"), PREDICTIONS)
def test_every_protocol_answers_with_the_request_id(
    client: TestClient, path: str, body: object
) -> None:
    reply = client.post(path, json=body, headers={"X-Request-Id": "pipe-1"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-request-id"] == "pipe-1"
    assert reply.headers["x-model-version"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/predict", 405),  # the pipeline's own answer
        ("POST", "/models/iris/versions/%C2%B2/predict", 404),  # '²' is a digit, not a version
        ("POST", "/v2/models/iris/versions/" + "9" * 5000 + "/infer", 404),
        ("GET", "/no/such/route", 404),  # FastAPI's answer
        ("POST", "/models/nope/predict", 404),
    ],
)
def test_every_error_has_one_shape_and_the_request_id(
    client: TestClient, method: str, path: str, status: int
) -> None:
    reply = client.request(method, path, json=IRIS_ROW)
    assert reply.status_code == status
    assert _shape(reply.json()) == {"error", "detail", "code"}
    assert len(reply.headers["x-request-id"]) == 32


def test_a_huge_integer_in_a_body_is_a_422_not_a_500(client: TestClient) -> None:
    body = b'{"sepal_length": 123456789012345678901234567890, "sepal_width": 3.5, '
    body += b'"petal_length": 1.4, "petal_width": 0.2}'
    reply = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422
    assert "sepal_length" in reply.json()["error"]


def test_a_bad_binary_header_length_is_a_400(client: TestClient) -> None:
    reply = client.post(
        "/v2/models/iris/infer",
        content=b'{"inputs": []}',
        headers={"Inference-Header-Content-Length": "²".encode()},
    )
    assert reply.status_code == 400
    assert "inference-header-content-length" in reply.json()["error"].lower()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    make_client: ClientFactory, repo: Path
) -> None:
    with make_client(repo, max_body_bytes=1024) as client:
        big = {**IRIS_ROW, "padding": "x" * 2000}
        for path in ("/predict", "/v1/models/iris:predict", "/admin/models/iris"):
            reply = client.post(path, json=big)
            assert reply.status_code == 413, path
            assert reply.json()["code"] == "payload_too_large"
            assert "x-request-id" in reply.headers


def test_the_inference_key_guards_every_prediction_and_nothing_else(
    make_client: ClientFactory, repo: Path
) -> None:
    with make_client(repo, inference_key="k-1") as client:
        for path, body in PREDICTIONS:
            refused = client.post(path, json=body)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
            assert _shape(refused.json()) == {"error", "detail", "code"}
            allowed = client.post(path, json=body, headers={"Authorization": "Bearer k-1"})
            assert allowed.status_code == 200, path
        assert client.get("/health").status_code == 200


def test_metrics_off_serves_no_metrics(make_client: ClientFactory, repo: Path) -> None:
    with make_client(repo, metrics=False) as client:
        assert client.post("/predict", json=IRIS_ROW).status_code == 200
        assert client.get("/metrics").status_code == 404
