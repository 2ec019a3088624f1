"""Triton's own HTTP client, with its default settings (binary tensors), against modelport."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.helpers import Server

pytestmark = pytest.mark.e2e

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def text(array: np.ndarray) -> list[str]:
    """BYTES elements: tritonclient gives bytes for binary outputs and str for JSON ones."""
    return [x.decode() if isinstance(x, bytes) else str(x) for x in array.tolist()]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    triton_client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield triton_client
    triton_client.close()


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.get_server_metadata()["name"] == "modelport"
    meta = client.get_model_metadata("iris")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_iris(client: triton.InferenceServerClient, binary: bool) -> None:
    tensor = triton.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, request_id="r-1")
    labels = text(result.as_numpy("predict"))
    assert labels == ["setosa", "virginica"]
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert result.get_response()["id"] == "r-1"


def test_infer_with_default_outputs(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    result = client.infer("iris", [tensor])
    assert text(result.as_numpy("predict")) == ["setosa", "virginica"]


def test_bytes_input_to_the_text_model(client: triton.InferenceServerClient) -> None:
    texts = np.array([b"Wonderful staff, spotless room.", "服務很差".encode()], dtype=object)
    tensor = triton.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(texts)
    result = client.infer("sentiment", [tensor], outputs=[triton.InferRequestedOutput("predict")])
    labels = text(result.as_numpy("predict"))
    assert len(labels) == 2
    assert set(labels) <= {"positive", "negative"}


def test_errors_reach_the_client(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(ROWS[:1, :3])
    with pytest.raises(InferenceServerException, match="expected rows of 4 values"):
        client.infer("iris", [tensor])
    with pytest.raises(InferenceServerException, match="not found"):
        client.get_model_metadata("nope")
