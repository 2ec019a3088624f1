"""The KServe Python SDK's REST client (V2, and V1 where it has it) against modelport."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from tests.helpers import Server

pytestmark = pytest.mark.e2e

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


async def _v2(base: str) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        seen: dict[str, Any] = {
            "live": await client.is_server_live(base),
            "ready": await client.is_server_ready(base),
            "model_ready": await client.is_model_ready(base, "iris"),
        }
        tensor = InferInput(name="input", shape=[2, 4], datatype="FP32")
        tensor.set_data_from_numpy(np.array(ROWS, dtype=np.float32), binary_data=False)
        response = await client.infer(base, InferRequest("iris", [tensor]), model_name="iris")
        seen["iris"] = {o.name: o.as_numpy() for o in response.outputs}
        binary = InferInput(name="input", shape=[2, 4], datatype="FP32")
        binary.set_data_from_numpy(np.array(ROWS, dtype=np.float32), binary_data=True)
        response = await client.infer(base, InferRequest("iris", [binary]), model_name="iris")
        seen["iris_binary"] = {o.name: o.as_numpy() for o in response.outputs}
        text = InferInput(name="text", shape=[2], datatype="BYTES", data=["great", "很糟"])
        response = await client.infer(
            base, InferRequest("sentiment", [text]), model_name="sentiment"
        )
        seen["sentiment"] = {o.name: o.as_numpy() for o in response.outputs}
    finally:
        await client.close()
    return seen


async def _v1(base: str) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=30))
    try:
        return await client.infer(base, {"instances": ROWS}, model_name="iris")  # type: ignore[return-value]
    finally:
        await client.close()


def labels(array: np.ndarray) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in array.tolist()]


def test_v2_with_the_kserve_sdk(server: Server) -> None:
    seen = asyncio.run(_v2(server.url))
    assert seen["live"]
    assert seen["ready"]
    assert seen["model_ready"]
    for key in ("iris", "iris_binary"):
        assert labels(seen[key]["predict"]) == ["setosa", "virginica"]
        assert seen[key]["predict_proba"].shape == (2, 3)
    assert set(labels(seen["sentiment"]["predict"])) <= {"positive", "negative"}


def test_v1_with_the_kserve_sdk(server: Server) -> None:
    assert asyncio.run(_v1(server.url)) == {"predictions": ["setosa", "virginica"]}
