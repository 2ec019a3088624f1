"""Third-party gRPC clients against a modelport server, each in a process of its own.

tritonclient.grpc and the KServe SDK register the same protobuf names (``inference.*``) in
protobuf's default pool, so one process cannot import both (and the suite imports kserve
already): ``python -m tests.clients.grpc_calls triton|kserve HOST:PORT`` runs one client's calls
and prints what it saw as JSON, for the tests to compare with the REST answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
TEXTS = ["Wonderful staff, spotless room.", "服務很差"]
IMAGES = (np.arange(2 * 64, dtype=np.float32) % 17 / 16).reshape(2, 1, 8, 8)


def plain(array: Any) -> Any:
    """A numpy answer as JSON values (BYTES elements as text)."""
    if array is None:
        return None
    values = np.asarray(array).tolist()
    if np.asarray(array).dtype.kind in "OSU":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(array)]
    return values


def triton(address: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(address)
    seen: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready("iris"),
        "server": client.get_server_metadata(as_json=True),
        "metadata": {m: client.get_model_metadata(m, as_json=True) for m in ("iris", "digits")},
        "index": client.get_model_repository_index(as_json=True),
    }
    for model, name, datatype, data in [
        ("iris", "input", "FP32", IRIS),
        ("sentiment", "text", "BYTES", np.array([t.encode() for t in TEXTS], dtype=object)),
        ("digits", "image", "FP32", IMAGES),
    ]:
        tensor = grpcclient.InferInput(name, list(data.shape), datatype)
        tensor.set_data_from_numpy(data)
        result = client.infer(model, [tensor], request_id=f"triton-{model}")
        response = result.get_response(as_json=True)
        seen[model] = {
            "id": response["id"],
            "outputs": {o["name"]: plain(result.as_numpy(o["name"])) for o in response["outputs"]},
        }
    client.close()
    return seen


async def _kserve(address: str) -> dict[str, Any]:
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    client = InferenceGRPCClient(address, retries=0, timeout=30)
    try:
        seen: dict[str, Any] = {
            "live": await client.is_server_live(),
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready("iris"),
        }
        for key, binary in (("iris", False), ("iris_raw", True)):
            tensor = InferInput(name="input", shape=[2, 4], datatype="FP32")
            tensor.set_data_from_numpy(IRIS, binary_data=binary)
            response = await client.infer(InferRequest("iris", [tensor], request_id=key))
            outputs = {o.name: plain(o.as_numpy()) for o in response.outputs}
            seen[key] = {"id": response.id, "outputs": outputs}
        text = InferInput(name="text", shape=[2], datatype="BYTES", data=TEXTS)
        response = await client.infer(InferRequest("sentiment", [text], request_id="k-text"))
        seen["sentiment"] = {
            "id": response.id,
            "outputs": {o.name: plain(o.as_numpy()) for o in response.outputs},
        }
    finally:
        await client.close()
    return seen


def kserve(address: str) -> dict[str, Any]:
    return asyncio.run(_kserve(address))


CLIENTS = {"triton": triton, "kserve": kserve}

if __name__ == "__main__":
    print(json.dumps(CLIENTS[sys.argv[1]](sys.argv[2])))
