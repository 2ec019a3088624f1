"""tritonclient.grpc and the KServe SDK's gRPC client against a real server's gRPC port: the same
answers as REST, for a tabular model (raw binary contents), a BYTES text model and an image
model. Each client runs in a process of its own (see :mod:`tests.clients.grpc_calls`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest

from modelport.cli.examples import train_example
from tests.clients.grpc_calls import IMAGES, IRIS, TEXTS
from tests.helpers import Server, free_port, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    repo = tmp_path_factory.mktemp("grpc-clients") / "models"
    for example in ("iris", "sentiment", "digits"):
        train_example(example, repo)
    port = free_port()
    log = repo.parent / "server.log"
    with running_server([str(repo), "--grpc-port", str(port)], log) as server:
        yield server, f"127.0.0.1:{port}"


def run_client(name: str, address: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.clients.grpc_calls", name, address]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def rest(server: Server, model: str, name: str, datatype: str, data: Any) -> dict[str, Any]:
    array = np.asarray(data)
    body = {
        "inputs": [{"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}]
    }
    response = httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


def same(grpc_outputs: dict[str, Any], rest_outputs: dict[str, Any]) -> None:
    assert set(grpc_outputs) == set(rest_outputs)
    for name, expected in rest_outputs.items():
        got = grpc_outputs[name]
        if isinstance(expected[0], str):
            assert got == expected, name
        else:
            np.testing.assert_allclose(np.ravel(got), np.ravel(expected), rtol=1e-6)


def test_tritonclient_grpc(served: tuple[Server, str]) -> None:
    server, address = served
    seen = run_client("triton", address)
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    assert seen["server"]["name"] == "modelport"
    assert "model_repository" in seen["server"]["extensions"]
    rest_meta = {m: httpx.get(f"{server.url}/v2/models/{m}").json() for m in ("iris", "digits")}
    for model, meta in seen["metadata"].items():
        assert meta["name"] == model
        inputs = rest_meta[model]["inputs"]  # protobuf's JSON writes int64 as text
        assert meta["inputs"] == [{**t, "shape": [str(d) for d in t["shape"]]} for t in inputs]
    assert {(m["name"], m["state"]) for m in seen["index"]["models"]} == {
        ("iris", "READY"),
        ("sentiment", "READY"),
        ("digits", "READY"),
    }
    same(seen["iris"]["outputs"], rest(server, "iris", "input", "FP32", IRIS.tolist()))
    assert seen["iris"]["outputs"]["predict"] == ["setosa", "virginica"]
    assert seen["iris"]["id"] == "triton-iris"
    same(seen["sentiment"]["outputs"], rest(server, "sentiment", "text", "BYTES", TEXTS))
    same(seen["digits"]["outputs"], rest(server, "digits", "image", "FP32", IMAGES.tolist()))


def test_kserve_sdk_grpc_client(served: tuple[Server, str]) -> None:
    server, address = served
    seen = run_client("kserve", address)
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    expected = rest(server, "iris", "input", "FP32", IRIS.tolist())
    same(seen["iris"]["outputs"], expected)  # typed contents
    same(seen["iris_raw"]["outputs"], expected)  # raw_input_contents
    assert (seen["iris"]["id"], seen["iris_raw"]["id"]) == ("iris", "iris_raw")
    same(seen["sentiment"]["outputs"], rest(server, "sentiment", "text", "BYTES", TEXTS))


def test_the_grpc_port_is_off_by_default(repo: Path) -> None:
    """Without --grpc-port the server never imports grpc (the heavy import is opt-in)."""
    code = (
        "import sys; from modelport.server.app import create_app; create_app(); "
        "print(any(m == 'grpc' or m.startswith('grpc.') for m in sys.modules))"
    )
    env = {**os.environ, "MODELPORT_MODELS": str(repo)}
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True, env=env)
    assert done.stdout.strip() == "False"
