"""KServe V1 and the Open Inference Protocol (V2), in process."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import IRIS_ROW, write_fake_model

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def v2_tensor(rows: list[list[float]], datatype: str = "FP64", name: str = "input") -> dict:
    return {"name": name, "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": rows}


# --- KServe V1 ---------------------------------------------------------------------------------


def test_v1_lists_models_and_readiness(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"models": ["iris", "sentiment", "wine"]}
    assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    assert client.get("/v1/models/nope").status_code == 404


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_predicts_rows_and_objects(client: TestClient, key: str) -> None:
    rows = client.post("/v1/models/iris:predict", json={key: ROWS})
    assert rows.json() == {"predictions": ["setosa", "virginica"]}
    objects = client.post("/v1/models/iris:predict", json={key: [IRIS_ROW]})
    assert objects.json() == {"predictions": ["setosa"]}


def test_v1_text_model_takes_bare_strings(client: TestClient) -> None:
    answer = client.post("/v1/models/sentiment:predict", json={"instances": ["great", "糟透了"]})
    assert answer.status_code == 200
    assert len(answer.json()["predictions"]) == 2
    assert set(answer.json()["predictions"]) <= {"positive", "negative"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": ROWS}, 'expected "instances" or "inputs"'),
        ({"instances": {"a": 1}}, '"instances" must be a list'),
        ({"instances": []}, '"instances" is empty'),
        ({"instances": [[1.0, 2.0]]}, "each instance must be a row of 4 values"),
        ({"instances": [ROWS[0], IRIS_ROW]}, "mix objects and rows"),
        ({"instances": [[5.1, 3.5, 1.4, -0.2]]}, "petal_width (row 0): Input should be greater"),
        ({"instances": [[5.1, "x", 1.4, 0.2]]}, "sepal_width (row 0): Input should be a valid"),
        ({"instances": [{**IRIS_ROW, "sepal_width": 0}]}, "instances.0.sepal_width"),
        ([1, 2], "body must be an object"),
    ],
)
def test_v1_bad_input_is_400_with_error(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v1/models/iris:predict", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v1_bad_json_and_unknown_model(client: TestClient) -> None:
    assert client.post("/v1/models/iris:predict", content=b"{").status_code == 400
    assert client.post("/v1/models/nope:predict", json={"instances": ROWS}).status_code == 404


# --- Open Inference Protocol -------------------------------------------------------------------


def test_v2_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "modelport"
    assert "binary_tensor_data" in meta["extensions"]


def test_v2_model_metadata(client: TestClient) -> None:
    meta = client.get("/v2/models/iris").json()
    assert meta == {
        "name": "iris",
        "versions": ["1"],
        "platform": "sklearn",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
    }
    assert client.get("/v2/models/iris/versions/1").json() == meta
    text = client.get("/v2/models/sentiment").json()
    assert text["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200
    assert client.get("/v2/models/iris/versions/2/ready").status_code == 404
    assert client.get("/v2/models/nope").status_code == 404


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "FP16"])
def test_v2_infer_one_tensor(client: TestClient, datatype: str) -> None:
    body = {"id": "abc", "inputs": [v2_tensor(ROWS, datatype)]}
    answer = client.post("/v2/models/iris/infer", json=body).json()
    assert answer["id"] == "abc"
    assert answer["model_name"] == "iris"
    assert answer["model_version"] == "1"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict"] == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["setosa", "virginica"],
    }
    assert outputs["predict_proba"]["shape"] == [2, 3]
    assert outputs["predict_proba"]["datatype"] == "FP64"


def test_v2_infer_one_tensor_per_feature_and_flat_data(client: TestClient) -> None:
    inputs = [
        {"name": name, "shape": [2], "datatype": "FP32", "data": [ROWS[0][i], ROWS[1][i]]}
        for i, name in enumerate(IRIS_ROW)
    ]
    answer = client.post("/v2/models/iris/versions/1/infer", json={"inputs": inputs}).json()
    assert answer["outputs"][0]["data"] == ["setosa", "virginica"]
    flat = {
        "inputs": [{**v2_tensor(ROWS), "data": [v for row in ROWS for v in row]}],
        "outputs": [{"name": "predict"}],
    }
    answer = client.post("/v2/models/iris/infer", json=flat).json()
    assert [o["name"] for o in answer["outputs"]] == ["predict"]
    assert answer["id"]  # generated when the request has none


def test_v2_text_model_takes_bytes(client: TestClient) -> None:
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["good", "壞"]}]}
    answer = client.post("/v2/models/sentiment/infer", json=body)
    assert answer.status_code == 200
    assert answer.json()["outputs"][0]["shape"] == [2]
    numbers = {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    refused = client.post("/v2/models/sentiment/infer", json=numbers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"].endswith("Input should be a valid string, got 1.0")  # not np.


def binary_request(rows: np.ndarray, outputs_binary: bool) -> tuple[bytes, dict[str, str]]:
    raw = rows.astype("<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [
            {"name": "predict", "parameters": {"binary_data": outputs_binary}},
            {"name": "predict_proba", "parameters": {"binary_data": outputs_binary}},
        ],
    }
    text = json.dumps(header).encode()
    return text + raw, {"Inference-Header-Content-Length": str(len(text))}


def split_binary_outputs(content: bytes, header_length: int) -> dict[str, bytes]:
    header = json.loads(content[:header_length])
    offset, parts = header_length, {}
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        parts[output["name"]] = content[offset : offset + size]
        offset += size
    assert offset == len(content)
    return parts


def test_v2_binary_tensors_in_and_out(client: TestClient) -> None:
    body, headers = binary_request(np.array(ROWS), outputs_binary=True)
    response = client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    parts = split_binary_outputs(response.content, length)
    proba = np.frombuffer(parts["predict_proba"], dtype="<f8").reshape(2, 3)
    assert proba.argmax(axis=1).tolist() == [0, 2]
    labels, offset = [], 0
    while offset < len(parts["predict"]):
        (size,) = struct.unpack_from("<I", parts["predict"], offset)
        labels.append(parts["predict"][offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    assert labels == ["setosa", "virginica"]
    body, headers = binary_request(np.array(ROWS), outputs_binary=False)
    json_answer = client.post("/v2/models/iris/infer", content=body, headers=headers).json()
    assert json_answer["outputs"][0]["data"] == ["setosa", "virginica"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": [{**v2_tensor(ROWS), "datatype": "FP128"}]}, "unknown datatype 'FP128'"),
        ({"inputs": [{**v2_tensor(ROWS), "shape": [2, 3]}]}, "needs 6 values, got 8"),
        ({"inputs": [{**v2_tensor(ROWS), "shape": [8]}]}, "expected shape [batch, 4], got [8]"),
        (
            {"inputs": [{**v2_tensor(ROWS), "datatype": "INT8", "data": [[1, 2, 3, 999]] * 2}]},
            "data is not INT8",
        ),
        ({"inputs": [{**v2_tensor(ROWS), "data": None}]}, "neither data nor binary_data_size"),
        (
            {"inputs": [v2_tensor([[5.1, 3.5, 1.4, 11.0]])]},
            "petal_width (row 0): Input should be less",
        ),
        ({"inputs": [v2_tensor(ROWS)], "outputs": [{"name": "logits"}]}, "unknown output 'logits'"),
        (
            {"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
            "one tensor per feature named",
        ),
        (
            {
                "inputs": [
                    {
                        "name": n,
                        "shape": [1 + (n == "petal_width")],
                        "datatype": "FP64",
                        "data": [1.0] * (1 + (n == "petal_width")),
                    }
                    for n in IRIS_ROW
                ]
            },
            "different batch sizes",
        ),
        ({"inputs": [{**v2_tensor(ROWS), "shape": [-2, -4]}]}, "negative dimension"),
        ({"inputs": [{**v2_tensor(ROWS), "data": [["a", "b", "c", "d"]] * 2}]}, "data is not FP64"),
    ],
)
def test_v2_bad_requests_are_400(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v2_bad_binary_framing_is_400(client: TestClient) -> None:
    body, headers = binary_request(np.array(ROWS), outputs_binary=False)
    for bad in (
        {"Inference-Header-Content-Length": "99999"},
        {"Inference-Header-Content-Length": "x"},
    ):
        assert client.post("/v2/models/iris/infer", content=body, headers=bad).status_code == 400
    short = client.post("/v2/models/iris/infer", content=body[:-4], headers=headers)
    assert short.status_code == 400
    assert "exceeds the body" in short.json()["error"]
    extra = client.post("/v2/models/iris/infer", content=body + b"xx", headers=headers)
    assert "belong to no input" in extra.json()["error"]


def test_v2_not_ready_is_503(make_client: ClientFactory, tmp_path: Path) -> None:
    write_fake_model(tmp_path, "broken", parameters={"load_error": "nope"})
    with make_client(tmp_path) as client:
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/broken/ready").status_code == 503
        body = {"inputs": [v2_tensor([[1.0, 2.0]])]}
        assert client.post("/v2/models/broken/infer", json=body).status_code == 503
        assert client.get("/v2/health/live").status_code == 200


def test_v2_repository_index_load_unload(make_client: ClientFactory, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "a")
    with make_client(repo, admin_key="admin-k") as client:
        client.headers["X-Admin-Key"] = "admin-k"  # load and unload need it
        assert client.post("/v2/repository/index").json() == [
            {"name": "a", "version": "1", "state": "READY"}
        ]
        write_fake_model(repo, "b", versions=(1, 2))  # appears on disk while serving
        assert (
            client.post(
                "/v2/models/b/infer", json={"inputs": [v2_tensor([[1.0, 2.0]])]}
            ).status_code
            == 404
        )
        assert client.post("/v2/repository/models/b/load").status_code == 200
        answer = client.post("/v2/models/b/infer", json={"inputs": [v2_tensor([[1.0, 2.0]])]})
        assert answer.json()["model_version"] == "2"
        index = client.post("/v2/repository/index", json={"ready": True}).json()
        assert {(e["name"], e["version"]) for e in index} == {("a", "1"), ("b", "1"), ("b", "2")}
        registry = client.app.state.dataplane.registry  # type: ignore[attr-defined]
        first = registry.model("b").versions[2]
        assert client.post("/v2/repository/models/b/load").status_code == 200  # a reload
        assert (first.loaded, registry.model("b").versions[2].state.value) == (None, "ready")
        second = registry.model("b").versions[2]
        assert client.post("/v2/repository/models/b/unload").status_code == 200
        assert second.loaded is None  # the unloaded versions are freed, not only unlisted
        assert (
            client.post(
                "/v2/models/b/infer", json={"inputs": [v2_tensor([[1.0, 2.0]])]}
            ).status_code
            == 404
        )
        assert client.post("/v2/repository/models/b/unload").status_code == 404
        assert client.post("/v2/repository/models/a/unload").status_code == 200
        gone = client.post("/predict", json={"x0": 1, "x1": 2})  # "a" was the default model
        assert gone.status_code == 404
        assert "the default model 'a' not found" in gone.json()["error"]
        assert client.post("/v2/repository/models/zzz/load").status_code == 404


def test_v2_reload_with_one_broken_version_is_400_and_changes_nothing(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """A new version that fails to load fails the whole load (400, naming it): the versions
    that served go on, and readiness and the version list stay as they were."""
    repo = tmp_path / "repo"
    write_fake_model(repo, "a")
    with make_client(repo, admin_key="admin-k") as client:
        client.headers["X-Admin-Key"] = "admin-k"
        write_fake_model(repo, "a", versions=(1, 2))
        (repo / "a" / "2" / "model.fake").write_text("load_error: garbage weights\n")
        response = client.post("/v2/repository/models/a/load")
        assert response.status_code == 400, response.text
        assert "v2: garbage weights" in response.json()["error"]
        assert client.get("/ready").status_code == 200
        assert client.get("/v2/models/a").json()["versions"] == ["1"]
        tensor = {"inputs": [v2_tensor([[1.0, 2.0]])]}
        assert client.post("/v2/models/a/infer", json=tensor).status_code == 200


def test_v2_reload_passes_a_version_that_failed_before_too(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """A version broken since startup does not block every later load (a card edit, say): it
    fails on, as it did at startup, and the others reload."""
    repo = tmp_path / "repo"
    write_fake_model(repo, "a", versions=(1, 2))
    (repo / "a" / "1" / "model.fake").write_text("load_error: never loaded\n")
    with make_client(repo, admin_key="admin-k") as client:
        client.headers["X-Admin-Key"] = "admin-k"
        response = client.post("/v2/repository/models/a/load")
        assert response.status_code == 200, response.text
        states = {e["version"]: e["state"] for e in client.post("/v2/repository/index").json()}
        assert states == {"1": "UNAVAILABLE", "2": "READY"}


def test_v2_failed_reload_keeps_the_old_model(make_client: ClientFactory, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_fake_model(repo, "a")
    with make_client(repo, admin_key="admin-k") as client:
        client.headers["X-Admin-Key"] = "admin-k"
        write_fake_model(repo, "a", parameters={"load_error": "bad weights"})
        response = client.post("/v2/repository/models/a/load")
        assert response.status_code == 400
        assert "bad weights" in response.json()["error"]
        assert (
            client.post(
                "/v2/models/a/infer", json={"inputs": [v2_tensor([[1.0, 2.0]])]}
            ).status_code
            == 200
        )
