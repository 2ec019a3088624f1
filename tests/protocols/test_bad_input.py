"""Bad input on every protocol answers a precise 4xx with a bounded body, never a 500
(issue 13's findings, each reproduced here)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW, write_fake_model

KEY = "admin-secret"
BIG = "123456789012345678901234567890"  # beyond 64 bits
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def _bounded_error(response: object, status: int, size: int = 2000) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert len(response.content) < size  # type: ignore[attr-defined]
    body: dict[str, object] = json.loads(response.content)  # type: ignore[attr-defined]
    assert {"error", "detail", "code"} <= set(body)
    return body


@pytest.fixture(scope="module")
def keyed(repo: Path) -> object:
    from tests.conftest import _client

    with _client(repo, admin_key=KEY, max_batch_instances=10) as client:
        yield client


VERSIONS = ["%C2%B2", "%C2%B3", "9" * 5000, "0", "-1", "1e3", "%EF%BC%91"]  # fullwidth 1


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/models/iris/versions/{v}/predict"),
        ("POST", "/models/iris/versions/{v}/predict/batch"),
        ("GET", "/v2/models/iris/versions/{v}/ready"),
        ("GET", "/v2/models/iris/versions/{v}"),
        ("POST", "/v2/models/iris/versions/{v}/infer"),
        ("POST", "/admin/models/iris/versions/{v}/unload"),
        ("POST", "/admin/models/iris/versions/{v}/load"),
        ("POST", "/admin/models/iris/rollout/{v}"),
    ],
)
def test_a_version_that_is_no_number_is_404(
    keyed: TestClient, method: str, path: str, version: str
) -> None:
    response = keyed.request(
        method, path.format(v=version), json=IRIS_ROW, headers={"X-Admin-Key": KEY}
    )
    body = _bounded_error(response, 404)
    assert body["code"] == "model_not_found"


@pytest.mark.parametrize("value", ["²".encode(), b"9" * 5000, b"-1", b"1 ", b"0x10", b"99999"])
def test_inference_header_content_length_that_is_no_length_is_400(
    client: TestClient, value: bytes
) -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        }
    ).encode()
    response = client.post(
        "/v2/models/iris/infer",
        content=body,
        headers=[(b"Inference-Header-Content-Length", value)],
    )
    assert _bounded_error(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {**IRIS_ROW, "sepal_length": BIG}),
        ("/models/iris/predict", {**IRIS_ROW, "petal_width": BIG}),
        ("/models/sentiment/predict", {"text": BIG}),
        ("/predict/batch", {"instances": [{**IRIS_ROW, "sepal_width": BIG}]}),
        ("/feedback", {"request_id": BIG, "label": "setosa"}),
        ("/feedback", {"request_id": "r", "label": "setosa", "row": BIG}),
    ],
)
def test_an_integer_beyond_64_bits_is_a_bounded_422(
    client: TestClient, path: str, body: dict[str, object]
) -> None:
    raw = json.dumps(body).replace(f'"{BIG}"', BIG).encode()  # a JSON number, not a string
    answer = _bounded_error(client.post(path, content=raw), 422)
    assert answer["code"] == "invalid_input"


def test_echoed_inputs_are_truncated(client: TestClient) -> None:
    body = {**IRIS_ROW, "sepal_length": "x" * 1_000_000}
    answer = _bounded_error(client.post("/predict", json=body), 422)
    (item,) = answer["detail"]  # type: ignore[misc]
    assert item["input"].endswith("...")


def _v2(tensor: dict[str, object], **headers: str) -> tuple[bytes, dict[str, str]]:
    return json.dumps({"inputs": [tensor]}).encode(), headers


def _binary(tensor: dict[str, object], raw: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize(
    ("model", "request_", "message"),
    [
        (  # the finding: 4 bytes of data declared as 300 million elements
            "sentiment",
            _binary(
                {"name": "text", "shape": [300_000_000], "datatype": "BYTES"}, struct.pack("<I", 0)
            ),
            "cannot hold 300000000 elements",
        ),
        (
            "sentiment",
            _v2({"name": "text", "shape": [10**12], "datatype": "BYTES", "data": ["abcd"]}),
            "larger than 2147483647 elements",
        ),
        (
            "sentiment",
            _v2({"name": "text", "shape": [300_000_000], "datatype": "BYTES", "data": ["abcd"]}),
            "needs 300000000 values, got 1",
        ),
        (
            "sentiment",
            _binary({"name": "text", "shape": [10**12], "datatype": "BYTES"}, b"abcd"),
            "larger than 2147483647 elements",
        ),
        (
            "iris",
            _binary({"name": "input", "shape": [2**40, 4], "datatype": "FP32"}, b"\0" * 16),
            "larger than",
        ),
        (
            "iris",
            _binary({"name": "input", "shape": [1, 4], "datatype": "FP32"}, b"\0" * 15),
            "do not hold 4 FP32 values",
        ),
        (
            "iris",
            _v2({"name": "input", "shape": [2, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}),
            "needs 8 values, got 4",
        ),
        (
            "iris",
            _v2({"name": "input", "shape": [-1, 4], "datatype": "FP64", "data": []}),
            "negative dimension",
        ),
        (
            "iris",
            _v2({"name": "input", "shape": [2**70, 0], "datatype": "FP64", "data": []}),
            "inputs.0.shape.0",  # beyond 64 bits: refused as it is parsed
        ),
        (
            "iris",
            _v2({"name": "input", "shape": [2**40, 2**40, 0], "datatype": "FP64", "data": []}),
            "larger than",
        ),
        (
            "iris",
            _v2({"name": "input", "shape": [1] * 9, "datatype": "FP64", "data": [1]}),
            "at most 8",
        ),
        (
            "iris",
            _v2({"name": "i" * 10_000, "shape": [1, 4], "datatype": "FP64", "data": [1] * 4}),
            "at most 256",
        ),
    ],
)
def test_v2_declared_sizes_are_checked_against_the_data(
    client: TestClient, model: str, request_: tuple[bytes, dict[str, str]], message: str
) -> None:
    body, headers = request_
    response = client.post(f"/v2/models/{model}/infer", content=body, headers=headers)
    answer = _bounded_error(response, 400)
    assert message in str(answer["error"])


def _instances_error(response: object) -> None:
    answer = _bounded_error(response, 413)
    assert "limit of 10" in str(answer["error"])
    assert "MODELPORT_MAX_BATCH_INSTANCES" in str(answer["error"])
    assert answer["code"] == "payload_too_large"


ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_instances_are_limited(keyed: TestClient, key: str) -> None:
    _instances_error(keyed.post("/v1/models/iris:predict", json={key: [ROW] * 11}))
    assert keyed.post("/v1/models/iris:predict", json={key: [ROW] * 10}).status_code == 200


def test_v2_batch_is_limited(keyed: TestClient) -> None:
    tensor = {"name": "input", "datatype": "FP64"}
    big = {**tensor, "shape": [11, 4], "data": ROW * 11}
    _instances_error(keyed.post("/v2/models/iris/infer", json={"inputs": [big]}))
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    per_feature = [
        {"name": n, "datatype": "FP64", "shape": [11], "data": [v] * 11}
        for n, v in zip(names, ROW, strict=True)
    ]
    _instances_error(keyed.post("/v2/models/iris/infer", json={"inputs": per_feature}))
    ok = {**tensor, "shape": [10, 4], "data": ROW * 10}
    assert keyed.post("/v2/models/iris/infer", json={"inputs": [ok]}).status_code == 200


@pytest.mark.parametrize("path", ["/predict/batch", "/models/iris/predict/batch"])
def test_batch_routes_are_limited(keyed: TestClient, path: str) -> None:
    _instances_error(keyed.post(path, json={"instances": [IRIS_ROW] * 11}))


def test_a_query_parameter_refused_by_fastapi_has_the_one_error_shape(client: TestClient) -> None:
    response = client.get("/experiments/iris", params={"min_samples": "²"})
    answer = _bounded_error(response, 422)
    assert answer["code"] == "invalid_input"
    assert "min_samples" in str(answer["error"])


def test_rollout_beside_a_model_with_an_invalid_card(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """A rollout reads only its own model's folder; its own bad card is a 409, not a 500."""
    folder = write_fake_model(tmp_path, "a", versions=(1,))
    other = write_fake_model(tmp_path, "b", versions=(1,))
    with make_client(tmp_path, admin_key=KEY) as client:
        (folder / "2").mkdir()
        (folder / "2" / "model.fake").write_text("fake\n")
        (other / "modelport.yaml").write_text("runtime: [unclosed\n")
        headers = {"X-Admin-Key": KEY}
        response = client.post("/admin/models/a/rollout/2", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2

        (folder / "3").mkdir()
        (folder / "3" / "model.fake").write_text("fake\n")
        (folder / "modelport.yaml").write_text("runtime: [unclosed\n")
        answer = _bounded_error(client.post("/admin/models/a/rollout/3", headers=headers), 409)
        assert answer["code"] == "card_error"
        assert str(tmp_path) not in json.dumps(answer)
        assert "a/modelport.yaml" in str(answer["error"])
        assert client.post("/models/a/predict", json={"x0": 1, "x1": 1}).status_code == 200


def _tampered_repo(tmp_path: Path, repo: Path) -> Path:
    """iris, plus a pickle whose pinned sha256 no longer matches."""
    target = tmp_path / "models"
    (target / "iris").mkdir(parents=True)
    for item in (repo / "iris").rglob("*"):
        if item.is_file():
            dest = target / "iris" / item.relative_to(repo / "iris")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(item.read_bytes())
    (target / "tampered" / "1").mkdir(parents=True)
    artifact = target / "tampered" / "1" / "model.joblib"
    artifact.write_bytes(b"changed")
    pinned = hashlib.sha256(b"original").hexdigest()
    artifact.with_name("model.joblib.sha256").write_text(f"{pinned}  model.joblib\n")
    return target


def test_answers_show_no_absolute_path_nor_sha256(
    make_client: ClientFactory, repo: Path, tmp_path: Path
) -> None:
    models = _tampered_repo(tmp_path, repo)
    with make_client(models, admin_key="k") as client:
        client.headers["X-Admin-Key"] = "k"  # load needs it
        answers = [
            client.get("/models"),
            client.get("/models/tampered"),
            client.get("/ready"),
            client.post("/v2/repository/index", json={}),
            client.post("/models/tampered/predict", json={}),
            client.get("/v2/models/tampered"),
            client.post("/v2/repository/models/tampered/load"),
        ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 503, 200, 503, 503, 400]
    for answer in answers:
        assert str(tmp_path) not in answer.text
        assert SHA256.search(answer.text) is None, answer.text
    assert "tampered/1/model.joblib" in answers[0].text  # the model-level part stays


def test_openapi_declares_every_error_status(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "ErrorBody" in schemas
    assert "HTTPValidationError" not in schemas
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"413", "503"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, answer in responses.items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    predict = doc["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "503", "504"} <= set(predict)
    admin = doc["paths"]["/admin/models/{name}/rollout/{version}"]["post"]["responses"]
    assert {"401", "403", "404", "409"} <= set(admin)


def test_openapi_after_the_default_model_is_unloaded(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    write_fake_model(tmp_path, "a")
    write_fake_model(tmp_path, "b")
    with make_client(tmp_path, admin_key=KEY) as client:
        doc = client.get("/openapi.json").json()
        (name,) = (
            p for p in doc["paths"]["/v2/models/{name}"]["get"]["parameters"] if p["name"] == "name"
        )
        assert name["example"] == "a"
        unload = client.post("/v2/repository/models/a/unload", headers={"X-Admin-Key": KEY})
        assert unload.status_code == 200
        assert client.get("/openapi.json").status_code == 200
